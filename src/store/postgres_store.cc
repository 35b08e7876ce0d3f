#include "store/postgres_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "credentials/errors.h"
#include "db/libpq.h"
#include "store/sqlite_store.h"
#include "store/store_copy.h"

namespace credentials::internal {
namespace fs = std::filesystem;
namespace {

// PostgreSQL type oids (catalog/pg_type_d.h, which libpq-dev does not ship).
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kBoolOid = 16;

constexpr const char* kLockTimeout = "30s";

// Forward migrations: entry i brings the schema from version i to i + 1.
// `{s}` is the quoted schema name. Each runs inside the write transaction
// that records it in schema_format, so a failed migration leaves nothing.
// Append new migrations; never edit a released one.
constexpr std::array<const char*, PostgresStore::kSchemaVersion> kMigrations = {
    R"sql(
    CREATE TABLE {s}.meta (key text PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE {s}.keys (
      key_id bigint PRIMARY KEY,
      purpose text NOT NULL,
      wrapped bytea NOT NULL,
      created_at bigint NOT NULL,
      encryptions bigint NOT NULL DEFAULT 0);
    CREATE TABLE {s}.credentials (
      lookup bytea PRIMARY KEY,
      owner_tag bytea NOT NULL,
      current_version bigint NOT NULL,
      last_used bigint NOT NULL DEFAULT 0);
    CREATE INDEX credentials_by_owner ON {s}.credentials(owner_tag);
    CREATE TABLE {s}.credential_ids (
      id_tag bytea PRIMARY KEY,
      lookup bytea NOT NULL);
    CREATE INDEX credential_ids_by_lookup ON {s}.credential_ids(lookup);
    CREATE TABLE {s}.versions (
      lookup bytea NOT NULL,
      version bigint NOT NULL,
      key_id bigint NOT NULL,
      sealed bytea NOT NULL,
      PRIMARY KEY (lookup, version));
    CREATE TABLE {s}.audit (
      seq bigint PRIMARY KEY,
      owner_tag bytea,
      sealed bytea NOT NULL,
      mac bytea NOT NULL);
    CREATE TABLE {s}.audit_segment (
      segment_id bytea NOT NULL,
      first_idx bigint NOT NULL,
      count bigint NOT NULL,
      entries bytea NOT NULL,
      PRIMARY KEY (segment_id, first_idx));
    CREATE TABLE {s}.ledger (
      node_id bigint PRIMARY KEY,
      body bytea NOT NULL);
    )sql",
};

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  if (from.empty()) return text;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& ch : text) {
    if (ch == '\n' || ch == '\t') ch = ' ';
  }
  return text;
}

// Drops everything libpq quotes from a conninfo parse error: those quotes
// hold pieces of the URL, which may be the password.
std::string without_quoted(std::string_view message) {
  std::string out;
  bool quoted = false;
  for (char ch : message) {
    if (ch == '"') {
      if (!quoted) out += "\"…\"";
      quoted = !quoted;
    } else if (!quoted) {
      out.push_back(ch);
    }
  }
  return out;
}

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

bool valid_schema_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char ch : name) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) return false;
  }
  return name.substr(0, 3) != "pg_";
}

// The advisory lock that serialises the writers of one vault: a 64-bit
// FNV-1a hash of the schema name (advisory locks are per database).
std::int64_t vault_lock_id(std::string_view schema) {
  std::uint64_t h = 14695981039346656037ull;
  for (char ch : std::string("credentials/vault-write/") + std::string(schema)) {
    h ^= static_cast<std::uint8_t>(ch);
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h);
}

void fsync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The value of `pool_size=` in the vault URL. The message does not repeat
// the value: it is a piece of the URL.
int parse_pool_size(std::string_view text) {
  int size = 0;
  bool valid = !text.empty() && text.size() <= 2;
  for (char ch : text) {
    valid = valid && ch >= '0' && ch <= '9';
    size = size * 10 + (ch - '0');
  }
  if (!valid || size < 1 || size > PostgresStore::kMaxPoolSize) {
    throw InvalidArgumentError(fmt::format(
        "invalid pool_size in the vault URL: give a whole number from 1 to {} (the most "
        "connections a vault handle opens; default {})",
        PostgresStore::kMaxPoolSize, PostgresStore::kDefaultPoolSize));
  }
  return size;
}

}  // namespace

