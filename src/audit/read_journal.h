// The read journal: how a read's audit event costs a few microseconds instead
// of a write transaction (docs/FORMAT.md, "Read journal").
//
// Writes commit their event in their own transaction. A read cannot afford
// one (tens of microseconds per get), so each vault handle on the embedded
// store appends its read events to a journal file of its own before the
// result is returned (fail closed: if the append fails the read fails). The
// file is mapped shared and grown ahead in zeroed chunks written with
// pwrite(2), so an append is a copy into the page cache, not a system call:
// durable against a crash of the process all the same, and the space it
// needs was already granted (a full disk refuses the chunk, not a store
// into the map). An entry is sealed like a chain event and chained to the
// entry before it:
//   mac_i = HMAC(audit_mac_key, "journal" ‖ mac_{i-1} ‖ entry_i without mac)
// with mac_{-1} = HMAC(audit_mac_key, "journal-genesis" ‖ vault id ‖ journal id),
// so an entry cannot be edited, forged, dropped from the middle or reordered.
//
// Folding moves entries into the main audit chain, inside a write
// transaction that also records how far the journal is folded (meta row
// "journal/<id>"), so a crash never folds an entry twice or loses one.
// A handle folds its own journal at each of its writes, every second or 1,024
// events of reading, and when it closes, from a private copy of what it
// appended (no read back, no MAC check of its own entries); once 4 MiB are
// folded it starts a new journal and removes the old one; `audit`, `verify`, `backup` fold
// every journal first; the next opener folds the journal of a process that
// died. The owner holds flock(LOCK_EX) on its journal for its lifetime: a
// journal nobody holds is an orphan.
//
// What the journal cannot prove (docs/THREAT_MODEL.md): a journal deleted or
// cut short before it is folded, by someone who can write the vault
// directory. Its events are at most a second old, or those of a process
// that has not written or closed since.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/primitives.h"
#include "store/record_store.h"
#include "vault/keyring.h"

namespace credentials::internal {

class ReadJournal {
 public:
  // Creates a new journal in `directory` (made 0700), file 0600, locked.
  // Throws DatabaseError when it cannot.
  static std::unique_ptr<ReadJournal> create(const std::filesystem::path& directory,
                                             const Keyring& keys);
  ~ReadJournal();
  ReadJournal(const ReadJournal&) = delete;
  ReadJournal& operator=(const ReadJournal&) = delete;

  // Appends one event (its compact form, audit_event.h) with the owner tag of its
  // namespace and, when the read used a credential, that credential's lookup
  // tag (for its last-used time). Durable against a crash of this process
  // once it returns. Throws DatabaseError when the entry cannot be written;
  // the journal then stays as it was.
  void append(const Keyring& keys, ByteView owner_tag, ByteView used_lookup,
              ByteView event, std::int64_t time_micros);

  // True when enough unfolded events have gathered to fold them now.
  [[nodiscard]] bool fold_due() const;
  [[nodiscard]] bool has_unfolded() const { return appended_ != folded_hint_; }
  // Folds this journal. REQUIRES: inside a write transaction on `store`;
  // once it has committed, call fold_committed() (a transaction that rolls
  // back leaves the entries unfolded, and they are folded again next time).
  void fold(RecordStore& store, const Keyring& keys);
  void fold_committed();
  // After a fold that failed: the next is due after as many events or as
  // long again.
  void postpone_fold();
  // True when this journal has grown long enough to be replaced: a fold
  // that may lead to rotate() should be made durable.
  [[nodiscard]] bool long_enough_to_rotate() const;
  // True when it is long and its fold to the end has committed: the handle
  // moves to a new journal (rotate), after a durable commit.
  [[nodiscard]] bool ready_to_rotate() const;
  // Creates the next journal in the same directory and removes this one's
  // file (REQUIRES ready_to_rotate()). The new journal drops this one's meta
  // row at its first fold; should the file stay (it cannot be removed), its
  // row stays with it, and the next opener removes it as an orphan folded to
  // its end. Throws DatabaseError when the new journal cannot be created;
  // this one stays.
  [[nodiscard]] std::unique_ptr<ReadJournal> rotate(const Keyring& keys);
  // The process that created this journal: in the child of a fork the
  // handle must not write to its parent's journal (see EmbeddedVault).
  [[nodiscard]] pid_t creator() const { return creator_; }
  // When the vault handle closes: folds the journal, runs `also`, drops the
  // meta rows of journals already removed (the previous closers'), and, once
  // that has committed, removes the file. One transaction, not fsynced.
  void close(RecordStore& store, const Keyring& keys, const std::function<void()>& also);

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  ReadJournal(std::filesystem::path path, int fd, Bytes journal_id, Bytes genesis, pid_t creator);
  // Makes [appended_, appended_ + bytes) part of the file and of the map,
  // growing the file with zeros. False when the entry goes past the map.
  // Throws DatabaseError when the file cannot grow.
  bool reserve_mapped(std::size_t bytes);
  // The entry append() writes now, into `entry` (its capacity kept).
  void seal(const Keyring& keys, ByteView owner_tag, ByteView used_lookup, ByteView event,
            std::int64_t time_micros, Bytes& entry) const;
  void write_entry(ByteView entry);
  // Writes an entry sealed for next_index_ and keeps it for the next fold.
  void write_sealed(ByteView entry);

