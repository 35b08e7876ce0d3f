// `audit`, `audit verify`, `audit head`: the events of a scripted session, per
// user isolation, JSON lines, filters, and tampering with vault.db detected.

#include <set>
#include <string>

#include <sqlite3.h>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"
#include "credentials/database.h"
#include "credentials/errors.h"
#include "credentials/vault.h"

namespace credentials::testing {
namespace {

class AuditVerbTest : public CliTest {
 protected:
  // A scripted session: alice stores, reads, rotates and lists; bob stores
  // and reads; alice is refused bob's credential.
  void SetUp() override {
    add_postgres("alice", "prod_db", "alice-audit-pw-1");
    ASSERT_EQ(cli({"show", "--user", "alice", "--name", "prod_db"}).exit_code, kOk);
    ASSERT_EQ(cli({"update", "--user", "alice", "--name", "prod_db", "--password-stdin"},
                  "alice-audit-pw-2\n")
                  .exit_code,
              kOk);
    ASSERT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk);
    add_postgres("bob", "bobs_db", "bob-audit-pw");
    ASSERT_EQ(cli({"show", "--user", "bob", "--name", "bobs_db"}).exit_code, kOk);
    ASSERT_EQ(cli({"show", "--user", "alice", "--owner", "bob", "--name", "bobs_db"}).exit_code,
              kUnauthorized);
  }

