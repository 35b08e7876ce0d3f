// RecordStore: where the vault keeps its bytes (DESIGN.md, Storage). An
// implementation sees only opaque bytes: blind-index tags, sealed records,
// wrapped keys, sealed audit events; never plaintext. SqliteStore is the
// embedded default; a shared store on PostgreSQL implements the same calls.
//
// Not thread-safe unless thread_safe() says so (PostgresStore, with its
// connection pool): the vault serialises calls to a store that is not with
// its own mutex. Every implementation must be safe across processes: a write transaction
// excludes other writers (check-and-set happens inside it), and a read sees
// the latest committed state.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/primitives.h"

namespace credentials::internal {

struct StoredKey {
  std::int64_t key_id = 0;
  std::string purpose;  // "data", "index", "audit"
  Bytes wrapped;
  std::int64_t created_at = 0;  // unix microseconds
  std::int64_t encryptions = 0;
};

// Where the id index points: a credential's lookup tag and its owner's tag
// (empty when the index entry points at no credential row).
struct CredentialKey {
  Bytes lookup;
  Bytes owner_tag;
};

struct StoredRecord {
  Bytes lookup;
  Bytes owner_tag;
  std::uint64_t version = 0;
  std::int64_t key_id = 0;
  Bytes sealed;
  std::int64_t last_used = 0;  // current records only: last read, unix microseconds
};

// A node of the version ledger (src/vault/version_ledger.h): opaque bytes by
// node id, authenticated by the vault.
struct LedgerNode {
  std::int64_t node_id = 0;
  Bytes body;
};

// A row of the audit chain: one event (docs/FORMAT.md, "Audit").
struct AuditRow {
  std::int64_t seq = 0;
  Bytes owner_tag;
  Bytes sealed;
  Bytes mac;
};

// A chunk of an audit segment (src/audit/audit_segment.h): its entries
// first_index .. first_index + count - 1, framed as the segment frames them.
struct SegmentChunk {
  Bytes segment_id;
  std::int64_t first_index = 0;
  std::int64_t count = 0;
  Bytes entries;
};

class RecordStore;

// See RecordStore::begin_large_write.
class LargeWrite {
 public:
  LargeWrite(RecordStore& store, std::size_t records);
  ~LargeWrite();
  LargeWrite(const LargeWrite&) = delete;
  LargeWrite& operator=(const LargeWrite&) = delete;

 private:
  RecordStore& store_;
  bool raised_;
};

// See RecordStore::change_stamp.
using ChangeStamp = std::array<std::uint64_t, 2>;

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // A transaction; rolled back on destruction unless committed.
  class Transaction {
   public:
    explicit Transaction(RecordStore& store) : store_(&store) {}
    Transaction(Transaction&& other) noexcept : store_(std::exchange(other.store_, nullptr)) {}
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction() {
      if (store_) store_->rollback_transaction();
    }
    // A commit that throws leaves the transaction to the destructor's
    // rollback: never open on the connection after this returns or throws.
    void commit() {
      store_->commit_transaction();
      store_ = nullptr;
    }

   private:
    RecordStore* store_;
  };
  // `durable`: flushed to stable storage at commit. Non-durable commits
  // survive a crash of the process but not a power failure; used only for
  // audit events of reads.
  [[nodiscard]] Transaction begin_write(bool durable = true) {
    start_write(durable);
    return Transaction(*this);
  }
  [[nodiscard]] Transaction begin_read() {
    start_read();
    return Transaction(*this);
  }

  [[nodiscard]] virtual bool initialized() = 0;
  virtual void create_schema() = 0;
  // Applies the store's own schema migrations (PostgreSQL's) to a vault
  // whose format the vault layer has found it reads, so that one of another
  // format is refused unchanged; throws DatabaseError for a newer schema.
  virtual void migrate_if_needed() {}

