#include "audit/read_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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
constexpr auto kFoldAge = std::chrono::seconds(1);

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

Bytes entry_mac(const Keyring& keys, ByteView previous, ByteView body) {
  static constexpr std::string_view kLabel = "journal";
  return keys.audit_mac().mac({as_bytes(kLabel), previous, body});
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

// Moves the complete, authentic entries after the folded position into the
// chain. A live journal of another process may end in an entry still being
// written: it stops there. Anywhere else, an entry that does not
// authenticate is damage: it is recorded as a chain event (which `audit
// verify` reports) and the rest of the journal is skipped.
// REQUIRES: inside a write transaction.
// Returns true when it found damage.
bool fold_file(int fd, ByteView journal_id, Liveness liveness, RecordStore& store,
               const Keyring& keys, Bytes& data) {
  // A handle keeps the last-used times of its own reads in memory and
  // writes them in batches (EmbeddedVault): here only those of other
  // processes' journals are applied.
  const bool apply_last_used = liveness != Liveness::kOwn;
  FoldState state = read_state(store, keys, journal_id);
  read_from(fd, state.offset, data);
  std::map<Bytes, std::int64_t> last_used;
  AuditAppender chain(store, keys);
  std::size_t pos = 0;
  bool damaged = false;
  while (data.size() - pos >= 4) {
    const std::uint32_t length = get_u32(ByteView(data).subspan(pos));
    if (length == 0 || data.size() - pos - 4 < length) break;  // torn tail, or still being written
    const ByteView body = ByteView(data).subspan(pos + 4, length);
    // body: index u64 ‖ time i64 ‖ owner_len u8 ‖ owner ‖ used_len u8 ‖ used ‖ sealed ‖ mac
    bool ok = length > 8 + 8 + 2 + kMacSize && length <= kMaxEntry;
    ByteView owner, used, sealed;
    std::int64_t time = 0;
    if (ok) {
      const ByteView unmaced = body.first(body.size() - kMacSize);
      ok = constant_time_equal(entry_mac(keys, state.mac, unmaced), body.last(kMacSize)) &&
           get_u64(body) == state.next_index;
      std::size_t at = 16;
      time = static_cast<std::int64_t>(get_u64(body.subspan(8)));
      if (ok) {
        const std::size_t owner_len = body[at++];
        ok = at + owner_len + 1 <= unmaced.size();
        if (ok) {
          owner = body.subspan(at, owner_len);
          at += owner_len;
          const std::size_t used_len = body[at++];
          ok = at + used_len <= unmaced.size();
          if (ok) {
            used = body.subspan(at, used_len);
            sealed = unmaced.subspan(at + used_len);
          }
        }
      }
    }
    if (!ok) {
      if (liveness == Liveness::kLive) break;
      damaged = true;
      break;
    }
    // The event goes into the chain as the journal sealed it, with the
    // journal id and index its seal is bound to: no decryption, no second
    // seal (and no second getrandom) per read event. The entry's MAC above
    // is what makes it authentic; the chain MAC then covers these bytes.
    Bytes folded(journal_id.begin(), journal_id.end());
    put_u64(folded, state.next_index);
    folded.insert(folded.end(), sealed.begin(), sealed.end());
    chain.append_sealed(owner, std::move(folded));
    if (apply_last_used && !used.empty()) {
      auto& slot = last_used[Bytes(used.begin(), used.end())];
      slot = std::max(slot, time);
    }
    state.mac = Bytes(body.end() - kMacSize, body.end());
    state.next_index += 1;
    pos += 4 + length;
    state.offset += 4 + length;
  }
  if (damaged) {
    const std::string event = fmt::format(
        R"({{"action":"{}","actor":"","name":"{}","outcome":"error","error":"IntegrityError"}})",
        kJournalDamagedAction, hex_encode(journal_id));
    chain.append({}, event);
    state.offset += data.size() - pos;  // the rest is skipped
  }
  chain.finish();
  for (const auto& [lookup, time] : last_used) store.touch_last_used(lookup, time);
  if (pos > 0 || damaged) write_state(store, journal_id, state);
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

Bytes journal_seal_aad(const Keyring& keys, ByteView journal_id, std::uint64_t index) {
  Bytes aad(kSealLabel.begin(), kSealLabel.end());
  aad.insert(aad.end(), keys.vault_id().begin(), keys.vault_id().end());
  aad.insert(aad.end(), journal_id.begin(), journal_id.end());
  put_u64(aad, index);
  return aad;
}

ReadJournal::ReadJournal(fs::path path, int fd, Bytes journal_id, Bytes genesis)
    : path_(std::move(path)), fd_(fd), journal_id_(std::move(journal_id)), last_mac_(std::move(genesis)) {}

ReadJournal::~ReadJournal() { ::close(fd_); }

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
  const int fd = ::open(staging.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
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
  return std::unique_ptr<ReadJournal>(new ReadJournal(path, fd, id, genesis_mac(keys, id)));
}

void ReadJournal::append(const Keyring& keys, ByteView owner_tag, ByteView used_lookup,
                         std::string_view event_json, std::int64_t time_micros) {
  if (owner_tag.size() > 255 || used_lookup.size() > 255) {
    throw InvalidArgumentError("an audit journal tag is too long");
  }
  Bytes entry(4, 0);  // length, filled in below
  put_u64(entry, next_index_);
  put_u64(entry, static_cast<std::uint64_t>(time_micros));
  entry.push_back(static_cast<std::uint8_t>(owner_tag.size()));
  entry.insert(entry.end(), owner_tag.begin(), owner_tag.end());
  entry.push_back(static_cast<std::uint8_t>(used_lookup.size()));
  entry.insert(entry.end(), used_lookup.begin(), used_lookup.end());
  const Bytes sealed =
      aead_encrypt(keys.audit_seal_key(), as_bytes(event_json), journal_seal_aad(keys, journal_id_, next_index_));
  entry.insert(entry.end(), sealed.begin(), sealed.end());
  const Bytes mac = entry_mac(keys, last_mac_, ByteView(entry).subspan(4));
  entry.insert(entry.end(), mac.begin(), mac.end());
  const auto length = static_cast<std::uint32_t>(entry.size() - 4);
  if (length > kMaxEntry) throw InvalidArgumentError("an audit event is too large");
  for (int i = 0; i < 4; ++i) entry[i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));

  const ssize_t written = ::write(fd_, entry.data(), entry.size());
  if (written != static_cast<ssize_t>(entry.size())) {
    const int error = written < 0 ? errno : ENOSPC;
    // A partial entry would hide every later one from folding: cut it off.
    if (written > 0 && ::ftruncate(fd_, static_cast<off_t>(appended_)) != 0) {
      throw DatabaseError(fmt::format(
          "cannot record the audit event ({}), and the audit journal {} could not be repaired: "
          "the operation was refused; free space in the vault directory",
          std::strerror(error), path_.string()));
    }
    throw DatabaseError(fmt::format(
        "cannot record the audit event: {}: the operation was refused (fail closed); free space "
        "in the vault directory or check its file system",
        std::strerror(error)));
  }
  if (appended_ == folded_hint_) first_unfolded_ = std::chrono::steady_clock::now();
  appended_ += entry.size();
  last_mac_ = mac;
  next_index_ += 1;
  unfolded_events_ += 1;
}

bool ReadJournal::fold_due() const {
  return has_unfolded() && (unfolded_events_ >= kFoldEvents ||
                            std::chrono::steady_clock::now() - first_unfolded_ >= kFoldAge);
}

void ReadJournal::fold(RecordStore& store, const Keyring& keys) {
  if (fold_file(fd_, journal_id_, Liveness::kOwn, store, keys, fold_buffer_)) {
    // This handle goes on appending after its own last entry, not after the
    // last one that still authenticates.
    write_state(store, journal_id_, {appended_, next_index_, last_mac_});
  }
  folded_hint_ = appended_;
  unfolded_events_ = 0;
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
