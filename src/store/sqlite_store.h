// SqliteStore: the embedded record store, one SQLite database in the vault
// directory (docs/FORMAT.md). WAL mode: many readers, one writer at a time
// across processes (BEGIN IMMEDIATE, waiting up to the busy timeout).
#pragma once

#include <memory>
#include <optional>
#include <unordered_map>

#include <sqlite3.h>

#include "store/record_store.h"

namespace credentials::internal {

class SqliteStore final : public RecordStore {
 public:
  static constexpr const char* kFileName = "vault.db";

  // Opens the store in `directory`, creating the directory (0700) and the
  // database file (0600) when `create` is true. Returns nullptr when there is
  // no vault there (no file, or an empty one) and `create` is false. A file
  // that is not a vault is refused whatever `create`, before anything is
  // written to it: InvalidArgumentError for another program's database or a
  // symbolic link, DecryptionFailedError for a vault whose header is gone or
  // a file SQLite cannot read as a database. Throws DatabaseError
  // (InvalidArgumentError too, before anything is created, when the directory
  // is or goes through a symbolic link: refuse_symbolic_links).
  static std::unique_ptr<SqliteStore> open(const std::filesystem::path& directory, bool create);

  // Throws InvalidArgumentError, naming the real path, when `directory` is a
  // symbolic link or a path through one: SQLite opens the vault by its real
  // path only (SQLITE_OPEN_NOFOLLOW), so that no link can redirect it.
  static void refuse_symbolic_links(const std::filesystem::path& directory);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // What an SQLite file holds: nothing (0 bytes, or no table), a vault
  // (initialized), a vault's tables without its header, or other tables.
  enum class Contents { kEmpty, kVault, kAlteredVault, kForeign };
  [[nodiscard]] Contents contents();
  [[nodiscard]] virtual bool initialized() override;
  virtual void create_schema() override;

  [[nodiscard]] virtual std::optional<Bytes> get_meta(std::string_view key) override;
  virtual void put_meta(std::string_view key, ByteView value) override;
  void delete_meta(std::string_view key) override;
  [[nodiscard]] virtual std::vector<std::pair<std::string, Bytes>> all_meta() override;

  [[nodiscard]] virtual std::vector<StoredKey> load_keys() override;
  virtual void insert_key(const StoredKey& key) override;
  virtual void update_wrapped_key(std::int64_t key_id, ByteView wrapped) override;
  virtual void add_encryptions(std::int64_t key_id, std::int64_t count) override;