bool is_postgres_url(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

struct PostgresStore::ConnectParams {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
  std::string user;
  ~ConnectParams() {
    for (auto& value : values) sodium_memzero(value.data(), value.size());
  }
};

// One query parameter, sent in binary.
struct PostgresStore::Param {
  Param(ByteView bytes)  // NOLINT(google-explicit-constructor)
      : type(kByteaOid),
        data(bytes.empty() ? "" : reinterpret_cast<const char*>(bytes.data())),
        length(static_cast<int>(bytes.size())) {}
  Param(std::string_view text)  // NOLINT(google-explicit-constructor)
      : type(kTextOid), data(text.empty() ? "" : text.data()), length(static_cast<int>(text.size())) {}
  Param(std::int64_t value) : type(kInt8Oid), data(buffer), length(8) {  // NOLINT
    for (int i = 0; i < 8; ++i) buffer[i] = static_cast<char>(static_cast<std::uint64_t>(value) >> (56 - 8 * i));
  }
  Param(const Param&) = delete;
  Param& operator=(const Param&) = delete;

  Oid type;
  const char* data;
  int length;
  char buffer[8] = {};
};

// A result with binary columns; owns the PGresult.
class PostgresStore::Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  ~Result() { pq::PQclear(result_); }

  [[nodiscard]] int rows() const { return pq::PQntuples(result_); }
  [[nodiscard]] int columns() const { return pq::PQnfields(result_); }
  [[nodiscard]] bool null(int row, int column) const { return pq::PQgetisnull(result_, row, column); }
  [[nodiscard]] Bytes bytes(int row, int column) const {
    const auto* data = reinterpret_cast<const std::uint8_t*>(pq::PQgetvalue(result_, row, column));
    return Bytes(data, data + pq::PQgetlength(result_, row, column));
  }
  [[nodiscard]] std::string text(int row, int column) const {
    return std::string(pq::PQgetvalue(result_, row, column), pq::PQgetlength(result_, row, column));
  }
  [[nodiscard]] std::int64_t int64(int row, int column) const {
    if (null(row, column)) return 0;
    const auto* data = reinterpret_cast<const std::uint8_t*>(pq::PQgetvalue(result_, row, column));
    const int n = pq::PQgetlength(result_, row, column);
    const Oid type = pq::PQftype(result_, column);
    if (type != kInt8Oid && type != kInt4Oid && type != kInt2Oid) {
      throw DatabaseError("vault storage (PostgreSQL): a column has an unexpected type");
    }
    std::uint64_t v = (n > 0 && (data[0] & 0x80)) ? ~std::uint64_t{0} : 0;  // sign-extend
    for (int i = 0; i < n; ++i) v = (v << 8) | data[i];
    return static_cast<std::int64_t>(v);
  }
  [[nodiscard]] bool boolean(int row, int column) const {
    return !null(row, column) && pq::PQftype(result_, column) == kBoolOid &&
           pq::PQgetlength(result_, row, column) == 1 && pq::PQgetvalue(result_, row, column)[0] != 0;
  }

 private:
  PGresult* result_;
};


namespace {

StoredRecord record_from(const PostgresStore::Result& r, int row) {
  // Columns: lookup, version, key_id, sealed, owner_tag[, last_used].
  return {r.bytes(row, 0), r.bytes(row, 4), static_cast<std::uint64_t>(r.int64(row, 1)),
          r.int64(row, 2), r.bytes(row, 3), r.columns() > 5 ? r.int64(row, 5) : 0};
}

AuditRow audit_row_from(const PostgresStore::Result& r, int row) {
  // Columns: seq, owner_tag, sealed, mac.
  return {r.int64(row, 0), r.bytes(row, 1), r.bytes(row, 2), r.bytes(row, 3)};
}

SegmentChunk segment_chunk_from(const PostgresStore::Result& r, int row) {
  // Columns: segment_id, first_idx, count, entries.
  return {r.bytes(row, 0), r.int64(row, 1), r.int64(row, 2), r.bytes(row, 3)};
}

// Statements that only read may be retried once on a fresh connection when
// the old one turns out to be dead (outside a transaction only).
bool is_read(const char* sql) { return std::strncmp(sql, "SELECT", 6) == 0; }

}  // namespace

// One pooled connection. Its prepared statements (name by SQL template)
// are its own, cleared when it is reset.
struct PostgresStore::Connection {
  pg_conn* conn = nullptr;
  std::unordered_map<const char*, std::string> prepared;
  ~Connection() {
    if (conn) pq::PQfinish(conn);
  }
};

// The connection a statement runs on: the calling thread's transaction's,
// or one taken from the pool for this statement and returned after it.
class PostgresStore::Lease {
 public:
  Lease(PostgresStore& store, Connection& connection, bool in_transaction)
      : store_(store), connection_(connection), in_transaction_(in_transaction) {}
  ~Lease() {
    if (!in_transaction_) store_.release(connection_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  [[nodiscard]] Connection& connection() const { return connection_; }
  [[nodiscard]] pg_conn* conn() const { return connection_.conn; }
  [[nodiscard]] bool in_transaction() const { return in_transaction_; }

 private:
  PostgresStore& store_;
  Connection& connection_;
  bool in_transaction_;
};

// --- opening -----------------------------------------------------------------

std::unique_ptr<PostgresStore> PostgresStore::open(std::string_view url, bool create) {
  if (!is_postgres_url(url)) {
    throw InvalidArgumentError("a PostgreSQL vault URL starts with postgresql:// or postgres://");
  }
  // `schema=` and `pool_size=` are ours, not libpq's: take them out of the
  // query string.
  std::string schema = kDefaultSchema;
  int pool_size = kDefaultPoolSize;
  std::string libpq_url(url.substr(0, url.find('?')));
  if (const auto q = url.find('?'); q != std::string_view::npos) {
    std::string kept;
    std::string_view query = url.substr(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view part = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (part.starts_with("schema=")) {
        schema = percent_decode(part.substr(7));
      } else if (part.starts_with("pool_size=")) {
        pool_size = parse_pool_size(part.substr(10));
      } else if (!part.empty()) {
        kept += kept.empty() ? "" : "&";
        kept += part;
      }
    }
    if (!kept.empty()) libpq_url += "?" + kept;
  }
  if (!valid_schema_name(schema)) {
    throw InvalidArgumentError(
        "invalid vault schema name: use 1-63 letters, digits and '_', starting with a letter or "
        "'_' and not with 'pg_'");
  }
  char* error = nullptr;
  PQconninfoOption* options = pq::PQconninfoParse(libpq_url.c_str(), &error);
  sodium_memzero(libpq_url.data(), libpq_url.size());
  if (!options) {
    const std::string message = error ? without_quoted(trimmed(error)) : "out of memory";
    pq::PQfreemem(error);
    throw InvalidArgumentError(fmt::format("the vault URL is not a valid PostgreSQL URL: {}", message));
  }
  auto params = std::make_unique<ConnectParams>();
  bool have_app = false, have_timeout = false;
  for (const PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    const std::string_view keyword = o->keyword;
    have_app |= keyword == "application_name";
    have_timeout |= keyword == "connect_timeout";
    if (keyword == "user") params->user = o->val;
    params->keywords.emplace_back(o->keyword);
    params->values.emplace_back(o->val);
    sodium_memzero(o->val, std::strlen(o->val));
  }
  pq::PQconninfoFree(options);
  if (!have_app) {
    params->keywords.emplace_back("application_name");
    params->values.emplace_back("credentials-vault");
  }
  if (!have_timeout) {
    params->keywords.emplace_back("connect_timeout");
    params->values.emplace_back("10");
  }
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(params), std::move(schema), pool_size));
  // The first connection at once (a wrong URL fails here); the others when
  // concurrent use needs them.
  auto first = store->connect();
  store->description_ = fmt::format("{}:{}/{} (schema {})", pq::PQhost(first->conn), pq::PQport(first->conn),
                                    pq::PQdb(first->conn), store->schema_);
  if (store->params_->user.empty()) store->params_->user = pq::PQuser(first->conn);
  store->idle_.push_back(first.get());
  store->connections_.push_back(std::move(first));
  if (!store->initialized()) {
    // A header without its format: emptied or altered, never a vault to
    // create over (SqliteStore::open refuses such a file the same way).
    if (store->header_without_format()) {
      throw DecryptionFailedError(fmt::format(
          "the vault schema '{}' has a vault's header but not its format: it was emptied or "
          "altered. Nothing was changed; restore the vault from a backup",
          store->schema_));
    }
    if (!create) return nullptr;
  }
  return store;
}

