// `audit`, `audit verify`, `audit head`: the events of a scripted session, per
// user isolation, JSON lines, filters, and tampering with vault.db detected.

#include <set>
#include <string>

#include <fmt/format.h>
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
  std::string previous_time;
  std::int64_t previous_seq = 0;
  for (const nlohmann::json& event : alice) {
    for (const char* field : {"seq", "time", "actor", "roles", "action", "owner", "name", "outcome",
                              "error", "pid"}) {
      EXPECT_TRUE(event.contains(field)) << field << ": " << event;
    }
    EXPECT_EQ(event["owner"], "alice") << event;
    EXPECT_GE(event["time"].get<std::string>(), previous_time) << "oldest first";
    previous_time = event["time"].get<std::string>();
    // A write's event has its number in the chain; a read's is in its
    // handle's segment and has none.
    const bool write = event["action"] == "store" || event["action"] == "update_password";
    EXPECT_EQ(event["seq"].is_number(), write) << event;
    if (write) {
      EXPECT_GT(event["seq"].get<std::int64_t>(), previous_seq) << "oldest first";
      previous_seq = event["seq"].get<std::int64_t>();
    }
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
  const std::string prefix =
      fmt::format("credentials-checkpoint:1:{}:{}:", first["vault_id"].get<std::string>(),
                  first["seq"].get<int>() + 1);
  EXPECT_EQ(text.out.rfind(prefix, 0), 0u) << text;
  EXPECT_EQ(text.out.size(), prefix.size() + 64 + 1) << text;  // the MAC in hex, and a newline
  EXPECT_EQ(first["checkpoint"].get<std::string>().rfind("credentials-checkpoint:1:", 0), 0u)
      << first;
}

// Checkpoints kept off the machine catch what the chain alone cannot: a
// whole-vault rollback (to an older copy, and then written to), and a
// checkpoint of another vault. Several may be given; text that is not a
// checkpoint is a usage error.
TEST_F(AuditVerbTest, VerifyWithCheckpointsDetectsAWholeVaultRollback) {
  const auto head = [&] {
    const CliResult result = cli({"audit", "head"});
    EXPECT_EQ(result.exit_code, kOk) << result;
    return result.out.substr(0, result.out.find('\n'));
  };
  const std::string early = head();
  std::filesystem::copy(vault_dir(), work_dir() / "older",
                        std::filesystem::copy_options::recursive);
  ASSERT_EQ(
      cli({"update", "--user", "alice", "--name", "prod_db", "--password-stdin"}, "newer-pw\n")
          .exit_code,
      kOk);
  const std::string later = head();
  ASSERT_NE(early, later);

  const CliResult both = cli({"audit", "verify", "--checkpoint", early, "--checkpoint", later});
  EXPECT_EQ(both.exit_code, kOk) << both;
  EXPECT_NE(both.out.find("2 checkpoints"), std::string::npos) << both;
  // Reads after the checkpoint extend the chain: it still holds it.
  ASSERT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk);
  EXPECT_EQ(cli({"audit", "verify", "--checkpoint", later}).exit_code, kOk);

  // The whole vault put back from the older copy: its own chain verifies...
  std::filesystem::remove_all(vault_dir());
  std::filesystem::copy(work_dir() / "older", vault_dir(),
                        std::filesystem::copy_options::recursive);
  ASSERT_EQ(cli({"audit", "verify"}).exit_code, kOk);
  EXPECT_EQ(cli({"audit", "verify", "--checkpoint", early}).exit_code, kOk);
  // ...but not the later checkpoint, before and after it is written to.
  const CliResult rolled_back = cli({"audit", "verify", "--checkpoint", later});
  EXPECT_EQ(rolled_back.exit_code, kDecryptionFailed) << rolled_back;
  EXPECT_NE(rolled_back.err.find("rolled back"), std::string::npos) << rolled_back;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk);
  const CliResult diverged = cli({"audit", "verify", "--checkpoint", early, "--checkpoint", later});
  EXPECT_EQ(diverged.exit_code, kDecryptionFailed) << diverged;
  EXPECT_NE(diverged.err.find("rolled back"), std::string::npos) << diverged;

  // Another vault's checkpoint.
  Environment other = env();
  other["CREDENTIAL_VAULT_DIR"] = (work_dir() / "other").string();
  ASSERT_EQ(cli_with_env({"init"}, other).exit_code, kOk);
  const CliResult other_head = cli_with_env({"audit", "head"}, other);
  const CliResult foreign =
      cli({"audit", "verify", "--checkpoint", other_head.out.substr(0, other_head.out.find('\n'))});
  EXPECT_EQ(foreign.exit_code, kDecryptionFailed) << foreign;
  EXPECT_NE(foreign.err.find("another vault"), std::string::npos) << foreign;

  for (const std::string& bad :
       std::vector<std::string>{"", "credentials-checkpoint:1:zz:1:00", "1 abc", early + "0"}) {
    const CliResult result = cli({"audit", "verify", "--checkpoint", bad});
    EXPECT_EQ(result.exit_code, kUsage) << "'" << bad << "': " << result;
  }
}

TEST_F(AuditVerbTest, VerifyWithCheckpointsOnThePostgresVault) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  const PostgresVault pg = make_postgres_vault();
  const Environment by_url{{"CREDENTIAL_MASTER_KEY", kMasterKey}, {"CREDENTIAL_VAULT_URL", pg.url}};
  ASSERT_EQ(cli_with_env({"init"}, by_url).exit_code, kOk);
  ASSERT_EQ(cli_with_env({"list", "--user", "alice"}, by_url).exit_code, kOk);  // an event
  const CliResult head = cli_with_env({"audit", "head", "--json"}, by_url);
  ASSERT_EQ(head.exit_code, kOk) << head;
  const auto parsed = nlohmann::json::parse(head.out);
  const std::string checkpoint = parsed["checkpoint"];
  EXPECT_EQ(cli_with_env({"audit", "verify", "--checkpoint", checkpoint}, by_url).exit_code, kOk);
  // The same position with another MAC: a chain that diverged from the checkpoint.
  std::string diverged = checkpoint;
  diverged.back() = diverged.back() == '0' ? '1' : '0';
  const CliResult result = cli_with_env({"audit", "verify", "--checkpoint", diverged}, by_url);
  EXPECT_EQ(result.exit_code, kDecryptionFailed) << result;
  // A later position the chain never reached: rolled back.
  const std::string beyond =
      fmt::format("credentials-checkpoint:1:{}:{}:{}", parsed["vault_id"].get<std::string>(),
                  parsed["seq"].get<int>() + 100, parsed["mac"].get<std::string>());
  EXPECT_EQ(cli_with_env({"audit", "verify", "--checkpoint", beyond}, by_url).exit_code,
            kDecryptionFailed);
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
