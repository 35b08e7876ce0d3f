#include "support/postgres.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

namespace credentials::testing {
namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::string(fallback);
}

std::string trimmed_error(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

struct PostgresServer::Connection {
  PGconn* conn = nullptr;
  ~Connection() {
    if (conn != nullptr) PQfinish(conn);
  }
};

bool PostgresServer::available() {
  const char* host = std::getenv("PGHOST");
  return host != nullptr && *host != '\0';
}

PostgresServer& PostgresServer::instance() {
  if (!available()) {
    ADD_FAILURE() << kNotConfigured;
    throw std::runtime_error(kNotConfigured);
  }
  static PostgresServer server;
  return server;
}

PostgresServer::PostgresServer()
    : host_(env_or("PGHOST", "localhost")),
      port_(static_cast<int>(std::strtol(env_or("PGPORT", "5432").c_str(), nullptr, 10))),
      user_(env_or("PGUSER", "postgres")),
      password_(env_or("PGPASSWORD", "")),
      database_(env_or("PGDATABASE", "postgres")),
      connection_(std::make_unique<Connection>()) {
  const std::string port = std::to_string(port_);
  const char* keys[] = {
      "host", "port", "user", "password", "dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {host_.c_str(),     port.c_str(), user_.c_str(),       password_.c_str(),
                          database_.c_str(), "10",         "credentials-tests", nullptr};
  connection_->conn = PQconnectdbParams(keys, values, /*expand_dbname=*/0);
  if (connection_->conn == nullptr || PQstatus(connection_->conn) != CONNECTION_OK) {
    throw std::runtime_error(fmt::format("cannot connect to PostgreSQL at {}:{} as {}: {}", host_,
                                         port_, user_,
                                         trimmed_error(PQerrorMessage(connection_->conn))));
  }
  // "NOTICE: ... does not exist, skipping" from DROP ... IF EXISTS is noise.
  PQsetNoticeProcessor(
      connection_->conn, [](void*, const char*) {}, nullptr);
}

PostgresServer::~PostgresServer() = default;

namespace {

// Runs sql on conn; returns the result (caller clears) or throws.
PGresult* run(PGconn* conn, std::string_view sql) {
  const std::string text(sql);
  PGresult* result = PQexec(conn, text.c_str());
  const ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
    std::string message =
        trimmed_error(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn));
    PQclear(result);
    throw std::runtime_error(fmt::format("PostgreSQL: {}", message));
  }
  return result;
}

}  // namespace

void PostgresServer::execute(std::string_view sql) {
  std::lock_guard lock(mutex_);
  PQclear(run(connection_->conn, sql));
}

std::string PostgresServer::query_value(std::string_view sql) {
  std::lock_guard lock(mutex_);
  PGresult* result = run(connection_->conn, sql);
  std::string value;
  if (PQntuples(result) > 0 && PQnfields(result) > 0) value = PQgetvalue(result, 0, 0);
  PQclear(result);
  return value;
}

std::string PostgresServer::quote_identifier(std::string_view name) {
  std::lock_guard lock(mutex_);
  char* quoted = PQescapeIdentifier(connection_->conn, name.data(), name.size());
  if (quoted == nullptr) {
    throw std::runtime_error(fmt::format("PostgreSQL: cannot quote identifier: {}",
                                         trimmed_error(PQerrorMessage(connection_->conn))));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

std::string PostgresServer::quote_literal(std::string_view text) {
  std::lock_guard lock(mutex_);
  char* quoted = PQescapeLiteral(connection_->conn, text.data(), text.size());
  if (quoted == nullptr) {
    throw std::runtime_error(fmt::format("PostgreSQL: cannot quote literal: {}",
                                         trimmed_error(PQerrorMessage(connection_->conn))));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

void PostgresServer::create_role(std::string_view name, std::string_view password) {
  const std::string role = quote_identifier(name);
  const std::string role_literal = quote_literal(name);
  // A role that owns databases cannot be dropped: drop those first.
  for (;;) {
    const std::string owned = query_value(
        fmt::format("SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                    "WHERE r.rolname = {} LIMIT 1",
                    role_literal));
    if (owned.empty()) break;
    execute(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(owned)));
  }
  if (!query_value(fmt::format("SELECT 1 FROM pg_roles WHERE rolname = {}", role_literal))
           .empty()) {
    execute(fmt::format("DROP OWNED BY {}", role));
    execute(fmt::format("DROP ROLE {}", role));
  }
  execute(fmt::format("CREATE ROLE {} LOGIN PASSWORD {}", role, quote_literal(password)));
}

void PostgresServer::create_database(std::string_view name, std::string_view owner) {
  const std::string database = quote_identifier(name);
  execute(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", database));
  execute(fmt::format("CREATE DATABASE {} OWNER {}", database, quote_identifier(owner)));
}

}  // namespace credentials::testing