  [[nodiscard]] virtual std::optional<Bytes> get_meta(std::string_view key) = 0;
  virtual void put_meta(std::string_view key, ByteView value) = 0;
  virtual void delete_meta(std::string_view key) = 0;
  // Every meta row, by key (a verbatim copy of a vault: migrate, backup).
  [[nodiscard]] virtual std::vector<std::pair<std::string, Bytes>> all_meta() = 0;

  [[nodiscard]] virtual std::vector<StoredKey> load_keys() = 0;
  virtual void insert_key(const StoredKey& key) = 0;
  virtual void update_wrapped_key(std::int64_t key_id, ByteView wrapped) = 0;
  virtual void add_encryptions(std::int64_t key_id, std::int64_t count) = 0;

  [[nodiscard]] virtual std::optional<StoredRecord> current_record(ByteView lookup) = 0;
  // The current record and the version ledger's nodes `ledger_path` (the
  // path to its leaf, appended to `path_nodes`) in one statement: one
  // snapshot, and on the embedded store one lock instead of two (the read
  // lock's fcntl calls cost more than the lookups).
  [[nodiscard]] virtual std::optional<StoredRecord> current_record(ByteView lookup,
                                                                   const std::array<std::int64_t, 3>& ledger_path,
                                                                   std::vector<LedgerNode>& path_nodes) = 0;
  [[nodiscard]] virtual std::optional<std::uint64_t> current_version(ByteView lookup) = 0;
  [[nodiscard]] virtual std::optional<CredentialKey> lookup_by_id(ByteView id_tag) = 0;
  [[nodiscard]] virtual std::vector<StoredRecord> current_records_of_owner(ByteView owner_tag) = 0;
  [[nodiscard]] virtual std::vector<StoredRecord> all_current_records() = 0;
  virtual void insert_credential(ByteView id_tag, const StoredRecord& first) = 0;
  // Another id that resolves to the same credential (a legacy id on import).
  virtual void insert_credential_id(ByteView id_tag, ByteView lookup) = 0;
  // Adds a version, makes it current and keeps only the newest `keep`.
  virtual void add_version(const StoredRecord& record, int keep) = 0;
  virtual void delete_credential(ByteView lookup) = 0;
  [[nodiscard]] virtual std::int64_t credential_count() = 0;
  [[nodiscard]] virtual std::int64_t version_count() = 0;
  [[nodiscard]] virtual std::int64_t newest_key_id(std::string_view purpose) = 0;
  [[nodiscard]] virtual std::int64_t key_encryptions(std::int64_t key_id) = 0;
  // Stored versions per data key id.
  [[nodiscard]] virtual std::vector<std::pair<std::int64_t, std::int64_t>> versions_per_key() = 0;
  [[nodiscard]] virtual std::vector<StoredRecord> versions_of(ByteView lookup) = 0;
  [[nodiscard]] virtual std::optional<StoredRecord> version_of(ByteView lookup,
                                                               std::uint64_t version) = 0;
  // Versions in (lookup, version) order after the given position, at most `limit`.
  [[nodiscard]] virtual std::vector<StoredRecord> versions_after(ByteView lookup,
                                                                 std::uint64_t version,
                                                                 std::int64_t limit) = 0;
  [[nodiscard]] virtual std::int64_t count_versions_not_under(std::int64_t key_id) = 0;
  [[nodiscard]] virtual std::vector<StoredRecord> versions_not_under(std::int64_t key_id,
                                                                     std::int64_t limit) = 0;
  virtual void reseal_version(const StoredRecord& record) = 0;
  // (id_tag, lookup) of every credential id.
  [[nodiscard]] virtual std::vector<std::pair<Bytes, Bytes>> all_credential_ids() = 0;
  // When the credential was last read (unix microseconds; 0 = never).
  virtual void touch_last_used(ByteView lookup, std::int64_t micros) = 0;
  [[nodiscard]] virtual std::int64_t last_used(ByteView lookup) = 0;
  // A consistent snapshot of the whole database into `file` (SQLite backup
  // API), written beside it and renamed into place. An existing `file` is
  // replaced only when it is a backup of this vault, or when `replace_any`:
  // else AlreadyExistsError, and nothing is written.
  virtual void backup_to(const std::filesystem::path& file, bool replace_any) = 0;
  // After a delete: moves the log into the database and empties it, so the
  // deleted rows' old page images leave the files (secure_delete overwrites
  // them in the database itself). Best effort; stores without a log of their
  // own do nothing.
  virtual void compact_log() {}
  // One transaction is about to write about `records` new credentials (an
  // import, a large batch): the store may keep that many pages in memory
  // until it commits instead of spilling them to its log and reading them
  // back. end_large_write returns to the usual bound. See LargeWrite (an
  // inner one while a large write is on changes nothing).
  // Returns true when it changed the bound, and only then must
  // end_large_write be called.
  [[nodiscard]] virtual bool begin_large_write(std::size_t /*records*/) { return false; }
  virtual void end_large_write() noexcept {}

