// Executing skills with vault credentials on a real SQLite file and a real
// PostgreSQL server: the example skills, injections, rotation, isolation,
// db_config_file confinement, concurrency.
#include <cstdlib>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "credentials/audit.h"
#include "credentials/skills.h"
#include "crypto/primitives.h"
#include "skills/skill_fixture.h"

namespace credentials {
namespace {

using testing::make_pg_database;
using testing::PgDatabase;
using testing::PostgresServer;
using testing::sqlite_exec;
using testing::sqlite_value;
using testing::write_file;
using testing::write_skill;

const std::vector<std::string> kInjections = {
    "1 OR 1=1",     "1; DROP TABLE users",        "' OR ''='",
    "1' OR '1'='1", "1); DELETE FROM orders; --", "7 OR customer_id = 8"};

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

class SkillRunnerTest : public testing::VaultFixture {
 protected:
  void SetUp() override {
    VaultFixture::SetUp();
    skills_dir_ = tmp_ / "skills";
    testing::copy_example_skills(skills_dir_);
  }

  SkillRunner runner(Vault& vault) { return SkillRunner::open(vault, {.skills_dir = skills_dir_}); }
  SkillRunner runner() { return runner(*vault_); }
  // A skill that names alice's first credential by its id, not its name.
  void write_skill_naming_alices_credential_by_id(const std::string& name) {
    const std::string alice_id = vault_->list_credentials(alice_).at(0).credential_id;
    write_skill(skills_dir_, name,
                fmt::format("name: {}\nexecutor: action\naction:\n  type: data_query\n"
                            "  query: SELECT * FROM users\n  credential_ref: \"{}\"\n",
                            name, alice_id));
  }

  // alice's SQLite database with the example schema; both example skills'
  // credentials point at it.
  std::filesystem::path setup_sqlite() {
    const auto file = tmp_ / "app.db";
    sqlite_exec(file, testing::kSqliteSchema);
    for (const char* name : {"my_postgres_main", "orders_db"}) {
      vault_->store_credential(alice_,
                               {.name = name, .db_type = "sqlite", .database = file.string()});
    }
    return file;
  }

  NewCredential pg_credential(const std::string& name, const PgDatabase& db) {
    NewCredential c;
    c.name = name;
    c.db_type = "postgres";
    c.host = PostgresServer::instance().host();
    c.port = PostgresServer::instance().port();
    c.database = db.database;
    c.username = db.role;
    c.password = db.password;
    c.connection_timeout = 10;
    return c;
  }

  PgDatabase setup_postgres(const std::string& password = "alice-pg-pw") {
    PgDatabase db = make_pg_database("alice", password);
    db.exec(testing::kPostgresSchema);
    vault_->store_credential(alice_, pg_credential("my_postgres_main", db));
    vault_->store_credential(alice_, pg_credential("orders_db", db));
    return db;
  }

  std::filesystem::path skills_dir_;
};

TEST_F(SkillRunnerTest, UserFetcherOnSqlite) {
  setup_sqlite();
  SkillRunner r = runner();
  const auto result = r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_);
  EXPECT_EQ(result, nlohmann::json::parse(R"({"query_result": [{"id": 1,
      "email": "alice@example.com", "name": "Alice", "created_at": "2024-01-02T03:04:05",
      "status": "active"}], "row_count": 1})"));
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 99}}, alice_)["row_count"], 0);
}

TEST_F(SkillRunnerTest, OrderLookupOnSqliteThroughDbConfigFile) {
  setup_sqlite();
  SkillRunner r = runner();
  const auto result =
      r.execute("DatabaseOrderLookup", {{"customer_id", 7}, {"status", "shipped"}}, alice_);
  EXPECT_EQ(result, nlohmann::json::parse(R"({"query_result": [{"id": 10, "customer_id": 7,
      "status": "shipped", "total": 19.99, "placed_at": "2024-03-01T10:00:00Z"}],
      "row_count": 1})"));
}

TEST_F(SkillRunnerTest, UserFetcherOnPostgres) {
  REQUIRE_POSTGRES();
  setup_postgres();
  SkillRunner r = runner();
  const auto result = r.execute("DatabaseUserFetcher", {{"user_id", 2}}, alice_);
  EXPECT_EQ(result, nlohmann::json::parse(R"({"query_result": [{"id": 2,
      "email": "al@example.com", "name": "Al", "created_at": "2024-02-03T04:05:06.5",
      "status": "active"}], "row_count": 1})"));
  // The Python API's free-function form takes text ids as well: "2" is bound
  // untyped and the server reads it as an integer.
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", "2"}}, alice_)["row_count"], 1);
}

