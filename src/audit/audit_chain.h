// The tamper-evident audit chain (docs/FORMAT.md, "Audit").
//
// Each event of a write is sealed (AES-256-GCM under the audit seal key,
// bound to the vault id and its sequence number) and chained:
//   mac_n = HMAC(audit_mac_key, mac_{n-1} ‖ seq_n ‖ owner_tag_n ‖ sealed_n)
// with mac_0 = HMAC(audit_mac_key, "genesis" ‖ vault id). Read events come
// folded from read journals (read_journal.h) in runs: one row holds many
// journal entries as the journal wrote them, each with its own MAC chained
// to the entry before it, and the row's chain MAC covers the MACs before
// and at the end of the run. The meta row `audit_head` holds
// seq ‖ mac ‖ HMAC(audit_mac_key, "head" ‖ seq ‖ mac), written in the same
// transaction, so dropping the tail is detected too.
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
  // Appends a run of `count` read-journal entries of journal `journal_id`,
  // whole and in order as the journal holds them, from index `first_index`:
  // the first chained to `start_mac`, the last with MAC `last_mac`.
  // Returns the sequence number of the last.
  std::int64_t append_run(ByteView journal_id, std::uint64_t first_index, ByteView start_mac, ByteView entries,
                          std::int64_t count, ByteView last_mac);
  // Writes the head; without it the appended events fail verification.
  void finish();

 private:
  RecordStore& store_;
  const Keyring& keys_;
  std::int64_t seq_ = 0;  // of the last event
  Bytes mac_;             // of the last event
  bool appended_ = false;
};

// Rows read from the store at a time when the chain is walked: a run holds
// up to 1 MiB of journal entries (~210 KB for a fold of 1,024 reads), so
// 4,096 rows at a time could have held gigabytes.
inline constexpr std::int64_t kAuditRowsPerRead = 64;

struct ChainVerification {
  bool ok = true;
  std::int64_t events = 0;
  std::int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;             // what is wrong at first_bad_seq
  std::int64_t head_seq = 0;
  Bytes head_mac;
};
// Where a read event folded from a read journal came from, as far as its
// row shows it. Views into the row, valid while the row is.
struct JournalPlace {
  // Empty when the row names no journal: an event of a write, a read on
  // the shared store, or a read folded before format 4 (sealed again under
  // its chain number).
  ByteView journal_id{};
  std::uint64_t index = 0;
  // The journal MACs the entry chains to and ends with; empty for a row of
  // format 4, which kept the entry's seal but not its MACs.
  ByteView chained_to{};
  ByteView mac{};
  // Sealed as JSON: written by a build before format 5's compact events.
  bool json_sealed = false;
};

// An event as the walk hands it on: opened, and where it came from.
struct WalkedEvent {
  std::int64_t seq = 0;
  const std::string& text;
  const JournalPlace& journal;
};

// What every write's event commits to: a digest of the state the write
// leaves behind, the version ledger's root (every credential's current
// version) and the key set. REQUIRES: inside a transaction on `store`.
[[nodiscard]] Bytes vault_state(RecordStore& store);

// Walks the chain (below) and also fails at an `audit_journal_damaged`
// event, at a read event that does not continue its journal's events
// before it in the chain (journal_continuity.h): repeated or skipped reads,
// and when the vault's state is not the one the last write's event commits
// to (records or trail rolled back or cut, alone). REQUIRES: inside one
// transaction on `store`.
[[nodiscard]] ChainVerification verify_audit_chain(RecordStore& store, const Keyring& keys);
// The walk: sequence numbers, MACs, decryption and head, with `each`
// seeing every event in order; a problem it returns fails the walk there.
[[nodiscard]] ChainVerification walk_audit_chain(
    RecordStore& store, const Keyring& keys,
    const std::function<std::optional<std::string>(const WalkedEvent&)>& each);
[[nodiscard]] Bytes chain_genesis_mac(const Keyring& keys);

// One event as a row of the chain holds it.
struct ChainedEvent {
  std::int64_t seq = 0;
  ByteView owner_tag{};
  ByteView sealed{};
  ByteView journal_id{};  // for an entry of a run: the journal its seal is bound to
  std::uint64_t journal_index = 0;
  ByteView chained_to{};  // for an entry of a run: the journal MAC before it
  ByteView mac{};         // and its own
};
struct RowProblem {
  std::int64_t seq = 0;  // of the first bad event
  std::string what;
};
// Checks `row` as the next after the event numbered `expected_seq - 1`
// with MAC `previous_mac` (the genesis MAC before event 1): its sequence
// numbers and chain MAC, and for a run each entry's MAC and index. Once
// the whole row has checked out, hands each of its events in order to
// `each`, which may return a problem. Returns the first problem: a row
// edited, moved, copied or cut has one, and `each` then sees none of its
// events.
[[nodiscard]] std::optional<RowProblem> check_audit_row(
    const Keyring& keys, std::int64_t expected_seq, ByteView previous_mac, const AuditRow& row,
    const std::function<std::optional<std::string>(const ChainedEvent&)>& each);

// Opens a sealed event; nullopt when it does not authenticate.
[[nodiscard]] std::optional<std::string> open_audit_event(const Keyring& keys, const ChainedEvent& event);
// The same, also telling where a read event came from (a row of format 4
// names its journal inside the seal, so only opening it tells).
[[nodiscard]] std::optional<std::string> open_audit_event(const Keyring& keys, const ChainedEvent& event,
                                                          JournalPlace& place);

}  // namespace credentials::internal