PostgresStore::PostgresStore(std::unique_ptr<ConnectParams> params, std::string schema, int pool_size)
    : params_(std::move(params)),
      schema_(std::move(schema)),
      lock_id_(vault_lock_id(schema_)),
      pool_size_(pool_size) {
  // The name was validated (letters, digits, '_'); quoted so that case is kept.
  quoted_schema_ = "\"" + schema_ + "\"";
}

PostgresStore::~PostgresStore() = default;

std::unique_ptr<PostgresStore::Connection> PostgresStore::connect() const {
  std::vector<const char*> keys, values;
  for (std::size_t i = 0; i < params_->keywords.size(); ++i) {
    keys.push_back(params_->keywords[i].c_str());
    values.push_back(params_->values[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  auto connection = std::make_unique<Connection>();
  connection->conn = pq::PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0);
  if (!connection->conn) throw DatabaseError("cannot connect to the vault database: out of memory");
  if (pq::PQstatus(connection->conn) != CONNECTION_OK) {
    throw ConnectionFailedError(fmt::format("cannot connect to the vault database: {}",
                                            trimmed(pq::PQerrorMessage(connection->conn))));
  }
  pq::PQsetNoticeProcessor(connection->conn, [](void*, const char*) {}, nullptr);
  return connection;
}

void PostgresStore::ensure_connected(Connection& connection) const {
  if (pq::PQstatus(connection.conn) == CONNECTION_OK) return;
  // The server restarted (or the network failed) since the last use.
  connection.prepared.clear();
  pq::PQreset(connection.conn);
  if (pq::PQstatus(connection.conn) != CONNECTION_OK) {
    throw ConnectionFailedError(fmt::format(
        "the vault database {} is unreachable: {}. Nothing was written; retry when the server is "
        "back",
        description_, trimmed(pq::PQerrorMessage(connection.conn))));
  }
  pq::PQsetNoticeProcessor(connection.conn, [](void*, const char*) {}, nullptr);
}

// --- the pool ----------------------------------------------------------------------

PostgresStore::Connection& PostgresStore::acquire() {
  std::unique_lock lock(pool_mutex_);
  connection_released_.wait(lock, [&] {
    return !idle_.empty() || static_cast<int>(connections_.size()) + connecting_ < pool_size_;
  });
  if (!idle_.empty()) {
    // The most recently used: the likeliest to be warm (and the others may
    // stay unused).
    Connection* connection = idle_.back();
    idle_.pop_back();
    return *connection;
  }
  // Connecting takes a round trip or more: not under the mutex.
  ++connecting_;
  lock.unlock();
  std::unique_ptr<Connection> made;
  try {
    made = connect();
  } catch (...) {
    lock.lock();
    --connecting_;
    connection_released_.notify_one();  // a waiter may try to connect in turn
    throw;
  }
  lock.lock();
  --connecting_;
  connections_.push_back(std::move(made));
  return *connections_.back();
}

void PostgresStore::release(Connection& connection) noexcept {
  // Defensive: a connection goes back outside any transaction.
  if (pq::PQstatus(connection.conn) == CONNECTION_OK &&
      pq::PQtransactionStatus(connection.conn) != PQTRANS_IDLE) {
    pq::PQclear(pq::PQexec(connection.conn, "ROLLBACK"));
  }
  {
    std::lock_guard lock(pool_mutex_);
    idle_.push_back(&connection);
  }
  connection_released_.notify_one();
}

PostgresStore::Connection* PostgresStore::transaction_connection() {
  std::lock_guard lock(pool_mutex_);
  const auto it = transactions_.find(std::this_thread::get_id());
  return it == transactions_.end() ? nullptr : it->second.connection;
}

PostgresStore::BoundTransaction PostgresStore::unbind_transaction() noexcept {
  std::lock_guard lock(pool_mutex_);
  const auto it = transactions_.find(std::this_thread::get_id());
  if (it == transactions_.end()) return {};
  const BoundTransaction bound = it->second;
  transactions_.erase(it);
  return bound;
}

void PostgresStore::end_transaction(const BoundTransaction& bound) noexcept {
  release(*bound.connection);
  if (bound.write) writers_.unlock();
}

void PostgresStore::refuse_nested_transaction() {
  if (transaction_connection()) {
    throw DatabaseError("vault storage (PostgreSQL): a transaction is already open on this thread");
  }
}

PostgresStore::Lease PostgresStore::lease_for_statement() {
  if (Connection* connection = transaction_connection()) return Lease(*this, *connection, true);
  return Lease(*this, acquire(), false);
}

void PostgresStore::fail(std::string_view what, PGresult* result, PGconn* conn) const {
  const char* state = result ? pq::PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  std::string message =
      trimmed(result && pq::PQresultErrorMessage(result)[0] ? pq::PQresultErrorMessage(result)
                                                            : pq::PQerrorMessage(conn));
  pq::PQclear(result);
  if (!conn || pq::PQstatus(conn) != CONNECTION_OK) {
    throw ConnectionFailedError(fmt::format(
        "the connection to the vault database {} was lost ({}): the operation was not completed "
        "and its transaction was rolled back; retry when the server is back",
        description_, message));
  }
  if (sqlstate == "42501" && message.find("permission denied for database") != std::string::npos) {
    throw DatabaseError(fmt::format(
        "the PostgreSQL role '{}' may not create the vault schema '{}' ({}): run "
        "`credential_manager init` as a role with CREATE on the database, or have its owner run "
        "GRANT CREATE ON DATABASE ... TO {} (see docs/POSTGRES.md)",
        params_->user, schema_, message, params_->user));
  }
  if (sqlstate == "42501") {
    throw DatabaseError(fmt::format(
        "the PostgreSQL role '{}' has no rights on the vault schema '{}' ({}): the schema's owner "
        "must grant USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables (see "
        "docs/POSTGRES.md), or use the role that ran `credential_manager init`",
        params_->user, schema_, message));
  }
  if (sqlstate == "42P01" || sqlstate == "42703") {  // undefined_table, undefined_column
    throw DecryptionFailedError(fmt::format(
        "the vault {} was altered: a table or column of its schema '{}' is gone ({}); run "
        "`credential_manager verify` and restore the vault from a backup",
        description_, schema_, message));
  }
  if (sqlstate == "55P03") {
    throw DatabaseError(fmt::format(
        "the vault {} is busy: another writer held its lock for {}; retry", description_, kLockTimeout));
  }
  throw DatabaseError(fmt::format("vault storage (PostgreSQL): {} failed: {}", what, message));
}

void PostgresStore::exec(const std::string& sql) {
  const Lease lease = lease_for_statement();
  if (!lease.in_transaction()) ensure_connected(lease.connection());
  PGresult* result = pq::PQexec(lease.conn(), replace_all(sql, "{s}", quoted_schema_).c_str());
  const auto status = pq::PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("statement", result, lease.conn());
  pq::PQclear(result);
}

PostgresStore::Result PostgresStore::run(const char* sql, std::initializer_list<Param> params) {
  const int n = static_cast<int>(params.size());
  std::vector<Oid> types;
  std::vector<const char*> values;
  std::vector<int> lengths, formats(params.size(), 1);
  for (const Param& p : params) {
    types.push_back(p.type);
    values.push_back(p.data);
    lengths.push_back(p.length);
  }
  const Lease lease = lease_for_statement();
  Connection& connection = lease.connection();
  for (int attempt = 0;; ++attempt) {
    if (!lease.in_transaction()) ensure_connected(connection);
    PGresult* result = nullptr;
    auto it = connection.prepared.find(sql);
    if (it == connection.prepared.end()) {
      std::string name = fmt::format("cv_{}", connection.prepared.size() + 1);
      result = pq::PQprepare(connection.conn, name.c_str(), replace_all(sql, "{s}", quoted_schema_).c_str(), n,
                             types.data());
      if (pq::PQresultStatus(result) == PGRES_COMMAND_OK) {
        pq::PQclear(result);
        result = nullptr;
        it = connection.prepared.emplace(sql, std::move(name)).first;
      }
    }
    if (!result) {
      result = pq::PQexecPrepared(connection.conn, it->second.c_str(), n, values.data(), lengths.data(),
                                  formats.data(), /*resultFormat=*/1);
    }
    const auto status = pq::PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Result(result);
    if (attempt == 0 && !lease.in_transaction() && is_read(sql) &&
        pq::PQstatus(connection.conn) != CONNECTION_OK) {
      pq::PQclear(result);
      continue;  // reconnect and read again
    }
    fail("query", result, connection.conn);
  }
}

// --- transactions ---------------------------------------------------------------

void PostgresStore::begin(const char* sql, bool write) {
  Connection& connection = acquire();
  try {
    for (int attempt = 0;; ++attempt) {
      ensure_connected(connection);
      PGresult* result = pq::PQexec(connection.conn, sql);
      if (pq::PQresultStatus(result) == PGRES_COMMAND_OK) {
        pq::PQclear(result);
        break;
      }
      // BEGIN on a connection the server closed: nothing was done, so it is
      // safe to reconnect once and begin again.
      if (attempt == 0 && pq::PQstatus(connection.conn) != CONNECTION_OK) {
        pq::PQclear(result);
        continue;
      }
      fail("begin", result, connection.conn);
    }
  } catch (...) {
    release(connection);
    throw;
  }
  std::lock_guard lock(pool_mutex_);
  transactions_.emplace(std::this_thread::get_id(), BoundTransaction{&connection, write});
}

void PostgresStore::start_write(bool durable) {
  // READ COMMITTED, not REPEATABLE READ: the snapshot of each statement is
  // taken after the lock is granted, so it sees every earlier writer's commit
  // (a REPEATABLE READ snapshot would be taken by the lock statement itself,
  // before the wait).
  refuse_nested_transaction();
  // The writers of this process take turns here before they take a
  // connection and wait for the advisory lock: then at most one connection of
  // the pool waits on the server's lock, and the turn passes in the process,
  // which is much cheaper. (Measured with pgstore_bench's threaded gets,
  // whose audit events are write transactions: with every thread waiting on
  // the server's lock, 2 and 4 threads got fewer reads a second through than
  // one did.)
  writers_.lock();
  try {
    begin(durable ? "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '30s'"
                  : "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '30s'; "
                    "SET LOCAL synchronous_commit = off",
          /*write=*/true);
  } catch (...) {
    writers_.unlock();
    throw;
  }
  try {
    (void)run("SELECT pg_advisory_xact_lock($1)", {lock_id_});
  } catch (...) {
    rollback_transaction();
    throw;
  }
}

void PostgresStore::start_read() {
  refuse_nested_transaction();
  begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", /*write=*/false);
}

void PostgresStore::commit_transaction() {
  const BoundTransaction bound = unbind_transaction();
  if (!bound.connection) {
    throw DatabaseError("vault storage (PostgreSQL): commit without a transaction on this thread");
  }
  struct EndAtExit {
    PostgresStore& store;
    const BoundTransaction& bound;
    ~EndAtExit() { store.end_transaction(bound); }
  } end_at_exit{*this, bound};
  pg_conn* conn = bound.connection->conn;
  PGresult* result = pq::PQexec(conn, "COMMIT");
  if (pq::PQresultStatus(result) != PGRES_COMMAND_OK) {
    if (pq::PQstatus(conn) != CONNECTION_OK) {
      pq::PQclear(result);
      throw DatabaseError(fmt::format(
          "the connection to the vault database {} was lost while committing: the last write may "
          "or may not have been saved; read it back before retrying",
          description_));
    }
    fail("commit", result, conn);
  }
  // COMMIT of a transaction in which a statement failed rolls back.
  const bool rolled_back = std::strcmp(pq::PQcmdStatus(result), "ROLLBACK") == 0;
  pq::PQclear(result);
  if (rolled_back) throw DatabaseError("vault storage (PostgreSQL): the transaction was rolled back");
}

void PostgresStore::rollback_transaction() noexcept {
  const BoundTransaction bound = unbind_transaction();
  if (!bound.connection) return;
  if (pq::PQstatus(bound.connection->conn) == CONNECTION_OK) {
    pq::PQclear(pq::PQexec(bound.connection->conn, "ROLLBACK"));
  }
  end_transaction(bound);
}

// --- schema --------------------------------------------------------------------

bool PostgresStore::initialized() {
  Result r = run(
      "SELECT has_schema_privilege(n.oid, 'USAGE'), EXISTS (SELECT 1 FROM pg_class c "
      "WHERE c.relnamespace = n.oid AND c.relname = 'meta') FROM pg_namespace n WHERE n.nspname = $1",
      {std::string_view(schema_)});
  if (r.rows() == 0) return false;
  if (!r.boolean(0, 0)) {
    throw DatabaseError(fmt::format(
        "the PostgreSQL role '{}' has no rights on the vault schema '{}' (no USAGE): the schema's "
        "owner must grant USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables "
        "(see docs/POSTGRES.md), or use the role that ran `credential_manager init`",
        params_->user, schema_));
  }
  if (!r.boolean(0, 1)) return false;
  // A vault's format (or a pre-release build's format_version, which the
  // vault refuses with what to do).
  return get_meta("format").has_value() || get_meta("format_version").has_value();
}

bool PostgresStore::header_without_format() {
  const std::string meta = quoted_schema_ + ".meta";
  Result r = run("SELECT to_regclass($1) IS NOT NULL", {std::string_view(meta)});
  return r.boolean(0, 0) && run("SELECT EXISTS (SELECT 1 FROM {s}.meta)", {}).boolean(0, 0);
}

int PostgresStore::stored_schema_version() {
  Result r =
      run("SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = $1 AND c.relname = 'schema_format')",
          {std::string_view(schema_)});
  if (!r.boolean(0, 0)) return 0;
  Result v = run("SELECT coalesce(max(version), 0)::bigint FROM {s}.schema_format", {});
  return static_cast<int>(v.int64(0, 0));
}

void PostgresStore::migrate_if_needed() {
  // Schemas before format 1 counted their versions in `schema_version`.
  Result old =
      run("SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = $1 AND c.relname = 'schema_version')",
          {std::string_view(schema_)});
  if (old.boolean(0, 0)) {
    throw DatabaseError(fmt::format(
        "the vault schema '{}' was written by a pre-release development build of credentials; this "
        "build reads vault format 1 only and has no upgrade from it. Nothing was changed. Open it "
        "with the build that wrote it and move the credentials into a new vault (show --reveal, "
        "then add)",
        schema_));
  }
  const int version = stored_schema_version();
  if (version > kSchemaVersion) {
    throw DatabaseError(fmt::format(
        "the vault schema '{}' is at version {}, newer than this build knows ({}): upgrade credentials",
        schema_, version, kSchemaVersion));
  }
  if (version == kSchemaVersion) return;
  auto txn = begin_write();
  create_schema();
  txn.commit();
}

void PostgresStore::create_schema() {
  // CREATE SCHEMA checks the database's CREATE right even with IF NOT
  // EXISTS: ask only when the schema is missing.
  Result exists = run("SELECT 1 FROM pg_namespace WHERE nspname = $1", {std::string_view(schema_)});
  if (exists.rows() == 0) exec("CREATE SCHEMA {s}");
  exec(
      "CREATE TABLE IF NOT EXISTS {s}.schema_format (version integer PRIMARY KEY, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  const int version = stored_schema_version();
  if (version > kSchemaVersion) {
    throw DatabaseError(fmt::format("the vault schema '{}' is newer than this build: upgrade credentials", schema_));
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    exec(kMigrations[static_cast<std::size_t>(v)]);
    (void)run("INSERT INTO {s}.schema_format(version) VALUES($1)", {std::int64_t{v + 1}});
  }
}

// --- rows ------------------------------------------------------------------------

std::optional<Bytes> PostgresStore::get_meta(std::string_view key) {
  Result r = run("SELECT value FROM {s}.meta WHERE key = $1", {key});
  if (r.rows() == 0) return std::nullopt;
  return r.bytes(0, 0);
}

void PostgresStore::put_meta(std::string_view key, ByteView value) {
  (void)run("INSERT INTO {s}.meta(key, value) VALUES($1, $2) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            {key, value});
}

void PostgresStore::delete_meta(std::string_view key) {
  (void)run("DELETE FROM {s}.meta WHERE key = $1", {key});
}

std::vector<std::pair<std::string, Bytes>> PostgresStore::all_meta() {
  Result r = run("SELECT key, value FROM {s}.meta ORDER BY key", {});
  std::vector<std::pair<std::string, Bytes>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0), r.bytes(i, 1));
  return out;
}

std::vector<StoredKey> PostgresStore::load_keys() {
  Result r = run("SELECT key_id, purpose, wrapped, created_at, encryptions FROM {s}.keys ORDER BY key_id", {});
  std::vector<StoredKey> keys;
  for (int i = 0; i < r.rows(); ++i) {
    keys.push_back({r.int64(i, 0), r.text(i, 1), r.bytes(i, 2), r.int64(i, 3), r.int64(i, 4)});
  }
  return keys;
}

void PostgresStore::insert_key(const StoredKey& key) {
  (void)run("INSERT INTO {s}.keys(key_id, purpose, wrapped, created_at, encryptions) "
            "VALUES($1, $2, $3, $4, $5)",
            {key.key_id, std::string_view(key.purpose), ByteView(key.wrapped), key.created_at,
             key.encryptions});
}

void PostgresStore::update_wrapped_key(std::int64_t key_id, ByteView wrapped) {
  (void)run("UPDATE {s}.keys SET wrapped = $2 WHERE key_id = $1", {key_id, wrapped});
}

void PostgresStore::add_encryptions(std::int64_t key_id, std::int64_t count) {
  (void)run("UPDATE {s}.keys SET encryptions = encryptions + $2 WHERE key_id = $1", {key_id, count});
}

std::optional<StoredRecord> PostgresStore::current_record(ByteView lookup) {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used "
                 "FROM {s}.credentials c JOIN {s}.versions v "
                 "ON v.lookup = c.lookup AND v.version = c.current_version WHERE c.lookup = $1",
                 {lookup});
  if (r.rows() == 0) return std::nullopt;
  return record_from(r, 0);
}

std::optional<StoredRecord> PostgresStore::current_record(ByteView lookup,
                                                         const std::array<std::int64_t, 3>& ledger_path,
                                                         std::vector<LedgerNode>& path_nodes) {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used, "
                 "(SELECT body FROM {s}.ledger WHERE node_id = $2), (SELECT body FROM {s}.ledger WHERE node_id = $3), "
                 "(SELECT body FROM {s}.ledger WHERE node_id = $4) FROM {s}.credentials c JOIN {s}.versions v "
                 "ON v.lookup = c.lookup AND v.version = c.current_version WHERE c.lookup = $1",
                 {lookup, ledger_path[0], ledger_path[1], ledger_path[2]});
  if (r.rows() == 0) return std::nullopt;
  for (int i = 0; i < 3; ++i) {
    if (r.null(0, 6 + i)) continue;
    path_nodes.push_back({ledger_path[static_cast<std::size_t>(i)], r.bytes(0, 6 + i)});
  }
  return record_from(r, 0);
}