TEST_F(SkillRunnerTest, OrderLookupOnPostgresThroughDbConfigFile) {
  REQUIRE_POSTGRES();
  setup_postgres();
  SkillRunner r = runner();
  const auto result =
      r.execute("DatabaseOrderLookup", {{"customer_id", 7}, {"status", "shipped"}}, alice_);
  ASSERT_EQ(result["row_count"], 1) << result;
  const auto& row = result["query_result"][0];
  EXPECT_EQ(row["id"], 10);
  EXPECT_EQ(row["total"], 19.99);
  EXPECT_EQ(row["placed_at"].get<std::string>().substr(0, 11), "2024-03-01T");
}

// Every payload is one bound value: no foreign rows come back and nothing
// changes, whether the database rejects the value or matches nothing.
void expect_injections_harmless(SkillRunner& r, const UserContext& alice,
                                const std::function<std::string()>& fingerprint) {
  const std::string before = fingerprint();
  for (const std::string& payload : kInjections) {
    for (const auto& [skill, inputs] : std::vector<std::pair<std::string, nlohmann::json>>{
             {"DatabaseUserFetcher", {{"user_id", payload}}},
             {"DatabaseOrderLookup", {{"customer_id", payload}, {"status", "shipped"}}},
             {"DatabaseOrderLookup", {{"customer_id", 7}, {"status", payload}}}}) {
      try {
        const auto result = r.execute(skill, inputs, alice);
        EXPECT_EQ(result["row_count"], 0) << skill << " with " << payload << ": " << result;
      } catch (const DatabaseError& e) {
        // Refused by the database ("invalid input syntax for type integer"),
        // and the message does not echo the payload.
        EXPECT_EQ(std::string(e.what()).find(payload), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_EQ(fingerprint(), before);
}

TEST_F(SkillRunnerTest, InjectionPayloadsAreInertOnSqlite) {
  const auto file = setup_sqlite();
  SkillRunner r = runner();
  expect_injections_harmless(r, alice_, [&] {
    return sqlite_value(file,
                        "SELECT (SELECT count(*) FROM users) || '/' || "
                        "(SELECT count(*) FROM orders) || '/' || "
                        "(SELECT group_concat(status) FROM users)");
  });
}

TEST_F(SkillRunnerTest, InjectionPayloadsAreInertOnPostgres) {
  REQUIRE_POSTGRES();
  const PgDatabase db = setup_postgres();
  SkillRunner r = runner();
  expect_injections_harmless(r, alice_, [&] {
    return db.exec(
        "SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM orders) "
        "|| '/' || (SELECT string_agg(status, ',' ORDER BY id) FROM users)");
  });
}

TEST_F(SkillRunnerTest, RoleWithUrlSpecialCharactersInPasswordConnects) {
  REQUIRE_POSTGRES();
  setup_postgres("p@ss:/w#rd%'\"x");
  SkillRunner r = runner();
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["row_count"], 1);
}

class PgRotationTest : public SkillRunnerTest {
 protected:
  void SetUp() override {
    SkillRunnerTest::SetUp();
    if (!PostgresServer::available()) return;
    db_ = setup_postgres("rotation-old-pw");
    write_skill(skills_dir_, "WhoAmI",
                "name: WhoAmI\nexecutor: action\naction:\n  type: data_query\n  source: postgres\n"
                "  query: SELECT pg_backend_pid() AS pid\n  credential_ref: my_postgres_main\n");
  }

  int backend_pid(SkillRunner& r) {
    return r.execute("WhoAmI", nlohmann::json::object(), alice_)["query_result"][0]["pid"];
  }

  // Sessions of alice's role still open on the server.
  int open_sessions() {
    return std::stoi(PostgresServer::instance().query_value(
        fmt::format("SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'", db_.role)));
  }

  void rotate_on_server(const std::string& password) {
    PostgresServer& server = PostgresServer::instance();
    server.execute(fmt::format("ALTER ROLE {} PASSWORD {}", server.quote_identifier(db_.role),
                               server.quote_literal(password)));
    db_.password = password;
  }

  PgDatabase db_;
};

TEST_F(PgRotationTest, ConnectionsAreReusedUntilARotation) {
  REQUIRE_POSTGRES();
  SkillRunner r = runner();
  const int first = backend_pid(r);
  EXPECT_EQ(backend_pid(r), first) << "the second execution should reuse the pooled connection";

  rotate_on_server("rotation-new-pw");
  vault_->update_password(alice_, "my_postgres_main", "rotation-new-pw");

  const int after = backend_pid(r);
  EXPECT_NE(after, first) << "the rotated credential must open a new connection";
  EXPECT_EQ(backend_pid(r), after);
  // The connection made with the old password was retired (closed).
  for (int i = 0; i < 50 && open_sessions() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(open_sessions(), 1);
}

TEST_F(PgRotationTest, RotationByAnotherProcessIsPickedUpWithoutRestart) {
  REQUIRE_POSTGRES();
  SkillRunner r = runner();
  const int first = backend_pid(r);

  // Another process: its own vault handle on the same directory.
  {
    Vault other = open_other_handle();
    rotate_on_server("rotated-elsewhere");
    other.update_password(alice_, "my_postgres_main", "rotated-elsewhere");
  }
  // Old sessions keep working after ALTER ROLE, so terminate them: the next
  // execution can only succeed by connecting with the new password.
  (void)PostgresServer::instance().query_value(fmt::format(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{}'",
      db_.role));
  const int after = backend_pid(r);
  EXPECT_NE(after, first);
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["row_count"], 1);
}

TEST_F(PgRotationTest, ConnectionClosedByTheServerIsReplacedNotFailed) {
  REQUIRE_POSTGRES();
  SkillRunner r = runner();
  const int first = backend_pid(r);
  (void)PostgresServer::instance().query_value(
      fmt::format("SELECT pg_terminate_backend({})", first));
  for (int i = 0; i < 50 && open_sessions() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(backend_pid(r), first);
}

TEST_F(PgRotationTest, ServerRotationWithoutVaultUpdateFailsCleanly) {
  REQUIRE_POSTGRES();
  SkillRunner r = runner();
  rotate_on_server("server-only-pw");
  (void)PostgresServer::instance().query_value(fmt::format(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{}'",
      db_.role));
  const std::string message = error_of([&] { (void)backend_pid(r); });
  EXPECT_NE(message.find("password authentication failed"), std::string::npos) << message;
  EXPECT_EQ(message.find("rotation-old-pw"), std::string::npos) << message;
  // Once the vault is updated, the next execution works.
  vault_->update_password(alice_, "my_postgres_main", "server-only-pw");
  EXPECT_GT(backend_pid(r), 0);
}

// The runner keeps a credential's checked version while the vault's change
// stamp holds: a write by another handle must still be seen at once.
TEST_F(SkillRunnerTest, ADeletionByAnotherHandleIsSeenAtTheNextExecution) {
  setup_sqlite();
  SkillRunner r = runner();
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["row_count"], 1);
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 2}}, alice_)["row_count"], 1);
  {
    Vault other = open_other_handle();
    other.delete_credential(alice_, "my_postgres_main");
  }
  EXPECT_THROW((void)r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_), CredentialNotFoundError);
}