  std::vector<nlohmann::json> events(std::vector<std::string> args) {
    args.insert(args.begin(), "audit");
    args.push_back("--json");
    const CliResult result = cli(args);
    EXPECT_EQ(result.exit_code, kOk) << result;
    return parse_json_lines(result.out);
  }
};

TEST_F(AuditVerbTest, TableShowsTheSessionsEvents) {
  const CliResult table = cli({"audit", "--user", "alice"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_EQ(table.out.rfind("SEQ", 0), 0u) << table;
  for (const char* text : {"store", "get", "update", "list", "prod_db", "ok"}) {
    EXPECT_NE(table.out.find(text), std::string::npos) << text << ": " << table;
  }
  EXPECT_EQ(table.out.find("bobs_db"), std::string::npos) << table;
  EXPECT_EQ(table.out.find("-pw"), std::string::npos) << "no password: " << table;
}

TEST_F(AuditVerbTest, JsonLinesHoldEveryFieldOfAlicesEventsOnly) {
  const std::vector<nlohmann::json> alice = events({"--user", "alice"});
  ASSERT_GE(alice.size(), 4u);
  std::set<std::string> actions;
  std::int64_t previous_seq = 0;
  for (const nlohmann::json& event : alice) {
    for (const char* field : {"seq", "time", "actor", "roles", "action", "owner", "name", "outcome",
                              "error", "pid"}) {
      EXPECT_TRUE(event.contains(field)) << field << ": " << event;
    }
    EXPECT_EQ(event["owner"], "alice") << event;
    EXPECT_GT(event["seq"].get<std::int64_t>(), previous_seq) << "oldest first";
    previous_seq = event["seq"].get<std::int64_t>();
    actions.insert(event["action"].get<std::string>());
    EXPECT_EQ(event.dump().find("audit-pw"), std::string::npos) << event;
  }
  for (const char* action : {"store", "get", "update_password", "list"}) {
    EXPECT_TRUE(actions.count(action)) << action;
  }
  const std::vector<nlohmann::json> stores = events({"--user", "alice", "--action", "store"});
  ASSERT_EQ(stores.size(), 1u);
  EXPECT_EQ(stores[0]["name"], "prod_db");
  EXPECT_EQ(stores[0]["actor"], "alice");
  EXPECT_EQ(stores[0]["outcome"], "ok");
}

TEST_F(AuditVerbTest, NormalUserSeesOnlyTheirsAdministratorSeesAll) {
  for (const nlohmann::json& event : events({"--user", "bob"})) {
    EXPECT_EQ(event["owner"], "bob") << event;
  }
  std::set<std::string> owners;
  bool denial = false;
  for (const nlohmann::json& event : events({"--user", "root", "--roles", "admin"})) {
    owners.insert(event["owner"].get<std::string>());
    if (event["outcome"] == "denied" && event["actor"] == "alice") denial = true;
  }
  EXPECT_TRUE(owners.count("alice"));
  EXPECT_TRUE(owners.count("bob"));
  EXPECT_TRUE(denial) << "alice's refused read of bob's credential is an event";
  // A normal user cannot ask for another user's events.
  const CliResult other = cli({"audit", "--user", "alice", "--owner", "bob"});
  EXPECT_EQ(other.exit_code, kUnauthorized) << other;
  // The administrator may narrow to one owner.
  for (const nlohmann::json& event : events({"--user", "root", "--roles", "admin", "--owner", "bob"})) {
    EXPECT_EQ(event["owner"], "bob") << event;
  }
}

TEST_F(AuditVerbTest, FiltersByNameSinceAndLimit) {
  const std::vector<nlohmann::json> all = events({"--user", "alice", "--name", "prod_db"});
  ASSERT_GE(all.size(), 2u);
  for (const nlohmann::json& event : all) EXPECT_EQ(event["name"], "prod_db") << event;
  const std::vector<nlohmann::json> last = events({"--user", "alice", "--limit", "2"});
  ASSERT_EQ(last.size(), 2u);
  const std::vector<nlohmann::json> future =
      events({"--user", "alice", "--since", "2999-01-01T00:00:00Z"});
  EXPECT_TRUE(future.empty());
  EXPECT_FALSE(events({"--user", "alice", "--since", "2000-01-01"}).empty());
  const CliResult bad = cli({"audit", "--user", "alice", "--since", "yesterday"});
  EXPECT_EQ(bad.exit_code, kUsage) << bad;
  EXPECT_NE(bad.err.find("ISO-8601"), std::string::npos) << bad;
}

TEST_F(AuditVerbTest, ListingNeedsAUser) {
  const CliResult result = cli({"audit"});
  EXPECT_EQ(result.exit_code, kUsage) << result;
  EXPECT_NE(result.err.find("--user"), std::string::npos) << result;
}

TEST_F(AuditVerbTest, VerifyAndHeadTakeNoUser) {
  EXPECT_EQ(cli({"audit", "verify", "--user", "alice"}).exit_code, kUsage);
  EXPECT_EQ(cli({"audit", "head", "--user", "alice"}).exit_code, kUsage);
}

TEST_F(AuditVerbTest, VerifyPassesThenFailsAfterTheAuditTableIsEdited) {
  const CliResult ok = cli({"audit", "verify"});
  ASSERT_EQ(ok.exit_code, kOk) << ok;
  EXPECT_NE(ok.out.find("verified"), std::string::npos) << ok;
  const CliResult ok_json = cli({"audit", "verify", "--json"});
  ASSERT_EQ(ok_json.exit_code, kOk) << ok_json;
  const nlohmann::json report = nlohmann::json::parse(ok_json.out);
  EXPECT_EQ(report["ok"], true);
  EXPECT_GE(report["events"].get<int>(), 8);

  // Edit one event's sealed bytes, as someone with write access to the file could.
  sqlite_exec(vault_dir() / "vault.db",
              "UPDATE audit SET sealed = zeroblob(length(sealed)) WHERE seq = 3");
  const CliResult broken = cli({"audit", "verify"});
  EXPECT_EQ(broken.exit_code, kDecryptionFailed) << broken;
  EXPECT_NE(broken.err.find("event 3"), std::string::npos) << broken;
  const CliResult broken_json = cli({"audit", "verify", "--json"});
  EXPECT_EQ(broken_json.exit_code, kDecryptionFailed) << broken_json;
  const nlohmann::json bad = nlohmann::json::parse(broken_json.out);
  EXPECT_EQ(bad["ok"], false);
  EXPECT_EQ(bad["first_bad_seq"], 3);
  EXPECT_FALSE(bad["problem"].get<std::string>().empty());
  // The whole-vault check sees it too.
  EXPECT_EQ(cli({"verify"}).exit_code, kDecryptionFailed);
}

TEST_F(AuditVerbTest, DeletingAnEventIsDetected) {
  sqlite_exec(vault_dir() / "vault.db", "DELETE FROM audit WHERE seq = 2");
  const CliResult broken = cli({"audit", "verify"});
  EXPECT_EQ(broken.exit_code, kDecryptionFailed) << broken;
  EXPECT_NE(broken.err.find("event"), std::string::npos) << broken;
}

TEST_F(AuditVerbTest, HeadPrintsSeqAndMacAndGrows) {
  const CliResult head = cli({"audit", "head", "--json"});
  ASSERT_EQ(head.exit_code, kOk) << head;
  const nlohmann::json first = nlohmann::json::parse(head.out);
  EXPECT_GT(first["seq"].get<int>(), 0);
  EXPECT_EQ(first["mac"].get<std::string>().size(), 64u) << first;
  ASSERT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk);
  const CliResult text = cli({"audit", "head"});
  ASSERT_EQ(text.exit_code, kOk) << text;
  EXPECT_EQ(text.out.rfind(std::to_string(first["seq"].get<int>() + 1) + " ", 0), 0u) << text;
}

TEST_F(AuditVerbTest, NoVaultIsNotFound) {
  const CliResult result = cli({"audit", "verify", "--vault-dir", (work_dir() / "none").string()});
  EXPECT_EQ(result.exit_code, kNotFound) << result;
}

// The `test` verb goes through credentials::test_credential: one `test` event.
TEST_F(AuditVerbTest, TestVerbWritesATestEvent) {
  const std::filesystem::path file = work_dir() / "app.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "local", "--db-type", "sqlite", "--database",
                 file.string()})
                .exit_code,
            kOk);
  ASSERT_EQ(cli({"test", "--user", "alice", "--name", "local"}).exit_code, kOk);
  std::vector<nlohmann::json> tests = events({"--user", "alice", "--action", "test"});
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_EQ(tests[0]["name"], "local");
  EXPECT_EQ(tests[0]["owner"], "alice");
  EXPECT_EQ(tests[0]["outcome"], "ok");

  std::filesystem::remove(file);
  EXPECT_EQ(cli({"test", "--user", "alice", "--name", "local"}).exit_code, kCouldNotConnect);
  tests = events({"--user", "alice", "--action", "test"});
  ASSERT_EQ(tests.size(), 2u);
  EXPECT_EQ(tests[1]["outcome"], "error");
  EXPECT_EQ(tests[1]["error"], "DatabaseError");
}

// The library function itself, as an embedding application calls it.
TEST_F(AuditVerbTest, TestCredentialRecordsExactlyOneTestEvent) {
  const std::filesystem::path file = work_dir() / "lib.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_EQ(cli({"add", "--user", "carol", "--name", "lib", "--db-type", "sqlite", "--database",
                 file.string()})
                .exit_code,
            kOk);
  const UserContext carol{"carol", "carol", {"user"}};
  {
    Vault vault = Vault::open({.directory = vault_dir(), .master_key = SecretString(kMasterKey),
                               .create_if_missing = false});
    const ConnectionTestResult result = test_credential(vault, carol, "lib");
    EXPECT_EQ(result.server_version.rfind("SQLite 3.", 0), 0u);
    AuditQuery query;
    query.action = "test";
    const std::vector<AuditEvent> events = vault.audit_events(carol, query);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].name, "lib");
    EXPECT_EQ(events[0].outcome, "ok");
    EXPECT_EQ(events[0].actor, "carol");
    EXPECT_THROW((void)test_credential(vault, carol, "missing"), CredentialNotFoundError);
    EXPECT_EQ(vault.audit_events(carol, query).size(), 1u) << "no test event without a credential";
  }
}

}  // namespace
}  // namespace credentials::testing