std::optional<std::uint64_t> PostgresStore::current_version(ByteView lookup) {
  Result r = run("SELECT current_version FROM {s}.credentials WHERE lookup = $1", {lookup});
  if (r.rows() == 0) return std::nullopt;
  return static_cast<std::uint64_t>(r.int64(0, 0));
}

std::optional<CredentialKey> PostgresStore::lookup_by_id(ByteView id_tag) {
  Result r = run("SELECT i.lookup, c.owner_tag FROM {s}.credential_ids i LEFT JOIN {s}.credentials c "
                 "ON c.lookup = i.lookup WHERE i.id_tag = $1",
                 {id_tag});
  if (r.rows() == 0) return std::nullopt;
  return CredentialKey{r.bytes(0, 0), r.bytes(0, 1)};  // NULL: empty
}

std::vector<StoredRecord> PostgresStore::current_records_of_owner(ByteView owner_tag) {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used "
                 "FROM {s}.credentials c JOIN {s}.versions v "
                 "ON v.lookup = c.lookup AND v.version = c.current_version WHERE c.owner_tag = $1",
                 {owner_tag});
  std::vector<StoredRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(record_from(r, i));
  return out;
}

std::vector<StoredRecord> PostgresStore::all_current_records() {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used "
                 "FROM {s}.credentials c JOIN {s}.versions v "
                 "ON v.lookup = c.lookup AND v.version = c.current_version",
                 {});
  std::vector<StoredRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(record_from(r, i));
  return out;
}