TEST_F(SkillRunnerTest, AnAnswerGivenToAnAdministratorDoesNotServeTheSameUserWithoutTheRole) {
  setup_sqlite();
  write_skill_naming_alices_credential_by_id("ById");
  SkillRunner r = runner();
  const UserContext carol_admin{"carol", "carol", {"admin"}};
  const UserContext carol{"carol", "carol", {}};
  EXPECT_EQ(r.execute("ById", nlohmann::json::object(), carol_admin)["row_count"], 3);
  EXPECT_EQ(r.execute("ById", nlohmann::json::object(), carol_admin)["row_count"], 3);
  EXPECT_THROW((void)r.execute("ById", nlohmann::json::object(), carol), UnauthorizedError);
}

TEST_F(SkillRunnerTest, AnotherUsersCredentialIsRefused) {
  setup_sqlite();
  write_skill_naming_alices_credential_by_id("Steal");
  SkillRunner r = runner();
  EXPECT_THROW((void)r.execute("Steal", nlohmann::json::object(), bob_), UnauthorizedError);
  // By name, bob's own namespace is searched: alice's credential is not found.
  EXPECT_THROW((void)r.execute("DatabaseUserFetcher", {{"user_id", 1}}, bob_),
               CredentialNotFoundError);
  // And alice herself may run it.
  EXPECT_EQ(r.execute("Steal", nlohmann::json::object(), alice_)["row_count"], 3);
  // The refusal is not cached: bob is refused again after alice's success.
  EXPECT_THROW((void)r.execute("Steal", nlohmann::json::object(), bob_), UnauthorizedError);
}

