// The vault on the embedded SQLite store: authorization, the record model,
// versions and audit events. See docs/FORMAT.md for the bytes it writes.
#include <pthread.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "audit/audit_chain.h"
#include "audit/audit_event.h"
#include "audit/audit_segment.h"
#include "credentials/errors.h"
#include "legacy/legacy_vault.h"
#include "store/sqlite_store.h"
#include "store/store_factory.h"
#include "vault/keyring.h"
#include "vault/record_codec.h"
#include "vault/validation.h"
#include "vault/vault_impl.h"
#include "vault/version_ledger.h"

namespace credentials::internal {
namespace {

// A hash of byte strings that finds std::string keys by a std::string_view:
// a lookup makes no key of its own.
struct ByteStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>{}(key); }
};

constexpr std::string_view kRecordLabel = "credentials/v1/record";
// The vault format (meta row `format`, docs/FORMAT.md). Development builds
// before it wrote formats 2 to 7 under `format_version`; they are refused.
constexpr std::int64_t kFormatVersion = 1;
// getpid(2) is a system call (glibc no longer caches it), paid by every
// read's audit event; the id changes only in the child of a fork, where the
// handler below makes the next call ask again.
std::atomic<pid_t> cached_pid{0};
pid_t process_id() {
  static const int registered =
      ::pthread_atfork(nullptr, nullptr, [] { cached_pid.store(0, std::memory_order_relaxed); });
  (void)registered;
  pid_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = ::getpid();
    cached_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

// AES-GCM with random 96-bit nonces stays within NIST SP 800-38D's collision
// bound up to 2^32 encryptions per key; refuse well before that.
constexpr std::int64_t kMaxEncryptionsPerKey = std::int64_t{1} << 31;

void append_u64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void append_field(Bytes& out, std::string_view field) {
  append_u64(out, field.size());
  out.insert(out.end(), field.begin(), field.end());
}

Bytes to_bytes(std::int64_t v) {
  Bytes out;
  append_u64(out, static_cast<std::uint64_t>(v));
  return out;
}
std::int64_t from_bytes(const Bytes& b) {
  std::uint64_t v = 0;
  for (std::uint8_t x : b) v = (v << 8) | x;
  return static_cast<std::int64_t>(v);
}

Timestamp now() { return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()); }

std::string error_kind(const std::exception& e) {
  if (dynamic_cast<const CredentialNotFoundError*>(&e)) return "CredentialNotFoundError";
  if (dynamic_cast<const UnauthorizedError*>(&e)) return "UnauthorizedError";
  if (dynamic_cast<const DecryptionFailedError*>(&e)) return "DecryptionFailedError";
  if (dynamic_cast<const MasterKeyRotatedError*>(&e)) return "MasterKeyRotatedError";
  if (dynamic_cast<const AlreadyExistsError*>(&e)) return "AlreadyExistsError";
  if (dynamic_cast<const InvalidArgumentError*>(&e)) return "InvalidArgumentError";
  if (dynamic_cast<const ConflictError*>(&e)) return "ConflictError";
  if (dynamic_cast<const DatabaseError*>(&e)) return "DatabaseError";
  if (dynamic_cast<const SkillError*>(&e)) return "SkillError";
  return "Error";
}

std::string outcome_of(const std::exception& e) {
  if (dynamic_cast<const UnauthorizedError*>(&e)) return "denied";
  if (dynamic_cast<const CredentialNotFoundError*>(&e)) return "not_found";
  return "error";
}

// A current record that is not the version the ledger holds: its rows were
// put back from an older copy of the vault (or the ledger was). The record
// and the ledger are always read from one snapshot, so it is never a race
// with a writer.
[[noreturn]] void not_the_ledgers_version() {
  throw DecryptionFailedError(
      "decryption failed: a credential's current record is not the version the vault's ledger holds "
      "(its rows were put back from an older copy of the vault?); run `credential_manager verify` and "
      "restore the vault from a backup");
}

[[noreturn]] void unauthorized(const UserContext& user) {
  throw UnauthorizedError(fmt::format(
      "unauthorized: user '{}' may not access that credential. Credentials are per user: use the "
      "owner's user id, or an administrator role",
      user.user_id));
}

[[noreturn]] void not_found(const UserContext& user, std::string_view ref) {
  throw CredentialNotFoundError(fmt::format(
      "credential '{}' not found for user '{}'. List the available credentials with: "
      "credential_manager list --user {}",
      ref, user.user_id, user.user_id));
}

class EmbeddedVault final : public VaultImpl {
 public:
  // `segment_directory`: where the segment of this handle's read events
  // waits for its anchors (the embedded store, audit_segment.h); empty: its
  // entries go straight into the store (the shared store).
  EmbeddedVault(std::unique_ptr<RecordStore> store, std::unique_ptr<Keyring> keys,
                int history_depth, std::filesystem::path segment_directory)
      : store_(std::move(store)),
        keys_(std::move(keys)),
        ledger_(*keys_),
        history_depth_(history_depth),
        segment_directory_(std::move(segment_directory)) {}

  // The handle's segment is anchored before it closes, with the last-used
  // times gathered, and its file removed. On failure the file stays, and the
  // next process to open the vault anchors it.
  ~EmbeddedVault() override {
    AuditSegment* segment = current_segment();
    if (!segment && last_used_count_ == 0) return;
    try {
      {
        // Durable: the file is removed once this has committed.
        auto txn = store_->begin_write(/*durable=*/true);
        if (segment) segment->anchor(*store_, *keys_);
        write_last_used();
        txn.commit();
      }
      if (segment) segment->remove_file();
    } catch (const Error&) {
    }
  }

 private:

  struct Located {
    StoredRecord record;
    std::string owner_hint;
  };

  // An index tag: HMAC-SHA256 under the index key, held by value (no heap
  // allocation per tag: a get uses five of them).
  using IndexTag = std::array<std::uint8_t, 32>;

  IndexTag lookup_tag(std::string_view owner, std::string_view name) const {
    return cached_index_tag('l', {owner, name});
  }
  IndexTag owner_tag(std::string_view owner) const { return cached_index_tag('o', {owner}); }
  static Bytes bytes_of(const IndexTag& tag) { return Bytes(tag.begin(), tag.end()); }
  // A get computes the same lookup and owner tags three or four times (to
  // find the record, to check it, for its audit event): the HMACs were a
  // sixth of its cost. The tags are no secret from this process (they are
  // the index), and the index key never changes, so they are remembered:
  // owner tags in a map (owners are few), lookup tags among the last few
  // computed, which serves the repeats within an operation. (A map of
  // lookup tags was cleared whenever it filled: past a few thousand
  // credentials read in turn each get missed it, and its search, node and
  // key string cost three times the HMAC it saved: 1.9 µs a get at 100,000.)
  // The MAC input is `kind`, then each field with its length (append_field);
  // it is built in a buffer on the stack for the lookup, and copied into
  // the cache only when missing.
  static constexpr std::size_t kInline = 1 + 2 * (8 + kMaxIdentifierLength);
  IndexTag cached_index_tag(char kind, std::initializer_list<std::string_view> fields) const {
    std::size_t size = 1;
    for (const std::string_view field : fields) size += 8 + field.size();
    std::array<std::uint8_t, kInline> inline_buffer;
    Bytes heap_buffer;  // longer fields (not identifiers): rare
    std::uint8_t* out = inline_buffer.data();
    if (size > kInline) {
      heap_buffer.resize(size);
      out = heap_buffer.data();
    }
    std::uint8_t* at = out;
    auto put = [&](std::string_view field) {
      std::uint64_t n = field.size();
      for (int i = 7; i >= 0; --i, n >>= 8) at[i] = static_cast<std::uint8_t>(n);
      at += 8;
      if (!field.empty()) std::memcpy(at, field.data(), field.size());
      at += field.size();
    };
    *at++ = static_cast<std::uint8_t>(kind);
    for (const std::string_view field : fields) put(field);
    const ByteView message(out, size);
    const std::string_view key(reinterpret_cast<const char*>(out), size);
    {
      std::lock_guard lock(tag_cache_mutex_);
      if (kind == 'l') {
        for (const RecentTag& recent : recent_lookup_tags_) {
          if (recent.size == size && std::memcmp(recent.input.data(), out, size) == 0) return recent.tag;
        }
      } else if (const auto it = tag_cache_.find(key); it != tag_cache_.end()) {
        return it->second;
      }
    }
    // Computed without the lock: threads reading the shared store at once
    // each compute their own.
    IndexTag tag;
    keys_->index_mac().mac_into({message}, tag);
    std::lock_guard lock(tag_cache_mutex_);
    if (kind == 'l') {
      if (size <= kInline) {
        RecentTag& slot = recent_lookup_tags_[next_recent_tag_++ % recent_lookup_tags_.size()];
        slot.size = size;
        std::memcpy(slot.input.data(), out, size);
        slot.tag = tag;
      }
      return tag;
    }
    if (tag_cache_.size() >= kTagCacheSize) tag_cache_.clear();
    return tag_cache_.emplace(std::string(key), tag).first->second;
  }
  Bytes id_tag(std::string_view id) const {
    Bytes message{'i'};
    append_field(message, id);
    return keys_->index_mac().mac(message);
  }