  // The version ledger. `ledger_nodes` reads the nodes with these ids in one
  // statement, so from one snapshot even outside a transaction (a node that
  // is not stored is left out).
  [[nodiscard]] virtual std::vector<LedgerNode> ledger_nodes(const std::vector<std::int64_t>& node_ids) = 0;
  [[nodiscard]] virtual std::vector<LedgerNode> all_ledger_nodes() = 0;
  virtual void put_ledger_node(std::int64_t node_id, ByteView body) = 0;

  [[nodiscard]] virtual std::optional<AuditRow> last_audit_row() = 0;
  virtual void insert_audit_row(const AuditRow& row) = 0;
  // Rows with seq > after, ascending, at most `limit`.
  [[nodiscard]] virtual std::vector<AuditRow> audit_rows(std::int64_t after,
                                                         std::int64_t limit) = 0;

  // Audit segments. REQUIRES: a write transaction.
  virtual void insert_segment_chunk(const SegmentChunk& chunk) = 0;
  // One chunk committed on its own, outside any transaction of this thread
  // and without the vault's write lock: durable against a crash of this
  // process, not necessarily against the server's (PostgreSQL; the
  // embedded store's segments wait in files, see audit_segment.h).
  virtual void append_segment_chunk(const SegmentChunk& chunk) = 0;
  // Chunks after (segment, first index) in that order, at most `limit`.
  [[nodiscard]] virtual std::vector<SegmentChunk> segment_chunks(ByteView after_segment,
                                                                 std::int64_t after_first_index,
                                                                 std::int64_t limit) = 0;
  [[nodiscard]] virtual std::optional<SegmentChunk> last_segment_chunk(ByteView segment_id) = 0;

  [[nodiscard]] virtual const std::filesystem::path& directory() const = 0;

  // A stamp that stays the same as long as nothing was written to the
  // store, by this connection or any other; nullopt when the store cannot
  // tell cheaply. Lets a caller keep what it checked (the skills runner, a
  // credential's current version) until something changes.
  [[nodiscard]] virtual std::optional<ChangeStamp> change_stamp() { return std::nullopt; }
  // The first half of the stamp alone: it moves only when another
  // connection commits. nullopt when the store cannot tell.
  [[nodiscard]] virtual std::optional<std::uint64_t> data_version() { return std::nullopt; }
  // True inside a transaction begun on this connection (embedded store only;
  // stores with a transaction per thread answer false).
  [[nodiscard]] virtual bool in_transaction() { return false; }

  // True when several threads may call this store at once, each with its
  // own transactions (a transaction belongs to the thread that began it).
  // SqliteStore is not: one connection.
  [[nodiscard]] virtual bool thread_safe() const { return false; }

 protected:
  virtual void start_write(bool durable) = 0;
  virtual void start_read() = 0;
  virtual void commit_transaction() = 0;
  virtual void rollback_transaction() noexcept = 0;
};

inline LargeWrite::LargeWrite(RecordStore& store, std::size_t records)
    : store_(store), raised_(store.begin_large_write(records)) {}
inline LargeWrite::~LargeWrite() {
  if (raised_) store_.end_large_write();
}

}  // namespace credentials::internal