TEST_F(SkillRunnerTest, DbConfigFileOutsideTheFolderIsRefused) {
  setup_sqlite();
  write_file(tmp_ / "outside.json", R"({"credential_ref": "orders_db"})");
  // Lexically outside: reported when the registry loads.
  write_skill(skills_dir_, "Dots",
              "name: Dots\nexecutor: action\naction:\n  type: data_query\n  query: SELECT 1\n"
              "  db_config_file: ../../outside.json\n");
  // Outside through a symlink inside the folder: refused at execution.
  write_skill(
      skills_dir_, "Link",
      "name: Link\nexecutor: action\naction:\n  type: data_query\n  query: SELECT 1 AS one\n"
      "  db_config_file: db_config.json\n");
  std::filesystem::create_symlink(tmp_ / "outside.json", skills_dir_ / "Link" / "db_config.json");
  // A symlinked directory leading out is refused the same way.
  write_skill(
      skills_dir_, "DirLink",
      "name: DirLink\nexecutor: action\naction:\n  type: data_query\n  query: SELECT 1 AS one\n"
      "  db_config_file: conf/outside.json\n");
  std::filesystem::create_directory_symlink(tmp_.path(), skills_dir_ / "DirLink" / "conf");

  SkillRunner r = runner();
  const std::string dots = error_of([&] { (void)r.execute("Dots", {}, alice_); });
  EXPECT_NE(dots.find("inside the skill's folder"), std::string::npos) << dots;
  for (const char* name : {"Link", "DirLink"}) {
    const std::string message = error_of([&] { (void)r.execute(name, {}, alice_); });
    EXPECT_NE(message.find("outside the skill's folder"), std::string::npos) << message;
  }
}

TEST_F(SkillRunnerTest, DbConfigFileOverridesAndRefusesPasswords) {
  const auto file = setup_sqlite();
  const auto other = tmp_ / "other.db";
  sqlite_exec(other,
              "CREATE TABLE users (id INTEGER, email TEXT, name TEXT, created_at TEXT, "
              "status TEXT); INSERT INTO users VALUES (1, 'other@example.com', 'O', 'x', 'y');");
  write_skill(skills_dir_, "Override",
              "name: Override\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT email FROM users WHERE id = {id}\n  db_config_file: db.json\n");
  write_file(skills_dir_ / "Override" / "db.json",
             fmt::format(R"({{"credential_ref": "orders_db", "database": "{}"}})", other.string()));
  write_skill(skills_dir_, "Secretive",
              "name: Secretive\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT 1 AS one\n  db_config_file: db.json\n");
  write_file(skills_dir_ / "Secretive" / "db.json",
             R"({"credential_ref": "orders_db", "password": "leaked"})");
  SkillRunner r = runner();
  EXPECT_EQ(r.execute("Override", {{"id", 1}}, alice_)["query_result"][0]["email"],
            "other@example.com");
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["query_result"][0]["email"],
            "alice@example.com");
  const std::string message = error_of([&] { (void)r.execute("Secretive", {}, alice_); });
  EXPECT_NE(message.find("secrets belong in the vault"), std::string::npos) << message;
  EXPECT_EQ(message.find("leaked"), std::string::npos) << message;
}

