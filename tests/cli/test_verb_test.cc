// `test`: a real connection to a real SQLite file and a real PostgreSQL
// server (started by pg_virtualenv around the test run), and the password
// never in the output, even when the connection fails.

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

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

// The lines of `text`, for checking that nothing printed starts a line of
// its own.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// Masking the password in the driver's text showed where it matched: a
// password equal to the host hid the host, "p" turned words into "***".
// The text of the same failure must be the same whatever the password.
TEST_F(TestVerbTest, PostgresFailureTextDoesNotDependOnThePassword) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  PostgresServer& server = PostgresServer::instance();
  const std::string role = unique_name("cli_role");
  const std::string database = unique_name("cli_db");
  server.create_role(role, kAwkwardPassword);
  server.create_database(database, role);
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "pg", "--host", server.host(), "--port",
                 std::to_string(server.port()), "--database", database, "--username", role,
                 "--connection-timeout", "10", "--password-stdin"},
                "first-wrong-password\n")
                .exit_code,
            kOk);
  const CliResult reference = cli({"test", "--user", "alice", "--name", "pg"});
  ASSERT_EQ(reference.exit_code, kCouldNotConnect) << reference;
  EXPECT_NE(reference.err.find("password authentication failed"), std::string::npos) << reference;

  // Passwords equal to each field the message shows, to words of the
  // message, and single letters.
  const std::vector<std::string> passwords = {server.host(),
                                              role,
                                              database,
                                              std::to_string(server.port()),
                                              "alice",
                                              "pg",
                                              "p",
                                              "o",
                                              "a",
                                              "connection",
                                              "password",
                                              "failed",
                                              "could not connect",
                                              "FATAL"};
  for (const std::string& password : passwords) {
    ASSERT_EQ(
        cli({"update", "--user", "alice", "--name", "pg", "--password-stdin"}, password + "\n")
            .exit_code,
        kOk);
    const CliResult test = cli({"test", "--user", "alice", "--name", "pg"});
    EXPECT_EQ(test.exit_code, kCouldNotConnect) << test;
    EXPECT_EQ(test.err, reference.err) << "password '" << password << "' changed the message";
    EXPECT_EQ(test.out, "");
  }
  // Nothing was masked: the host and the user are shown as they are.
  EXPECT_NE(reference.err.find(server.host()), std::string::npos) << reference;
  EXPECT_NE(reference.err.find(role), std::string::npos) << reference;
  EXPECT_EQ(reference.err.find("***"), std::string::npos) << reference;
}

TEST_F(TestVerbTest, SqliteFailureTextDoesNotDependOnThePassword) {
  const std::filesystem::path file = work_dir() / "no-such-dir" / "app.db";
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "local", "--db-type", "sqlite", "--database",
                 file.string(), "--password-stdin"},
                "reference-password\n")
                .exit_code,
            kOk);
  const CliResult reference = cli({"test", "--user", "alice", "--name", "local"});
  ASSERT_EQ(reference.exit_code, kCouldNotConnect) << reference;
  for (const std::string& password :
       {std::string("open"), std::string("o"), std::string("app.db"), std::string("no-such-dir"),
        std::string("database"), file.string()}) {
    ASSERT_EQ(
        cli({"update", "--user", "alice", "--name", "local", "--password-stdin"}, password + "\n")
            .exit_code,
        kOk);
    const CliResult test = cli({"test", "--user", "alice", "--name", "local"});
    EXPECT_EQ(test.exit_code, kCouldNotConnect) << test;
    EXPECT_EQ(test.err, reference.err) << "password '" << password << "' changed the message";
  }
  EXPECT_NE(reference.err.find(file.string()), std::string::npos) << reference;
}

