#include "audit/read_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "audit/audit_chain.h"
#include "credentials/errors.h"

namespace credentials::internal {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kSealLabel = "credentials/v1/audit-journal";
constexpr std::string_view kSuffix = ".log";
constexpr std::size_t kIdSize = 16;
constexpr std::size_t kMacSize = 32;
constexpr std::uint32_t kMaxEntry = 1 << 20;
constexpr std::uint64_t kFoldEvents = 1024;
// A journal is mapped this far; a handle moves to a new journal once 4 MiB
// of it are folded, so the map is outgrown only while folds keep failing.
constexpr std::uint64_t kMapBytes = 8u << 20;
constexpr std::uint64_t kRotateBytes = 4u << 20;
constexpr std::uint64_t kFirstChunk = 16u << 10;
constexpr std::uint64_t kLargestChunk = 1u << 20;
constexpr auto kFoldAge = std::chrono::seconds(1);
// A fold of more than this (another process's journal, or folds that
// failed for a while) goes into the chain as several runs: rows of at most
// 1 MiB of entries (a fold of 1,024 reads is ~210 KB), each read whole by
// `audit` and `verify`.
constexpr std::size_t kMaxRunBytes = 1u << 20;

void put_u64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
std::uint64_t get_u64(ByteView in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}
std::uint32_t get_u32(ByteView in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | in[i];
  return v;
}

std::string meta_key(ByteView journal_id) { return "journal/" + hex_encode(journal_id); }


Bytes genesis_mac(const Keyring& keys, ByteView journal_id) {
  static constexpr std::string_view kLabel = "journal-genesis";
  return keys.audit_mac().mac({as_bytes(kLabel), keys.vault_id(), journal_id});
}

// How far a journal is folded: the meta row "journal/<id>".
struct FoldState {
  std::uint64_t offset = 0;
  std::uint64_t next_index = 0;
  Bytes mac;
};

FoldState read_state(RecordStore& store, const Keyring& keys, ByteView journal_id) {
  auto value = store.get_meta(meta_key(journal_id));
  if (!value || value->size() != 16 + kMacSize) return {0, 0, genesis_mac(keys, journal_id)};
  return {get_u64(*value), get_u64(ByteView(*value).subspan(8)),
          Bytes(value->begin() + 16, value->end())};
}

void write_state(RecordStore& store, ByteView journal_id, const FoldState& state) {
  Bytes value;
  put_u64(value, state.offset);
  put_u64(value, state.next_index);
  value.insert(value.end(), state.mac.begin(), state.mac.end());
  store.put_meta(meta_key(journal_id), value);
}

std::optional<Bytes> journal_id_of(const fs::path& file) {
  const std::string name = file.filename().string();
  if (name.size() != kIdSize * 2 + kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  Bytes id;
  for (std::size_t i = 0; i < kIdSize * 2; i += 2) {
    unsigned value = 0;
    if (std::sscanf(name.c_str() + i, "%2x", &value) != 1) return std::nullopt;
    id.push_back(static_cast<std::uint8_t>(value));
  }
  if (hex_encode(id) != name.substr(0, kIdSize * 2)) return std::nullopt;
  return id;
}

// Reads the journal from `offset` to its end as it is now into `out`, whose
// capacity a handle keeps from one fold of its journal to the next: a fresh
// ~300 KiB buffer per fold was a page fault per 4 KiB, about a microsecond
// per folded event. (The entries are sealed: nothing secret is kept.)
void read_from(int fd, std::uint64_t offset, Bytes& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw DatabaseError(fmt::format("cannot read an audit journal: {}", std::strerror(errno)));
  }
  const auto end = static_cast<std::uint64_t>(st.st_size);
  out.resize(end > offset ? end - offset : 0);
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw DatabaseError(fmt::format("cannot read an audit journal: {}", std::strerror(errno)));
    }
    if (n == 0) break;  // cut short meanwhile: what was read is all there is
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
}

enum class Liveness { kOwn, kLive, kOrphan };