TEST_F(SkillRunnerTest, MissingInputsAreNamed) {
  setup_sqlite();
  SkillRunner r = runner();
  const std::string message = error_of([&] {
    (void)r.execute("DatabaseOrderLookup", {{"customer_id", "secret-value-123"}}, alice_);
  });
  EXPECT_NE(message.find("requires input status"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret-value-123"), std::string::npos) << message;
  EXPECT_THROW((void)r.execute("DatabaseUserFetcher", nlohmann::json::object(), alice_),
               SkillError);

  // A placeholder that is not in `requires` still needs an input.
  write_skill(skills_dir_, "Extra",
              "name: Extra\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT * FROM users WHERE id = {id} AND status = {status}\n"
              "  credential_ref: orders_db\n");
  SkillRunner r2 = runner();
  const std::string extra = error_of([&] { (void)r2.execute("Extra", {{"id", 1}}, alice_); });
  EXPECT_NE(extra.find("no input for placeholder status"), std::string::npos) << extra;
}

TEST_F(SkillRunnerTest, WritesReportAffectedRowsAndUserContextIsBindable) {
  const auto file = setup_sqlite();
  write_skill(skills_dir_, "Touch",
              "name: Touch\nexecutor: action\naction:\n  type: data_query\n  source: sqlite\n"
              "  query: UPDATE users SET name = {user_context.user_id} WHERE id = {id}\n"
              "  credential_ref: orders_db\n");
  SkillRunner r = runner();
  EXPECT_EQ(r.execute("Touch", {{"id", 2}, {"user_context", {{"user_id", "forged"}}}}, alice_),
            (nlohmann::json{{"affected_rows", 1}}));
  // user_context is the authenticated caller, not what the inputs claim.
  EXPECT_EQ(sqlite_value(file, "SELECT name FROM users WHERE id = 2"), "alice");
}

TEST_F(SkillRunnerTest, DatabaseUrlIsTheLastResort) {
  const auto file = setup_sqlite();
  write_skill(skills_dir_, "Global",
              "name: Global\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT count(*) AS n FROM users\n");
  SkillRunner r = runner();
  ::unsetenv("DATABASE_URL");
  const std::string message = error_of([&] { (void)r.execute("Global", {}, alice_); });
  EXPECT_NE(message.find("names no credential"), std::string::npos) << message;
  ::setenv("DATABASE_URL", ("sqlite:///" + file.string()).c_str(), 1);
  EXPECT_EQ(r.execute("Global", {}, alice_)["query_result"][0]["n"], 3);
  SkillRunner strict =
      SkillRunner::open(*vault_, {.skills_dir = skills_dir_, .database_url_fallback = false});
  EXPECT_THROW((void)strict.execute("Global", {}, alice_), SkillError);
  ::unsetenv("DATABASE_URL");
}

TEST_F(SkillRunnerTest, TimeoutBecomesStatementTimeoutOnPostgres) {
  REQUIRE_POSTGRES();
  setup_postgres();
  write_skill(skills_dir_, "Slow",
              "name: Slow\nexecutor: action\naction:\n  type: data_query\n  source: postgresql\n"
              "  query: SELECT pg_sleep(5)\n  credential_ref: my_postgres_main\n  timeout: 0.2\n");
  SkillRunner r = runner();
  const auto start = std::chrono::steady_clock::now();
  const std::string message = error_of([&] { (void)r.execute("Slow", {}, alice_); });
  EXPECT_NE(message.find("statement timeout"), std::string::npos) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  // The pooled connection is not left with that timeout for other skills.
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["row_count"], 1);
}

void run_concurrently(SkillRunner& r, const UserContext& alice) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 15;
  std::vector<std::future<int>> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.push_back(std::async(std::launch::async, [&r, &alice, t] {
      int ok = 0;
      for (int i = 0; i < kPerThread; ++i) {
        const int id = 1 + (t + i) % 2;
        nlohmann::json result;
        if (i % 3 == 0) {
          result = r.execute_async("DatabaseUserFetcher", {{"user_id", id}}, alice).get();
        } else {
          result = r.execute("DatabaseUserFetcher", {{"user_id", id}}, alice);
        }
        if (result["row_count"] == 1 && result["query_result"][0]["id"] == id) ++ok;
      }
      return ok;
    }));
  }
  for (auto& w : workers) EXPECT_EQ(w.get(), kPerThread);
}

// Each execution's event was sealed while its statement ran, and the
// threads' events overtook one another: every one is in the trail once, and
// the chain verifies.
void expect_one_event_per_execution(Vault& vault, std::size_t executions) {
  AuditQuery query;
  query.action = "skill";
  query.limit = 100000;
  const UserContext admin{"root", "root", {"admin"}};
  const auto events = vault.audit_events(admin, query);
  EXPECT_EQ(events.size(), executions);
  for (const AuditEvent& e : events) EXPECT_EQ(e.outcome, "ok");
  const AuditVerification verification = vault.verify_audit();
  EXPECT_TRUE(verification.ok) << verification.problem;
}

