// SqliteStore: the embedded record store, one SQLite database in the vault
// directory (docs/FORMAT.md). It sees only opaque bytes: blind-index tags,
// sealed records, wrapped keys, sealed audit events; never plaintext.
//
// Not thread-safe: the vault serialises calls with its own mutex. Safe across
// processes: writes run in BEGIN IMMEDIATE transactions (one writer at a
// time, readers never blocked, WAL mode), waiting up to the busy timeout.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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

struct StoredRecord {
  Bytes lookup;
  Bytes owner_tag;
  std::uint64_t version = 0;
  std::int64_t key_id = 0;
  Bytes sealed;
  std::int64_t last_used = 0;  // current records only: last read, unix microseconds
};

struct AuditRow {
  std::int64_t seq = 0;
  Bytes owner_tag;
  Bytes sealed;
  Bytes mac;
};

class SqliteStore {
 public:
  static constexpr const char* kFileName = "vault.db";

  // Opens the store in `directory`, creating the directory (0700) and the
  // database file (0600) when `create` is true. Returns nullptr when there is
  // no vault there and `create` is false. Throws DatabaseError.
  static std::unique_ptr<SqliteStore> open(const std::filesystem::path& directory, bool create);
  ~SqliteStore();
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // A transaction; rolled back on destruction unless committed.
  class Transaction {
   public:
    explicit Transaction(SqliteStore& store) : store_(&store) {}
    Transaction(Transaction&& other) noexcept : store_(std::exchange(other.store_, nullptr)) {}
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    void commit();

   private:
    SqliteStore* store_;
  };
  // `durable`: fsync at commit (synchronous=FULL). Non-durable commits
  // (synchronous=NORMAL in WAL mode) survive a crash of the process but not
  // a power failure; used only for audit events of reads.
  [[nodiscard]] Transaction begin_write(bool durable = true);
  [[nodiscard]] Transaction begin_read();

  [[nodiscard]] bool initialized();
  void create_schema();

  [[nodiscard]] std::optional<Bytes> get_meta(std::string_view key);
  void put_meta(std::string_view key, ByteView value);

  [[nodiscard]] std::vector<StoredKey> load_keys();
  void insert_key(const StoredKey& key);
  void update_wrapped_key(std::int64_t key_id, ByteView wrapped);
  void add_encryptions(std::int64_t key_id, std::int64_t count);

  [[nodiscard]] std::optional<StoredRecord> current_record(ByteView lookup);
  [[nodiscard]] std::optional<std::uint64_t> current_version(ByteView lookup);
  [[nodiscard]] std::optional<Bytes> lookup_by_id(ByteView id_tag);
  [[nodiscard]] std::vector<StoredRecord> current_records_of_owner(ByteView owner_tag);
  [[nodiscard]] std::vector<StoredRecord> all_current_records();
  void insert_credential(ByteView id_tag, const StoredRecord& first);
  // Another id that resolves to the same credential (a legacy id on import).
  void insert_credential_id(ByteView id_tag, ByteView lookup);
  // Adds a version, makes it current and keeps only the newest `keep`.
  void add_version(const StoredRecord& record, int keep);
  void delete_credential(ByteView lookup);
  [[nodiscard]] std::int64_t credential_count();
  [[nodiscard]] std::int64_t version_count();
  [[nodiscard]] std::int64_t newest_key_id(std::string_view purpose);
  [[nodiscard]] std::int64_t key_encryptions(std::int64_t key_id);
  // Stored versions per data key id.
  [[nodiscard]] std::vector<std::pair<std::int64_t, std::int64_t>> versions_per_key();
  [[nodiscard]] std::vector<StoredRecord> versions_of(ByteView lookup);
  [[nodiscard]] std::optional<StoredRecord> version_of(ByteView lookup, std::uint64_t version);
  // Versions in (lookup, version) order after the given position, at most `limit`.
  [[nodiscard]] std::vector<StoredRecord> versions_after(ByteView lookup, std::uint64_t version,
                                                         std::int64_t limit);
  [[nodiscard]] std::int64_t count_versions_not_under(std::int64_t key_id);
  [[nodiscard]] std::vector<StoredRecord> versions_not_under(std::int64_t key_id, std::int64_t limit);
  void reseal_version(const StoredRecord& record);
  // (id_tag, lookup) of every credential id.
  [[nodiscard]] std::vector<std::pair<Bytes, Bytes>> all_credential_ids();
  // When the credential was last read (unix microseconds; 0 = never).
  void touch_last_used(ByteView lookup, std::int64_t micros);
  [[nodiscard]] std::int64_t last_used(ByteView lookup);
  // A consistent snapshot of the whole database into `file` (SQLite backup API).
  void backup_to(const std::filesystem::path& file);

  [[nodiscard]] std::optional<AuditRow> last_audit_row();
  void insert_audit_row(const AuditRow& row);
  // Rows with seq > after, ascending, at most `limit`.
  [[nodiscard]] std::vector<AuditRow> audit_rows(std::int64_t after, std::int64_t limit);

  [[nodiscard]] const std::filesystem::path& directory() const { return directory_; }
  [[nodiscard]] sqlite3* handle() { return db_; }

  class Statement;  // defined in the .cc

 private:
  SqliteStore(std::filesystem::path directory, sqlite3* db);
  Statement& prepare(const char* sql);
  void exec(const char* sql);
  void set_durable(bool durable);

  std::filesystem::path directory_;
  sqlite3* db_;
  std::unordered_map<const char*, std::unique_ptr<Statement>> statements_;
  bool durable_ = true;
};

}  // namespace credentials::internal