// A server's words reach the terminal escaped: a line feed in an error
// cannot forge a line of its own, and format characters (U+202E reorders
// what follows) cannot change what is read. --json stays exact.
TEST_F(TestVerbTest, ServerTextCannotForgeLinesOrReorderWhatIsShown) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  PostgresServer& server = PostgresServer::instance();
  // The server's own database: the schema and functions are made there, and
  // the roles find them first on their search_path (SELECT version() is what
  // `test` runs).
  const std::string schema = unique_name("evil");
  const std::string raising = unique_name("cli_role");
  const std::string spoofing = unique_name("cli_role");
  server.create_role(raising, kAwkwardPassword);
  server.create_role(spoofing, kAwkwardPassword);
  const std::string spoofed_version =
      "PostgreSQL 99 \u202egnp.exe\u200b \x1b[31mred\x1b[0m \u2028 \u0085 \xef\xbb\xbf end";
  server.execute(
      "CREATE SCHEMA " + schema + "; " + "CREATE FUNCTION " + schema +
      ".raising() RETURNS text LANGUAGE plpgsql AS $$ BEGIN " +
      "RAISE EXCEPTION E'line1\\nFAKE LINE: password accepted\\rCR LINE'; END $$; " +
      "CREATE FUNCTION " + schema + ".spoofing() RETURNS text LANGUAGE sql AS $$ SELECT " +
      server.quote_literal(spoofed_version) + "::text $$; " + "GRANT USAGE ON SCHEMA " + schema +
      " TO " + raising + ", " + spoofing + "; " + "CREATE SCHEMA " + schema + "_r; CREATE SCHEMA " +
      schema + "_s; " + "CREATE FUNCTION " + schema +
      "_r.version() RETURNS text LANGUAGE sql AS $$ SELECT " + schema + ".raising() $$; " +
      "CREATE FUNCTION " + schema + "_s.version() RETURNS text LANGUAGE sql AS $$ SELECT " +
      schema + ".spoofing() $$; " + "GRANT USAGE ON SCHEMA " + schema + "_r TO " + raising + "; " +
      "GRANT USAGE ON SCHEMA " + schema + "_s TO " + spoofing + "; " + "ALTER ROLE " + raising +
      " SET search_path = " + schema + "_r, pg_catalog; " + "ALTER ROLE " + spoofing +
      " SET search_path = " + schema + "_s, pg_catalog");
  for (const auto& [name, role] :
       {std::pair{"raising", raising}, std::pair{"spoofing", spoofing}}) {
    ASSERT_EQ(cli({"add", "--user", "alice", "--name", name, "--host", server.host(), "--port",
                   std::to_string(server.port()), "--database", server.superuser_database(),
                   "--username", role, "--connection-timeout", "10", "--password-stdin"},
                  kAwkwardPassword + "\n")
                  .exit_code,
              kOk);
  }

  const CliResult raised = cli({"test", "--user", "alice", "--name", "raising"});
  EXPECT_EQ(raised.exit_code, kCouldNotConnect) << raised;
  EXPECT_NE(raised.err.find("line1\\x0aFAKE LINE: password accepted\\x0dCR LINE"),
            std::string::npos)
      << raised;
  for (const std::string& line : lines_of(raised.err)) {
    EXPECT_TRUE(line.starts_with("credential_manager: error: ") || line.starts_with("  hint: "))
        << "a line the tool did not write: " << line;
  }

  const CliResult shown = cli({"test", "--user", "alice", "--name", "spoofing"});
  ASSERT_EQ(shown.exit_code, kOk) << shown;
  EXPECT_NE(shown.out.find("server:     PostgreSQL 99 \\u202egnp.exe\\u200b \\x1b[31mred\\x1b[0m "
                           "\\u2028 \\u0085 \\ufeff end\n"),
            std::string::npos)
      << shown;
  for (const std::string raw : {"\u202e", "\u200b", "\x1b", "\u2028", "\u0085", "\xef\xbb\xbf"}) {
    EXPECT_EQ(shown.out.find(raw), std::string::npos) << shown;
  }
  const CliResult json = cli({"test", "--user", "alice", "--name", "spoofing", "--json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  EXPECT_EQ(nlohmann::json::parse(json.out)["server_version"], spoofed_version);
}

}  // namespace
}  // namespace credentials::testing