  void authorize_namespace(const UserContext& user, std::string_view owner) const {
    validate_identifier(user.user_id, "user id");
    validate_identifier(owner, "user id");
    if (owner != user.user_id && !user.is_admin()) unauthorized(user);
  }

  // `ref` is a name in the caller's namespace, else a credential id.
  // REQUIRES: mutex_ held (shared is enough: see ReadLock).
  Located locate(const UserContext& user, std::string_view ref) {
    validate_identifier(user.user_id, "user id");
    if (ref.empty() || ref.size() > 512) {
      throw InvalidArgumentError("invalid credential reference: give a credential name or id");
    }
    if (is_valid_identifier(ref)) {
      if (auto record = current_record(owner_tag(user.user_id), lookup_tag(user.user_id, ref))) {
        return {std::move(*record), user.user_id};
      }
    }
    // The owner tag of a lookup never changes (the lookup tag is made from
    // the owner), so reading it apart from the record loses no snapshot.
    if (auto key = store_->lookup_by_id(id_tag(ref)); key && !key->owner_tag.empty()) {
      if (auto record = current_record(key->owner_tag, key->lookup)) {
        if (!constant_time_equal(record->owner_tag, key->owner_tag)) {
          throw DecryptionFailedError(
              "decryption failed: a credential's owner tag changed while it was read; run "
              "`credential_manager verify` and restore the vault from a backup");
        }
        if (!constant_time_equal(record->owner_tag, owner_tag(user.user_id)) && !user.is_admin()) {
          unauthorized(user);
        }
        // The id index is not authenticated: an entry pointed at another
        // credential must not make that one answer for this id.
        if (open_record(*record).credential_id != ref) {
          throw DecryptionFailedError(
              "decryption failed: the credential id index was altered; run `credential_manager "
              "verify` and restore the vault from a backup");
        }
        return {std::move(*record), ""};
      }
    }
    not_found(user, ref);
  }

  // The current record of a credential, checked against the version ledger
  // (its path read in the same statement). On the embedded store the
  // ledger's verified answer is kept while no other connection has
  // committed and this handle has not written the ledger: the record alone
  // is read then, in one read transaction with the store's data_version
  // (the path is ~6 KiB of nodes to read and compare, a third of a get).
  // REQUIRES: mutex_ held.
  std::optional<StoredRecord> current_record(ByteView owner_tag, ByteView lookup) {
    const LedgerKey key{owner_tag, lookup};
    const bool own_snapshot = !store_->thread_safe() && !store_->in_transaction();
    std::optional<RecordStore::Transaction> snapshot;
    if (own_snapshot) snapshot.emplace(store_->begin_read());
    auto done = [&](std::optional<StoredRecord> record) {
      if (snapshot) std::exchange(snapshot, std::nullopt)->commit();
      return record;
    };
    const std::optional<std::uint64_t> data_version = store_->data_version();
    if (data_version) {
      if (const auto known = ledger_.known_version(*data_version, lookup)) {
        auto record = store_->current_record(lookup);
        if (record && record->version == *known) return done(std::move(record));
      }
    }
    std::vector<LedgerNode> path;
    auto record = store_->current_record(lookup, ledger_.path_ids(key), path);
    if (record && ledger_.version_in(key, std::move(path)) != record->version) not_the_ledgers_version();
    if (record && data_version && snapshot) ledger_.remember_version(*data_version, lookup, record->version);
    return done(std::move(record));
  }

