// src/db: connections to users' databases, on a real SQLite file and a real
// PostgreSQL server.
#include "db/connection.h"

#include <chrono>
#include <functional>
#include <limits>
#include <thread>

#include <gtest/gtest.h>

#include "credentials/database.h"
#include "credentials/errors.h"
#include "skills/skill_fixture.h"

namespace credentials::internal {
namespace {

using credentials::testing::make_pg_database;
using credentials::testing::PostgresServer;
using credentials::testing::sqlite_exec;
using credentials::testing::sqlite_value;
using credentials::testing::TempDir;

bool require_postgres() {
  if (PostgresServer::available()) return true;
  ADD_FAILURE() << PostgresServer::kNotConfigured;
  return false;
}
#define REQUIRE_PG()                 \
  do {                               \
    if (!require_postgres()) return; \
  } while (0)

Credential sqlite_credential(const std::filesystem::path& file) {
  Credential c;
  c.db_type = "sqlite";
  c.database = file.string();
  return c;
}

Credential pg_credential(const credentials::testing::PgDatabase& db) {
  Credential c;
  c.db_type = "postgres";
  c.host = PostgresServer::instance().host();
  c.port = PostgresServer::instance().port();
  c.database = db.database;
  c.username = db.role;
  c.password = db.password;
  c.connection_timeout = 10;
  return c;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SqliteConnectionTest, RowsAreTypedByStorageClass) {
  TempDir tmp;
  const auto file = tmp / "t.db";
  sqlite_exec(file,
              "CREATE TABLE t (i INTEGER, r REAL, s TEXT, n TEXT, b BLOB);"
              "INSERT INTO t VALUES (42, 2.5, 'hi', NULL, x'0102');");
  auto conn = connect(connection_params(sqlite_credential(file)));
  const auto result = conn->execute("SELECT * FROM t", {}, std::nullopt);
  EXPECT_EQ(result, nlohmann::json::parse(
                        R"({"query_result":[{"i":42,"r":2.5,"s":"hi","n":null,"b":"AQI="}],
                            "row_count":1})"));
}

TEST(SqliteConnectionTest, BoundParametersAndAffectedRows) {
  TempDir tmp;
  const auto file = tmp / "t.db";
  sqlite_exec(file, "CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1,'a'),(2,'b');");
  auto conn = connect(connection_params(sqlite_credential(file)));
  const auto result = conn->execute("UPDATE t SET v = ? WHERE id = ?",
                                    {std::string("z"), std::int64_t{2}}, std::nullopt);
  EXPECT_EQ(result, (nlohmann::json{{"affected_rows", 1}}));
  EXPECT_EQ(sqlite_value(file, "SELECT v FROM t WHERE id = 2"), "z");
}

// A connection keeps each statement prepared after its first execution:
// every execution binds its own values, none leaves a read transaction
// behind (the file is in rollback-journal mode and sqlite_exec does not
// wait, so a lingering read lock would make its writes fail), not even a
// failed one, and a schema changed by another connection is seen.
TEST(SqliteConnectionTest, AKeptStatementBindsEachExecutionsValuesAndHoldsNoLock) {
  TempDir tmp;
  const auto file = tmp / "t.db";
  sqlite_exec(file, "CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1,'a'),(2,'b');");
  auto conn = connect(connection_params(sqlite_credential(file)));
  const std::string by_id = "SELECT * FROM t WHERE id = ?";
  auto v_of = [&](std::int64_t id) {
    const auto result = conn->execute(by_id, {id}, std::nullopt);
    return result["row_count"] == 1 ? result["query_result"][0]["v"].get<std::string>() : std::string("(none)");
  };
  EXPECT_EQ(v_of(1), "a");
  EXPECT_EQ(v_of(2), "b");
  EXPECT_EQ(v_of(3), "(none)");
  EXPECT_NO_THROW(sqlite_exec(file, "INSERT INTO t VALUES (3,'c')"));
  EXPECT_EQ(v_of(3), "c");

  EXPECT_THROW((void)conn->execute("SELECT abs(?) FROM t", {std::numeric_limits<std::int64_t>::min()}, std::nullopt),
               DatabaseError);  // integer overflow, once the statement has begun reading
  EXPECT_NO_THROW(sqlite_exec(file, "INSERT INTO t VALUES (4,'d')"));
  EXPECT_EQ(conn->execute("SELECT abs(?) AS a FROM t WHERE id = 1", {std::int64_t{-5}}, std::nullopt)["query_result"][0]["a"],
            5);

  sqlite_exec(file, "ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'x'");
  EXPECT_EQ(conn->execute(by_id, {std::int64_t{4}}, std::nullopt)["query_result"][0],
            (nlohmann::json{{"id", 4}, {"v", "d"}, {"w", "x"}}));
}

TEST(SqliteConnectionTest, SecondStatementIsRefusedAndNotRun) {
  TempDir tmp;
  const auto file = tmp / "t.db";
  sqlite_exec(file, "CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);");
  auto conn = connect(connection_params(sqlite_credential(file)));
  EXPECT_THROW((void)conn->execute("SELECT 1; DROP TABLE t", {}, std::nullopt), DatabaseError);
  EXPECT_EQ(sqlite_value(file, "SELECT count(*) FROM t"), "1");
}

TEST(SqliteConnectionTest, MissingFileIsAnErrorAndIsNotCreated) {
  TempDir tmp;
  const auto file = tmp / "missing.db";
  EXPECT_THROW((void)connect(connection_params(sqlite_credential(file))), DatabaseError);
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST(SqliteConnectionTest, TimeoutInterruptsALongStatement) {
  TempDir tmp;
  const auto file = tmp / "t.db";
  sqlite_exec(file, "CREATE TABLE t (id INTEGER);");
  auto conn = connect(connection_params(sqlite_credential(file)));
  const std::string endless =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)conn->execute(endless, {}, std::chrono::milliseconds(200)), DatabaseError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The connection is still usable afterwards.
  EXPECT_EQ(conn->execute("SELECT 1 AS one", {}, std::nullopt)["row_count"], 1);
}

TEST(TestConnectionTest, SqliteReportsVersion) {
  TempDir tmp;
  const auto file = tmp / "t.db";
  sqlite_exec(file, "CREATE TABLE t (id INTEGER);");
  const auto result = test_connection(sqlite_credential(file));
  EXPECT_EQ(result.server_version.rfind("SQLite 3.", 0), 0u) << result.server_version;
  EXPECT_GE(result.round_trip.count(), 0);
}

TEST(TestConnectionTest, UnsupportedTypesSayThisBuildCannotConnect) {
  for (const char* type : {"mysql", "mongodb", "redis"}) {
    Credential c;
    c.db_type = type;
    c.host = "localhost";
    const std::string message = message_of([&] { (void)test_connection(c); });
    EXPECT_NE(message.find("this build cannot connect to"), std::string::npos) << message;
    EXPECT_THROW((void)test_connection(c), InvalidArgumentError);
  }
}

TEST(DatabaseUrlTest, ParsesIntoStructuredParameters) {
  auto p = parse_database_url(
      "postgresql://app%40corp:p%40ss%2Fw%3Ard%23%25@db.example.com:6543/my%20db?sslmode=require"
      "&connect_timeout=7");
  EXPECT_EQ(p.kind, DbKind::kPostgres);
  EXPECT_EQ(p.username, "app@corp");
  EXPECT_EQ(p.password.reveal(), "p@ss/w:rd#%");
  EXPECT_EQ(p.host, "db.example.com");
  EXPECT_EQ(p.port, 6543);
  EXPECT_EQ(p.database, "my db");
  EXPECT_EQ(p.ssl_mode, "require");
  EXPECT_EQ(p.connect_timeout_seconds, 7);

  auto v6 = parse_database_url("postgres://u@[::1]/d");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 5432);