TEST_F(SkillRunnerTest, EightThreadsAtOnceOnSqlite) {
  setup_sqlite();
  SkillRunner r = runner();
  run_concurrently(r, alice_);
  expect_one_event_per_execution(*vault_, 8 * 15);
}

TEST_F(SkillRunnerTest, EightThreadsAtOnceOnPostgres) {
  REQUIRE_POSTGRES();
  setup_postgres();
  SkillRunner r = runner();
  run_concurrently(r, alice_);
  expect_one_event_per_execution(*vault_, 8 * 15);
}

// On PostgreSQL a success's event is sealed while the statement is at the
// server; a statement that then fails records its failure, not that success.
TEST_F(SkillRunnerTest, AFailedStatementOnPostgresIsAuditedAsAFailureOnly) {
  REQUIRE_POSTGRES();
  PgDatabase db = setup_postgres();
  write_skill(skills_dir_, "Broken",
              "name: Broken\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT * FROM no_such_table WHERE id = {id}\n"
              "  credential_ref: my_postgres_main\n");
  SkillRunner r = runner();
  EXPECT_EQ(r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["row_count"], 1);
  EXPECT_THROW((void)r.execute("Broken", {{"id", 1}}, alice_), DatabaseError);

  AuditQuery query;
  query.action = "skill";
  const UserContext admin{"root", "root", {"admin"}};
  const auto events = vault_->audit_events(admin, query);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].skill, "DatabaseUserFetcher");
  EXPECT_EQ(events[0].outcome, "ok");
  EXPECT_EQ(events[1].skill, "Broken");
  EXPECT_EQ(events[1].outcome, "error");
  EXPECT_EQ(events[1].error, "DatabaseError");
  EXPECT_TRUE(vault_->verify_audit().ok) << vault_->verify_audit().problem;
}

TEST_F(SkillRunnerTest, OtherExecutorsLoadButDoNotRun) {
  write_skill(skills_dir_, "Summarize", "name: Summarize\nexecutor: llm\nprompt: hi\n");
  SkillRunner r = runner();
  EXPECT_TRUE(r.problems().empty());
  const std::string message = error_of([&] { (void)r.execute("Summarize", {}, alice_); });
  EXPECT_NE(message.find("executor is 'llm'"), std::string::npos) << message;
}

TEST_F(SkillRunnerTest, UnsupportedDatabaseTypeIsSaidPlainly) {
  vault_->store_credential(alice_, {.name = "my_postgres_main",
                                    .db_type = "mysql",
                                    .host = "localhost",
                                    .database = "d",
                                    .username = "u",
                                    .password = "p"});
  SkillRunner r = runner();
  try {
    (void)r.execute("DatabaseUserFetcher", {{"user_id", 1}}, alice_);
    ADD_FAILURE() << "ran on mysql";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("this build cannot connect to mysql"), std::string::npos)
        << e.what();
  }
}

// A credential_ref is the credential's name as stored, whatever its script
// or spaces, in skill.md and in db_config.json alike; a db type this build
// does not know is named as such.
TEST_F(SkillRunnerTest, CredentialRefsMayBeAnyNameAUserCanHave) {
  const auto file = tmp_ / "app.db";
  sqlite_exec(file, testing::kSqliteSchema);
  const UserContext user{"юзер smith", "юзер@example.com", {"user"}};
  vault_->store_credential(user, {.name = "база данных", .db_type = "sqlite", .database = file.string()});
  vault_->store_credential(user, {.name = "заказы 2024", .db_type = "sqlite", .database = file.string()});
  vault_->store_credential(user, {.name = "склад", .db_type = "sqlserver", .host = "h", .port = 1433,
                                  .database = "d", .username = "u", .password = "p"});
  write_skill(skills_dir_, "Users",
              "name: Users\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT name FROM users WHERE id = {id}\n  credential_ref: база данных\n");
  write_skill(skills_dir_, "Orders",
              "name: Orders\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT count(*) AS n FROM orders\n  db_config_file: db.json\n");
  write_file(skills_dir_ / "Orders" / "db.json", R"({"credential_ref": "заказы 2024"})");
  write_skill(skills_dir_, "Stock",
              "name: Stock\nexecutor: action\naction:\n  type: data_query\n"
              "  query: SELECT 1\n  credential_ref: \"склад\"\n");
  SkillRunner r = runner();
  EXPECT_TRUE(r.problems().empty());
  EXPECT_EQ(r.execute("Users", {{"id", 1}}, user)["query_result"][0]["name"], "Alice");
  EXPECT_EQ(r.execute("Orders", nlohmann::json::object(), user)["row_count"], 1);
  const std::string message = error_of([&] { (void)r.execute("Stock", nlohmann::json::object(), user); });
  EXPECT_NE(message.find("unknown database type 'sqlserver'"), std::string::npos) << message;
  // Another user holds no credential of that name.
  EXPECT_THROW((void)r.execute("Users", {{"id", 1}}, alice_), CredentialNotFoundError);
}