  // The same check for many records (list). REQUIRES: mutex_ held, inside
  // a transaction (records and ledger from one snapshot).
  void check_ledger(const std::vector<StoredRecord>& records) {
    std::vector<LedgerKey> keys;
    keys.reserve(records.size());
    for (const auto& record : records) keys.push_back({record.owner_tag, record.lookup});
    const auto listed = ledger_.versions_of(*store_, keys);
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (listed[i] != records[i].version) not_the_ledgers_version();
    }
  }

  // A version is sealed as current when it is written, and resealed as
  // superseded in the transaction that writes the next one. So a kept older
  // version cannot be made to read as the current one by editing the index
  // (pointing the current version back at it, deleting the newer rows): it
  // fails to decrypt as current.
  enum class Standing : std::uint8_t { kCurrent = 'C', kSuperseded = 'S' };

  Bytes record_aad(ByteView lookup, std::uint64_t version, std::int64_t key_id, Standing standing) const {
    Bytes aad(kRecordLabel.begin(), kRecordLabel.end());
    aad.insert(aad.end(), keys_->vault_id().begin(), keys_->vault_id().end());
    aad.insert(aad.end(), lookup.begin(), lookup.end());
    append_u64(aad, version);
    append_u64(aad, static_cast<std::uint64_t>(key_id));
    aad.push_back(static_cast<std::uint8_t>(standing));
    return aad;
  }

  // REQUIRES: inside a write transaction (the newest data key is read there,
  // so a key added by another process is used at once).
  StoredRecord seal(const Credential& c, ByteView lookup, ByteView owner) {
    return seal_plain(encode_record(c), lookup, owner, c.version, Standing::kCurrent);
  }

  // The current version `record` resealed as superseded, before a newer
  // version is added. REQUIRES: inside a write transaction.
  StoredRecord superseded(const StoredRecord& record) {
    auto plain = aead_decrypt(keys_->data_key(*store_, record.key_id), record.sealed,
                              record_aad(record.lookup, record.version, record.key_id, Standing::kCurrent));
    if (!plain) {
      throw DecryptionFailedError(
          "decryption failed: a credential record was altered or moved; restore the vault from a "
          "backup");
    }
    return seal_plain(std::move(*plain), record.lookup, record.owner_tag, record.version,
                      Standing::kSuperseded);
  }

  // Adds `next` as the current version of the credential whose current
  // version is `current`. REQUIRES: inside a write transaction.
  void add_version(const StoredRecord& current, const StoredRecord& next) {
    store_->reseal_version(superseded(current));
    store_->add_version(next, history_depth_);
    ledger_.set(*store_, {next.owner_tag, next.lookup}, next.version);
  }

  StoredRecord seal_plain(const SecretBytes& plain, ByteView lookup, ByteView owner,
                          std::uint64_t version, Standing standing) {
    const std::int64_t key_id = store_->newest_key_id("data");
    if (store_->key_encryptions(key_id) >= kMaxEncryptionsPerKey) {
      throw DatabaseError(
          "the current data key has sealed too many records for AES-GCM's random-nonce limit: run "
          "`credential_manager rotate-data-key`, then `credential_manager reencrypt`");
    }
    StoredRecord record;
    record.lookup.assign(lookup.begin(), lookup.end());
    record.owner_tag.assign(owner.begin(), owner.end());
    record.version = version;
    record.key_id = key_id;
    record.sealed = aead_encrypt(keys_->data_key(*store_, key_id), plain.span(),
                                 record_aad(lookup, version, key_id, standing));
    store_->add_encryptions(key_id, 1);
    return record;
  }

  // Decrypts a record and checks that it belongs where it is stored: a record
  // copied to another row fails the AEAD (its lookup is in the associated
  // data), and an owner tag edited in the index is caught here.
  Credential open_record(const StoredRecord& record, Standing standing = Standing::kCurrent) {
    const SecretBytes& key = keys_->data_key(*store_, record.key_id);
    auto plain = aead_decrypt(key, record.sealed,
                              record_aad(record.lookup, record.version, record.key_id, standing));
    if (!plain) {
      throw DecryptionFailedError(
          "decryption failed: a credential record was altered or moved; restore the vault from a "
          "backup");
    }
    Credential c = decode_record(plain->span());
    if (c.version != record.version || !constant_time_equal(lookup_tag(c.owner, c.name), record.lookup) ||
        !constant_time_equal(owner_tag(c.owner), record.owner_tag)) {
      throw DecryptionFailedError("decryption failed: a credential record is not where it belongs");
    }
    return c;
  }

  // REQUIRES: inside a write transaction. With `ledger_batch`, the version
  // ledger's entry is left to the caller's VersionLedger::set_all, once for
  // the whole batch, before the transaction commits.
  void insert_new(const Credential& c, const std::vector<std::string>& extra_ids,
                  std::vector<LedgerChange>* ledger_batch = nullptr) {
    const Bytes lookup = bytes_of(lookup_tag(c.owner, c.name));
    if (store_->current_version(lookup)) {
      throw AlreadyExistsError(fmt::format(
          "credential '{}' already exists for user '{}': choose another name, or use update",
          c.name, c.owner));
    }
    StoredRecord record = seal(c, lookup, owner_tag(c.owner));
    store_->insert_credential(id_tag(c.credential_id), record);
    for (const auto& id : extra_ids) store_->insert_credential_id(id_tag(id), lookup);
    if (ledger_batch) {
      ledger_batch->push_back({record.owner_tag, lookup, c.version});
    } else {
      ledger_.set(*store_, {record.owner_tag, lookup}, c.version);
    }
  }

  static EventFields event_fields(const UserContext& actor, const AuditRecord& event, Timestamp time) {
    EventFields fields;
    fields.time = time;
    fields.actor = actor.user_id;
    fields.roles = actor.roles;
    fields.action = event.action;
    fields.owner = event.owner;
    fields.name = event.name;
    fields.outcome = event.outcome;
    fields.error = event.error_kind;
    fields.skill = event.skill;
    fields.query_sha256 = event.query_sha256;
    fields.pid = process_id();
    return fields;
  }
  static std::string event_json(const UserContext& actor, const AuditRecord& event) {
    return internal::event_json(event_fields(actor, event, now()));
  }
  // The owner's tag, or none (an event about no one owner).
  std::optional<IndexTag> event_owner_tag(const AuditRecord& event) const {
    if (!is_valid_identifier(event.owner)) return std::nullopt;
    return owner_tag(event.owner);
  }
  static ByteView view_of(const std::optional<IndexTag>& tag) { return tag ? ByteView(*tag) : ByteView(); }

  // A newer build may have upgraded the vault since this handle opened it:
  // this build must not write to a format it does not know. REQUIRES:
  // inside a write transaction.
  void require_known_format() {
    const auto format = store_->get_meta("format");
    if (!format || from_bytes(*format) != kFormatVersion) {
      throw DatabaseError(
          "this vault was upgraded by a newer version of credentials since this process opened it: "
          "nothing was written; restart the process with that version");
    }
  }

  // The event of a write, committing to the state it started from (`prior`,
  // vault_state at the start of its transaction) and the one it leaves
  // behind. REQUIRES: inside the write's transaction, after its changes.
  void append_write_event(const UserContext& actor, const AuditRecord& event, ByteView prior) {
    append_write_event(*store_, *keys_, view_of(event_owner_tag(event)), actor, event, prior);
  }
  static void append_write_event(RecordStore& store, const Keyring& keys, ByteView owner_tag,
                                 const UserContext& actor, const AuditRecord& event,
                                 ByteView prior) {
    const Bytes state = vault_state(store);
    EventFields fields = event_fields(actor, event, now());
    fields.prior = prior;
    fields.state = state;
    append_audit_event(store, keys, owner_tag, internal::event_json(fields));
  }

  // Anchors this handle's segment, so that its read events are vouched
  // for before the write about to be recorded. REQUIRES: inside a write
  // transaction; once it has committed, call own_anchor_committed().
  void anchor_own_segment() {
    if (AuditSegment* segment = current_segment()) segment->anchor(*store_, *keys_);
  }
  void own_anchor_committed(bool durable) {
    if (AuditSegment* segment = current_segment()) segment->anchor_committed(durable);
  }

  // This handle's segment; null before its first event. In the child of a
  // fork, the parent's segment (its file and lock, copied with the process)
  // is the parent's: the child records its events in a segment of its own.
  AuditSegment* current_segment() {
    std::lock_guard lock(segment_mutex_);
    if (segment_ && segment_->creator() != process_id()) segment_.reset();
    return segment_.get();
  }

  // Anchors this handle's segment in a transaction of its own, if it has
  // anything waiting, with the last-used times gathered so far when they
  // are due (or `with_last_used`); best effort (the events are safe in the
  // segment until then).
  void anchor_now(bool with_last_used = false) {
    const bool last_used_due =
        last_used_count_ > 0 &&
        (with_last_used || last_used_round_ || last_used_count_ >= kLastUsedBatch ||
         std::chrono::steady_clock::now() - last_used_written_ >= kLastUsedEvery);
    AuditSegment* segment = current_segment();
    if ((!segment || !segment->unanchored()) && !last_used_due) return;
    // Readers sharing a handle on PostgreSQL may find an anchor due at once:
    // one anchors, the others go on.
    std::unique_lock anchoring(anchor_mutex_, std::try_to_lock);
    if (!anchoring) return;
    // Durable when the segment's file is to be emptied after it.
    const bool durable = segment && segment->file_large();
    try {
      auto txn = store_->begin_write(durable);
      anchor_own_segment();
      if (last_used_due) write_last_used(/*all=*/with_last_used);
      txn.commit();
      own_anchor_committed(durable);
    } catch (const Error&) {
      // Tried again after as long again.
      if (segment) segment->postpone_anchor();
    }
  }

  // Last-used times of this handle's reads are gathered in memory and
  // written once a minute (or after 65,536 credentials, ~8 MB), and all at
  // list and close: written at every anchor, a run of reads of different
  // credentials turned each read into a random page write. At 100,000
  // credentials a batch of 4,096 still dirtied ~1,900 of the table's ~2,200
  // pages, ~18 µs a read; 65,536 share those pages. Such a batch written at
  // once held one read for ~240 ms, so a round writes one sixteenth of the
  // key range per anchor (kLastUsedSlices): the rows of a slice lie on their
  // own sixteenth of the pages. They are informational; a crash loses at
  // most a minute of them (the events themselves are in the segment).
  // REQUIRES: inside a write transaction.
  void write_last_used(bool all = true) {
    if (all) {
      for (std::size_t slice = 0; slice < kLastUsedSlices; ++slice) write_last_used_slice(slice);
      last_used_round_ = false;
      last_used_next_slice_ = 0;
      last_used_written_ = std::chrono::steady_clock::now();
      return;
    }
    last_used_round_ = true;
    while (last_used_round_ && last_used_[last_used_next_slice_].empty()) advance_last_used_round();
    if (!last_used_round_) return;
    write_last_used_slice(last_used_next_slice_);
    advance_last_used_round();
  }
  void advance_last_used_round() {
    if (++last_used_next_slice_ < kLastUsedSlices) return;
    last_used_next_slice_ = 0;
    last_used_round_ = false;
    last_used_written_ = std::chrono::steady_clock::now();
  }
  void write_last_used_slice(std::size_t slice) {
    auto& pending = last_used_[slice];
    // In key order: neighbouring rows share their B-tree pages.
    std::vector<std::pair<const IndexTag*, std::int64_t>> in_order;
    in_order.reserve(pending.size());
    for (const auto& [lookup, time] : pending) in_order.emplace_back(&lookup, time);
    std::sort(in_order.begin(), in_order.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
    for (const auto& [lookup, time] : in_order) store_->touch_last_used(*lookup, time);
    last_used_count_ -= pending.size();
    pending.clear();
  }
  void note_last_used(const Bytes& lookup, std::int64_t time) {
    IndexTag key;
    if (lookup.size() != key.size()) return;  // never: lookup tags are HMAC-SHA256
    std::copy(lookup.begin(), lookup.end(), key.begin());
    const std::size_t slice = key[0] >> 4;  // the key's first 4 bits: 16 slices
    if (last_used_[slice].insert_or_assign(key, time).second) ++last_used_count_;
  }

  // This handle's segment anchored, and the segments of processes that
  // died: before the trail is read whole (audit, verify, head, backup), and
  // at open (`own` false).
  void anchor_segments(bool own = true) {
    if (own) anchor_now();
    if (segment_directory_.empty() || !dead_segment_files_present(segment_directory_)) return;
    DeadSegmentFiles dead;
    {
      // Durable: a dead segment's file is removed once this has committed.
      auto txn = store_->begin_write(/*durable=*/true);
      dead = anchor_dead_segment_files(segment_directory_, *store_, *keys_);
      txn.commit();
    }
    dead.remove();
  }

  // last_used is kept to the minute: rewriting it on every read would add a
  // page write to each get for information nobody needs to the microsecond.
  static bool stale_last_used(const StoredRecord& record) {
    constexpr std::int64_t kGranularity = 60'000'000;  // µs
    return now().time_since_epoch().count() - record.last_used >= kGranularity;
  }

  static Credential from_input(const UserContext& user, NewCredential input) {
    Credential c;
    c.owner = user.user_id;
    c.name = std::move(input.name);
    c.db_type = std::move(input.db_type);
    c.host = std::move(input.host);
    c.port = input.port;
    c.database = std::move(input.database);
    c.username = std::move(input.username);
    c.password = std::move(input.password);
    c.description = std::move(input.description);
    c.ssl_mode = std::move(input.ssl_mode);
    c.connection_timeout = input.connection_timeout;
    return c;
  }

  // "<owner>_<name>_<64 random bits>": readable like the Python ids, and
  // unguessable, so knowing an id is needed before it can be probed.
  static std::string new_credential_id(const Credential& c) {
    return fmt::format("{}_{}_{}", c.owner, c.name, hex_encode(random_bytes(8)));
  }

  static AuditEvent parse_event(std::int64_t seq, const std::string& text) {
    AuditEvent event;
    event.seq = seq;
    const auto body = nlohmann::json::parse(text, nullptr, false);
    if (!body.is_object()) return event;
    auto get = [&](const char* key) { return body.value(key, std::string()); };
    try {
      event.time = parse_timestamp(get("time"));
    } catch (const Error&) {
    }
    event.actor = get("actor");
    if (body.contains("roles") && body["roles"].is_array()) {
      for (const auto& role : body["roles"]) {
        if (role.is_string()) event.roles.push_back(role.get<std::string>());
      }
    }
    event.action = get("action");
    event.owner = get("owner");
    event.name = get("name");
    event.outcome = get("outcome");
    event.error = get("error");
    event.skill = get("skill");
    event.query_sha256 = get("query_sha256");
    event.pid = body.value("pid", std::int64_t{0});
    return event;
  }

  // Vault-wide operations take no user: the audit names the OS account.
  static UserContext system_actor() {
    std::string login = "uid-" + std::to_string(::getuid());
    if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name) login = pw->pw_name;
    return {"os:" + login, login, {"vault-admin"}};
  }

  struct DryRunDone {};

  // mutex_ guards the handle's use of the store and its own state. Every
  // write holds it exclusively, as does every call on a store that is not
  // thread-safe (SQLite: one connection). A read (get, list, history, audit
  // queries, verify, current_version, keys) on a thread-safe store
  // (PostgreSQL: each thread's statements and transactions run on a pooled
  // connection of their own) holds it shared, so that the reads of threads
  // sharing a handle overlap their round trips to the server instead of
  // queueing behind each other's. What such a reader touches besides the
  // store is safe for that: the keyring has a lock of its own (a data key
  // added by another host is loaded under it, and so is this handle's own
  // rotation), the tag cache too, the segment has a lock of its own, and
  // last_used_ exists only on the embedded store. A read's audit event is a
  // row of the handle's segment, committed without the vault's advisory
  // lock; its anchors are write transactions under it.
  //
  // std::shared_mutex is glibc's rwlock, which prefers readers: a stream of
  // overlapping reads would starve a writer of the same handle. A writer
  // waiting here holds the turnstile, which readers pass before taking their
  // share, so it gets the lock once the readers inside are done.
  class WriterFirstMutex {
   public:
    void lock() {
      std::lock_guard turn(turnstile_);
      mutex_.lock();
    }
    void unlock() { mutex_.unlock(); }
    void lock_shared() {
      std::lock_guard turn(turnstile_);
      mutex_.lock_shared();
    }
    void unlock_shared() { mutex_.unlock_shared(); }

   private:
    std::mutex turnstile_;
    std::shared_mutex mutex_;
  };
  class ReadLock {
   public:
    ReadLock(WriterFirstMutex& mutex, bool shared) : mutex_(mutex), shared_(shared) {
      shared_ ? mutex_.lock_shared() : mutex_.lock();
    }
    ~ReadLock() { shared_ ? mutex_.unlock_shared() : mutex_.unlock(); }
    ReadLock(const ReadLock&) = delete;
    ReadLock& operator=(const ReadLock&) = delete;

   private:
    WriterFirstMutex& mutex_;
    bool shared_;
  };
  [[nodiscard]] ReadLock lock_for_read() { return ReadLock(mutex_, store_->thread_safe()); }

  // A vault-wide write: one durable transaction with its audit event.
  // `new_records`: how many credentials it adds (see LargeWrite).
  // `after_commit` runs once the transaction committed, before the handle's
  // other threads may use the store again. `event_name`, when given, is the
  // event's name field as the body leaves it (e.g. its counts).
  template <typename F>
  void vault_write(std::string_view action, std::size_t new_records, F&& body,
                   const std::function<void()>& after_commit = {},
                   const std::string* event_name = nullptr) {
    std::lock_guard lock(mutex_);
    const UserContext actor = system_actor();
    try {
      const LargeWrite large(*store_, new_records);
      auto txn = store_->begin_write(/*durable=*/true);
      require_known_format();
      anchor_own_segment();
      const Bytes prior = vault_state(*store_);
      try {
        body();
      } catch (const DryRunDone&) {
        return;  // rolled back by txn's destructor
      }
      append_write_event(actor, {std::string(action), "", event_name ? *event_name : "", "ok", "", "", ""},
                         prior);
      txn.commit();
      if (after_commit) after_commit();
      own_anchor_committed(/*durable=*/true);
    } catch (const Error& e) {
      record_failure(actor, action, "", event_name ? *event_name : "", e);
      throw;
    }
  }

  // Runs a read and records its audit event (fail closed: when the event
  // cannot be written the result is not returned).
  template <typename F>
  auto audited_read(const UserContext& user, std::string_view action, std::string_view name, F&& body,
                    const Bytes* used_lookup = nullptr) {
    const ReadLock lock = lock_for_read();
    std::string owner;
    try {
      auto result = body(owner);
      record_locked(user, {std::string(action), owner, std::string(name), "ok", "", "", ""},
                    used_lookup);
      return result;
    } catch (const Error& e) {
      record_failure(user, action, owner, name, e);
      throw;
    }
  }

  // Runs a write in one durable transaction with its audit event; a failure
  // is rolled back and then recorded in a transaction of its own.
  template <typename F>
  auto audited_write(const UserContext& user, std::string_view action, std::string_view owner,
                     std::string_view name, F&& body, std::string* owner_out = nullptr,
                     std::size_t new_records = 1) {
    std::lock_guard lock(mutex_);
    try {
      const LargeWrite large(*store_, new_records);
      auto txn = store_->begin_write(/*durable=*/true);
      require_known_format();
      anchor_own_segment();
      const Bytes prior = vault_state(*store_);
      auto result = body();
      append_write_event(user,
                         {std::string(action), owner_out ? *owner_out : std::string(owner),
                          std::string(name), "ok", "", "", ""},
                         prior);
      txn.commit();
      own_anchor_committed(/*durable=*/true);
      return result;
    } catch (const Error& e) {
      record_failure(user, action, owner_out ? *owner_out : std::string(owner), name, e);
      throw;
    }
  }

  // Records the audit event of a read (or of a failure) before its result
  // is returned, as the next entry of this handle's segment
  // (audit_segment.h). The credential's last-used time is kept for
  // write_last_used on the embedded store, and written at once on the
  // shared store (at most once a minute per credential, stale_last_used).
  void record_locked(const UserContext& actor, const AuditRecord& event,
                     const Bytes* used_lookup = nullptr) {
    AuditSegment& segment = own_segment();
    const Timestamp at = now();
    const std::int64_t time = at.time_since_epoch().count();
    segment.append(*store_, *keys_, view_of(event_owner_tag(event)),
                   internal::event_json(event_fields(actor, event, at)), time);
    if (used_lookup && !used_lookup->empty()) {
      if (segment_directory_.empty()) {
        store_->touch_last_used(*used_lookup, time);
      } else {
        note_last_used(*used_lookup, time);
      }
    }
    // The event is already safe in the segment: an anchor that cannot run
    // now (the vault busy, the disk full) runs at the next chance.
    if (segment.anchor_due()) anchor_now();
  }

  // This handle's segment, created at its first event (and again in the
  // child of a fork).
  AuditSegment& own_segment() {
    std::lock_guard lock(segment_mutex_);
    if (segment_ && segment_->creator() != process_id()) segment_.reset();
    if (!segment_) segment_ = AuditSegment::create(segment_directory_, *keys_);
    return *segment_;
  }

  void record_failure(const UserContext& user, std::string_view action, std::string_view owner,
                      std::string_view name, const Error& e) {
    // A failure to audit a failure must not hide the original error.
    try {
      record_locked(user, {std::string(action), std::string(owner), std::string(name), outcome_of(e),
                           error_kind(e), "", ""});
    } catch (const Error&) {
    }
  }

 public:
  std::string store_credential(const UserContext& user, NewCredential input) override {
    const std::string name = input.name;
    Credential c = from_input(user, std::move(input));
    return audited_write(user, "store", user.user_id, name, [&] {
      validate_fields(c, c.password);
      c.credential_id = new_credential_id(c);
      c.created_at = c.updated_at = now();
      c.version = 1;
      insert_new(c, {});
      return c.credential_id;
    });
  }

  Credential get_credential(const UserContext& user, std::string_view ref) override {
    Bytes used;
    return audited_read(user, "get", ref, [&](std::string& owner) {
      auto located = locate(user, ref);
      owner = located.owner_hint;
      Credential c = open_record(located.record);
      owner = c.owner;
      if (stale_last_used(located.record)) used = located.record.lookup;
      return c;
    }, &used);
  }

  Credential get_credential(const UserContext& user, std::string_view owner,
                            std::string_view name) override {
    Bytes used;
    return audited_read(user, "get", name, [&](std::string& event_owner) {
      event_owner = owner;
      authorize_namespace(user, owner);
      auto record = current_record(owner_tag(owner), lookup_tag(owner, name));
      if (!record) not_found(user, name);
      if (stale_last_used(*record)) used = record->lookup;
      return open_record(*record);
    }, &used);
  }

  std::vector<CredentialInfo> list_credentials(const UserContext& user) override {
    return audited_read(user, "list", "", [&](std::string& owner) {
      validate_identifier(user.user_id, "user id");
      // This handle's own reads show at once; other processes' within a
      // minute (see write_last_used).
      anchor_now(/*with_last_used=*/true);
      owner = user.is_admin() ? "" : user.user_id;
      std::vector<StoredRecord> records;
      {
        // One snapshot for the records and their ledger paths (and on the
        // embedded store one read lock for all the statements).
        auto txn = store_->begin_read();
        records = user.is_admin() ? store_->all_current_records()
                                  : store_->current_records_of_owner(owner_tag(user.user_id));
        check_ledger(records);
      }
      std::vector<CredentialInfo> out;
      out.reserve(records.size());
      for (const auto& record : records) {
        out.push_back(open_record(record));
        if (record.last_used) {
          out.back().last_used = Timestamp(std::chrono::microseconds(record.last_used));
        }
      }
      std::sort(out.begin(), out.end(), [](const CredentialInfo& a, const CredentialInfo& b) {
        return std::tie(a.owner, a.name) < std::tie(b.owner, b.name);
      });
      return out;
    });
  }

  std::uint64_t update_credential(const UserContext& user, std::string_view ref,
                                  CredentialChanges changes,
                                  std::optional<std::uint64_t> expected_version) override {
    const std::string action = changes.password && !changes.host && !changes.port &&
                                       !changes.database && !changes.username &&
                                       !changes.db_type && !changes.description &&
                                       !changes.ssl_mode && !changes.connection_timeout
                                   ? "update_password"
                                   : "update";
    std::string owner;
    return audited_write(user, action, "", ref, [&] {
      auto located = locate(user, ref);
      Credential c = open_record(located.record);
      owner = c.owner;
      if (expected_version && *expected_version != c.version) {
        throw ConflictError(fmt::format(
            "conflict: credential '{}' is at version {}, not {}: another writer updated it; "
            "read it again and retry",
            c.name, c.version, *expected_version));
      }
      if (changes.db_type) c.db_type = *changes.db_type;
      if (changes.host) c.host = *changes.host;
      if (changes.port) c.port = *changes.port;
      if (changes.database) c.database = *changes.database;
      if (changes.username) c.username = *changes.username;
      if (changes.description) c.description = *changes.description;
      if (changes.ssl_mode) c.ssl_mode = *changes.ssl_mode;
      if (changes.connection_timeout) c.connection_timeout = *changes.connection_timeout;
      if (changes.password) c.password = std::move(*changes.password);
      validate_fields(c, c.password);
      c.version += 1;
      c.updated_at = now();
      add_version(located.record, seal(c, located.record.lookup, located.record.owner_tag));
      return c.version;
    }, &owner);
  }

  void delete_credential(const UserContext& user, std::string_view ref) override {
    std::string owner;
    audited_write(user, "delete", "", ref, [&] {
      auto located = locate(user, ref);
      owner = open_record(located.record).owner;
      store_->delete_credential(located.record.lookup);
      ledger_.set(*store_, {located.record.owner_tag, located.record.lookup}, std::nullopt);
      return 0;
    }, &owner);
    std::lock_guard lock(mutex_);
    store_->compact_log();
  }

  std::uint64_t current_version(const UserContext& user, std::string_view ref) override {
    const ReadLock lock = lock_for_read();
    return locate(user, ref).record.version;
  }

  std::optional<ChangeStamp> change_stamp() override {
    const ReadLock lock = lock_for_read();
    return store_->change_stamp();
  }

  void record_event(const UserContext& actor, const AuditRecord& event) override {
    std::lock_guard lock(mutex_);
    record_locked(actor, event);
  }

  const std::filesystem::path& directory() const override { return store_->directory(); }

  std::size_t pending_last_used_count() override {
    std::lock_guard lock(mutex_);
    return last_used_count_;
  }


  std::vector<std::string> store_credentials(const UserContext& user,
                                             std::vector<NewCredential> inputs) override {
    std::vector<std::string> ids;
    const std::size_t count = inputs.size();
    audited_write(user, "store_batch", user.user_id, fmt::format("{} credentials", count), [&] {
      const Timestamp created = now();
      std::vector<LedgerChange> ledger_changes;
      for (auto& input : inputs) {
        Credential c = from_input(user, std::move(input));
        validate_fields(c, c.password);
        c.credential_id = new_credential_id(c);
        c.created_at = c.updated_at = created;
        c.version = 1;
        insert_new(c, {}, &ledger_changes);
        ids.push_back(c.credential_id);
      }
      ledger_.set_all(*store_, ledger_changes);
      return 0;
    }, nullptr, count);
    return ids;
  }

  std::vector<CredentialVersion> history(const UserContext& user, std::string_view ref) override {
    return audited_read(user, "history", ref, [&](std::string& owner) {
      auto txn = store_->begin_read();  // the versions from the snapshot the current one came from
      auto located = locate(user, ref);
      owner = open_record(located.record).owner;
      std::vector<CredentialVersion> out;
      for (const auto& record : store_->versions_of(located.record.lookup)) {
        const Credential c = open_record(record, record.version == located.record.version
                                                     ? Standing::kCurrent
                                                     : Standing::kSuperseded);
        out.push_back({c.version, c.updated_at, record.key_id, c.version == located.record.version});
      }
      return out;
    });
  }

  std::uint64_t rollback(const UserContext& user, std::string_view ref, std::uint64_t version) override {
    std::string owner;
    return audited_write(user, "rollback", "", ref, [&] {
      auto located = locate(user, ref);
      const Credential current = open_record(located.record);
      owner = current.owner;
      auto old = store_->version_of(located.record.lookup, version);
      if (!old) {
        throw CredentialNotFoundError(fmt::format(
            "version {} of credential '{}' is not kept: see `credential_manager history`", version,
            current.name));
      }
      Credential c = open_record(*old, version == current.version ? Standing::kCurrent
                                                                  : Standing::kSuperseded);
      c.version = current.version + 1;
      c.created_at = current.created_at;
      c.updated_at = now();
      add_version(located.record, seal(c, located.record.lookup, located.record.owner_tag));
      return c.version;
    }, &owner);
  }

  // The newest `query.limit` matching events, oldest first: those of the
  // chain (writes; anchors are left out) and those of the segments (reads
  // and failures), by time. An event is listed only when it chains to the
  // one before it in the chain or in its segment; `audit verify` reports
  // any other.
  std::vector<AuditEvent> audit_events(const UserContext& user, const AuditQuery& query) override {
    {
      std::lock_guard lock(mutex_);
      anchor_segments();
    }
    return audited_read(user, "audit", "", [&](std::string& owner) {
      validate_identifier(user.user_id, "user id");
      owner = user.is_admin() ? query.owner.value_or("") : user.user_id;
      if (!user.is_admin() && query.owner && *query.owner != user.user_id) unauthorized(user);
      const Bytes wanted_tag = owner.empty() ? Bytes() : bytes_of(owner_tag(owner));
      std::vector<AuditEvent> out;
      const auto keep = [&](std::int64_t seq, const std::string& text) {
        AuditEvent event = parse_event(seq, text);
        if (!owner.empty() && event.owner != owner) return;
        if (query.name && event.name != *query.name) return;
        if (query.action && event.action != *query.action) return;
        if (query.since && event.time < *query.since) return;
        out.push_back(std::move(event));
      };
      auto txn = store_->begin_read();
      std::int64_t after = 0;
      Bytes previous = chain_genesis_mac(*keys_);
      for (;;) {
        const auto rows = store_->audit_rows(after, kAuditRowsPerRead);
        for (const auto& row : rows) {
          if (row.seq != after + 1 || !audit_row_chains(*keys_, previous, row)) break;
          after = row.seq;
          previous = row.mac;
          if (!wanted_tag.empty() && !constant_time_equal(row.owner_tag, wanted_tag)) continue;
          const auto text = open_audit_event(*keys_, row);
          if (text && !event_anchor(*text)) keep(row.seq, *text);
        }
        if (static_cast<std::int64_t>(rows.size()) < kAuditRowsPerRead) break;
      }
      constexpr std::int64_t kChunksPerRead = 16;
      Bytes after_segment;
      std::int64_t after_index = -1;
      Bytes segment, mac;
      std::int64_t expected = 0;
      for (;;) {
        const auto chunks = store_->segment_chunks(after_segment, after_index, kChunksPerRead);
        for (const SegmentChunk& chunk : chunks) {
          if (chunk.segment_id != segment) {
            segment = chunk.segment_id;
            expected = 0;
            mac = segment_genesis_mac(*keys_, segment);
          }
          for (const SegmentEntry& entry : parse_segment_frames(chunk.entries, chunk.segment_id)) {
            // Past an entry out of place the rest of the segment is not listed.
            if (entry.index != expected ||
                !constant_time_equal(segment_entry_mac(*keys_, mac, entry), entry.mac)) {
              break;
            }
            ++expected;
            mac = entry.mac;
            if (!wanted_tag.empty() && !constant_time_equal(entry.owner_tag, wanted_tag)) continue;
            if (const auto text = open_segment_entry(*keys_, entry)) keep(0, *text);
          }
        }
        if (static_cast<std::int64_t>(chunks.size()) < kChunksPerRead) break;
        after_segment = chunks.back().segment_id;
        after_index = chunks.back().first_index;
      }
      std::stable_sort(out.begin(), out.end(),
                       [](const AuditEvent& a, const AuditEvent& b) { return a.time < b.time; });
      if (out.size() > query.limit)
        out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(query.limit));
      return out;
    });
  }

  AuditVerification verify_audit(const std::vector<std::string>& checkpoints) override {
    std::vector<AuditHead> wanted;
    for (const auto& text : checkpoints) wanted.push_back(parse_checkpoint(text));
    {
      std::lock_guard lock(mutex_);
      anchor_segments();
    }
    const ReadLock lock = lock_for_read();
    auto txn = store_->begin_read();
    const ChainVerification internal = verify_audit_chain(*store_, *keys_);
    AuditVerification result{internal.ok, internal.events, internal.first_bad_seq,
                             internal.problem};
    for (const auto& checkpoint : wanted) {
      if (!result.ok) break;
      if (auto problem = checkpoint_problem(checkpoint, internal.head_seq)) {
        result = {false, internal.events, checkpoint.seq, std::move(*problem)};
      }
    }
    return result;
  }

  // "credentials-checkpoint:1:<32 hex>:<seq>:<64 hex>", as AuditHead::checkpoint prints it.
  static AuditHead parse_checkpoint(std::string_view text) {
    const auto invalid = [] {
      return InvalidArgumentError(
          "that is not an audit checkpoint: expected one line as `credential_manager audit head` "
          "prints it, credentials-checkpoint:1:<vault id>:<sequence number>:<MAC>");
    };
    std::vector<std::string_view> parts;
    for (std::size_t start = 0;;) {
      const std::size_t end = text.find(':', start);
      parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    const auto is_hex = [](std::string_view s, std::size_t size) {
      return s.size() == size && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
    };
    if (parts.size() != 5 || parts[0] != "credentials-checkpoint" || parts[1] != "1" ||
        !is_hex(parts[2], 2 * kVaultIdSize) || parts[3].empty() || parts[3].size() > 18 ||
        !std::all_of(parts[3].begin(), parts[3].end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      throw invalid();
    }
    AuditHead head{std::stoll(std::string(parts[3])), std::string(parts[4]), std::string(parts[2])};
    // An empty chain's checkpoint has no MAC: it names the vault only.
    if (head.seq == 0 ? !head.mac_hex.empty() : !is_hex(head.mac_hex, 2 * kKeySize))
      throw invalid();
    return head;
  }

  // Why the chain (verified, its last event `head_seq`) does not hold
  // `checkpoint`; nullopt when it does. REQUIRES: a read transaction.
  std::optional<std::string> checkpoint_problem(const AuditHead& checkpoint,
                                                std::int64_t head_seq) {
    const std::string vault_id = hex_encode(keys_->vault_id());
    if (checkpoint.vault_id_hex != vault_id) {
      return fmt::format(
          "the checkpoint of event {} is of another vault (vault id {}; this vault's is {})",
          checkpoint.seq, checkpoint.vault_id_hex, vault_id);
    }
    if (checkpoint.seq == 0) return std::nullopt;
    if (checkpoint.seq > head_seq) {
      return fmt::format(
          "the chain ends at event {}, before the checkpoint's event {}: the vault was rolled back "
          "to an "
          "older copy",
          head_seq, checkpoint.seq);
    }
    const auto rows = store_->audit_rows(checkpoint.seq - 1, 1);
    if (rows.empty() || rows.front().seq != checkpoint.seq ||
        hex_encode(rows.front().mac) != checkpoint.mac_hex) {
      return fmt::format(
          "the chain does not hold the checkpoint's event {} as it was: the vault was rolled back "
          "to an "
          "older copy and written to since, or replaced",
          checkpoint.seq);
    }
    return std::nullopt;
  }

  AuditHead audit_head() override {
    const ReadLock lock = lock_for_read();
    anchor_segments();
    auto txn = store_->begin_read();
    const ChainVerification internal = verify_audit_chain(*store_, *keys_);
    if (!internal.ok) {
      throw DecryptionFailedError(fmt::format("the audit chain is broken at event {}: {}",
                                              internal.first_bad_seq, internal.problem));
    }
    return {internal.head_seq, hex_encode(internal.head_mac), hex_encode(keys_->vault_id())};
  }

  void rotate_master_key(SecretString new_master_key) override {
    SecretString material = normalize_master_key(new_master_key.reveal());
    if (material.empty()) throw MissingKeyError("the new master key is empty: make one with `credential_manager keygen`");
    // A fresh Argon2 salt with every rotation; the salt and the re-wrapped
    // keys commit together, so the vault opens with exactly one of the keys.
    KeyDerivation derivation{keys_->vault_id(), random_bytes(kArgon2SaltSize), default_argon2_params()};
    DerivedKek derived = derive_kek(material, derivation);
    vault_write(
        "rotate_master_key", 0,
        [&] {
          store_->put_meta("argon2_salt", derivation.argon2_salt);
          store_->put_meta("argon2_ops",
                           to_bytes(static_cast<std::int64_t>(derivation.argon2.ops_limit)));
          store_->put_meta("argon2_mem",
                           to_bytes(static_cast<std::int64_t>(derivation.argon2.mem_limit)));
          store_->put_meta("key_check", derived.key_check);
          keys_->rewrap(*store_, derived.kek);  // refuses when this handle's KEK is stale
        },
        [&] { keys_->set_kek(std::move(derived.kek)); });
  }

  std::int64_t rotate_data_key() override {
    std::int64_t key_id = 0;
    vault_write("rotate_data_key", 0, [&] {
      key_id = keys_->create_key(*store_, "data", now().time_since_epoch().count());
      keys_->load(*store_);  // in the transaction: its keys are this handle's KEK's
    });
    return key_id;
  }

  ReencryptProgress reencrypt(const std::function<void(const ReencryptProgress&)>& progress,
                              std::size_t batch) override {
    ReencryptProgress state;
    {
      std::lock_guard lock(mutex_);
      state.target_key_id = store_->newest_key_id("data");
      state.total = store_->count_versions_not_under(state.target_key_id);
    }
    if (progress) progress(state);
    batch = std::clamp<std::size_t>(batch, 1, 100000);
    // One transaction per batch, the lock released between batches so that
    // readers and writers of this process keep going; other processes are
    // never blocked longer than one batch. Batches walk the versions in key
    // order from where the last one stopped, so the whole pass reads each
    // version once (a rescan from the start made it quadratic).
    Bytes after_lookup;
    std::uint64_t after_version = 0;
    for (;;) {
      std::size_t moved = 0;
      bool finished = false;
      {
        std::lock_guard lock(mutex_);
        auto txn = store_->begin_write();
        const std::int64_t target = store_->newest_key_id("data");
        if (target != state.target_key_id) {
          throw ConflictError("a new data key was added while re-encrypting: run reencrypt again");
        }
        const SecretBytes& key = keys_->data_key(*store_, target);
        const auto records = store_->versions_after(after_lookup, after_version,
                                                    static_cast<std::int64_t>(batch));
        for (const auto& record : records) {
          after_lookup = record.lookup;
          after_version = record.version;
          if (record.key_id == target) continue;
          // Resealed with the standing it authenticates under: never promoted.
          const SecretBytes& old_key = keys_->data_key(*store_, record.key_id);
          Standing standing = Standing::kCurrent;
          auto plain = aead_decrypt(old_key, record.sealed,
                                    record_aad(record.lookup, record.version, record.key_id, standing));
          if (!plain) {
            standing = Standing::kSuperseded;
            plain = aead_decrypt(old_key, record.sealed,
                                 record_aad(record.lookup, record.version, record.key_id, standing));
          }
          if (!plain) {
            throw DecryptionFailedError(
                "decryption failed: a credential record was altered; run `credential_manager verify`");
          }
          StoredRecord resealed = record;
          resealed.key_id = target;
          resealed.sealed =
              aead_encrypt(key, plain->span(), record_aad(record.lookup, record.version, target, standing));
          store_->reseal_version(resealed);
          ++moved;
        }
        if (moved) store_->add_encryptions(target, static_cast<std::int64_t>(moved));
        finished = records.size() < batch;
        // Re-sealing changes neither the ledger nor the keys.
        if (finished) {
          const Bytes state = vault_state(*store_);
          append_write_event(system_actor(), {"reencrypt", "", "", "ok", "", "", ""}, state);
        }
        txn.commit();
      }
      state.done += static_cast<std::int64_t>(moved);
      state.total = std::max(state.total, state.done);
      if (moved && progress) progress(state);
      if (finished) break;
    }
    return state;
  }

  std::vector<KeyInfo> keys() override {
    const ReadLock lock = lock_for_read();
    auto txn = store_->begin_read();
    std::map<std::int64_t, std::int64_t> records;
    for (const auto& [key_id, count] : store_->versions_per_key()) records[key_id] = count;
    const std::int64_t newest = store_->newest_key_id("data");
    std::vector<KeyInfo> out;
    for (const auto& key : store_->load_keys()) {
      out.push_back({key.key_id, key.purpose, Timestamp(std::chrono::microseconds(key.created_at)),
                     key.encryptions, records[key.key_id], key.key_id == newest});
    }
    return out;
  }

  void backup(const std::filesystem::path& out, bool replace_any) override {
    std::lock_guard lock(mutex_);
    anchor_segments();
    store_->backup_to(out, replace_any);
    record_locked(system_actor(), {"backup", "", "", "ok", "", "", ""});
  }

  VerifyReport verify() override {
    const ReadLock lock = lock_for_read();
    anchor_segments();
    auto txn = store_->begin_read();
    VerifyReport report;
    std::set<Bytes> lookups;
    std::map<Bytes, std::string> names;               // lookup -> "'name' of 'owner'", for messages
    std::uint64_t current_version = 0;  // of the credential being walked
    Bytes after_lookup;
    std::uint64_t after_version = 0;
    constexpr std::int64_t kBatch = 2048;
    for (;;) {
      const auto records = store_->versions_after(after_lookup, after_version, kBatch);
      for (const auto& record : records) {
        after_lookup = record.lookup;
        after_version = record.version;
        ++report.versions;
        if (record.owner_tag.empty()) {
          report.problems.push_back(fmt::format("a stored version ({}) has no credential row", record.version));
          continue;
        }
        const bool first_version = lookups.insert(record.lookup).second;
        if (first_version) {
          ++report.credentials;
          current_version = store_->current_version(record.lookup).value_or(0);
        }
        try {
          const Credential c = open_record(record, record.version == current_version
                                                       ? Standing::kCurrent
                                                       : Standing::kSuperseded);
          if (record.version == current_version) names[record.lookup] = fmt::format("'{}' of '{}'", c.name, c.owner);
          if (first_version) {
            auto by_id = store_->lookup_by_id(id_tag(c.credential_id));
            if (!by_id || by_id->lookup != record.lookup) {
              report.problems.push_back(fmt::format("credential '{}' of '{}' is missing from the id index",
                                                    c.name, c.owner));
            }
          }
        } catch (const Error& e) {
          report.problems.push_back(fmt::format("version {} of a credential: {}", record.version, e.what()));
        }
      }
      if (static_cast<std::int64_t>(records.size()) < kBatch) break;
    }
    // What the credential rows say, for the ledger.
    const std::vector<StoredRecord> current_records = store_->all_current_records();
    for (const auto& record : current_records) {
      if (!lookups.count(record.lookup)) report.problems.push_back("a credential row has no current version");
    }
    for (const auto& [id, lookup] : store_->all_credential_ids()) {
      if (!lookups.count(lookup)) {
        report.problems.push_back("an id index entry points at no credential");
      } else if (!store_->current_record(lookup)) {
        report.problems.push_back("a credential's current version is missing");
      }
    }
    // The version ledger recomputed from the credential rows: a record put
    // back from an older copy authenticates, but is not the version listed.
    const LedgerComparison ledger = ledger_.compare(*store_, current_records);
    for (const auto& damage : ledger.damage) report.problems.push_back(damage);
    for (const auto& difference : ledger.differences) {
      const auto name = names.find(difference.lookup);
      const std::string which = name != names.end() ? "credential " + name->second : "a credential";
      if (!difference.listed) {
        report.problems.push_back(fmt::format(
            "{} is at version {}, but the version ledger does not list it (its rows were put back after "
            "a delete?)",
            which, *difference.stored));
      } else if (!difference.stored) {
        report.problems.push_back(fmt::format(
            "the version ledger lists a credential at version {} that has no current version in the vault",
            *difference.listed));
      } else {
        report.problems.push_back(fmt::format(
            "{} is at version {}, but the version ledger holds version {} (rows put back from an older "
            "copy of the vault, or the ledger was?)",
            which, *difference.stored, *difference.listed));
      }
    }
    const auto audit = verify_audit_chain(*store_, *keys_);
    report.audit = {audit.ok, audit.events, audit.first_bad_seq, audit.problem};
    return report;
  }

  ImportReport import_legacy(const std::filesystem::path& vault_enc, const SecretString& legacy_key,
                             bool dry_run, bool skip_invalid) override {
    // Read and decrypt everything first: a wrong key or a damaged file
    // imports nothing; records that do not read are invalid ones.
    std::vector<UnreadableRecord> unreadable;
    std::vector<LegacyCredential> legacy = read_legacy_vault(vault_enc, legacy_key, &unreadable);
    ImportReport report;
    report.dry_run = dry_run;
    // The import's audit event names its counts (never a name or a secret).
    std::string counts;
    const auto import_all = [&] {
      std::set<std::pair<std::string, std::string>> taken;  // names given in this run
      std::vector<LedgerChange> ledger_changes;
      // Every record that cannot be imported, "<legacy id>: <reason>": all of
      // them are reported, and then nothing is imported unless skip_invalid.
      std::string problems;
      for (const auto& record : unreadable) {
        ++report.invalid;
        problems += fmt::format("\n  {}: {}", record.credential_id, record.reason);
        report.credentials.push_back({record.credential_id, "", "", "invalid", "", record.reason});
      }
      for (auto& old : legacy) {
        ImportedCredential line{old.credential_id, old.user_id, old.name, "", "", ""};
        if (store_->lookup_by_id(id_tag(old.credential_id))) {
          line.status = "already_imported";
          ++report.skipped;
          report.credentials.push_back(std::move(line));
          continue;
        }
        Credential c;
        std::string name;
        try {
          // Names are kept as they were (the Python version's names were
          // not unique: a repeated one gets "-2", "-3", ...).
          validate_identifier(old.user_id, "user id");
          validate_identifier(old.name, "credential name");
          name = old.name;
          for (int n = 2; taken.count({old.user_id, name}) ||
                          store_->current_version(lookup_tag(old.user_id, name));
               ++n) {
            const std::string suffix = fmt::format("-{}", n);
            name = std::string(utf8_prefix(old.name, kMaxIdentifierLength - suffix.size())) +
                   suffix;
          }
          c.credential_id = old.credential_id;
          c.owner = old.user_id;
          c.name = name;
          c.db_type = old.db_type;
          c.host = old.host;
          c.port = old.port;
          c.database = old.database;
          c.username = old.username;
          c.password = std::move(old.password);
          c.description = old.description.value_or("");
          c.ssl_mode = old.ssl_mode.value_or("");
          c.connection_timeout = old.connection_timeout;
          c.created_at = old.created_at;
          c.updated_at = old.updated_at;
          c.version = 1;
          validate_fields(c, c.password);
        } catch (const InvalidArgumentError& e) {
          ++report.invalid;
          problems += fmt::format("\n  {}: {}", old.credential_id, e.what());
          line.status = "invalid";
          line.reason = e.what();
          report.credentials.push_back(std::move(line));
          continue;
        }
        // Without skip_invalid nothing will be written: only the others are looked for.
        if (report.invalid > 0 && !skip_invalid) continue;
        taken.insert({old.user_id, name});
        insert_new(c, {}, &ledger_changes);
        line.name = name;
        line.status = name == old.name ? "imported" : "renamed";
        ++report.imported;
        if (name != old.name) ++report.renamed;
        report.credentials.push_back(std::move(line));
      }
      counts = fmt::format("{} imported ({} renamed), {} already imported, {} invalid",
                           report.imported, report.renamed, report.skipped, report.invalid);
      if (report.invalid > 0 && !skip_invalid) {
        counts = fmt::format("none imported, {} invalid", report.invalid);
        throw InvalidArgumentError(
            fmt::format("legacy vault: {} of its {} credentials cannot be imported, so none was:{}",
                        report.invalid, legacy.size() + unreadable.size(), problems));
      }
      ledger_.set_all(*store_, ledger_changes);
      if (dry_run) throw DryRunDone{};
    };
    vault_write(dry_run ? "import_legacy_dry_run" : "import_legacy", legacy.size(), import_all, {},
                &counts);
    return report;
  }

 private:
  WriterFirstMutex mutex_;  // see ReadLock
  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<Keyring> keys_;
  VersionLedger ledger_;
  int history_depth_;
  std::filesystem::path segment_directory_;
  std::mutex segment_mutex_;  // guards segment_'s creation (readers share the handle on PostgreSQL)
  std::mutex anchor_mutex_;   // one anchor_now at a time
  std::unique_ptr<AuditSegment> segment_;  // created at the first read event
  static constexpr std::size_t kTagCacheSize = 4096;
  static constexpr std::size_t kLastUsedBatch = 65536;
  static constexpr auto kLastUsedEvery = std::chrono::minutes(1);
  // lookup -> time of the last read, not yet written (hash maps: at 65,536
  // entries a tree's 16 levels of cache misses cost a read ~1 µs), one per
  // sixteenth of the key range (see write_last_used).
  static constexpr std::size_t kLastUsedSlices = 16;
  // Keyed by the tag held inline: a key vector of its own cost an allocation
  // and a cache miss per read of a credential not yet pending (~0.5 µs a
  // get at 100,000).
  std::array<std::unordered_map<IndexTag, std::int64_t, TagPrefixHash>, kLastUsedSlices> last_used_;
  std::size_t last_used_count_ = 0;
  std::size_t last_used_next_slice_ = 0;  // the slice a round writes next
  bool last_used_round_ = false;          // a round of slices is under way
  std::chrono::steady_clock::time_point last_used_written_ = std::chrono::steady_clock::now();
  mutable std::mutex tag_cache_mutex_;
  // Owner tags, looked up by a view of the MAC input: no key string is made
  // for a hit.
  mutable std::unordered_map<std::string, IndexTag, ByteStringHash, std::equal_to<>> tag_cache_;  // index MAC input -> tag
  struct RecentTag {
    std::size_t size = 0;  // 0: empty (an input is never empty)
    std::array<std::uint8_t, kInline> input;
    IndexTag tag;
  };
  mutable std::array<RecentTag, 8> recent_lookup_tags_{};
  mutable std::size_t next_recent_tag_ = 0;

 public:
  // The event of a new vault: the first commitment to its state.
  // REQUIRES: inside the transaction that creates it.
  static void record_creation(RecordStore& store, const Keyring& keys) {
    append_write_event(store, keys, {}, system_actor(), {"create_vault", "", "", "ok", "", "", ""},
                       {});
  }

  // At open: the segments of processes that died are anchored.
  void anchor_dead_segments() {
    std::lock_guard lock(mutex_);
    anchor_segments(/*own=*/false);
  }
};

KeyDerivation read_derivation(RecordStore& store) {
  auto vault_id = store.get_meta("vault_id");
  auto salt = store.get_meta("argon2_salt");
  auto ops = store.get_meta("argon2_ops");
  auto mem = store.get_meta("argon2_mem");
  if (!vault_id || !salt || !ops || !mem) {
    throw DecryptionFailedError("the vault header is incomplete: restore the vault from a backup");
  }
  return {*vault_id, *salt,
          {static_cast<std::uint64_t>(from_bytes(*ops)), static_cast<std::size_t>(from_bytes(*mem))}};
}

// A new vault takes a generated key (44 characters) or a passphrase of at
// least this many characters: a short one is guessed offline by anyone who
// gets a copy of the vault, whatever Argon2 costs.
constexpr std::size_t kMinPassphraseCharacters = 12;

bool too_short_for_a_new_vault(const SecretString& material) {
  const std::string_view text = material.reveal();
  const auto characters =
      static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      }));
  return characters < kMinPassphraseCharacters;
}

