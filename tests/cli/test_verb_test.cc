// `test`: a real connection to a real SQLite file and a real PostgreSQL
// server (started by pg_virtualenv around the test run), and the password
// never in the output, even when the connection fails.

#include <unistd.h>

#include <string>

#include <sqlite3.h>

#include "cli/cli_fixture.h"
#include "support/postgres.h"

namespace credentials::testing {
namespace {

using TestVerbTest = CliTest;

// A password with every character that broke the Python version's URLs.
const std::string kAwkwardPassword = "p@ss:w/rd#%?&= 'q\"\\]é";

void create_sqlite_file(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x INTEGER)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

// Unique per test process: the server's roles and databases are global.
std::string unique_name(const std::string& prefix) {
  static int counter = 0;
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

TEST_F(TestVerbTest, SqliteFileConnects) {
  const std::filesystem::path file = work_dir() / "app.db";
  create_sqlite_file(file);
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "local", "--db-type", "sqlite", "--database",
                 file.string()})
                .exit_code,
            kOk);
  const CliResult test = cli({"test", "--user", "alice", "--name", "local"});
  ASSERT_EQ(test.exit_code, kOk) << test;
  EXPECT_NE(test.out.find("SQLite 3."), std::string::npos) << test;
  EXPECT_NE(test.out.find("round trip"), std::string::npos) << test;

  const CliResult json = cli({"test", "--user", "alice", "--name", "local", "--json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  const nlohmann::json result = nlohmann::json::parse(json.out);
  EXPECT_EQ(result["connected"], true);
  EXPECT_EQ(result["name"], "local");
  EXPECT_EQ(result["db_type"], "sqlite");
  EXPECT_EQ(result["server_version"].get<std::string>().rfind("SQLite 3.", 0), 0u) << result;
  EXPECT_GE(result["round_trip_ms"].get<double>(), 0.0);
}

TEST_F(TestVerbTest, MissingSqliteFileCannotConnect) {
  const std::filesystem::path file = work_dir() / "no-such-dir" / "app.db";
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "local", "--db-type", "sqlite", "--database",
                 file.string()})
                .exit_code,
            kOk);
  const CliResult test = cli({"test", "--user", "alice", "--name", "local", "--json"});
  EXPECT_EQ(test.exit_code, kCouldNotConnect) << test;
  EXPECT_EQ(test.out, "") << "no JSON for a failure: " << test;
  EXPECT_FALSE(std::filesystem::exists(file)) << "test must not create the database";
}

TEST_F(TestVerbTest, UnsupportedDbTypeSaysSoPlainly) {
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "my", "--db-type", "mysql", "--host", "h",
                 "--database", "d", "--username", "u", "--password-stdin"},
                "mysql-pw\n")
                .exit_code,
            kOk);
  const CliResult test = cli({"test", "--user", "alice", "--name", "my"});
  EXPECT_EQ(test.exit_code, kFailure) << test;
  EXPECT_NE(test.err.find("mysql"), std::string::npos) << test;
  EXPECT_NE(test.err.find("yet"), std::string::npos) << test;
  EXPECT_EQ(test.err.find("mysql-pw"), std::string::npos) << test;
}

TEST_F(TestVerbTest, UnknownCredentialIsNotFound) {
  add_postgres("alice", "db", "pw");
  const CliResult test = cli({"test", "--user", "alice", "--name", "nope"});
  EXPECT_EQ(test.exit_code, kNotFound) << test;
}

