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
// Connections: a pool of libpq connections, made from the vault URL with
// PQconninfoParse + PQconnectdbParams: the first at open, the others only
// when more threads than are connected use the store at once, up to
// `pool_size=N` of the URL (1..64, default 4). A transaction (begin_write,
// begin_read) holds one connection, bound to the calling thread, until it
// commits or rolls back: every call that thread makes meanwhile runs in that
// transaction. A call outside a transaction holds a connection for that one
// statement. When every connection is in use, callers wait for one. The
// write transactions of one store take turns in the process before they
// wait for the advisory lock (one connection waits on the server). Each
// connection has its own prepared statements, and after a server restart
// each is reset once at the start of its next transaction (or autocommit
// read); a failure inside a transaction is a DatabaseError and nothing of it
// is committed. The URL may hold a password: it is never logged, and no
// message depends on it (libpq's text does not hold it; nothing is masked).
//
// Thread-safe, unlike RecordStore in general (thread_safe() is true): any
// number of threads may call one PostgresStore at once; a thread may have
// one transaction open at a time (a second is refused with a DatabaseError),
// and must commit or roll it back itself.
// Not fork-safe: a child process opens its own store.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/record_store.h"

struct pg_conn;
struct pg_result;

namespace credentials::internal {

// True when `url` names a PostgreSQL vault (postgresql:// or postgres://).
[[nodiscard]] bool is_postgres_url(std::string_view url);

class PostgresStore final : public RecordStore {
 public:
  static constexpr const char* kDefaultSchema = "credential_vault";
  // The newest schema version this build writes (table schema_format; the
  // pre-release schemas kept theirs in schema_version and are refused).
  static constexpr int kSchemaVersion = 1;
  // Connections per store (URL parameter `pool_size`).
  static constexpr int kDefaultPoolSize = 4;
  static constexpr int kMaxPoolSize = 64;

  // Connects to the vault at `url` (postgresql://user:password@host:port/db
  // ?schema=name&pool_size=n&sslmode=...; any libpq URL parameter). Applies pending
  // forward migrations to an existing vault schema. Returns nullptr when the
  // schema holds no vault and `create` is false. Throws DatabaseError (never
  // naming the password), InvalidArgumentError for a malformed URL, schema
  // or pool size.
  static std::unique_ptr<PostgresStore> open(std::string_view url, bool create);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // Where the vault is, without the password: "host:port/database schema s".
  [[nodiscard]] const std::string& description() const { return description_; }
  [[nodiscard]] const std::string& schema() const { return schema_; }
  // The most connections this store opens (`pool_size`).
  [[nodiscard]] int pool_size() const { return pool_size_; }
  [[nodiscard]] bool thread_safe() const override { return true; }

  [[nodiscard]] bool initialized() override;
  // Creates the schema and applies every migration. REQUIRES: inside a write
  // transaction (migrations then commit with it).
  void create_schema() override;
  // The missing migrations in one write transaction; a newer schema is refused.
  void migrate_if_needed() override;

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
  [[nodiscard]] std::optional<CredentialKey> lookup_by_id(ByteView id_tag) override;
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
  void backup_to(const std::filesystem::path& file, bool replace_any) override;

  [[nodiscard]] std::vector<LedgerNode> ledger_nodes(const std::vector<std::int64_t>& node_ids) override;
  [[nodiscard]] std::vector<LedgerNode> all_ledger_nodes() override;
  void put_ledger_node(std::int64_t node_id, ByteView body) override;

  [[nodiscard]] std::optional<AuditRow> last_audit_row() override;
  void insert_audit_row(const AuditRow& row) override;
  [[nodiscard]] std::vector<AuditRow> audit_rows(std::int64_t after, std::int64_t limit) override;
  void insert_segment_chunk(const SegmentChunk& chunk) override;
  void append_segment_chunk(const SegmentChunk& chunk) override;
  [[nodiscard]] std::vector<SegmentChunk> segment_chunks(ByteView after_segment,
                                                         std::int64_t after_first_index,
                                                         std::int64_t limit) override;
  [[nodiscard]] std::optional<SegmentChunk> last_segment_chunk(ByteView segment_id) override;

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
  struct Connection;  // one pooled libpq connection and its prepared statements
  class Lease;        // the connection a statement runs on
  PostgresStore(std::unique_ptr<ConnectParams> params, std::string schema, int pool_size);
  // A new connection. Throws DatabaseError when the server cannot be reached.
  [[nodiscard]] std::unique_ptr<Connection> connect() const;
  void ensure_connected(Connection& connection) const;
  // Takes an idle connection, connects a new one while fewer than
  // pool_size_ exist, else waits for one to be released.
  Connection& acquire();
  void release(Connection& connection) noexcept;
  // A transaction and the thread that began it.
  struct BoundTransaction {
    Connection* connection = nullptr;
    bool write = false;  // holds writers_
  };
  // The calling thread's transaction's connection, or nullptr.
  Connection* transaction_connection();
  void refuse_nested_transaction();
  // Ends the binding of the calling thread's transaction (connection
  // nullptr when the thread has none).
  BoundTransaction unbind_transaction() noexcept;
  // Returns an unbound transaction's connection to the pool, and its turn
  // among the writers.
  void end_transaction(const BoundTransaction& bound) noexcept;
  Lease lease_for_statement();
  // Runs a statement (SQL with `{s}` for the quoted schema name) with
  // binary parameters and binary results. Throws DatabaseError.
  Result run(const char* sql, std::initializer_list<Param> params);
  // Runs SQL text without parameters (DDL, BEGIN, ...).
  void exec(const std::string& sql);
  [[noreturn]] void fail(std::string_view what, pg_result* result, pg_conn* conn) const;
  // True when the meta table holds rows though initialized() found no
  // format.
  [[nodiscard]] bool header_without_format();
  [[nodiscard]] int stored_schema_version();
  void begin(const char* sql, bool write);

  // Set at open, then only read.
  std::unique_ptr<ConnectParams> params_;
  std::string schema_;
  std::string quoted_schema_;
  std::string description_;
  std::int64_t lock_id_ = 0;
  int pool_size_ = kDefaultPoolSize;
  std::filesystem::path directory_;

  // The pool. Connections are owned by connections_ and never closed before
  // the store is; idle_ are those no statement or transaction holds.
  std::mutex pool_mutex_;
  std::condition_variable connection_released_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;
  int connecting_ = 0;  // new connections being made, outside the mutex
  std::unordered_map<std::thread::id, BoundTransaction> transactions_;  // by the thread that began it
  // Held by this process's write transaction from start_write to its end
  // (locked and unlocked by the same thread).
  std::mutex writers_;
};

}  // namespace credentials::internal
