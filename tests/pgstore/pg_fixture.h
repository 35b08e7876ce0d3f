// Helpers of the PostgreSQL store tests: a role and a database of its own for
// each test on the server pg_virtualenv started (support/postgres.h), URLs
// for them, a raw connection to look at the stored rows, and a private
// cluster that a test may stop and start.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "support/postgres.h"

namespace credentials::testing {

inline std::string percent_encode(std::string_view text) {
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out += fmt::format("%{:02X}", ch);
    }
  }
  return out;
}

// A password with every character that breaks naive URL or conninfo handling.
inline constexpr const char* kRolePassword = "p@ss/w:rd#1%]?&='\" ü";

// A role and a database named after the test process, dropped at the end.
class PgDatabase {
 public:
  explicit PgDatabase(std::string_view tag = "v") {
    static std::atomic<int> counter{0};
    name_ = fmt::format("pgs_{}_{}_{}", tag, ::getpid(), counter++);
    auto& server = PostgresServer::instance();
    server.create_role(name_, kRolePassword);
    server.create_database(name_, name_);
  }
  ~PgDatabase() {
    if (::getpid() != owner_pid_) return;  // a forked child leaves it alone
    try {
      auto& server = PostgresServer::instance();
      server.execute(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", server.quote_identifier(name_)));
      for (const auto& role : extra_roles_) {
        server.execute(fmt::format("DROP ROLE IF EXISTS {}", server.quote_identifier(role)));
      }
      server.execute(fmt::format("DROP ROLE IF EXISTS {}", server.quote_identifier(name_)));
    } catch (const std::exception&) {
    }
  }
  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }

  // The vault URL for `role` (default: the database's owner).
  [[nodiscard]] std::string url(std::string_view schema = "", std::string_view role = "",
                                std::string_view password = kRolePassword) const {
    auto& server = PostgresServer::instance();
    std::string url = fmt::format("postgresql://{}:{}@{}:{}/{}",
                                  percent_encode(role.empty() ? name_ : role), percent_encode(password),
                                  server.host(), server.port(), percent_encode(name_));
    if (!schema.empty()) url += "?schema=" + std::string(schema);
    return url;
  }

  // A login role without any right in this database beyond CONNECT.
  std::string create_role(std::string_view suffix) {
    const std::string role = name_ + "_" + std::string(suffix);
    PostgresServer::instance().create_role(role, kRolePassword);
    extra_roles_.push_back(role);
    return role;
  }

  // A session in this database as its owner (PQfinish it).
  PGconn* connect() const {
    auto& server = PostgresServer::instance();
    const std::string port = std::to_string(server.port());
    const std::string host = server.host();
    const char* keys[] = {"host", "port", "user", "password", "dbname", nullptr};
    const char* values[] = {host.c_str(), port.c_str(), name_.c_str(), kRolePassword, name_.c_str(), nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("cannot connect: " + message);
    }
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    return conn;
  }

  // Runs SQL in this database as its owner; returns the first column of
  // every row as text.
  std::vector<std::string> query(std::string_view sql) const {
    PGconn* conn = connect();
    PGresult* result = PQexec(conn, std::string(sql).c_str());
    const auto status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      std::string message = PQresultErrorMessage(result);
      PQclear(result);
      PQfinish(conn);
      throw std::runtime_error("query failed: " + message);
    }
    std::vector<std::string> rows;
    for (int i = 0; i < PQntuples(result); ++i) {
      rows.emplace_back(PQgetisnull(result, i, 0) ? "<null>" : PQgetvalue(result, i, 0));
    }
    PQclear(result);
    PQfinish(conn);
    return rows;
  }

  // Every row of every vault table of `schema`, as text (bytea in hex).
  std::vector<std::string> dump(std::string_view schema = "credential_vault") const {
    std::vector<std::string> out;
    for (const char* table : {"schema_format", "meta", "keys", "credentials", "credential_ids",
                              "versions", "ledger", "audit", "audit_segment"}) {
      for (auto& row : query(fmt::format("SELECT t::text FROM \"{}\".{} t ORDER BY 1", schema, table))) {
        out.push_back(std::string(table) + ": " + row);
      }
    }
    return out;
  }

 private:
  std::string name_;
  std::vector<std::string> extra_roles_;
  pid_t owner_pid_ = ::getpid();
};

// A PostgreSQL cluster of this test alone, on a Unix socket in a temporary
// directory, so that it can be stopped and started without disturbing the
// tests that share the pg_virtualenv server. Run as root, the server runs as
// the `postgres` user (initdb refuses root).
class PrivateCluster {
 public:
  PrivateCluster() {
    char pattern[] = "/tmp/pgstore-cluster-XXXXXX";
    if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    bindir_ = find_bindir();
    port_ = 40000 + static_cast<int>(::getpid() % 20000);
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (!pw || ::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("running as root needs a `postgres` user to own the test cluster");
      }
    }
    run(fmt::format("{}/initdb -D {}/data -A trust -U postgres --no-sync -E UTF8 >{}/initdb.log 2>&1",
                    bindir_, dir_.string(), dir_.string()));
    start();
  }
  ~PrivateCluster() {
    std::system(as_owner(fmt::format("{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1", bindir_,
                                      dir_.string())).c_str());
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  void start() {
    run(fmt::format("{}/pg_ctl -D {}/data -l {}/server.log -w -t 60 -o \"-k {} -p {} -c listen_addresses=''\" start "
                    ">/dev/null",
                    bindir_, dir_.string(), dir_.string(), dir_.string(), port_));
  }
  void stop() {
    run(fmt::format("{}/pg_ctl -D {}/data -m fast -w stop >/dev/null", bindir_, dir_.string()));
  }
  [[nodiscard]] std::string url() const {
    return fmt::format("postgresql://postgres@/postgres?host={}&port={}", percent_encode(dir_.string()), port_);
  }

 private:
  static std::string find_bindir() {
    std::string best;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      if (std::filesystem::exists(entry.path() / "bin/initdb") && entry.path().string() > best) {
        best = entry.path().string();
      }
    }
    if (best.empty()) throw std::runtime_error("no PostgreSQL server binaries under /usr/lib/postgresql");
    return best + "/bin";
  }
  std::string as_owner(const std::string& command) const {
    return ::geteuid() == 0 ? "runuser -u postgres -- sh -c \"" + escape(command) + "\"" : command;
  }
  static std::string escape(const std::string& command) {
    std::string out;
    for (char ch : command) {
      if (ch == '"' || ch == '\\' || ch == '$' || ch == '`') out.push_back('\\');
      out.push_back(ch);
    }
    return out;
  }
  void run(const std::string& command) const {
    const int status = std::system(as_owner(command).c_str());
    if (status != 0) throw std::runtime_error("command failed: " + command);
  }

  std::filesystem::path dir_;
  std::string bindir_;
  int port_ = 0;
};

// Runs `body` in a child process; returns its exit status.
template <typename F>
pid_t spawn(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child failed: %s\n", e.what());
      code = 1;
    }
    std::_Exit(code);
  }
  return pid;
}

inline int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace credentials::testing
