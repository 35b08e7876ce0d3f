// SQLite connections: the credential's `database` is the file path.
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <sqlite3.h>

#include "credentials/errors.h"
#include "crypto/primitives.h"
#include "db/connection.h"

namespace credentials::internal {
namespace {

using Clock = std::chrono::steady_clock;

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  nlohmann::json execute(const std::string& sql, const std::vector<Param>& params,
                         std::optional<std::chrono::milliseconds> timeout) override {
    sqlite3_stmt* const statement = prepared(sql, params);
    // Reset when done, also by an exception: a statement left stepping
    // would hold its read transaction open on the pooled connection.
    struct ResetWhenDone {
      sqlite3_stmt* stmt;
      ~ResetWhenDone() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{statement};
    if (sqlite3_bind_parameter_count(statement) != static_cast<int>(params.size())) {
      throw DatabaseError(fmt::format("SQLite: the query has {} parameters but {} were bound",
                                      sqlite3_bind_parameter_count(statement), params.size()));
    }
    for (std::size_t i = 0; i < params.size(); ++i)
      bind(statement, static_cast<int>(i + 1), params[i]);

    // A deadline checked every 1000 virtual-machine steps interrupts a
    // runaway statement (SQLite has no statement_timeout).
    Deadline deadline{timeout ? Clock::now() + *timeout : Clock::time_point::max()};
    if (timeout) sqlite3_progress_handler(db_, 1000, &Deadline::check, &deadline);
    struct ClearHandler {
      sqlite3* db;
      ~ClearHandler() { sqlite3_progress_handler(db, 0, nullptr, nullptr); }
    } clear_handler{db_};

    nlohmann::json rows = nlohmann::json::array();
    for (;;) {
      const int rc = sqlite3_step(statement);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        if ((rc & 0xff) == SQLITE_INTERRUPT && deadline.expired) {
          throw DatabaseError("SQLite: the statement was cancelled by the skill's timeout");
        }
        throw error("the query failed", params);
      }
      nlohmann::json row = nlohmann::json::object();
      // Counted after stepping: a kept statement that SQLite prepared again
      // for a changed schema may have other columns than before.
      const int columns = sqlite3_column_count(statement);
      for (int c = 0; c < columns; ++c)
        row[sqlite3_column_name(statement, c)] = value(statement, c);
      rows.push_back(std::move(row));
    }
    if (sqlite3_column_count(statement) == 0) {
      return {{"affected_rows", static_cast<std::int64_t>(sqlite3_changes64(db_))}};
    }
    const auto count = rows.size();
    return {{"query_result", std::move(rows)}, {"row_count", count}};
  }

  std::string server_version() override {
    const auto result = execute("select sqlite_version()", {}, std::nullopt);
    return "SQLite " + result["query_result"][0].begin()->get<std::string>();
  }

  [[nodiscard]] bool healthy() const override { return sqlite3_get_autocommit(db_) != 0; }

 private:
  struct Deadline {
    Clock::time_point at;
    bool expired = false;
    static int check(void* self) {
      auto* d = static_cast<Deadline*>(self);
      d->expired = Clock::now() >= d->at;
      return d->expired ? 1 : 0;
    }
  };

  // The statement for `sql`, prepared at its first execution on this
  // connection and kept (as PostgreSQL's PREPARE is): parsing and planning
  // were a quarter of a warm execution. At most kMaxStatements are kept.
  sqlite3_stmt* prepared(const std::string& sql, const std::vector<Param>& params) {
    if (const auto it = statements_.find(sql); it != statements_.end()) return it->second;
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1), SQLITE_PREPARE_PERSISTENT, &raw,
                           &tail) != SQLITE_OK) {
      throw error("cannot prepare the query", params);
    }
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    if (stmt == nullptr) throw DatabaseError("SQLite: the query is empty");
    if (has_another_statement(tail)) {
      throw DatabaseError("SQLite: the query must be a single SQL statement");
    }
    if (statements_.size() >= kMaxStatements) {
      for (auto& [text, kept] : statements_) sqlite3_finalize(kept);
      statements_.clear();
    }
    return statements_.emplace(sql, stmt.release()).first->second;
  }

  // True when text other than whitespace, ';' and comments follows the first
  // statement: the second statement of "1; DROP TABLE users" must not run.
  bool has_another_statement(const char* tail) {
    while (tail != nullptr && *tail != '\0') {
      sqlite3_stmt* next = nullptr;
      const char* after = nullptr;
      if (sqlite3_prepare_v2(db_, tail, -1, &next, &after) != SQLITE_OK) return true;
      if (next != nullptr) {
        sqlite3_finalize(next);
        return true;
      }
      if (after == tail) break;
      tail = after;
    }
    return false;
  }

  void bind(sqlite3_stmt* stmt, int index, const Param& param) {
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::nullptr_t>(param)) {
      rc = sqlite3_bind_null(stmt, index);
    } else if (const auto* i = std::get_if<std::int64_t>(&param)) {
      rc = sqlite3_bind_int64(stmt, index, *i);
    } else if (const auto* d = std::get_if<double>(&param)) {
      rc = sqlite3_bind_double(stmt, index, *d);
    } else if (const auto* b = std::get_if<bool>(&param)) {
      rc = sqlite3_bind_int(stmt, index, *b ? 1 : 0);
    } else {
      const auto& s = std::get<std::string>(param);
      rc = sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK)
      throw DatabaseError(fmt::format("SQLite: cannot bind parameter {}", index));
  }

  // JSON from the value's storage class.
  static nlohmann::json value(sqlite3_stmt* stmt, int column) {
    switch (sqlite3_column_type(stmt, column)) {
      case SQLITE_INTEGER:
        return static_cast<std::int64_t>(sqlite3_column_int64(stmt, column));
      case SQLITE_FLOAT:
        return sqlite3_column_double(stmt, column);
      case SQLITE_NULL:
        return nullptr;
      case SQLITE_BLOB: {
        const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, column));
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, column));
        return base64_encode(ByteView(data, size));
      }
      default: {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, column));
        return std::string(text != nullptr ? text : "", size);
      }
    }
  }

  DatabaseError error(std::string_view what, const std::vector<Param>& params) {
    return DatabaseError(
        scrub_inputs(fmt::format("SQLite: {}: {}", what, sqlite3_errmsg(db_)), params));
  }

  sqlite3* db_;
  static constexpr std::size_t kMaxStatements = 64;
  std::map<std::string, sqlite3_stmt*> statements_;  // sql -> prepared, finalized with the connection
};

}  // namespace

std::unique_ptr<Connection> connect_sqlite(const ConnectionParams& params) {
  if (params.database.empty()) {
    throw DatabaseError("SQLite: the credential names no database file");
  }
  // No SQLITE_OPEN_CREATE: a mistyped path must not silently become an empty
  // database. No SQLITE_OPEN_URI: the path is a path, not a URI with options.
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(params.database.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    // SQLite never sees the password: nothing to keep out of its message.
    throw DatabaseError(
        fmt::format("SQLite: cannot open database '{}': {}", params.database, message));
  }
  sqlite3_extended_result_codes(db, 1);
  // Writers from other processes hold the lock briefly; wait rather than fail.
  sqlite3_busy_timeout(
      db, params.connect_timeout_seconds > 0 ? params.connect_timeout_seconds * 1000 : 30000);
  return std::make_unique<SqliteConnection>(db);
}

}  // namespace credentials::internal
