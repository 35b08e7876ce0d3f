// Connections to users' databases (SQLite, PostgreSQL), made from structured
// parameters, never from a URL string handed to a driver.
//
// A Connection is used by one thread at a time (the pool hands each one to a
// single execution); connect() itself is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "credentials/credential.h"
#include "credentials/secret.h"

namespace credentials::internal {

enum class DbKind { kSqlite, kPostgres };

// "sqlite" / "postgres".
[[nodiscard]] std::string_view db_kind_name(DbKind kind);

// Where and as whom to connect. Holds the password; never logged.
struct ConnectionParams {
  DbKind kind = DbKind::kPostgres;
  std::string host;
  int port = 0;          // 0: driver default
  std::string database;  // for SQLite: the file path
  std::string username;
  SecretString password;
  std::string ssl_mode;  // libpq sslmode; empty: driver default
  int connect_timeout_seconds = 30;

  [[nodiscard]] ConnectionParams clone() const;
};

// The parameters of a vault credential, with db_config.json overrides.
// Throws InvalidArgumentError for a db type this build cannot connect to
// (mysql, mongodb, redis), saying so plainly.
[[nodiscard]] ConnectionParams connection_params(const Credential& credential,
                                                 const ConnectionOverrides& overrides = {});

// Parses DATABASE_URL-style URLs into parameters, so that no driver ever
// parses a URL holding a password: postgres[ql]://user:pass@host:port/db?sslmode=..
// &connect_timeout=.. (components percent-decoded) and sqlite:///path.
// Throws InvalidArgumentError (without echoing the URL) when it cannot.
[[nodiscard]] ConnectionParams parse_database_url(std::string_view url);

// A value bound to a placeholder, typed from the JSON input.
using Param = std::variant<std::nullptr_t, std::int64_t, double, bool, std::string>;

class Connection {
 public:
  virtual ~Connection() = default;

  // Runs one statement with bound parameters. Returns
  // {"query_result": [...], "row_count": n} or {"affected_rows": n}.
  // `timeout` (when set) bounds the statement's run time.
  // Throws DatabaseError with the driver's message, scrubbed of the text of
  // the parameters (never masked by the password: see credentials/database.h).
  virtual nlohmann::json execute(const std::string& sql, const std::vector<Param>& params,
                                 std::optional<std::chrono::milliseconds> timeout) = 0;

  // "PostgreSQL 15.18 ...", "SQLite 3.40.1": runs a trivial query.
  virtual std::string server_version() = 0;

  // False once the connection is known to be unusable (it is then dropped
  // instead of returning to a pool).
  [[nodiscard]] virtual bool healthy() const = 0;

  // A cheap check (no round trip) before an idle connection is reused: false
  // when the server closed it meanwhile (restart, pg_terminate_backend,
  // idle timeout), so the execution gets a fresh connection instead of an
  // error.
  [[nodiscard]] virtual bool reusable() { return healthy(); }
};

// Opens a connection. Throws DatabaseError when it fails: the driver's text,
// which does not depend on the password.
[[nodiscard]] std::unique_ptr<Connection> connect(const ConnectionParams& params);

// Removes the text of bound parameters from a driver's message: a quoted
// occurrence ("v" or 'v') always, a bare one when the text is 4 characters or
// longer (shorter ones would mangle ordinary words and numbers).
[[nodiscard]] std::string scrub_inputs(std::string message, const std::vector<Param>& params);

}  // namespace credentials::internal