  [[nodiscard]] virtual std::optional<StoredRecord> current_record(ByteView lookup) override;
  [[nodiscard]] std::optional<StoredRecord> current_record(ByteView lookup,
                                                           const std::array<std::int64_t, 3>& ledger_path,
                                                           std::vector<LedgerNode>& path_nodes) override;
  [[nodiscard]] virtual std::optional<std::uint64_t> current_version(ByteView lookup) override;
  [[nodiscard]] virtual std::optional<CredentialKey> lookup_by_id(ByteView id_tag) override;
  [[nodiscard]] virtual std::vector<StoredRecord> current_records_of_owner(
      ByteView owner_tag) override;
  [[nodiscard]] virtual std::vector<StoredRecord> all_current_records() override;
  virtual void insert_credential(ByteView id_tag, const StoredRecord& first) override;
  virtual void insert_credential_id(ByteView id_tag, ByteView lookup) override;
  virtual void add_version(const StoredRecord& record, int keep) override;
  virtual void delete_credential(ByteView lookup) override;
  [[nodiscard]] virtual std::int64_t credential_count() override;
  [[nodiscard]] virtual std::int64_t version_count() override;
  [[nodiscard]] virtual std::int64_t newest_key_id(std::string_view purpose) override;
  [[nodiscard]] virtual std::int64_t key_encryptions(std::int64_t key_id) override;
  [[nodiscard]] virtual std::vector<std::pair<std::int64_t, std::int64_t>> versions_per_key()
      override;
  [[nodiscard]] virtual std::vector<StoredRecord> versions_of(ByteView lookup) override;
  [[nodiscard]] virtual std::optional<StoredRecord> version_of(ByteView lookup,
                                                               std::uint64_t version) override;
  [[nodiscard]] virtual std::vector<StoredRecord> versions_after(ByteView lookup,
                                                                 std::uint64_t version,
                                                                 std::int64_t limit) override;
  [[nodiscard]] virtual std::int64_t count_versions_not_under(std::int64_t key_id) override;
  [[nodiscard]] virtual std::vector<StoredRecord> versions_not_under(std::int64_t key_id,
                                                                     std::int64_t limit) override;
  virtual void reseal_version(const StoredRecord& record) override;
  [[nodiscard]] virtual std::vector<std::pair<Bytes, Bytes>> all_credential_ids() override;
  virtual void touch_last_used(ByteView lookup, std::int64_t micros) override;
  [[nodiscard]] virtual std::int64_t last_used(ByteView lookup) override;
  void backup_to(const std::filesystem::path& file, bool replace_any) override;
  // For backup_to (of either store): throws AlreadyExistsError when `file`
  // exists and is not a backup of the vault `vault_id` (another file, a
  // link, a directory, a backup of another vault).
  static void check_backup_target(const std::filesystem::path& file, ByteView vault_id);
  // Replaces what the vault file in `directory` holds with the database
  // `source` (a checked backup), in one transaction under the vault's write
  // lock: processes that have the vault open wait for it, then see the new
  // contents. False, with nothing written, when the vault file is not a
  // database SQLite can read (damaged): nobody can be using it.
  static bool replace_contents(const std::filesystem::path& directory,
                               const std::filesystem::path& source);
  // A new empty file (0600) beside `file`, named after it, for a backup
  // to be written to and renamed over `file`.
  static std::filesystem::path create_partial_file(const std::filesystem::path& file);
  void compact_log() override;
  [[nodiscard]] bool begin_large_write(std::size_t records) override;
  void end_large_write() noexcept override;
  [[nodiscard]] std::optional<ChangeStamp> change_stamp() override;
  [[nodiscard]] std::optional<std::uint64_t> data_version() override;
  [[nodiscard]] bool in_transaction() override;

  [[nodiscard]] std::vector<LedgerNode> ledger_nodes(const std::vector<std::int64_t>& node_ids) override;
  [[nodiscard]] std::vector<LedgerNode> all_ledger_nodes() override;
  void put_ledger_node(std::int64_t node_id, ByteView body) override;

  [[nodiscard]] virtual std::optional<AuditRow> last_audit_row() override;
  virtual void insert_audit_row(const AuditRow& row) override;
  [[nodiscard]] virtual std::vector<AuditRow> audit_rows(std::int64_t after,
                                                         std::int64_t limit) override;
  void insert_segment_chunk(const SegmentChunk& chunk) override;
  void append_segment_chunk(const SegmentChunk& chunk) override;
  [[nodiscard]] std::vector<SegmentChunk> segment_chunks(ByteView after_segment,
                                                         std::int64_t after_first_index,
                                                         std::int64_t limit) override;
  [[nodiscard]] std::optional<SegmentChunk> last_segment_chunk(ByteView segment_id) override;

  [[nodiscard]] const std::filesystem::path& directory() const override { return directory_; }

  class Statement;  // defined in the .cc

 protected:
  void start_write(bool durable) override;
  void start_read() override;
  void commit_transaction() override;
  void rollback_transaction() noexcept override;

 private:
  SqliteStore(std::filesystem::path directory, sqlite3* db);
  Statement& prepare(const char* sql);
  void run_prepared(const char* sql);
  void exec(const char* sql);
  void set_durable(bool durable);

  std::filesystem::path directory_;
  sqlite3* db_;
  // cache_size before begin_large_write raised it; none outside a large write.
  std::optional<std::int64_t> saved_cache_size_;
  std::unordered_map<const char*, std::unique_ptr<Statement>> statements_;
  bool durable_ = true;
  // The vault this connection opened (empty for one it creates): a write
  // transaction checks that the file still holds it (see start_write).
  Bytes vault_id_;
};

}  // namespace credentials::internal