void PostgresStore::insert_credential(ByteView id_tag, const StoredRecord& first) {
  (void)run("INSERT INTO {s}.credentials(lookup, owner_tag, current_version) VALUES($1, $2, $3)",
            {ByteView(first.lookup), ByteView(first.owner_tag), static_cast<std::int64_t>(first.version)});
  insert_credential_id(id_tag, first.lookup);
  (void)run("INSERT INTO {s}.versions(lookup, version, key_id, sealed) VALUES($1, $2, $3, $4)",
            {ByteView(first.lookup), static_cast<std::int64_t>(first.version), first.key_id,
             ByteView(first.sealed)});
}

void PostgresStore::insert_credential_id(ByteView id_tag, ByteView lookup) {
  (void)run("INSERT INTO {s}.credential_ids(id_tag, lookup) VALUES($1, $2)", {id_tag, lookup});
}

void PostgresStore::add_version(const StoredRecord& record, int keep) {
  const auto version = static_cast<std::int64_t>(record.version);
  (void)run("INSERT INTO {s}.versions(lookup, version, key_id, sealed) VALUES($1, $2, $3, $4)",
            {ByteView(record.lookup), version, record.key_id, ByteView(record.sealed)});
  (void)run("UPDATE {s}.credentials SET current_version = $2 WHERE lookup = $1",
            {ByteView(record.lookup), version});
  (void)run("DELETE FROM {s}.versions WHERE lookup = $1 AND version <= $2",
            {ByteView(record.lookup), version - keep});
}

