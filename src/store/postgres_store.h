// PostgresStore: the shared record store, for several application hosts that
// use one vault (DESIGN.md, Storage; docs/POSTGRES.md). The same tables and
// the same semantics as SqliteStore, in a dedicated PostgreSQL schema
// (default `credential_vault`), bytea columns: the server sees only
// ciphertext, blind indexes and wrapped keys.
//
// Transactions: a write takes pg_advisory_xact_lock(<vault lock id>) first,
// so writers of one vault are serialised exactly as SQLite's BEGIN IMMEDIATE
// does (check-and-set and the audit chain's read-last-then-append rely on
// it), then reads at READ COMMITTED: every statement after the lock sees
// every earlier writer's commit. A read is REPEATABLE READ READ ONLY (one
// snapshot). Statements outside a transaction are autocommit.
//
// Connection: one libpq connection, made from the vault URL with
// PQconninfoParse + PQconnectdbParams. After a server restart the connection
// is reset once at the start of the next transaction (or autocommit read);
// a failure inside a transaction is a DatabaseError and nothing of it is
// committed. The URL may hold a password: it is never logged, and error
// messages are scrubbed of it.
//
// Not thread-safe (RecordStore): the vault serialises calls. Not fork-safe:
// a child process opens its own store.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/record_store.h"

struct pg_conn;
struct pg_result;

namespace credentials::internal {

// True when `url` names a PostgreSQL vault (postgresql:// or postgres://).
[[nodiscard]] bool is_postgres_url(std::string_view url);

class PostgresStore final : public RecordStore {
 public:
  static constexpr const char* kDefaultSchema = "credential_vault";
  // The newest schema version this build writes (table schema_version).
  static constexpr int kSchemaVersion = 2;

  // Connects to the vault at `url` (postgresql://user:password@host:port/db
  // ?schema=name&sslmode=...; any libpq URL parameter). Applies pending
  // forward migrations to an existing vault schema. Returns nullptr when the
  // schema holds no vault and `create` is false. Throws DatabaseError (never
  // naming the password), InvalidArgumentError for a malformed URL or schema.
  static std::unique_ptr<PostgresStore> open(std::string_view url, bool create);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // Where the vault is, without the password: "host:port/database schema s".
  [[nodiscard]] const std::string& description() const { return description_; }
  [[nodiscard]] const std::string& schema() const { return schema_; }

  [[nodiscard]] bool initialized() override;
  // Creates the schema and applies every migration. REQUIRES: inside a write
  // transaction (migrations then commit with it).
  void create_schema() override;

  [[nodiscard]] std::optional<Bytes> get_meta(std::string_view key) override;
  void put_meta(std::string_view key, ByteView value) override;
  void delete_meta(std::string_view key) override;
  [[nodiscard]] std::vector<std::pair<std::string, Bytes>> all_meta() override;

  [[nodiscard]] std::vector<StoredKey> load_keys() override;
  void insert_key(const StoredKey& key) override;
  void update_wrapped_key(std::int64_t key_id, ByteView wrapped) override;
  void add_encryptions(std::int64_t key_id, std::int64_t count) override;

