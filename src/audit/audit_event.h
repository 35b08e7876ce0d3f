// An audit event: a JSON object, sealed as its text (docs/FORMAT.md,
// "Audit events").
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
  // An anchor's (audit_segment.h): the segment, how many entries it holds,
  // and the last one's MAC; empty for any other event.
  ByteView segment{};
  std::int64_t entries = 0;
  ByteView last{};
};

// The event as a JSON object: `time, actor, roles, action, owner, name,
// outcome, error, pid`, plus `skill` and `query_sha256` when not empty,
// `segment`, `entries` and `last` for an anchor, and last `prior` and
// `state` (hex) for a write.
[[nodiscard]] std::string event_json(const EventFields& event);

// What a write's event commits to (its last fields); nullopt for an event
// without a commitment.
struct StateCommitment {
  Bytes prior;  // empty for a vault's first commitment
  Bytes state;
};
[[nodiscard]] std::optional<StateCommitment> event_commitment(std::string_view text);

// The action of an anchor event.
inline constexpr std::string_view kAnchorAction = "anchor";
// What an anchor event records; nullopt for any other event.
struct SegmentAnchor {
  Bytes segment;
  std::int64_t entries = 0;
  Bytes last;
};
[[nodiscard]] std::optional<SegmentAnchor> event_anchor(std::string_view text);

// A JSON string literal of `text` (invalid UTF-8 replaced).
void append_json_string(std::string& out, std::string_view text);

}  // namespace credentials::internal