void PostgresStore::delete_credential(ByteView lookup) {
  (void)run("DELETE FROM {s}.versions WHERE lookup = $1", {lookup});
  (void)run("DELETE FROM {s}.credential_ids WHERE lookup = $1", {lookup});
  (void)run("DELETE FROM {s}.credentials WHERE lookup = $1", {lookup});
}

std::int64_t PostgresStore::credential_count() {
  return run("SELECT count(*) FROM {s}.credentials", {}).int64(0, 0);
}

std::int64_t PostgresStore::version_count() {
  return run("SELECT count(*) FROM {s}.versions", {}).int64(0, 0);
}

std::int64_t PostgresStore::newest_key_id(std::string_view purpose) {
  return run("SELECT coalesce(max(key_id), 0) FROM {s}.keys WHERE purpose = $1", {purpose}).int64(0, 0);
}

std::int64_t PostgresStore::key_encryptions(std::int64_t key_id) {
  Result r = run("SELECT encryptions FROM {s}.keys WHERE key_id = $1", {key_id});
  return r.rows() ? r.int64(0, 0) : 0;
}

std::vector<std::pair<std::int64_t, std::int64_t>> PostgresStore::versions_per_key() {
  Result r = run("SELECT key_id, count(*) FROM {s}.versions GROUP BY key_id", {});
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.int64(i, 0), r.int64(i, 1));
  return out;
}