  std::filesystem::path path_;
  int fd_;
  Bytes journal_id_;
  Bytes last_mac_;
  std::uint64_t next_index_ = 0;
  std::uint64_t appended_ = 0;     // bytes of entries written
  std::uint64_t folded_hint_ = 0;  // bytes known folded and committed (others may have folded more)
  std::optional<std::uint64_t> pending_fold_;  // folded by fold(), not yet known committed
  std::chrono::steady_clock::time_point first_unfolded_{};
  std::uint64_t unfolded_events_ = 0;
  std::uint8_t* map_ = nullptr;  // the file's first kMapBytes, shared; null: pwrite only
  std::uint64_t file_size_ = 0;  // appended_ plus the zeros grown ahead
  // This handle's entries from offset unfolded_from_ to appended_, as
  // written: what its next fold moves into the chain (and the entries of
  // its last fold, until a fold sees that one committed).
  Bytes unfolded_;
  std::uint64_t unfolded_from_ = 0;
  Bytes unfolded_from_mac_;            // the MAC of the entry before unfolded_from_ (or the genesis)
  std::uint64_t unfolded_from_index_ = 0;  // the index of the entry at unfolded_from_
  Bytes entry_;                            // reused by each append
  Bytes fold_buffer_;             // reused by a fold that reads the file (see read_from)
  std::vector<Bytes> retired_;    // ids of the journals this one replaced: their meta rows go
  pid_t creator_;
};

// One journal entry (docs/FORMAT.md, "Read journal"), its fields as views
// into the entry's bytes.
struct JournalEntry {
  std::uint64_t index = 0;
  std::int64_t time = 0;
  ByteView owner, used, sealed, mac;
  ByteView maced;        // what its MAC covers: the entry without its length and MAC
  std::size_t size = 0;  // with its length prefix
};
// The complete entry at the start of `data`, its MAC not checked; nullopt
// at the end of the entries (a zero length: the zeros a journal is grown
// ahead with), at a torn one, or at one whose fields do not parse.
// `malformed` tells the last case from the others.
[[nodiscard]] std::optional<JournalEntry> parse_journal_entry(ByteView data, bool& malformed);
// An entry's MAC, chained to the MAC of the entry before it (or to the
// journal's genesis MAC).
[[nodiscard]] Bytes journal_entry_mac(const Keyring& keys, ByteView previous, ByteView maced);

// A journal's genesis MAC: what its first entry (index 0) chains to.
[[nodiscard]] Bytes journal_genesis_mac(const Keyring& keys, ByteView journal_id);

// The associated data of a journal entry's seal. A folded entry keeps that
// seal in the chain (see open_audit_event), so the chain needs it too.
[[nodiscard]] Bytes journal_seal_aad(const Keyring& keys, ByteView journal_id, std::uint64_t index);

// The action of the chain event that records a damaged journal: its
// entries from the first one that does not authenticate were not folded.
// `audit verify` reports it.
inline constexpr std::string_view kJournalDamagedAction = "audit_journal_damaged";

// Journals of processes that died, folded, still locked by us until removed.
class FoldedOrphans {
 public:
  FoldedOrphans();
  ~FoldedOrphans();
  FoldedOrphans(FoldedOrphans&&) noexcept;
  FoldedOrphans& operator=(FoldedOrphans&&) noexcept;
  // Once the folding transaction has committed: removes the files and their
  // meta rows (in a transaction of its own).
  void remove(RecordStore& store);

 private:
  friend FoldedOrphans fold_other_journals(const std::filesystem::path&, const std::filesystem::path&,
                                           RecordStore&, const Keyring&, bool);
  struct File;
  std::vector<File> files_;
};

// Folds every journal in `directory` except `own`: orphans to their end,
// and, when `live`, those of running processes as far as their complete
// entries go. REQUIRES: inside a write transaction on `store`.
[[nodiscard]] FoldedOrphans fold_other_journals(const std::filesystem::path& directory,
                                                const std::filesystem::path& own, RecordStore& store,
                                                const Keyring& keys, bool live);
// True when `directory` holds any journal file (a cheap check before folding).
[[nodiscard]] bool journals_present(const std::filesystem::path& directory);
// True when a journal in `directory` belongs to no running process.
[[nodiscard]] bool orphan_journals_present(const std::filesystem::path& directory);

}  // namespace credentials::internal