[[noreturn]] void refuse_short_passphrase() {
  throw InvalidArgumentError(fmt::format(
      "the master key is too short to create a vault: a passphrase needs at least {} characters; "
      "nothing was created. Make a key with: credential_manager keygen",
      kMinPassphraseCharacters));
}

}  // namespace

std::unique_ptr<VaultImpl> open_vault(VaultOptions options) {
  SecretString material = normalize_master_key(options.master_key.reveal());
  if (material.empty()) {
    throw MissingKeyError(
        "no master key: set CREDENTIAL_MASTER_KEY (or CREDENTIAL_MASTER_KEY_FILE). Make one with: "
        "credential_manager keygen");
  }
  if (options.history_depth < 1 || options.history_depth > 1000) {
    throw InvalidArgumentError("history depth must be between 1 and 1000");
  }
  // A postgresql:// URL: the shared store; else the embedded one in the directory.
  // With a key too short for a new vault nothing is created: an existing
  // vault still opens with it (made before the rule, or by another build).
  const bool short_key = too_short_for_a_new_vault(material);
  std::unique_ptr<RecordStore> store;
  try {
    store =
        open_record_store(options.url, options.directory, options.create_if_missing && !short_key);
  } catch (const CredentialNotFoundError&) {
    if (options.create_if_missing && short_key) refuse_short_passphrase();
    throw;
  }
  if (!store->initialized()) {
    if (short_key) refuse_short_passphrase();
    // Created under the write lock so two processes creating the same vault
    // at once end with one header and one set of keys.
    auto txn = store->begin_write();
    if (!store->initialized()) {
      store->create_schema();
      const Bytes vault_id = random_bytes(kVaultIdSize);
      const Bytes salt = random_bytes(kArgon2SaltSize);
      const Argon2Params params = default_argon2_params();
      store->put_meta("vault_id", vault_id);
      store->put_meta("argon2_salt", salt);
      store->put_meta("argon2_ops", to_bytes(static_cast<std::int64_t>(params.ops_limit)));
      store->put_meta("argon2_mem", to_bytes(static_cast<std::int64_t>(params.mem_limit)));
      DerivedKek derived = derive_kek(material, {vault_id, salt, params});
      store->put_meta("key_check", derived.key_check);
      Keyring keys(vault_id, std::move(derived.kek));
      const std::int64_t created = now().time_since_epoch().count();
      keys.create_key(*store, "index", created);
      keys.create_key(*store, "audit", created);
      keys.create_key(*store, "data", created);
      keys.load(*store);
      VersionLedger(keys).build(*store, std::vector<StoredRecord>{});
      EmbeddedVault::record_creation(*store, keys);
      store->put_meta("format", to_bytes(kFormatVersion));
      txn.commit();
    }
  }
  // Development builds before format 1 recorded theirs (2 to 7) under
  // `format_version`: there is no upgrade from them, and nothing is written.
  if (const auto old = store->get_meta("format_version")) {
    throw DatabaseError(fmt::format(
        "this vault has format {}: it was written by a pre-release development build of "
        "credentials, "
        "and this build reads only format {} and has no upgrade from it. Nothing was changed. Open "
        "the vault with the build that wrote it and move the credentials to a new vault "
        "(`credential_manager show --reveal` each one with that build, then `credential_manager "
        "add` it with this one and another --vault-dir or --vault-url), or keep using that build",
        from_bytes(*old), kFormatVersion));
  }
  const auto format = store->get_meta("format");
  if (!format || from_bytes(*format) > kFormatVersion) {
    throw DatabaseError("this vault was written by a newer version of credentials: upgrade");
  }
  if (from_bytes(*format) != kFormatVersion) {
    throw DecryptionFailedError(
        fmt::format("the vault's header was altered: its format ({}) is none that was ever "
                    "written. Nothing was "
                    "changed; restore the vault from a backup",
                    from_bytes(*format)));
  }
  store->migrate_if_needed();
  // The key checked before anything is written. The header and the keys are
  // read in one snapshot: a master-key rotation commits its salt, key check
  // and re-wrapped keys together, and the opener sees all or none of them.
  std::unique_ptr<Keyring> keys;
  {
    auto txn = store->begin_read();
    const KeyDerivation derivation = read_derivation(*store);
    DerivedKek derived = derive_kek(material, derivation);
    const auto key_check = store->get_meta("key_check");
    const bool check_matches = key_check && *key_check == derived.key_check;
    keys = std::make_unique<Keyring>(derivation.vault_id, std::move(derived.kek));
    try {
      keys->load(*store);
    } catch (const DecryptionFailedError&) {
      // A matching key check proves the key right: the vault is what is wrong.
      if (check_matches)
        throw_vault_altered("its keys do not unwrap under it (key table or vault id changed)");
      throw;
    }
    if (!key_check) throw_vault_altered("its key check is missing");
    if (!check_matches) throw_vault_altered("its key check was changed");
  }
  std::filesystem::path segment_directory;
  if (!store->directory().empty()) segment_directory = store->directory() / "segments";
  auto vault = std::make_unique<EmbeddedVault>(std::move(store), std::move(keys),
                                               options.history_depth, std::move(segment_directory));
  vault->anchor_dead_segments();
  return vault;
}

}  // namespace credentials::internal
