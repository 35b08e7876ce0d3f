// The tamper-evident audit chain (docs/FORMAT.md, "Audit").
//
// Each event of a write, and each anchor of a segment of read events
// (audit_segment.h), is sealed (AES-256-GCM under the audit seal key, bound
// to the vault id and its sequence number) and chained:
//   mac_n = HMAC(audit_mac_key, mac_{n-1} ‖ seq_n ‖ len(owner_tag_n) ‖ owner_tag_n ‖ sealed_n)
// with mac_0 = HMAC(audit_mac_key, "genesis" ‖ vault id). The meta row
// `audit_head` holds seq ‖ mac ‖ HMAC(audit_mac_key, "head" ‖ seq ‖ mac),
// written in the same transaction, so dropping the tail is detected too.
// Stateless functions; callers hold the store's write transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "crypto/primitives.h"
#include "store/record_store.h"
#include "vault/keyring.h"

namespace credentials::internal {

// Appends one event (a JSON text without secrets). REQUIRES: inside a write
// transaction on `store`. Returns the new sequence number.
std::int64_t append_audit_event(RecordStore& store, const Keyring& keys, ByteView owner_tag,
                                std::string_view event_json);

// Rows read from the store at a time when the chain or the segments are walked.
inline constexpr std::int64_t kAuditRowsPerRead = 1024;

struct ChainVerification {
  bool ok = true;
  std::int64_t events = 0;         // in the chain and in the segments
  std::int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;             // what is wrong at first_bad_seq
  std::int64_t head_seq = 0;
  Bytes head_mac;
};

// What every write's event commits to: a digest of the state the write
// leaves behind, the version ledger's root (every credential's current
// version) and the key set. REQUIRES: inside a transaction on `store`.
[[nodiscard]] Bytes vault_state(RecordStore& store);

// Walks the chain (below) and every segment of read events, and fails:
// at an event that records a damaged segment; at a segment entry edited,
// forged, reordered or missing up to the segment's last anchor; at an
// anchor whose segment does not hold it; and when the vault's state is not
// the one the last write's event commits to (records or trail rolled back
// or cut, alone). REQUIRES: inside one transaction on `store`.
[[nodiscard]] ChainVerification verify_audit_chain(RecordStore& store, const Keyring& keys);
// The walk: sequence numbers, MACs, decryption and head, with `each`
// seeing every event's sequence number and text in order; a problem it
// returns fails the walk there.
[[nodiscard]] ChainVerification walk_audit_chain(
    RecordStore& store, const Keyring& keys,
    const std::function<std::optional<std::string>(std::int64_t seq, const std::string& text)>&
        each);
[[nodiscard]] Bytes chain_genesis_mac(const Keyring& keys);

// True when `row` follows the event whose MAC is `previous_mac` (the
// genesis MAC before event 1) as the chain's next.
[[nodiscard]] bool audit_row_chains(const Keyring& keys, ByteView previous_mac,
                                    const AuditRow& row);
// Opens a row's sealed event; nullopt when it does not authenticate.
[[nodiscard]] std::optional<std::string> open_audit_event(const Keyring& keys, const AuditRow& row);

}  // namespace credentials::internal