  auto s = parse_database_url("sqlite:////var/data/app.db");
  EXPECT_EQ(s.kind, DbKind::kSqlite);
  EXPECT_EQ(s.database, "/var/data/app.db");

  EXPECT_THROW((void)parse_database_url("mysql://u:p@h/d"), InvalidArgumentError);
  // The error never echoes the URL (it holds a password).
  const std::string message =
      message_of([] { (void)parse_database_url("postgres://u:hunter2@h:x/d"); });
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

TEST(ScrubTest, ReplacesQuotedInputs) {
  EXPECT_EQ(scrub_inputs("invalid input: \"1 OR 1=1\"", {std::string("1 OR 1=1")}),
            "invalid input: \"***\"");
}

TEST(PostgresConnectionTest, RowsAreTypedByColumnType) {
  REQUIRE_PG();
  auto db = make_pg_database("types", "types-pw");
  auto conn = connect(connection_params(pg_credential(db)));
  const auto result = conn->execute(
      "SELECT 1::int2 AS a, 2::int4 AS b, 9007199254740993::int8 AS c, 1.5::float4 AS d, "
      "2.25::float8 AS e, 12.50::numeric AS f, 42::numeric AS g, true AS h, NULL::text AS i, "
      "'2024-01-02 03:04:05.5'::timestamp AS j, '2024-01-02 03:04:05+00'::timestamptz AS k, "
      "'2024-01-02'::date AS l, '{\"x\": [1]}'::jsonb AS m, 'text' AS n",
      {}, std::nullopt);
  ASSERT_EQ(result["row_count"], 1);
  const auto& row = result["query_result"][0];
  EXPECT_EQ(row["a"], 1);
  EXPECT_EQ(row["b"], 2);
  EXPECT_EQ(row["c"].get<std::int64_t>(), 9007199254740993LL);
  EXPECT_EQ(row["d"], 1.5);
  EXPECT_EQ(row["e"], 2.25);
  EXPECT_EQ(row["f"], 12.5);
  EXPECT_TRUE(row["g"].is_number_integer());
  EXPECT_EQ(row["h"], true);
  EXPECT_TRUE(row["i"].is_null());
  EXPECT_EQ(row["j"], "2024-01-02T03:04:05.5");
  EXPECT_TRUE(row["k"].get<std::string>().find('T') == 10) << row["k"];
  EXPECT_EQ(row["l"], "2024-01-02");
  EXPECT_EQ(row["m"], nlohmann::json::parse(R"({"x":[1]})"));
  EXPECT_EQ(row["n"], "text");
}

TEST(PostgresConnectionTest, TypedParametersAndAffectedRows) {
  REQUIRE_PG();
  auto db = make_pg_database("params", "params-pw");
  db.exec("CREATE TABLE t (id int, v text, f float8, b bool, n text)");
  auto conn = connect(connection_params(pg_credential(db)));
  EXPECT_EQ(conn->execute("INSERT INTO t VALUES ($1, $2, $3, $4, $5)",
                          {std::int64_t{1}, std::string("x"), 0.5, true, nullptr}, std::nullopt),
            (nlohmann::json{{"affected_rows", 1}}));
  const auto rows = conn->execute("SELECT * FROM t WHERE id = $1", {std::int64_t{1}}, std::nullopt);
  EXPECT_EQ(rows["query_result"][0],
            nlohmann::json::parse(R"({"id":1,"v":"x","f":0.5,"b":true,"n":null})"));
}

// A connection keeps statements prepared; one whose table gains a column
// ("cached plan must not change result type") is prepared again, not
// failed at every later execution.
TEST(PostgresConnectionTest, AKeptStatementSurvivesAChangedTable) {
  REQUIRE_PG();
  auto db = make_pg_database("reshape", "reshape-pw");
  db.exec("CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a')");
  auto conn = connect(connection_params(pg_credential(db)));
  const std::string by_id = "SELECT * FROM t WHERE id = $1";
  EXPECT_EQ(conn->execute(by_id, {std::int64_t{1}}, std::nullopt)["query_result"][0],
            (nlohmann::json{{"id", 1}, {"v", "a"}}));
  db.exec("ALTER TABLE t ADD COLUMN w text DEFAULT 'x'");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(conn->execute(by_id, {std::int64_t{1}}, std::nullopt)["query_result"][0],
              (nlohmann::json{{"id", 1}, {"v", "a"}, {"w", "x"}}));
  }
}

TEST(PostgresConnectionTest, PasswordWithUrlSpecialCharactersConnects) {
  REQUIRE_PG();
  auto db = make_pg_database("special", "p@ss:/w#rd%'\"x");
  const auto result = test_connection(pg_credential(db));
  EXPECT_EQ(result.server_version.rfind("PostgreSQL ", 0), 0u) << result.server_version;
}

// Masking the password in a driver's text showed where it matched (a
// password equal to the host hid the host; "e" turned "does not exist" into
// "do***s not ***xist"): the text of a failure must be the same whatever the
// password, and libpq's and SQLite's texts never hold it.
TEST(PostgresConnectionTest, DriverMessagesDoNotDependOnThePassword) {
  REQUIRE_PG();
  auto db = make_pg_database("scrub", "Zq9SecretPw");
  for (const std::string& database : {db.database + "_missing", db.database}) {
    Credential c = pg_credential(db);
    c.database = database;
    c.password = "wrong-Zq9";
    const std::string reference = message_of([&] { (void)test_connection(c); });
    EXPECT_EQ(reference.find("wrong-Zq9"), std::string::npos) << reference;
    for (const std::string& password :
         {c.host, c.username, database, std::string("e"), std::string("s"),
          std::string("does not exist"), std::string("password"), std::string("failed")}) {
      c.password = password;
      EXPECT_EQ(message_of([&] { (void)test_connection(c); }), reference)
          << "password '" << password << "'";
    }
  }
  Credential c = pg_credential(db);
  c.password = "wrong-Zq9";
  const std::string wrong = message_of([&] { (void)test_connection(c); });
  EXPECT_NE(wrong.find("password authentication failed"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find(c.host), std::string::npos) << wrong;
}

TEST(SqliteConnectionTest, DriverMessagesDoNotDependOnThePassword) {
  Credential c;
  c.db_type = "sqlite";
  c.database = "/nonexistent-dir/app.db";
  c.password = "reference";
  const std::string reference = message_of([&] { (void)test_connection(c); });
  EXPECT_NE(reference.find("/nonexistent-dir/app.db"), std::string::npos) << reference;
  for (const std::string& password : {std::string("open"), std::string("o"), std::string("app"),
                                      std::string("/nonexistent-dir/app.db")}) {
    c.password = password;
    EXPECT_EQ(message_of([&] { (void)test_connection(c); }), reference) << password;
  }
}

TEST(PostgresConnectionTest, InputValuesAreScrubbedFromErrors) {
  REQUIRE_PG();
  auto db = make_pg_database("inputs", "inputs-pw");
  db.exec("CREATE TABLE t (id int)");
  auto conn = connect(connection_params(pg_credential(db)));
  const std::string message = message_of([&] {
    (void)conn->execute("SELECT * FROM t WHERE id = $1", {std::string("1 OR 1=1")}, std::nullopt);
  });
  EXPECT_NE(message.find("invalid input syntax"), std::string::npos) << message;
  EXPECT_EQ(message.find("1 OR 1=1"), std::string::npos) << message;
  EXPECT_TRUE(conn->healthy());
}

TEST(PostgresConnectionTest, StatementTimeoutCancels) {
  REQUIRE_PG();
  auto db = make_pg_database("timeout", "timeout-pw");
  auto conn = connect(connection_params(pg_credential(db)));
  const auto start = std::chrono::steady_clock::now();
  const std::string message = message_of(
      [&] { (void)conn->execute("SELECT pg_sleep(5)", {}, std::chrono::milliseconds(200)); });
  EXPECT_NE(message.find("timeout"), std::string::npos) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  // Without a timeout the setting is reset.
  EXPECT_EQ(conn->execute("SHOW statement_timeout", {},
                          std::nullopt)["query_result"][0]["statement_timeout"],
            "0");
}

TEST(PostgresConnectionTest, MultipleStatementsAreRefused) {
  REQUIRE_PG();
  auto db = make_pg_database("multi", "multi-pw");
  db.exec("CREATE TABLE t (id int)");
  auto conn = connect(connection_params(pg_credential(db)));
  EXPECT_THROW((void)conn->execute("SELECT $1::int; DROP TABLE t", {std::int64_t{1}}, std::nullopt),
               DatabaseError);
  EXPECT_EQ(db.exec("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "1");
}

}  // namespace
}  // namespace credentials::internal
