// An audit event's two encodings (docs/FORMAT.md, "Audit events").
//
// `audit` reads every event as a JSON object, and the events of writes are
// sealed as that JSON. The events of reads are sealed in a compact binary
// form instead: a read's event is MACed, sealed, copied into its journal,
// written to the database's log and then into the database itself, so each
// of its bytes is paid for five times on every read, and the JSON's keys
// and time string made up more than half of it. Opening an event turns
// either form into the same JSON text.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "credentials/credential.h"
#include "crypto/primitives.h"

namespace credentials::internal {

// What an event records; never a password, a connection string, an input
// value or a query parameter.
struct EventFields {
  Timestamp time{};
  std::string_view actor;
  std::span<const std::string> roles;
  std::string_view action, owner, name, outcome, error, skill, query_sha256;
  std::int64_t pid = 0;
  // A write's commitment to the state it leaves behind (vault_state in
  // audit_chain.h), and to the one it started from (empty for a vault's
  // first commitment); both empty for a read.
  ByteView prior{};
  ByteView state{};
};

// The event as a JSON object: `time, actor, roles, action, owner, name,
// outcome, error, pid`, plus `skill` and `query_sha256` when not empty, and
// last `prior` and `state` (hex) for a write.
[[nodiscard]] std::string event_json(const EventFields& event);

// What a write's event commits to (its last fields); nullopt for an event
// without a commitment.
struct StateCommitment {
  Bytes prior;  // empty for a vault's first commitment
  Bytes state;
};
[[nodiscard]] std::optional<StateCommitment> event_commitment(std::string_view text);

// The compact form, into `out` (its capacity kept from one read to the
// next): 0x01 ‖ time_µs i64 ‖ pid u32 (both big-endian) ‖ count ‖ roles ‖
// actor, action, owner, name, outcome, error, skill, query_sha256, each
// string its length and its bytes; counts and lengths are LEB128 (one byte
// below 128).
void compact_event(const EventFields& event, Bytes& out);

// The JSON text of an opened event in either form; nullopt when it is
// neither a JSON object nor a well-formed compact event.
[[nodiscard]] std::optional<std::string> event_text(ByteView opened);

// A JSON string literal of `text` (invalid UTF-8 replaced).
void append_json_string(std::string& out, std::string_view text);

}  // namespace credentials::internal