  [[nodiscard]] std::optional<StoredRecord> current_record(ByteView lookup) override;
  [[nodiscard]] std::optional<StoredRecord> current_record(ByteView lookup,
                                                           const std::array<std::int64_t, 3>& ledger_path,
                                                           std::vector<LedgerNode>& path_nodes) override;
  [[nodiscard]] std::optional<std::uint64_t> current_version(ByteView lookup) override;
  [[nodiscard]] std::optional<Bytes> lookup_by_id(ByteView id_tag) override;
  [[nodiscard]] std::vector<StoredRecord> current_records_of_owner(ByteView owner_tag) override;
  [[nodiscard]] std::vector<StoredRecord> all_current_records() override;
  void insert_credential(ByteView id_tag, const StoredRecord& first) override;
  void insert_credential_id(ByteView id_tag, ByteView lookup) override;
  void add_version(const StoredRecord& record, int keep) override;
  void delete_credential(ByteView lookup) override;
  [[nodiscard]] std::int64_t credential_count() override;
  [[nodiscard]] std::int64_t version_count() override;
  [[nodiscard]] std::int64_t newest_key_id(std::string_view purpose) override;
  [[nodiscard]] std::int64_t key_encryptions(std::int64_t key_id) override;
  [[nodiscard]] std::vector<std::pair<std::int64_t, std::int64_t>> versions_per_key() override;
  [[nodiscard]] std::vector<StoredRecord> versions_of(ByteView lookup) override;
  [[nodiscard]] std::optional<StoredRecord> version_of(ByteView lookup,
                                                       std::uint64_t version) override;
  [[nodiscard]] std::vector<StoredRecord> versions_after(ByteView lookup, std::uint64_t version,
                                                         std::int64_t limit) override;
  [[nodiscard]] std::int64_t count_versions_not_under(std::int64_t key_id) override;
  [[nodiscard]] std::vector<StoredRecord> versions_not_under(std::int64_t key_id,
                                                             std::int64_t limit) override;
  void reseal_version(const StoredRecord& record) override;
  [[nodiscard]] std::vector<std::pair<Bytes, Bytes>> all_credential_ids() override;
  void touch_last_used(ByteView lookup, std::int64_t micros) override;
  [[nodiscard]] std::int64_t last_used(ByteView lookup) override;
  // Writes a snapshot of the vault as an embedded-vault SQLite file (the
  // format SqliteStore::backup_to writes), so `restore` of it gives an
  // embedded vault. One REPEATABLE READ snapshot; the file appears
  // atomically, 0600.
  void backup_to(const std::filesystem::path& file) override;

  [[nodiscard]] std::vector<LedgerNode> ledger_nodes(const std::vector<std::int64_t>& node_ids) override;
  [[nodiscard]] std::vector<LedgerNode> all_ledger_nodes() override;
  void put_ledger_node(std::int64_t node_id, ByteView body) override;
  [[nodiscard]] std::int64_t ledger_node_count() override;

  [[nodiscard]] std::optional<AuditRow> last_audit_row() override;
  void insert_audit_row(const AuditRow& row) override;
  [[nodiscard]] std::vector<AuditRow> audit_rows(std::int64_t after, std::int64_t limit) override;

  // A PostgreSQL vault has no directory: the empty path.
  [[nodiscard]] const std::filesystem::path& directory() const override { return directory_; }

  class Result;  // defined in the .cc
  struct Param;  // defined in the .cc

 protected:
  void start_write(bool durable) override;
  void start_read() override;
  void commit_transaction() override;
  void rollback_transaction() noexcept override;

 private:
  struct ConnectParams;
  PostgresStore(std::unique_ptr<ConnectParams> params, std::string schema);
  void connect();
  void ensure_connected();
  // Runs a statement (SQL with `{s}` for the quoted schema name) with
  // binary parameters and binary results. Throws DatabaseError.
  Result run(const char* sql, std::initializer_list<Param> params);
  // Runs SQL text without parameters (DDL, BEGIN, ...).
  void exec(const std::string& sql);
  [[noreturn]] void fail(std::string_view what, pg_result* result);
  [[nodiscard]] std::string scrub(std::string message) const;
  [[nodiscard]] int stored_schema_version();
  void migrate_if_needed();
  void begin(const char* sql);

  std::unique_ptr<ConnectParams> params_;
  std::string schema_;
  std::string quoted_schema_;
  std::string description_;
  std::int64_t lock_id_ = 0;
  pg_conn* conn_ = nullptr;
  bool in_transaction_ = false;
  // Prepared statement name by SQL template; cleared on reconnect.
  std::unordered_map<const char*, std::string> prepared_;
  std::filesystem::path directory_;
};

}  // namespace credentials::internal