TEST_F(SkillRunnerTest, EveryExecutionIsOneAuditEventWithoutInputValues) {
  setup_sqlite();
  write_skill_naming_alices_credential_by_id("Steal");
  SkillRunner r = runner();
  (void)r.execute("DatabaseUserFetcher", {{"user_id", "needle-input-42"}}, alice_);
  EXPECT_THROW((void)r.execute("Steal", nlohmann::json::object(), bob_), UnauthorizedError);

  const UserContext admin{"root", "root", {"admin"}};
  AuditQuery query;
  query.action = "skill";
  const std::vector<AuditEvent> events = vault_->audit_events(admin, query);
  ASSERT_EQ(events.size(), 2u);
  const std::string fetcher_query =
      "SELECT id, email, name, created_at, status FROM users WHERE id = {user_id}";
  EXPECT_EQ(events[0].actor, "alice");
  EXPECT_EQ(events[0].skill, "DatabaseUserFetcher");
  EXPECT_EQ(events[0].owner, "alice");
  EXPECT_EQ(events[0].name, "my_postgres_main");
  EXPECT_EQ(events[0].outcome, "ok");
  EXPECT_EQ(events[0].query_sha256,
            internal::hex_encode(internal::sha256(internal::as_bytes(fetcher_query))));
  EXPECT_EQ(events[1].actor, "bob");
  EXPECT_EQ(events[1].skill, "Steal");
  EXPECT_EQ(events[1].outcome, "denied");
  EXPECT_EQ(events[1].error, "UnauthorizedError");
  for (const AuditEvent& e : vault_->audit_events(admin, AuditQuery{})) {
    for (const std::string* field : {&e.owner, &e.name, &e.skill, &e.error, &e.action}) {
      EXPECT_EQ(field->find("needle-input-42"), std::string::npos);
    }
  }
}

// The Python API: execute_skill / execute_skill_async over get_vault() and
// CREDENTIAL_SKILLS_DIR. (get_vault() is process-wide, so this is the only
// test that configures it.)
TEST_F(SkillRunnerTest, FreeFunctionsUseTheEnvironment) {
  const auto file = tmp_ / "env.db";
  sqlite_exec(file, testing::kSqliteSchema);
  ::setenv("CREDENTIAL_VAULT_DIR", (tmp_ / "env-vault").c_str(), 1);
  ::setenv("CREDENTIAL_MASTER_KEY", std::string(key_.reveal()).c_str(), 1);
  ::setenv("CREDENTIAL_SKILLS_DIR", skills_dir_.c_str(), 1);
  get_vault().store_credential(
      alice_, {.name = "my_postgres_main", .db_type = "sqlite", .database = file.string()});
  EXPECT_EQ(execute_skill("DatabaseUserFetcher", {{"user_id", 1}}, alice_)["row_count"], 1);
  auto future = execute_skill_async("DatabaseUserFetcher", {{"user_id", 3}}, alice_);
  EXPECT_EQ(future.get()["query_result"][0]["email"], "mallory@example.com");
  auto refused = execute_skill_async("DatabaseUserFetcher", {{"user_id", 1}}, bob_);
  EXPECT_THROW((void)refused.get(), CredentialNotFoundError);
  ::unsetenv("CREDENTIAL_MASTER_KEY");
}

}  // namespace
}  // namespace credentials