// Moves the complete entries of `data` (the journal from state.offset on)
// into the chain, advancing `state`. With `authenticate`, each entry's MAC
// is checked: a live journal of another process may end in an entry still
// being written, and folding stops there; anywhere else an entry that does
// not authenticate is damage: it is recorded as a chain event (which `audit
// verify` reports) and the rest of the journal is skipped. Without it (a
// handle's own entries from its private copy) the entries are the bytes
// this process sealed and MACed itself.
// REQUIRES: inside a write transaction. Returns true when it found damage.
bool fold_entries(ByteView journal_id, ByteView data, Liveness liveness, bool authenticate,
                  FoldState& state, RecordStore& store, const Keyring& keys) {
  // A handle keeps the last-used times of its own reads in memory and
  // writes them in batches (EmbeddedVault): here only those of other
  // processes' journals are applied.
  const bool apply_last_used = liveness != Liveness::kOwn;
  std::map<Bytes, std::int64_t> last_used;
  AuditAppender chain(store, keys);
  std::size_t pos = 0;
  bool damaged = false;
  // The entries [run_start, pos) go into the chain as one row, a run
  // (docs/FORMAT.md, "Audit"), as the journal has them: no decryption, no
  // second seal and no row or chain MAC per read event. Their own MACs
  // chain them to the MAC before the run, and the run's chain MAC covers
  // that MAC and the last entry's.
  std::size_t run_start = 0;
  std::int64_t run_entries = 0;
  Bytes run_start_mac = state.mac;
  std::uint64_t run_first_index = state.next_index;
  const auto end_run = [&] {
    if (run_entries == 0) return;
    chain.append_run(journal_id, run_first_index, run_start_mac, data.subspan(run_start, pos - run_start),
                     run_entries, state.mac);
    run_start = pos;
    run_entries = 0;
    run_start_mac = state.mac;
    run_first_index = state.next_index;
  };
  for (;;) {
    bool malformed = false;
    const auto entry = parse_journal_entry(data.subspan(pos), malformed);
    bool ok = entry && entry->index == state.next_index;
    if (ok && authenticate) ok = constant_time_equal(journal_entry_mac(keys, state.mac, entry->maced), entry->mac);
    if (!ok) {
      // A live journal may end in an entry still being written. A dead
      // process's journal may end in one torn by a power failure: the file
      // was grown with zeros ahead, and the page with an entry's length can
      // reach the disk without the page with the rest of it. So an entry
      // with nothing but zeros after it is the torn end, not damage (cutting
      // a journal short is not detectable anyway: docs/THREAT_MODEL.md).
      if (entry || malformed) {  // a whole entry (at least its length) is there
        const std::size_t declared = 4 + static_cast<std::size_t>(get_u32(data.subspan(pos)));
        const ByteView after = data.subspan(std::min(data.size(), pos + declared));
        const bool torn_end = std::all_of(after.begin(), after.end(), [](std::uint8_t b) { return b == 0; });
        damaged = liveness == Liveness::kOwn || (liveness == Liveness::kOrphan && !torn_end);
      }
      break;
    }
    if (run_entries > 0 && pos + entry->size - run_start > kMaxRunBytes) end_run();
    if (apply_last_used && !entry->used.empty()) {
      auto& slot = last_used[Bytes(entry->used.begin(), entry->used.end())];
      slot = std::max(slot, entry->time);
    }
    state.mac.assign(entry->mac.begin(), entry->mac.end());
    state.next_index = entry->index + 1;
    pos += entry->size;
    state.offset += entry->size;
    ++run_entries;
  }
  end_run();
  if (damaged) {
    const std::string event = fmt::format(
        R"({{"action":"{}","actor":"","name":"{}","outcome":"error","error":"IntegrityError"}})",
        kJournalDamagedAction, hex_encode(journal_id));
    chain.append({}, event);
    state.offset += data.size() - pos;  // the rest is skipped
  }
  chain.finish();
  for (const auto& [lookup, time] : last_used) store.touch_last_used(lookup, time);
  return damaged;
}