std::vector<StoredRecord> PostgresStore::versions_of(ByteView lookup) {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag FROM {s}.versions v "
                 "JOIN {s}.credentials c ON c.lookup = v.lookup WHERE v.lookup = $1 ORDER BY v.version",
                 {lookup});
  std::vector<StoredRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(record_from(r, i));
  return out;
}

std::optional<StoredRecord> PostgresStore::version_of(ByteView lookup, std::uint64_t version) {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag FROM {s}.versions v "
                 "JOIN {s}.credentials c ON c.lookup = v.lookup WHERE v.lookup = $1 AND v.version = $2",
                 {lookup, static_cast<std::int64_t>(version)});
  if (r.rows() == 0) return std::nullopt;
  return record_from(r, 0);
}

std::vector<StoredRecord> PostgresStore::versions_after(ByteView lookup, std::uint64_t version,
                                                        std::int64_t limit) {
  // Versions whose credential row is missing are returned too (owner_tag
  // empty): verify reports them as orphans.
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, coalesce(c.owner_tag, ''::bytea) "
                 "FROM {s}.versions v LEFT JOIN {s}.credentials c ON c.lookup = v.lookup "
                 "WHERE (v.lookup, v.version) > ($1, $2) ORDER BY v.lookup, v.version LIMIT $3",
                 {lookup, static_cast<std::int64_t>(version), limit});
  std::vector<StoredRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(record_from(r, i));
  return out;
}

std::int64_t PostgresStore::count_versions_not_under(std::int64_t key_id) {
  return run("SELECT count(*) FROM {s}.versions WHERE key_id <> $1", {key_id}).int64(0, 0);
}

std::vector<StoredRecord> PostgresStore::versions_not_under(std::int64_t key_id, std::int64_t limit) {
  Result r = run("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag FROM {s}.versions v "
                 "JOIN {s}.credentials c ON c.lookup = v.lookup WHERE v.key_id <> $1 LIMIT $2",
                 {key_id, limit});
  std::vector<StoredRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(record_from(r, i));
  return out;
}

void PostgresStore::reseal_version(const StoredRecord& record) {
  (void)run("UPDATE {s}.versions SET key_id = $3, sealed = $4 WHERE lookup = $1 AND version = $2",
            {ByteView(record.lookup), static_cast<std::int64_t>(record.version), record.key_id,
             ByteView(record.sealed)});
}

std::vector<std::pair<Bytes, Bytes>> PostgresStore::all_credential_ids() {
  Result r = run("SELECT id_tag, lookup FROM {s}.credential_ids", {});
  std::vector<std::pair<Bytes, Bytes>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.bytes(i, 0), r.bytes(i, 1));
  return out;
}

void PostgresStore::touch_last_used(ByteView lookup, std::int64_t micros) {
  (void)run("UPDATE {s}.credentials SET last_used = $2 WHERE lookup = $1", {lookup, micros});
}

std::int64_t PostgresStore::last_used(ByteView lookup) {
  Result r = run("SELECT last_used FROM {s}.credentials WHERE lookup = $1", {lookup});
  return r.rows() ? r.int64(0, 0) : 0;
}

