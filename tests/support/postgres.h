// PostgresServer: the real PostgreSQL server the tests run against.
//
// scripts/test runs ctest inside `pg_virtualenv -t`, which starts a throwaway
// cluster and exports PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE for a
// superuser; this class reads them. Nothing here is mocked: tests create real
// roles and databases and connect to them over the network.
//
// Roles and databases are global to the server and ctest runs tests as
// parallel processes: give every test its own role and database names.
//
// Thread-safety: instance() is safe to call from any thread; execute() and the
// helpers serialise on an internal mutex (one superuser connection).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace credentials::testing {

class PostgresServer {
 public:
  // The message used when PGHOST is not set.
  static constexpr const char* kNotConfigured =
      "PostgreSQL tests need PGHOST etc.: run them through scripts/test (or pg_virtualenv -t)";

  // True when PGHOST is set (the test runs under pg_virtualenv).
  [[nodiscard]] static bool available();

  // The process-wide server. When PGHOST is absent, records a GoogleTest
  // failure (ADD_FAILURE) and throws std::runtime_error(kNotConfigured).
  // Throws std::runtime_error when the superuser connection fails.
  static PostgresServer& instance();

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer();

  // Connection parameters of the server (from the environment).
  [[nodiscard]] std::string host() const { return host_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string superuser() const { return user_; }
  [[nodiscard]] std::string superuser_password() const { return password_; }
  [[nodiscard]] std::string superuser_database() const { return database_; }

  // Runs SQL (one or more statements) as the superuser. Throws
  // std::runtime_error with the server's message on failure.
  void execute(std::string_view sql);

  // Returns the first column of the first row of a query's result ("" when
  // there are no rows). Throws like execute().
  [[nodiscard]] std::string query_value(std::string_view sql);

  // Creates (after dropping any previous one, and anything it owns) a LOGIN
  // role with that password. The name is quoted as an identifier and the
  // password escaped with PQescapeLiteral, so any character is allowed.
  void create_role(std::string_view name, std::string_view password);

  // Creates (after dropping any previous one) a database owned by `owner`.
  void create_database(std::string_view name, std::string_view owner);

  // Quotes an identifier / a literal with libpq's escaping.
  [[nodiscard]] std::string quote_identifier(std::string_view name);
  [[nodiscard]] std::string quote_literal(std::string_view text);

 private:
  PostgresServer();
  struct Connection;
  std::string host_;
  int port_ = 5432;
  std::string user_;
  std::string password_;
  std::string database_;
  std::mutex mutex_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace credentials::testing