// Folds a journal from its file: from the folded position to the file's
// end as it is now. REQUIRES: inside a write transaction. Returns true when
// it found damage.
bool fold_file(int fd, ByteView journal_id, Liveness liveness, RecordStore& store,
               const Keyring& keys, Bytes& data) {
  FoldState state = read_state(store, keys, journal_id);
  const std::uint64_t start = state.offset;
  read_from(fd, state.offset, data);
  const bool damaged = fold_entries(journal_id, data, liveness, /*authenticate=*/true, state, store, keys);
  if (state.offset != start) write_state(store, journal_id, state);
  return damaged;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::optional<JournalEntry> parse_journal_entry(ByteView data, bool& malformed) {
  malformed = false;
  if (data.size() < 4) return std::nullopt;
  const std::uint32_t length = get_u32(data);
  if (length == 0 || data.size() - 4 < length) return std::nullopt;  // the end, or still being written
  // body: index u64 ‖ time i64 ‖ owner_len u8 ‖ owner ‖ used_len u8 ‖ used ‖ sealed ‖ mac
  const ByteView body = data.subspan(4, length);
  malformed = true;
  if (length <= 8 + 8 + 2 + kMacSize || length > kMaxEntry) return std::nullopt;
  const ByteView unmaced = body.first(body.size() - kMacSize);
  JournalEntry entry;
  entry.index = get_u64(body);
  entry.time = static_cast<std::int64_t>(get_u64(body.subspan(8)));
  std::size_t at = 16;
  const std::size_t owner_len = body[at++];
  if (at + owner_len + 1 > unmaced.size()) return std::nullopt;
  entry.owner = body.subspan(at, owner_len);
  at += owner_len;
  const std::size_t used_len = body[at++];
  if (at + used_len > unmaced.size()) return std::nullopt;
  entry.used = body.subspan(at, used_len);
  entry.sealed = unmaced.subspan(at + used_len);
  entry.mac = body.last(kMacSize);
  entry.maced = unmaced;
  entry.size = 4 + length;
  malformed = false;
  return entry;
}

Bytes journal_entry_mac(const Keyring& keys, ByteView previous, ByteView maced) {
  static constexpr std::string_view kLabel = "journal";
  return keys.audit_mac().mac({as_bytes(kLabel), previous, maced});
}

Bytes journal_genesis_mac(const Keyring& keys, ByteView journal_id) { return genesis_mac(keys, journal_id); }

Bytes journal_seal_aad(const Keyring& keys, ByteView journal_id, std::uint64_t index) {
  Bytes aad(kSealLabel.begin(), kSealLabel.end());
  aad.insert(aad.end(), keys.vault_id().begin(), keys.vault_id().end());
  aad.insert(aad.end(), journal_id.begin(), journal_id.end());
  put_u64(aad, index);
  return aad;
}

namespace {
// Where a store into space already written with zeros needs no new space:
// ext2/3/4 and tmpfs overwrite in place. On a copy-on-write or compressing
// file system (btrfs, ZFS, XFS with shared extents) the store itself may
// need space, and a full disk would end the process with SIGBUS instead of
// refusing the read; there (and anywhere else) each entry is a pwrite(2).
bool overwrites_in_place(int fd) {
  constexpr long kExtMagic = 0xEF53;
  constexpr long kTmpfsMagic = 0x01021994;
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  return fs.f_type == kExtMagic || fs.f_type == kTmpfsMagic;
}
}  // namespace

ReadJournal::ReadJournal(fs::path path, int fd, Bytes journal_id, Bytes genesis, pid_t creator)
    : path_(std::move(path)),
      fd_(fd),
      journal_id_(std::move(journal_id)),
      last_mac_(genesis),
      unfolded_from_mac_(std::move(genesis)),
      creator_(creator) {
  // Only address space until the file grows into it (reserve_mapped).
  if (!overwrites_in_place(fd_)) return;
  void* map = ::mmap(nullptr, kMapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (map != MAP_FAILED) map_ = static_cast<std::uint8_t*>(map);
}

ReadJournal::~ReadJournal() {
  if (map_) ::munmap(map_, kMapBytes);
  ::close(fd_);
}

std::unique_ptr<ReadJournal> ReadJournal::create(const fs::path& directory, const Keyring& keys) {
  std::error_code ec;
  fs::create_directory(directory, ec);
  if (ec || ::chmod(directory.c_str(), 0700) != 0) {
    throw DatabaseError(fmt::format("cannot create the audit journal directory {}: {}",
                                    directory.string(), ec ? ec.message() : std::strerror(errno)));
  }
  const Bytes id = random_bytes(kIdSize);
  const fs::path path = directory / (hex_encode(id) + std::string(kSuffix));
  // Created and locked under a name no scanner looks at, then renamed: a
  // scanner must never see an unlocked journal that is about to be used.
  const fs::path staging = directory / (hex_encode(id) + ".new");
  const int fd = ::open(staging.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    throw DatabaseError(fmt::format("cannot create an audit journal in {}: {}", directory.string(),
                                    std::strerror(errno)));
  }
  if (::fchmod(fd, 0600) != 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0 ||
      ::rename(staging.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(staging.c_str());
    ::close(fd);
    throw DatabaseError(fmt::format("cannot create an audit journal in {}: {}", directory.string(),
                                    std::strerror(error)));
  }
  return std::unique_ptr<ReadJournal>(new ReadJournal(path, fd, id, genesis_mac(keys, id), ::getpid()));
}

namespace {
[[noreturn]] void refuse_event(int error) {
  throw DatabaseError(fmt::format(
      "cannot record the audit event: {}: the operation was refused (fail closed); free space "
      "in the vault directory or check its file system",
      std::strerror(error)));
}

// Writes all of `bytes` at `offset`; errno of the failure, else 0.
int pwrite_all(int fd, ByteView bytes, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : ENOSPC;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}
}  // namespace

bool ReadJournal::reserve_mapped(std::size_t bytes) {
  if (!map_ || appended_ + bytes > kMapBytes) return false;
  if (appended_ + bytes <= file_size_) return true;
  // Grown in chunks that double from 16 KiB to 1 MiB: a short-lived process
  // writes one small chunk, a long-lived one a system call per ~3,000 events.
  const std::uint64_t chunk =
      std::clamp<std::uint64_t>(file_size_, kFirstChunk, kLargestChunk);
  std::uint64_t target = std::min<std::uint64_t>(
      kMapBytes, std::max<std::uint64_t>(file_size_ + chunk, appended_ + bytes));
  // From untouched static storage: read, it costs no memory of its own.
  static const std::uint8_t kZeros[64u << 10] = {};
  const auto grow_to = [&](std::uint64_t end) {
    for (std::uint64_t at = file_size_; at < end;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof kZeros, end - at));
      if (const int error = pwrite_all(fd_, ByteView(kZeros, n), at)) return error;
      at += n;
    }
    return 0;
  };
  // What did grow is zeros: the end of the entries, as before. On a nearly
  // full disk the entry alone may still fit.
  if (const int error = grow_to(target)) {
    target = appended_ + bytes;
    if (grow_to(target) != 0) refuse_event(error);
  }
  const std::uint64_t from = file_size_;
  file_size_ = target;
  // Page-table entries for the new part in one call instead of a fault per
  // 4 KiB page at the appends (MADV_POPULATE_WRITE, Linux 5.14; without it
  // the pages fault in as they are used).
#ifdef MADV_POPULATE_WRITE
  constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
  constexpr int kPopulateWrite = 23;
#endif
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t first_page = from / page * page;
  (void)::madvise(map_ + first_page, target - first_page, kPopulateWrite);
  return true;
}

void ReadJournal::write_entry(ByteView entry) {
  if (reserve_mapped(entry.size())) {
    // The length last: a reader (another process folding this live
    // journal, or the next opener after a crash here) sees either zero, the
    // end, or the whole entry. (The length may straddle a cache line and is
    // read with pread: on a weaker memory model than x86's a reader could
    // see it before the body; that entry then fails its MAC, and a live
    // journal's reader stops there and tries again later.)
    std::memcpy(map_ + appended_ + 4, entry.data() + 4, entry.size() - 4);
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(map_ + appended_, entry.data(), 4);
    return;
  }
  // Past the map (folds have failed for a long time) or no map at all.
  if (const int error = pwrite_all(fd_, entry, appended_)) {
    // A partial entry would hide every later one from folding: cut it off.
    if (::ftruncate(fd_, static_cast<off_t>(appended_)) != 0) {
      throw DatabaseError(fmt::format(
          "cannot record the audit event ({}), and the audit journal {} could not be repaired: "
          "the operation was refused; free space in the vault directory",
          std::strerror(error), path_.string()));
    }
    file_size_ = std::min(file_size_, appended_);
    refuse_event(error);
  }
  file_size_ = std::max(file_size_, appended_ + entry.size());
}

void ReadJournal::append(const Keyring& keys, ByteView owner_tag, ByteView used_lookup,
                         ByteView event, std::int64_t time_micros) {
  seal(keys, owner_tag, used_lookup, event, time_micros, entry_);
  write_sealed(entry_);
}

void ReadJournal::seal(const Keyring& keys, ByteView owner_tag, ByteView used_lookup,
                       ByteView event, std::int64_t time_micros, Bytes& entry) const {
  if (owner_tag.size() > 255 || used_lookup.size() > 255) {
    throw InvalidArgumentError("an audit journal tag is too long");
  }
  entry.assign(4, 0);  // length, filled in below
  put_u64(entry, next_index_);
  put_u64(entry, static_cast<std::uint64_t>(time_micros));
  entry.push_back(static_cast<std::uint8_t>(owner_tag.size()));
  entry.insert(entry.end(), owner_tag.begin(), owner_tag.end());
  entry.push_back(static_cast<std::uint8_t>(used_lookup.size()));
  entry.insert(entry.end(), used_lookup.begin(), used_lookup.end());
  const Bytes ciphertext =
      aead_encrypt(keys.audit_seal_key(), event, journal_seal_aad(keys, journal_id_, next_index_));
  entry.insert(entry.end(), ciphertext.begin(), ciphertext.end());
  const std::size_t unmaced = entry.size();
  entry.resize(unmaced + kMacSize);
  keys.audit_mac().mac_into({as_bytes(std::string_view("journal")), last_mac_, ByteView(entry).subspan(4, unmaced - 4)},
                            std::span(entry).subspan(unmaced));
  const auto length = static_cast<std::uint32_t>(entry.size() - 4);
  if (length > kMaxEntry) throw InvalidArgumentError("an audit event is too large");
  for (int i = 0; i < 4; ++i) entry[i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
}

void ReadJournal::write_sealed(ByteView entry) {
  write_entry(entry);
  if (appended_ == folded_hint_) first_unfolded_ = std::chrono::steady_clock::now();
  unfolded_.insert(unfolded_.end(), entry.begin(), entry.end());
  appended_ += entry.size();
  last_mac_.assign(entry.end() - kMacSize, entry.end());
  next_index_ += 1;
  unfolded_events_ += 1;
}

bool ReadJournal::fold_due() const {
  return has_unfolded() && (unfolded_events_ >= kFoldEvents ||
                            std::chrono::steady_clock::now() - first_unfolded_ >= kFoldAge);
}

void ReadJournal::fold(RecordStore& store, const Keyring& keys) {
  FoldState state = read_state(store, keys, journal_id_);
  // What is before the folded position is in the chain (that fold has
  // committed: this transaction had not written the row when it read it).
  // The private copy is cut there, at an entry boundary whose index and MAC
  // must be those the row holds: a row that does not match (a fork's child
  // that wrote here too, an edited row) sends the fold to the file, where
  // every entry is checked.
  bool from_memory = state.offset >= unfolded_from_ && state.offset <= appended_;
  if (from_memory) {
    std::size_t cut = 0;
    ByteView mac = unfolded_from_mac_;
    std::uint64_t index = unfolded_from_index_;
    while (unfolded_from_ + cut < state.offset) {
      bool malformed = false;
      const auto entry = parse_journal_entry(ByteView(unfolded_).subspan(cut), malformed);
      if (!entry) break;
      mac = entry->mac;
      index = entry->index + 1;
      cut += entry->size;
    }
    from_memory = unfolded_from_ + cut == state.offset && index == state.next_index &&
                  constant_time_equal(mac, state.mac);
    if (from_memory) {
      // Before the erase, which `mac` may point into (with no entry cut it
      // is unfolded_from_mac_ itself).
      if (cut > 0) unfolded_from_mac_.assign(mac.begin(), mac.end());
      unfolded_.erase(unfolded_.begin(), unfolded_.begin() + static_cast<std::ptrdiff_t>(cut));
      unfolded_from_ = state.offset;
      unfolded_from_index_ = index;
      const std::uint64_t start = state.offset;
      (void)fold_entries(journal_id_, unfolded_, Liveness::kOwn, /*authenticate=*/false, state, store, keys);
      if (state.offset != start) write_state(store, journal_id_, state);
    }
  }
  if (!from_memory && fold_file(fd_, journal_id_, Liveness::kOwn, store, keys, fold_buffer_)) {
    // This handle goes on appending after its own last entry, not after the
    // last one that still authenticates.
    write_state(store, journal_id_, {appended_, next_index_, last_mac_});
  }
  // Rows of journals already removed; should this transaction roll back,
  // close() drops them.
  for (const Bytes& id : retired_) store.delete_meta(meta_key(id));
  retired_.clear();
  pending_fold_ = appended_;
}

void ReadJournal::fold_committed() {
  if (!pending_fold_) return;
  folded_hint_ = std::max(folded_hint_, *pending_fold_);
  pending_fold_.reset();
  if (folded_hint_ == appended_) unfolded_events_ = 0;
}

void ReadJournal::postpone_fold() {
  unfolded_events_ = 0;
  first_unfolded_ = std::chrono::steady_clock::now();
}

bool ReadJournal::long_enough_to_rotate() const { return appended_ >= kRotateBytes; }

bool ReadJournal::ready_to_rotate() const { return long_enough_to_rotate() && folded_hint_ == appended_; }

std::unique_ptr<ReadJournal> ReadJournal::rotate(const Keyring& keys) {
  auto next = create(path_.parent_path(), keys);
  next->retired_ = std::move(retired_);
  // The fold position stays in the meta row until the file is gone (see
  // close): a crash before this unlink leaves a journal folded to its end,
  // which the next opener removes.
  if (::unlink(path_.c_str()) == 0 || errno == ENOENT) next->retired_.push_back(journal_id_);
  return next;
}

void ReadJournal::close(RecordStore& store, const Keyring& keys,
                        const std::function<void()>& also) {
  {
    auto txn = store.begin_write(/*durable=*/false);
    fold(store, keys);
    if (also) also();
    // A fold position is kept until the journal's file is gone: removing
    // the row first would let a crash in between fold the journal again.
    // So each closer drops the rows of the journals removed before it.
    const std::string own = meta_key(journal_id_);
    for (const auto& [key, value] : store.all_meta()) {
      if (!key.starts_with("journal/") || key == own) continue;
      std::error_code ec;
      if (!fs::exists(path_.parent_path() / (key.substr(8) + std::string(kSuffix)), ec) && !ec) {
        store.delete_meta(key);
      }
    }
    txn.commit();
  }
  ::unlink(path_.c_str());
}

struct FoldedOrphans::File {
  fs::path path;
  Fd fd;
  Bytes journal_id;
};

FoldedOrphans::FoldedOrphans() = default;
FoldedOrphans::~FoldedOrphans() = default;
FoldedOrphans::FoldedOrphans(FoldedOrphans&&) noexcept = default;
FoldedOrphans& FoldedOrphans::operator=(FoldedOrphans&&) noexcept = default;

FoldedOrphans fold_other_journals(const fs::path& directory, const fs::path& own, RecordStore& store,
                                  const Keyring& keys, bool live) {
  FoldedOrphans orphans;
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) return orphans;  // no journal directory: nothing to fold
  for (const auto& entry : it) {
    const fs::path path = entry.path();
    if (path == own) continue;
    if (path.extension() == ".new") {
      // A journal whose creator died before renaming it: empty, unused. One
      // being created right now must not be touched (its creator's flock
      // would fail), so only those a minute old go.
      std::error_code ec;
      const auto written = fs::last_write_time(path, ec);
      if (!ec && fs::file_time_type::clock::now() - written > std::chrono::minutes(1)) {
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (fd.get() >= 0 && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
      }
      continue;
    }
    auto id = journal_id_of(path);
    if (!id) continue;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) continue;  // removed meanwhile
    const bool orphan = ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
    if (!orphan && !live) continue;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_nlink == 0) continue;  // already retired
    Bytes data;
    (void)fold_file(fd.get(), *id, orphan ? Liveness::kOrphan : Liveness::kLive, store, keys, data);
    if (orphan) orphans.files_.push_back({path, std::move(fd), std::move(*id)});
  }
  return orphans;
}

void FoldedOrphans::remove(RecordStore& store) {
  if (files_.empty()) return;
  for (const auto& file : files_) ::unlink(file.path.c_str());
  auto txn = store.begin_write(/*durable=*/false);
  for (const auto& file : files_) store.delete_meta(meta_key(file.journal_id));
  txn.commit();
  files_.clear();
}

bool orphan_journals_present(const fs::path& directory) {
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) return false;
  for (const auto& entry : it) {
    if (!journal_id_of(entry.path())) continue;  // not a journal, or one being created
    Fd fd(::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() >= 0 && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return true;
  }
  return false;
}

bool journals_present(const fs::path& directory) {
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  return !ec && it != fs::directory_iterator();
}

}  // namespace credentials::internal
