#include "audit/audit_segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "audit/audit_chain.h"
#include "audit/audit_event.h"
#include "credentials/errors.h"

namespace credentials::internal {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kSuffix = ".segment";
constexpr std::string_view kSealLabel = "credentials/v1/segment";
constexpr std::size_t kMacSize = 32;
constexpr std::size_t kAnchorEvery = 1024;
constexpr auto kAnchorAfter = std::chrono::seconds(1);
// A file this long is emptied at the next anchor, made durable for it.
constexpr std::uint64_t kLargeFile = 4u << 20;
// An entry's frame in a segment file: length u32 ‖ index u64 ‖ time u64 ‖
// owner_len u8 ‖ owner ‖ mac ‖ sealed (big-endian; the length counts what
// follows it).
constexpr std::size_t kFrameHeader = 4 + 8 + 8 + 1;
constexpr std::size_t kMaxFrame = 1u << 20;

void put_u64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
// The length a frame starts with (what follows it).
std::size_t frame_length(ByteView frame) {
  return std::size_t{frame[0]} << 24 | std::size_t{frame[1]} << 16 | std::size_t{frame[2]} << 8 |
         frame[3];
}
std::uint64_t get_u64(const std::uint8_t* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

Bytes seal_aad(const Keyring& keys, ByteView segment_id, std::int64_t index) {
  Bytes aad(kSealLabel.begin(), kSealLabel.end());
  aad.insert(aad.end(), keys.vault_id().begin(), keys.vault_id().end());
  aad.insert(aad.end(), segment_id.begin(), segment_id.end());
  put_u64(aad, static_cast<std::uint64_t>(index));
  return aad;
}

[[noreturn]] void refuse_event(int error) {
  throw DatabaseError(fmt::format(
      "cannot record the audit event: {}: the operation was refused (fail closed); free space "
      "in the vault directory or check its file system",
      std::strerror(error)));
}

// The segment id a file name carries, as create() writes it (lower-case
// hex: another spelling of a live segment's name is not a dead segment);
// nullopt for any other file.
std::optional<Bytes> segment_id_of(const fs::path& path) {
  const std::string name = path.filename().string();
  if (!name.ends_with(kSuffix)) return std::nullopt;
  const std::string_view hex = std::string_view(name).substr(0, name.size() - kSuffix.size());
  auto id = hex_decode(hex);
  if (!id || id->size() != kSegmentIdSize || hex_encode(*id) != hex) return std::nullopt;
  return id;
}

struct Fd {
  explicit Fd(int value) : fd(value) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
  int fd;
};

// A segment file of a dead process: a regular file (not a FIFO, whose open
// would wait for a writer, nor a directory) that no process holds locked.
// -1 for anything else.
int open_dead_segment_file(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  struct stat st {};
  if (fd.fd < 0 || ::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  if (::flock(fd.fd, LOCK_EX | LOCK_NB) != 0) return -1;  // its writer lives
  return fd.release();
}

// The entry whose frame starts at `at` in `fd`, `at` moved past it;
// nullopt at the end, at a torn frame, or at one that does not parse. One
// frame at a time: a huge file takes no more memory than one frame.
std::optional<SegmentEntry> read_frame(int fd, std::uint64_t& at, ByteView id) {
  const auto read_at = [&](std::uint8_t* out, std::size_t size, std::uint64_t offset) {
    std::size_t got = 0;
    while (got < size) {
      const ssize_t n = ::pread(fd, out + got, size - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  };
  std::uint8_t prefix[4];
  if (!read_at(prefix, sizeof prefix, at)) return std::nullopt;
  const std::size_t length = std::size_t{prefix[0]} << 24 | std::size_t{prefix[1]} << 16 |
                             std::size_t{prefix[2]} << 8 | prefix[3];
  if (length > kMaxFrame) return std::nullopt;
  Bytes frame(4 + length);
  std::copy(prefix, prefix + 4, frame.begin());
  if (!read_at(frame.data() + 4, length, at + 4)) return std::nullopt;
  bool whole = false;
  auto entries = parse_segment_frames(frame, id, &whole);
  if (entries.size() != 1 || !whole) return std::nullopt;
  at += frame.size();
  return std::move(entries.front());
}

}  // namespace

void frame_segment_entry(const SegmentEntry& entry, Bytes& out) {
  const std::size_t start = out.size();
  out.resize(start + 4);
  put_u64(out, static_cast<std::uint64_t>(entry.index));
  put_u64(out, static_cast<std::uint64_t>(entry.time));
  out.push_back(static_cast<std::uint8_t>(entry.owner_tag.size()));
  out.insert(out.end(), entry.owner_tag.begin(), entry.owner_tag.end());
  out.insert(out.end(), entry.mac.begin(), entry.mac.end());
  out.insert(out.end(), entry.sealed.begin(), entry.sealed.end());
  const std::size_t length = out.size() - start - 4;
  for (int i = 0; i < 4; ++i) out[start + i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
}

std::vector<SegmentEntry> parse_segment_frames(ByteView data, ByteView segment_id, bool* whole) {
  std::vector<SegmentEntry> entries;
  std::size_t at = 0;
  while (data.size() - at >= kFrameHeader) {
    const std::uint8_t* p = data.data() + at;
    const std::size_t length =
        std::size_t{p[0]} << 24 | std::size_t{p[1]} << 16 | std::size_t{p[2]} << 8 | p[3];
    if (length > kMaxFrame || data.size() - at - 4 < length || length < kFrameHeader - 4) break;
    const std::size_t owner_size = p[20];
    if (length < kFrameHeader - 4 + owner_size + kMacSize) break;
    SegmentEntry entry;
    entry.segment_id.assign(segment_id.begin(), segment_id.end());
    entry.index = static_cast<std::int64_t>(get_u64(p + 4));
    entry.time = static_cast<std::int64_t>(get_u64(p + 12));
    const std::uint8_t* owner = p + kFrameHeader;
    entry.owner_tag.assign(owner, owner + owner_size);
    entry.mac.assign(owner + owner_size, owner + owner_size + kMacSize);
    entry.sealed.assign(owner + owner_size + kMacSize, p + 4 + length);
    entries.push_back(std::move(entry));
    at += 4 + length;
  }
  if (whole) *whole = at == data.size();
  return entries;
}

Bytes segment_genesis_mac(const Keyring& keys, ByteView segment_id) {
  return keys.audit_mac().mac(
      {as_bytes(std::string_view("segment-genesis")), keys.vault_id(), segment_id});
}

Bytes segment_entry_mac(const Keyring& keys, ByteView previous, const SegmentEntry& row) {
  std::array<std::uint8_t, 24> numbers;
  const auto put = [&](std::size_t at, std::uint64_t v) {
    for (int i = 7; i >= 0; --i, v >>= 8)
      numbers[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
  };
  put(0, static_cast<std::uint64_t>(row.index));
  put(8, static_cast<std::uint64_t>(row.time));
  put(16, row.owner_tag.size());
  return keys.audit_mac().mac(
      {as_bytes(std::string_view("segment")), previous, numbers, row.owner_tag, row.sealed});
}

std::optional<std::string> open_segment_entry(const Keyring& keys, const SegmentEntry& row) {
  const auto plain =
      aead_decrypt(keys.audit_seal_key(), row.sealed, seal_aad(keys, row.segment_id, row.index));
  if (!plain) return std::nullopt;
  const ByteView text = plain->span();
  if (text.empty() || text[0] != '{') return std::nullopt;
  return std::string(reinterpret_cast<const char*>(text.data()), text.size());
}

namespace {
// Appends the chain event that anchors a segment up to `last`, its last
// entry. REQUIRES: inside a write transaction on `store`.
void append_anchor(RecordStore& store, const Keyring& keys, const SegmentEntry& last, pid_t pid) {
  EventFields fields;
  fields.time = Timestamp(std::chrono::microseconds(last.time));
  fields.action = kAnchorAction;
  fields.outcome = "ok";
  fields.pid = pid;
  fields.segment = last.segment_id;
  fields.entries = last.index + 1;
  fields.last = last.mac;
  (void)append_audit_event(store, keys, {}, event_json(fields));
}
}  // namespace

AuditSegment::AuditSegment(Bytes id, fs::path path, int fd, Bytes genesis)
    : id_(std::move(id)),
      path_(std::move(path)),
      fd_(fd),
      last_mac_(std::move(genesis)),
      creator_(::getpid()) {}

AuditSegment::~AuditSegment() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<AuditSegment> AuditSegment::create(const fs::path& buffer_directory,
                                                   const Keyring& keys) {
  Bytes id = random_bytes(kSegmentIdSize);
  Bytes genesis = segment_genesis_mac(keys, id);
  if (buffer_directory.empty()) {
    return std::unique_ptr<AuditSegment>(
        new AuditSegment(std::move(id), {}, -1, std::move(genesis)));
  }
  std::error_code ec;
  fs::create_directory(buffer_directory, ec);
  struct stat st {};
  if (!ec && (::lstat(buffer_directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    ec = std::make_error_code(std::errc::not_a_directory);  // a symlink, or not a directory
  }
  if (ec || ::chmod(buffer_directory.c_str(), 0700) != 0) {
    throw DatabaseError(fmt::format("cannot create the audit segment directory {}: {}",
                                    buffer_directory.string(),
                                    ec ? ec.message() : std::strerror(errno)));
  }
  const fs::path path = buffer_directory / (hex_encode(id) + std::string(kSuffix));
  // Created and locked under a name no opener looks at, then renamed: an
  // opener must never take a segment about to be used for a dead one.
  const fs::path staging = buffer_directory / (hex_encode(id) + ".new");
  Fd fd(::open(staging.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
               0600));
  if (fd.fd < 0 || ::fchmod(fd.fd, 0600) != 0 || ::flock(fd.fd, LOCK_EX | LOCK_NB) != 0 ||
      ::rename(staging.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(staging.c_str());
    throw DatabaseError(fmt::format("cannot create an audit segment in {}: {}",
                                    buffer_directory.string(), std::strerror(error)));
  }
  return std::unique_ptr<AuditSegment>(
      new AuditSegment(std::move(id), path, fd.release(), std::move(genesis)));
}

void AuditSegment::append(RecordStore& store, const Keyring& keys, ByteView owner_tag,
                          std::string_view event_json, std::int64_t time_micros) {
  std::lock_guard lock(mutex_);
  if (owner_tag.size() > 255) throw InvalidArgumentError("an audit owner tag is too long");
  SegmentEntry entry;
  entry.segment_id = id_;
  entry.index = next_index_;
  entry.time = time_micros;
  entry.owner_tag.assign(owner_tag.begin(), owner_tag.end());
  entry.sealed =
      aead_encrypt(keys.audit_seal_key(), as_bytes(event_json), seal_aad(keys, id_, entry.index));
  entry.mac = segment_entry_mac(keys, last_mac_, entry);
  const std::size_t frame_start = waiting_frames_.size();
  frame_segment_entry(entry, waiting_frames_);
  const ByteView frame = ByteView(waiting_frames_).subspan(frame_start);
  if (frame.size() - 4 > kMaxFrame) {
    waiting_frames_.resize(frame_start);
    throw InvalidArgumentError("an audit event is too large");
  }
  try {
    if (fd_ < 0) {
      store.append_segment_chunk({id_, entry.index, 1, Bytes(frame.begin(), frame.end())});
    } else {
      // One write(2) with O_APPEND; a short one (a full disk) is cut off
      // again so that the file ends with a whole entry.
      const ssize_t written = ::write(fd_, frame.data(), frame.size());
      if (written != static_cast<ssize_t>(frame.size())) {
        const int error = written < 0 ? errno : ENOSPC;
        if (written > 0) (void)::ftruncate(fd_, static_cast<off_t>(file_size_));
        refuse_event(error);
      }
      file_size_ += frame.size();
    }
  } catch (...) {
    waiting_frames_.resize(frame_start);
    throw;
  }
  if (waiting_.empty()) first_waiting_ = std::chrono::steady_clock::now();
  last_mac_ = entry.mac;
  ++next_index_;
  waiting_.push_back(std::move(entry));
}

bool AuditSegment::unanchored() const {
  std::lock_guard lock(mutex_);
  return !waiting_.empty();
}

bool AuditSegment::anchor_due() const {
  std::lock_guard lock(mutex_);
  return !waiting_.empty() && (waiting_.size() >= kAnchorEvery ||
                               std::chrono::steady_clock::now() - first_waiting_ >= kAnchorAfter);
}

void AuditSegment::anchor(RecordStore& store, const Keyring& keys) {
  std::lock_guard lock(mutex_);
  anchoring_ = waiting_.size();
  anchoring_bytes_ = waiting_frames_.size();
  if (anchoring_ == 0) return;
  if (fd_ >= 0) {
    // An opener may have stored some of them already, from a copy of this
    // segment's file (someone copied it where a dead one would be): those
    // are skipped, and the anchor below vouches for them all the same.
    std::size_t stored = 0;
    if (const auto last = store.last_segment_chunk(id_)) {
      const std::int64_t next = last->first_index + last->count;
      stored = static_cast<std::size_t>(std::clamp<std::int64_t>(
          next - waiting_.front().index, 0, static_cast<std::int64_t>(anchoring_)));
    }
    if (stored < anchoring_) {
      std::size_t offset = 0;
      for (std::size_t i = 0; i < stored; ++i)
        offset += 4 + frame_length(ByteView(waiting_frames_).subspan(offset));
      store.insert_segment_chunk(
          {id_, waiting_[stored].index, static_cast<std::int64_t>(anchoring_ - stored),
           Bytes(waiting_frames_.begin() + static_cast<std::ptrdiff_t>(offset),
                 waiting_frames_.begin() + static_cast<std::ptrdiff_t>(anchoring_bytes_))});
    }
  }
  append_anchor(store, keys, waiting_.back(), creator_);
}

bool AuditSegment::file_large() const {
  std::lock_guard lock(mutex_);
  return file_size_ >= kLargeFile;
}

void AuditSegment::anchor_committed(bool durable) {
  std::lock_guard lock(mutex_);
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(anchoring_));
  waiting_frames_.erase(waiting_frames_.begin(),
                        waiting_frames_.begin() + static_cast<std::ptrdiff_t>(anchoring_bytes_));
  anchoring_ = 0;
  anchoring_bytes_ = 0;
  first_waiting_ = std::chrono::steady_clock::now();
  // Everything in the file is in the store now, durably: the next entry
  // starts it again (a crash before this leaves entries the next opener
  // skips, as it skips those of anchors that were not durable).
  if (durable && fd_ >= 0 && waiting_.empty() && ::ftruncate(fd_, 0) == 0) file_size_ = 0;
}

void AuditSegment::postpone_anchor() {
  std::lock_guard lock(mutex_);
  anchoring_ = 0;
  anchoring_bytes_ = 0;
  first_waiting_ = std::chrono::steady_clock::now();
}

void AuditSegment::remove_file() {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

DeadSegmentFiles::~DeadSegmentFiles() {
  for (const auto& [path, fd] : files_) ::close(fd);
}

void DeadSegmentFiles::remove() {
  for (const auto& [path, fd] : files_) {
    ::unlink(path.c_str());
    ::close(fd);
  }
  files_.clear();
}

DeadSegmentFiles anchor_dead_segment_files(const fs::path& directory, RecordStore& store,
                                           const Keyring& keys) {
  DeadSegmentFiles dead;
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) return dead;
  for (const auto& file : it) {
    const auto id = segment_id_of(file.path());
    if (!id) continue;
    Fd fd(open_dead_segment_file(file.path()));
    if (fd.fd < 0) continue;
    // Entries before the store's last were anchored already (the writer died
    // between its anchor and emptying its file).
    std::int64_t expected = 0;
    Bytes mac = segment_genesis_mac(keys, *id);
    if (const auto last = store.last_segment_chunk(*id)) {
      const auto stored = parse_segment_frames(last->entries, *id);
      if (!stored.empty()) {
        expected = stored.back().index + 1;
        mac = stored.back().mac;
      }
    }
    std::vector<SegmentEntry> rows;
    Bytes frames_kept;
    bool damaged = false;
    std::uint64_t at = 0;
    while (auto row = read_frame(fd.fd, at, *id)) {
      if (row->index < expected) continue;
      if (row->index != expected ||
          !constant_time_equal(segment_entry_mac(keys, mac, *row), row->mac)) {
        // The last entry torn by a power failure (its length written, not
        // all of its bytes) is the end of the file, as a cut one is; an
        // entry with another after it is damage.
        damaged = read_frame(fd.fd, at, *id).has_value();
        break;
      }
      mac = row->mac;
      ++expected;
      frame_segment_entry(*row, frames_kept);
      rows.push_back(std::move(*row));
    }
    if (!rows.empty()) {
      store.insert_segment_chunk(
          {*id, rows.front().index, static_cast<std::int64_t>(rows.size()), frames_kept});
      append_anchor(store, keys, rows.back(), ::getpid());
    }
    if (damaged) {
      EventFields fields;
      fields.time =
          std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
      fields.action = kSegmentDamagedAction;
      fields.outcome = "error";
      fields.pid = ::getpid();
      const std::string name = hex_encode(*id);
      fields.name = name;
      (void)append_audit_event(store, keys, {}, event_json(fields));
    }
    dead.files_.emplace_back(file.path(), fd.release());
  }
  return dead;
}

bool dead_segment_files_present(const fs::path& directory) {
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) return false;
  for (const auto& file : it) {
    if (segment_id_of(file.path()) && Fd(open_dead_segment_file(file.path())).fd >= 0) return true;
  }
  return false;
}

}  // namespace credentials::internal
