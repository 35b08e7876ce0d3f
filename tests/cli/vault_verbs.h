// Helpers for the tests of the vault-wide verbs (audit, history, keys,
// backup, import, init, migrate-store): JSON lines, a shared PostgreSQL vault
// URL on the server pg_virtualenv started, and editing vault.db directly.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "support/postgres.h"

namespace credentials::testing {

// Every line of `text` parsed as one JSON document (`audit --json`).
inline std::vector<nlohmann::json> parse_json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Unique per test process: the server's roles, databases and schemas are global.
inline std::string unique_pg_name(const std::string& prefix) {
  static int counter = 0;
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

// A role owning a fresh database on the test server, and the vault URL that
// logs in as it (password in the URL, as users may write it).
struct PostgresVault {
  std::string role;
  std::string password;
  std::string database;
  std::string url;
};

inline PostgresVault make_postgres_vault(const std::string& schema = "credential_vault") {
  PostgresServer& server = PostgresServer::instance();
  PostgresVault vault;
  vault.role = unique_pg_name("cli_vault_role");
  vault.password = "UrlPw" + std::to_string(::getpid()) + "Secret";
  vault.database = unique_pg_name("cli_vault_db");
  server.create_role(vault.role, vault.password);
  server.create_database(vault.database, vault.role);
  const std::string host = server.host();
  if (!host.empty() && host.front() == '/') {
    vault.url = "postgresql://" + vault.role + ":" + vault.password + "@/" + vault.database +
                "?host=" + host + "&port=" + std::to_string(server.port()) + "&schema=" + schema;
  } else {
    vault.url = "postgresql://" + vault.role + ":" + vault.password + "@" + host + ":" +
                std::to_string(server.port()) + "/" + vault.database + "?schema=" + schema;
  }
  return vault;
}

// Runs SQL on a vault.db with the SQLite C API (to tamper with it).
inline void sqlite_exec(const std::filesystem::path& db_file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

// The number of rows a query on vault.db returns.
inline int sqlite_count(const std::filesystem::path& db_file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_stmt* statement = nullptr;
  int count = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    count = sqlite3_column_int(statement, 0);
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return count;
}

}  // namespace credentials::testing
