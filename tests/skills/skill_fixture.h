// Test helpers for the skills and db suites: a real vault in a temporary
// directory, real SQLite files and real PostgreSQL roles and databases (from
// the server pg_virtualenv starts; see support/postgres.h).
// Header-only: tests/<layer>/ compiles only *_test.cc files.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "credentials/credentials.h"
#include "support/postgres.h"
#include "support/temp_dir.h"

namespace credentials::testing {

inline UserContext user(const std::string& id) { return {id, id + "@example.com", {"user"}}; }

// Runs SQL on a SQLite file (created if missing).
inline void sqlite_exec(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open failed");
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("sqlite: " + message);
}

// The first column of the first row, as text ("" when none).
inline std::string sqlite_value(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    out = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// A PostgreSQL role owning a database of its own, with a name unique to this
// process (ctest may run test processes in parallel).
struct PgDatabase {
  std::string role;
  std::string password;
  std::string database;

  // Runs SQL in the database as the role; returns the first value ("" when none).
  std::string exec(const std::string& sql) const {
    PostgresServer& server = PostgresServer::instance();
    const std::string host = server.host();  // by value: keep it alive for the call
    const std::string port = std::to_string(server.port());
    const char* keys[] = {"host", "port", "dbname", "user", "password", "passfile", nullptr};
    const char* values[] = {host.c_str(), port.c_str(), database.c_str(), role.c_str(),
                            password.c_str(),      "/dev/null",  nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("connect as " + role + ": " + message);
    }
    PGresult* result = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(result);
    std::string out;
    if (status == PGRES_TUPLES_OK && PQntuples(result) > 0) out = PQgetvalue(result, 0, 0);
    std::string message = PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw std::runtime_error("postgres: " + message);
    }
    return out;
  }
};

// Creates a fresh role + database. `tag` keeps names readable in failures.
inline PgDatabase make_pg_database(const std::string& tag, const std::string& password) {
  static std::atomic<int> counter{0};
  PostgresServer& server = PostgresServer::instance();
  PgDatabase db;
  db.role = fmt::format("sk_{}_{}_{}", tag, ::getpid(), counter++);
  db.password = password;
  db.database = db.role + "_db";
  server.create_role(db.role, password);
  server.create_database(db.database, db.role);
  return db;
}

// The schema both example skills use, with alice's rows (ids 1-2, customer 7)
// and other people's rows (id 3, customer 8) that injections must not reach.
inline constexpr const char* kPostgresSchema = R"sql(
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, name text,
                    created_at timestamp NOT NULL, status text NOT NULL);
INSERT INTO users VALUES (1, 'alice@example.com', 'Alice', '2024-01-02 03:04:05', 'active'),
                         (2, 'al@example.com', 'Al', '2024-02-03 04:05:06.5', 'active'),
                         (3, 'mallory@example.com', 'Mallory', '2024-03-04 05:06:07', 'banned');
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL, status text NOT NULL,
                     total numeric(10,2) NOT NULL, placed_at timestamptz NOT NULL);
INSERT INTO orders VALUES (10, 7, 'shipped', 19.99, '2024-03-01 10:00:00+00'),
                          (11, 7, 'pending', 5.00, '2024-03-02 10:00:00+00'),
                          (12, 8, 'shipped', 99.00, '2024-03-03 10:00:00+00');
)sql";

inline constexpr const char* kSqliteSchema = R"sql(
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT,
                    created_at TEXT NOT NULL, status TEXT NOT NULL);
INSERT INTO users VALUES (1, 'alice@example.com', 'Alice', '2024-01-02T03:04:05', 'active'),
                         (2, 'al@example.com', 'Al', '2024-02-03T04:05:06.5', 'active'),
                         (3, 'mallory@example.com', 'Mallory', '2024-03-04T05:06:07', 'banned');
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL,
                     total REAL NOT NULL, placed_at TEXT NOT NULL);
INSERT INTO orders VALUES (10, 7, 'shipped', 19.99, '2024-03-01T10:00:00Z'),
                          (11, 7, 'pending', 5.00, '2024-03-02T10:00:00Z'),
                          (12, 8, 'shipped', 99.00, '2024-03-03T10:00:00Z');
)sql";

// Writes <dir>/<folder>/skill.md with the given front matter (without the
// --- lines) and returns its path.
inline std::filesystem::path write_skill(const std::filesystem::path& dir,
                                         const std::string& folder, const std::string& front_matter,
                                         const std::string& body = "Documentation.\n") {
  std::filesystem::create_directories(dir / folder);
  const auto path = dir / folder / "skill.md";
  std::ofstream(path) << "---\n" << front_matter << "---\n" << body;
  return path;
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// Copies the repository's example skills into `dir`.
inline void copy_example_skills(const std::filesystem::path& dir) {
  std::filesystem::copy(std::filesystem::path(CREDENTIALS_SOURCE_DIR) / "skills", dir,
                        std::filesystem::copy_options::recursive);
}

// A vault in a temporary directory, with its key, and a second handle on the
// same directory: the view another process has.
class VaultFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = generate_master_key();
    vault_ = std::make_unique<Vault>(Vault::open(options()));
  }

  VaultOptions options() const {
    VaultOptions o;
    o.directory = tmp_ / "vault";
    o.master_key = key_.clone();
    return o;
  }

  // Another handle on the same vault directory (as another process would open it).
  Vault open_other_handle() const { return Vault::open(options()); }

  // Skips the rest of a PostgreSQL test with a failure when the server is
  // not configured: such tests must not pass silently.
  static bool require_postgres() {
    if (PostgresServer::available()) return true;
    ADD_FAILURE() << PostgresServer::kNotConfigured;
    return false;
  }

  TempDir tmp_;
  SecretString key_;
  std::unique_ptr<Vault> vault_;
  UserContext alice_ = user("alice");
  UserContext bob_ = user("bob");
};

// Fails (never skips) the test when PostgreSQL is not configured.
#define REQUIRE_POSTGRES()           \
  do {                               \
    if (!require_postgres()) return; \
  } while (0)

}  // namespace credentials::testing
