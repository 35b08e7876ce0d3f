// Audit segments: how a read's event is recorded without a write
// transaction on the vault (docs/FORMAT.md, "Audit segments").
//
// Each vault handle appends the events of its reads and failures to a
// segment of its own before the operation returns. An entry is sealed
// (AES-256-GCM under the audit seal key, bound to the vault, the segment
// and its index) and chained to the entry before it:
//   mac_i = HMAC(audit_mac_key, "segment" ‖ mac_{i-1} ‖ index ‖ time ‖ len(owner_tag) ‖ owner_tag ‖
//   sealed) mac_{-1} = HMAC(audit_mac_key, "segment-genesis" ‖ vault id ‖ segment id)
// so an entry cannot be edited, forged, dropped from the middle or moved.
// The vault's chain anchors each segment: an `anchor` event records the
// segment's id, its number of entries and the last one's MAC, so entries
// cannot be cut from a segment's end either, up to its last anchor.
//
// Where the entries live: chunks (rows of the store's audit_segment table)
// holding one or more entries, framed as below. On PostgreSQL each append
// commits a chunk of its entry on its own, without the vault's write lock.
// On the embedded store a transaction per read would cost more than the
// read, so the handle appends each entry to a file of its own in the
// vault's `segments` directory (one write(2); the file is never mapped) and
// moves the entries waiting there into the table, as one chunk, in the
// transaction that anchors them. The handle anchors its segment in each of its writes, a second or
// 1,024 entries after the first unanchored one, and when it closes; the
// next opener anchors the file of a process that died (it holds no lock on
// it). What nothing can detect: a writer's entries after its last anchor,
// removed before anyone anchored them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "crypto/primitives.h"
#include "store/record_store.h"
#include "vault/keyring.h"

namespace credentials::internal {

inline constexpr std::size_t kSegmentIdSize = 16;

// One entry of a segment.
struct SegmentEntry {
  Bytes segment_id;
  std::int64_t index = 0;
  std::int64_t time = 0;  // unix microseconds
  Bytes owner_tag;
  Bytes sealed;
  Bytes mac;
};

// An entry's frame, as a segment file and a chunk hold it: length u32 ‖
// index u64 ‖ time u64 ‖ owner_len u8 ‖ owner tag ‖ mac ‖ sealed
// (big-endian; the length counts what follows it). Appended to `out`.
void frame_segment_entry(const SegmentEntry& entry, Bytes& out);
// The entries framed in `data`, as entries of segment `segment_id`; stops
// at the end, at a torn frame, or at one that does not parse. `whole`
// (when given) tells whether the frames took all of `data`.
[[nodiscard]] std::vector<SegmentEntry> parse_segment_frames(ByteView data, ByteView segment_id,
                                                             bool* whole = nullptr);

class AuditSegment {
 public:
  // A new segment. `buffer_directory`: where its entries wait for their
  // anchor (the embedded store; created 0700, the file 0600 and locked);
  // empty: each entry goes straight into the store's table. Throws
  // DatabaseError when the file cannot be created.
  static std::unique_ptr<AuditSegment> create(const std::filesystem::path& buffer_directory,
                                              const Keyring& keys);
  ~AuditSegment();
  AuditSegment(const AuditSegment&) = delete;
  AuditSegment& operator=(const AuditSegment&) = delete;

  // Appends one event (a JSON text without secrets) as the segment's next
  // entry: durable against a crash of this process once it returns. Throws
  // DatabaseError when it cannot be written; the segment is then as it was.
  void append(RecordStore& store, const Keyring& keys, ByteView owner_tag,
              std::string_view event_json, std::int64_t time_micros);

  // True when entries wait for an anchor, and when they have waited long
  // enough that one is due.
  [[nodiscard]] bool unanchored() const;
  [[nodiscard]] bool anchor_due() const;
  // Moves the waiting entries into the store (embedded) and appends the
  // anchor event. REQUIRES: inside a write transaction on `store`; once it
  // has committed, call anchor_committed() (a transaction that rolls back
  // leaves the entries waiting, and they are anchored next time).
  void anchor(RecordStore& store, const Keyring& keys);
  // `durable`: the anchor's transaction was flushed to stable storage; only
  // then is the file emptied (else a power failure could lose both).
  void anchor_committed(bool durable);
  // True when the file has grown enough that the next anchor should be
  // durable, so that it can be emptied.
  [[nodiscard]] bool file_large() const;
  // After an anchor that failed: the next is due after as long again.
  void postpone_anchor();
  // Once the segment's last anchor has committed and nothing more will be
  // appended: removes its file.
  void remove_file();

  // The process that created this segment: in the child of a fork the
  // handle must not append to its parent's segment.
  [[nodiscard]] pid_t creator() const { return creator_; }

 private:
  AuditSegment(Bytes id, std::filesystem::path path, int fd, Bytes genesis);

  mutable std::mutex mutex_;  // the handle's threads append at once on PostgreSQL
  Bytes id_;
  std::filesystem::path path_;  // empty: no file
  int fd_;
  std::int64_t next_index_ = 0;
  Bytes last_mac_;
  // Appended since the last anchor, and their frames (embedded: not yet in the store).
  std::vector<SegmentEntry> waiting_;
  Bytes waiting_frames_;
  std::size_t anchoring_ = 0;  // how many of them anchor() took
  std::size_t anchoring_bytes_ = 0;
  std::chrono::steady_clock::time_point first_waiting_{};
  std::uint64_t file_size_ = 0;
  pid_t creator_;
};

// The MAC an entry chains to before its first: the segment's genesis.
[[nodiscard]] Bytes segment_genesis_mac(const Keyring& keys, ByteView segment_id);
// An entry's MAC, chained to `previous`.
[[nodiscard]] Bytes segment_entry_mac(const Keyring& keys, ByteView previous,
                                      const SegmentEntry& entry);
// Opens an entry's sealed event; nullopt when it does not authenticate.
[[nodiscard]] std::optional<std::string> open_segment_entry(const Keyring& keys,
                                                            const SegmentEntry& entry);

// The action of the chain event that records a segment file whose entries
// from some point on do not authenticate: they were not anchored, and
// `audit verify` fails at this event.
inline constexpr std::string_view kSegmentDamagedAction = "audit_segment_damaged";

// At open (embedded store): anchors the segment files in `directory` that no
// process holds (their writers died), moving their entries into the store.
// REQUIRES: inside a write transaction on `store`. Returns the files, still
// locked, to remove once that transaction has committed.
class DeadSegmentFiles {
 public:
  DeadSegmentFiles() = default;
  DeadSegmentFiles(DeadSegmentFiles&&) noexcept = default;
  DeadSegmentFiles& operator=(DeadSegmentFiles&&) noexcept = default;
  ~DeadSegmentFiles();
  void remove();

 private:
  friend DeadSegmentFiles anchor_dead_segment_files(const std::filesystem::path&, RecordStore&,
                                                    const Keyring&);
  std::vector<std::pair<std::filesystem::path, int>> files_;
};
[[nodiscard]] DeadSegmentFiles anchor_dead_segment_files(const std::filesystem::path& directory,
                                                         RecordStore& store, const Keyring& keys);
// True when `directory` holds a segment file no process holds (cheap).
[[nodiscard]] bool dead_segment_files_present(const std::filesystem::path& directory);

}  // namespace credentials::internal
