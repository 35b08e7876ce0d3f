// The tamper-evident audit chain (docs/FORMAT.md, "Audit").
//
// Each event is sealed (AES-256-GCM under the audit seal key, bound to the
// vault id and its sequence number) and chained:
//   mac_n = HMAC(audit_mac_key, mac_{n-1} ‖ seq_n ‖ owner_tag_n ‖ sealed_n)
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

// Appends many events in one transaction: the chain's end is read once and
// the head written once (folding a read journal).
class AuditAppender {
 public:
  // REQUIRES: inside a write transaction on `store`, until finish().
  AuditAppender(RecordStore& store, const Keyring& keys);
  std::int64_t append(ByteView owner_tag, std::string_view event_json);
  // Appends an event sealed elsewhere: a folded read-journal entry
  // (`journal id ‖ index ‖ the journal's seal`, see open_audit_event).
  std::int64_t append_sealed(ByteView owner_tag, Bytes sealed);
  // Writes the head; without it the appended events fail verification.
  void finish();

 private:
  RecordStore& store_;
  const Keyring& keys_;
  std::int64_t seq_ = 0;  // of the last event
  Bytes mac_;             // of the last event
  bool appended_ = false;
};

struct ChainVerification {
  bool ok = true;
  std::int64_t events = 0;
  std::int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;             // what is wrong at first_bad_seq
  std::int64_t head_seq = 0;
  Bytes head_mac;
};
[[nodiscard]] ChainVerification verify_audit_chain(RecordStore& store, const Keyring& keys);
// The same walk (sequence numbers, MACs, decryption, head), with `each`
// seeing every event's text; a problem it returns fails the walk there.
// verify_audit_chain is this walk failing at an `audit_journal_damaged` event.
[[nodiscard]] ChainVerification walk_audit_chain(
    RecordStore& store, const Keyring& keys,
    const std::function<std::optional<std::string>(std::int64_t seq, const std::string& text)>& each);
// True when `row`'s MAC chains it to the event whose MAC is `previous_mac`
// (the genesis MAC before event 1): a row edited, moved or copied is not.
[[nodiscard]] bool row_follows(const Keyring& keys, ByteView previous_mac, const AuditRow& row);
[[nodiscard]] Bytes chain_genesis_mac(const Keyring& keys);

// Opens a sealed event; nullopt when it does not authenticate.
[[nodiscard]] std::optional<std::string> open_audit_event(const Keyring& keys, const AuditRow& row);

}  // namespace credentials::internal