std::optional<AuditRow> PostgresStore::last_audit_row() {
  // Without its sealed bytes: appending needs only where the chain ends.
  Result r =
      run("SELECT seq, owner_tag, ''::bytea, mac FROM {s}.audit ORDER BY seq DESC LIMIT 1", {});
  if (r.rows() == 0) return std::nullopt;
  return audit_row_from(r, 0);
}

void PostgresStore::insert_audit_row(const AuditRow& row) {
  (void)run("INSERT INTO {s}.audit(seq, owner_tag, sealed, mac) VALUES($1, $2, $3, $4)",
            {row.seq, ByteView(row.owner_tag), ByteView(row.sealed), ByteView(row.mac)});
}

std::vector<AuditRow> PostgresStore::audit_rows(std::int64_t after, std::int64_t limit) {
  Result r =
      run("SELECT seq, owner_tag, sealed, mac FROM {s}.audit WHERE seq > $1 ORDER BY seq LIMIT $2",
          {after, limit});
  std::vector<AuditRow> rows;
  for (int i = 0; i < r.rows(); ++i) rows.push_back(audit_row_from(r, i));
  return rows;
}

void PostgresStore::insert_segment_chunk(const SegmentChunk& chunk) {
  (void)run(
      "INSERT INTO {s}.audit_segment(segment_id, first_idx, count, entries) VALUES($1, $2, $3, $4)",
      {ByteView(chunk.segment_id), chunk.first_index, chunk.count, ByteView(chunk.entries)});
}

void PostgresStore::append_segment_chunk(const SegmentChunk& chunk) {
  // Its own transaction, without the vault's advisory lock: readers on
  // other hosts append to their segments in parallel.
  refuse_nested_transaction();
  begin("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off",
        /*write=*/false);
  try {
    insert_segment_chunk(chunk);
  } catch (...) {
    rollback_transaction();
    throw;
  }
  commit_transaction();
}

std::vector<SegmentChunk> PostgresStore::segment_chunks(ByteView after_segment,
                                                        std::int64_t after_first_index,
                                                        std::int64_t limit) {
  Result r =
      run("SELECT segment_id, first_idx, count, entries FROM {s}.audit_segment "
          "WHERE (segment_id, first_idx) > ($1, $2) ORDER BY segment_id, first_idx LIMIT $3",
          {after_segment, after_first_index, limit});
  std::vector<SegmentChunk> chunks;
  for (int i = 0; i < r.rows(); ++i) chunks.push_back(segment_chunk_from(r, i));
  return chunks;
}

std::optional<SegmentChunk> PostgresStore::last_segment_chunk(ByteView segment_id) {
  Result r =
      run("SELECT segment_id, first_idx, count, entries FROM {s}.audit_segment "
          "WHERE segment_id = $1 ORDER BY first_idx DESC LIMIT 1",
          {segment_id});
  if (r.rows() == 0) return std::nullopt;
  return segment_chunk_from(r, 0);
}

std::vector<LedgerNode> PostgresStore::ledger_nodes(const std::vector<std::int64_t>& node_ids) {
  std::string ids = "{";
  for (const std::int64_t id : node_ids) ids += (ids.size() > 1 ? "," : "") + std::to_string(id);
  ids += "}";
  Result r = run("SELECT node_id, body FROM {s}.ledger WHERE node_id = ANY($1::text::bigint[])",
                 {std::string_view(ids)});
  std::vector<LedgerNode> nodes;
  for (int i = 0; i < r.rows(); ++i) nodes.push_back({r.int64(i, 0), r.bytes(i, 1)});
  return nodes;
}

std::vector<LedgerNode> PostgresStore::all_ledger_nodes() {
  Result r = run("SELECT node_id, body FROM {s}.ledger ORDER BY node_id", {});
  std::vector<LedgerNode> nodes;
  for (int i = 0; i < r.rows(); ++i) nodes.push_back({r.int64(i, 0), r.bytes(i, 1)});
  return nodes;
}

void PostgresStore::put_ledger_node(std::int64_t node_id, ByteView body) {
  (void)run("INSERT INTO {s}.ledger(node_id, body) VALUES($1, $2) "
            "ON CONFLICT(node_id) DO UPDATE SET body = excluded.body",
            {node_id, body});
}

// --- backup ------------------------------------------------------------------------

void PostgresStore::backup_to(const fs::path& file, bool replace_any) {
  if (!replace_any) SqliteStore::check_backup_target(file, get_meta("vault_id").value_or(Bytes()));
  const fs::path parent = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  // A scratch vault beside the target (same file system: the final rename
  // is atomic), removed whatever happens.
  std::string pattern = (parent / (file.filename().string() + ".partial-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) {
    throw DatabaseError(fmt::format("cannot create a scratch directory beside the backup {}: {}",
                                    file.string(), std::strerror(errno)));
  }
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{pattern};
  const fs::path scratch_file = cleanup.path / SqliteStore::kFileName;
  {
    auto out = SqliteStore::open(cleanup.path, /*create=*/true);
    copy_store(*this, *out);
  }
  // One self-contained file, as SqliteStore::backup_to writes: a rollback
  // journal database, its WAL checkpointed away.
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(scratch_file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  const std::string message = db ? sqlite3_errmsg(db) : "out of memory";
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw DatabaseError(fmt::format("backup failed: {}", message));
  fsync_path(scratch_file, O_RDONLY);
  std::error_code ec;
  fs::rename(scratch_file, file, ec);
  if (ec) throw DatabaseError(fmt::format("cannot move the backup into place at {}: {}", file.string(), ec.message()));
  fsync_path(parent, O_RDONLY | O_DIRECTORY);
}

}  // namespace credentials::internal