TEST_F(TestVerbTest, PostgresWithAnAwkwardPasswordConnects) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  PostgresServer& server = PostgresServer::instance();
  const std::string role = unique_name("cli_role");
  const std::string database = unique_name("cli_db");
  server.create_role(role, kAwkwardPassword);
  server.create_database(database, role);

  const CliResult add =
      cli({"add", "--user", "alice", "--name", "pg", "--db-type", "postgres", "--host",
           server.host(), "--port", std::to_string(server.port()), "--database", database,
           "--username", role, "--connection-timeout", "10", "--password-stdin"},
          kAwkwardPassword + "\n");
  ASSERT_EQ(add.exit_code, kOk) << add;

  const CliResult test = cli({"test", "--user", "alice", "--name", "pg"});
  ASSERT_EQ(test.exit_code, kOk) << test;
  EXPECT_NE(test.out.find("PostgreSQL "), std::string::npos) << test;
  EXPECT_NE(test.out.find("round trip"), std::string::npos) << test;
  EXPECT_EQ(test.out.find(kAwkwardPassword), std::string::npos) << test;
  EXPECT_EQ(test.err.find(kAwkwardPassword), std::string::npos) << test;

  const CliResult json = cli({"test", "--user", "alice", "--name", "pg", "--json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  const nlohmann::json result = nlohmann::json::parse(json.out);
  EXPECT_EQ(result["connected"], true);
  EXPECT_EQ(result["server_version"].get<std::string>().rfind("PostgreSQL ", 0), 0u) << result;
  EXPECT_GT(result["round_trip_ms"].get<double>(), 0.0);
  EXPECT_EQ(result["database"], database);
  EXPECT_FALSE(result.contains("password"));
}

TEST_F(TestVerbTest, PostgresWrongPasswordIsExitCode7AndNeverPrinted) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  PostgresServer& server = PostgresServer::instance();
  const std::string role = unique_name("cli_role");
  const std::string database = unique_name("cli_db");
  server.create_role(role, kAwkwardPassword);
  server.create_database(database, role);
  const std::string wrong = "wr0ng@:/#%-password";
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "pg", "--host", server.host(), "--port",
                 std::to_string(server.port()), "--database", database, "--username", role,
                 "--password-stdin"},
                wrong + "\n")
                .exit_code,
            kOk);
  const CliResult test = cli({"test", "--user", "alice", "--name", "pg"});
  EXPECT_EQ(test.exit_code, kCouldNotConnect) << test;
  EXPECT_NE(test.err.find("could not connect"), std::string::npos) << test;
  EXPECT_EQ(test.out.find(wrong), std::string::npos) << test;
  EXPECT_EQ(test.err.find(wrong), std::string::npos) << test;
  EXPECT_EQ(test.err.find(kAwkwardPassword), std::string::npos) << test;
}

TEST_F(TestVerbTest, PostgresSslModeIsHonoured) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  PostgresServer& server = PostgresServer::instance();
  const std::string role = unique_name("cli_role");
  const std::string database = unique_name("cli_db");
  server.create_role(role, kAwkwardPassword);
  server.create_database(database, role);
  // verify-full needs a trusted root certificate, which this machine does not
  // configure: the connection must fail, proving the mode reached libpq.
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "pg", "--host", server.host(), "--port",
                 std::to_string(server.port()), "--database", database, "--username", role,
                 "--ssl-mode", "verify-full", "--password-stdin"},
                kAwkwardPassword + "\n")
                .exit_code,
            kOk);
  const CliResult strict = cli({"test", "--user", "alice", "--name", "pg"});
  EXPECT_EQ(strict.exit_code, kCouldNotConnect) << strict;
  ASSERT_EQ(cli({"update", "--user", "alice", "--name", "pg", "--ssl-mode", "prefer"}).exit_code,
            kOk);
  const CliResult relaxed = cli({"test", "--user", "alice", "--name", "pg"});
  EXPECT_EQ(relaxed.exit_code, kOk) << relaxed;
}

TEST_F(TestVerbTest, UnreachableServerIsExitCode7) {
  ASSERT_EQ(
      cli({"add", "--user", "alice", "--name", "pg", "--host", "127.0.0.1", "--port", "1",
           "--database", "d", "--username", "u", "--connection-timeout", "2", "--password-stdin"},
          "unreachable-pw\n")
          .exit_code,
      kOk);
  const CliResult test = cli({"test", "--user", "alice", "--name", "pg"});
  EXPECT_EQ(test.exit_code, kCouldNotConnect) << test;
  EXPECT_EQ(test.err.find("unreachable-pw"), std::string::npos) << test;
}

}  // namespace
}  // namespace credentials::testing
