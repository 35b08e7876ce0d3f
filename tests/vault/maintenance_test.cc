// Versions, key rotation, re-encryption, backup/restore, verify and the
// import of a Python vault.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "credentials/credentials.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const UserContext kAlice{"alice", "alice", {"user"}};
const UserContext kBob{"bob", "bob", {"user"}};
const UserContext kAdmin{"admin", "admin", {"admin"}};

const fs::path kFixture = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/legacy/fixtures/legacy-vault";

class MaintenanceTest : public ::testing::Test {
 protected:
  Vault open_vault(const SecretString& key) {
    return Vault::open({.directory = dir_.path() / "vault", .master_key = key.clone()});
  }
  Vault open_vault() { return open_vault(key_); }
  void fill(Vault& vault, int count) {
    std::vector<NewCredential> batch;
    for (int i = 0; i < count; ++i) {
      batch.push_back({.name = "db" + std::to_string(i), .host = "h", .password = "pw" + std::to_string(i)});
    }
    vault.store_credentials(kAlice, std::move(batch));
  }

  TempDir dir_;
  SecretString key_ = generate_master_key();
};

TEST_F(MaintenanceTest, HistoryKeepsVersionsAndRollbackRestoresOne) {
  auto vault = Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone(), .history_depth = 3});
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "v1"});
  for (int v = 2; v <= 5; ++v) vault.update_password(kAlice, "db", "v" + std::to_string(v));
  const auto history = vault.history(kAlice, "db");
  ASSERT_EQ(history.size(), 3u);  // depth 3: versions 3, 4, 5
  EXPECT_EQ(history.front().version, 3u);
  EXPECT_EQ(history.back().version, 5u);
  EXPECT_TRUE(history.back().current);
  EXPECT_EQ(vault.rollback(kAlice, "db", 3), 6u);
  EXPECT_EQ(vault.get_credential(kAlice, "db").password.reveal(), "v3");
  EXPECT_THROW(vault.rollback(kAlice, "db", 1), CredentialNotFoundError);
  EXPECT_THROW((void)vault.history(kBob, vault.get_credential(kAlice, "db").credential_id), UnauthorizedError);
}

// Nothing of a deleted credential's versions stays in the vault's files:
// not the rows, and not their sealed bytes (in free pages, or in old page
// images in the write-ahead log), whether or not the vault is still open.
TEST_F(MaintenanceTest, DeleteLeavesNoVersionReadable) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "v1"});
  vault.update_password(kAlice, "db", "v2");
  vault.store_credential(kAlice, {.name = "kept", .host = "h", .password = "k"});
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "vault/vault.db").c_str(), &db), SQLITE_OK);
  auto sealed_versions = [&] {
    std::vector<std::string> out;
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "SELECT sealed FROM versions", -1, &stmt, nullptr);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      out.emplace_back(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    }
    sqlite3_finalize(stmt);
    return out;
  };
  const std::vector<std::string> before = sealed_versions();
  ASSERT_EQ(before.size(), 3u);
  vault.delete_credential(kAlice, "db");
  EXPECT_THROW((void)vault.history(kAlice, "db"), CredentialNotFoundError);
  const std::vector<std::string> after = sealed_versions();
  ASSERT_EQ(after.size(), 1u);
  sqlite3_close(db);
  auto scan = [&](const char* when) {
    for (const auto& entry : fs::recursive_directory_iterator(dir_.path() / "vault")) {
      if (!entry.is_regular_file()) continue;
      const std::string bytes = testing::read_file(entry.path());
      for (const std::string& sealed : before) {
        if (sealed == after[0]) continue;
        EXPECT_EQ(bytes.find(sealed.substr(12, 32)), std::string::npos)
            << when << ": a deleted version's sealed bytes are still in " << entry.path();
      }
    }
  };
  scan("vault open");
  { auto closing = std::move(vault); }
  scan("vault closed");
}

TEST_F(MaintenanceTest, MasterKeyRotationRewrapsKeysAndKeepsRecords) {
  const SecretString new_key = generate_master_key();
  {
    auto vault = open_vault();
    fill(vault, 10);
    vault.rotate_master_key(new_key.clone());
    // The same handle keeps working after its own rotation.
    EXPECT_EQ(vault.get_credential(kAlice, "db3").password.reveal(), "pw3");
    vault.store_credential(kAlice, {.name = "after", .host = "h", .password = "x"});
  }
  EXPECT_THROW((void)open_vault(key_), DecryptionFailedError);
  auto vault = open_vault(new_key);
  EXPECT_EQ(vault.get_credential(kAlice, "db9").password.reveal(), "pw9");
  EXPECT_EQ(vault.get_credential(kAlice, "after").password.reveal(), "x");
  EXPECT_TRUE(vault.verify().ok());
  // A passphrase works as the new key too.
  vault.rotate_master_key("a long passphrase for the vault");
  EXPECT_EQ(open_vault("a long passphrase for the vault").get_credential(kAlice, "db1").password.reveal(), "pw1");
}

TEST_F(MaintenanceTest, DataKeyRotationAndReencryptMoveEveryRecord) {
  auto vault = open_vault();
  fill(vault, 25);
  vault.update_password(kAlice, "db0", "new0");
  const std::int64_t new_key = vault.rotate_data_key();
  vault.store_credential(kAlice, {.name = "fresh", .host = "h", .password = "f"});
  auto keys = vault.keys();
  std::int64_t old_records = 0;
  for (const auto& key : keys) {
    if (key.purpose == "data" && key.key_id != new_key) old_records += key.records;
    if (key.key_id == new_key) {
      EXPECT_TRUE(key.current);
      EXPECT_EQ(key.records, 1);
    }
  }
  EXPECT_EQ(old_records, 26);  // 25 stores + one update (2 versions of db0)
  std::vector<ReencryptProgress> seen;
  const auto result = vault.reencrypt([&](const ReencryptProgress& p) { seen.push_back(p); }, 10);
  EXPECT_EQ(result.done, 26);
  EXPECT_EQ(result.target_key_id, new_key);
  EXPECT_GE(seen.size(), 3u);
  for (const auto& key : vault.keys()) {
    if (key.purpose == "data") {
      EXPECT_EQ(key.records, key.key_id == new_key ? 27 : 0);
    }
  }
  EXPECT_EQ(vault.get_credential(kAlice, "db0").password.reveal(), "new0");
  EXPECT_EQ(vault.history(kAlice, "db0").size(), 2u);
  EXPECT_TRUE(vault.verify().ok());
  EXPECT_EQ(vault.reencrypt().done, 0);  // nothing left: resumable and idempotent
}

TEST_F(MaintenanceTest, BackupRestoresToAVaultThatVerifies) {
  auto vault = open_vault();
  fill(vault, 20);
  const fs::path backup = dir_.path() / "snapshot.db";
  vault.backup(backup);
  struct stat st {};
  ASSERT_EQ(::stat(backup.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(verify_backup(backup, key_).ok());
  EXPECT_THROW((void)verify_backup(backup, generate_master_key()), DecryptionFailedError);

  const fs::path target = dir_.path() / "restored";
  restore_vault(backup, target, key_);
  EXPECT_THROW(restore_vault(backup, target, key_), AlreadyExistsError);
  restore_vault(backup, target, key_, /*force=*/true);
  auto restored = Vault::open({.directory = target, .master_key = key_.clone()});
  EXPECT_EQ(restored.list_credentials(kAlice).size(), 20u);
  EXPECT_EQ(restored.get_credential(kAlice, "db19").password.reveal(), "pw19");
  EXPECT_TRUE(restored.verify().ok());
}

TEST_F(MaintenanceTest, VerifyFindsATamperedRecord) {
  auto vault = open_vault();
  fill(vault, 3);
  EXPECT_TRUE(vault.verify().ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "vault/vault.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE versions SET sealed = zeroblob(80) WHERE rowid IN (SELECT rowid FROM versions LIMIT 1)",
                         nullptr, nullptr, nullptr),
            SQLITE_ERROR);  // WITHOUT ROWID: address one row by its key instead
  ASSERT_EQ(sqlite3_exec(db, "UPDATE versions SET sealed = zeroblob(80) WHERE lookup = (SELECT min(lookup) FROM versions)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const auto report = vault.verify();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.problems.size(), 1u);
}

// --- import of the Python vault -------------------------------------------------

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(MaintenanceTest, ImportsTheFixtureWithEveryField) {
  const SecretString legacy_key = read_text(kFixture / "master_key");
  auto vault = open_vault();
  const auto report = vault.import_legacy(kFixture / "vault.enc", legacy_key);
  EXPECT_EQ(report.imported, 3);
  const auto expected = nlohmann::json::parse(read_text(kFixture / "expected.json"));
  for (const auto& e : expected) {
    const UserContext owner{e["user_id"], "", {"user"}};
    for (const std::string& ref : {e["name"].get<std::string>(), e["credential_id"].get<std::string>()}) {
      const Credential c = vault.get_credential(owner, ref);
      EXPECT_EQ(c.credential_id, e["credential_id"]);
      EXPECT_EQ(c.owner, e["user_id"]);
      EXPECT_EQ(c.name, e["name"]);
      EXPECT_EQ(c.db_type, e["db_type"]);
      EXPECT_EQ(c.host, e["host"]);
      EXPECT_EQ(c.port, e["port"]);
      EXPECT_EQ(c.database, e["database"]);
      EXPECT_EQ(c.username, e["username"]);
      EXPECT_EQ(c.password.reveal(), e["password"].get<std::string>());
      EXPECT_EQ(c.description, e["description"].is_null() ? "" : e["description"].get<std::string>());
      EXPECT_EQ(c.ssl_mode, e.value("ssl_mode", nlohmann::json()).is_null() ? "" : e["ssl_mode"].get<std::string>());
      EXPECT_GT(c.created_at.time_since_epoch().count(), 0);
    }
  }
  // Importing the same file again duplicates nothing.
  const auto again = vault.import_legacy(kFixture / "vault.enc", legacy_key);
  EXPECT_EQ(again.imported, 0);
  EXPECT_EQ(again.skipped, 3);
  EXPECT_EQ(vault.list_credentials(kAdmin).size(), 3u);
  EXPECT_TRUE(vault.verify().ok());
}

TEST_F(MaintenanceTest, ImportWithAWrongKeyOrADryRunWritesNothing) {
  auto vault = open_vault();
  EXPECT_THROW(vault.import_legacy(kFixture / "vault.enc", generate_master_key()), DecryptionFailedError);
  const auto dry = vault.import_legacy(kFixture / "vault.enc", read_text(kFixture / "master_key"), true);
  EXPECT_EQ(dry.imported, 3);
  EXPECT_TRUE(dry.dry_run);
  EXPECT_EQ(vault.list_credentials(kAdmin).size(), 0u);
}

TEST_F(MaintenanceTest, AuditRecordsEveryOperationWithoutSecrets) {
  auto vault = open_vault();
  const std::string id = vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "canary-pw-1"});
  (void)vault.get_credential(kAlice, "db");
  EXPECT_THROW((void)vault.get_credential(kBob, id), UnauthorizedError);
  EXPECT_THROW((void)vault.get_credential(kAlice, "missing"), CredentialNotFoundError);
  vault.update_password(kAlice, "db", "canary-pw-2");
  (void)vault.list_credentials(kAlice);
  vault.delete_credential(kAlice, "db");
  const auto events = vault.audit_events(kAdmin, {});
  std::vector<std::string> actions;
  for (const auto& e : events) actions.push_back(e.action + ":" + e.outcome);
  EXPECT_EQ(actions, (std::vector<std::string>{"create_vault:ok", "store:ok", "get:ok",
                                               "get:denied", "get:not_found", "update_password:ok",
                                               "list:ok", "delete:ok"}));
  EXPECT_EQ(events[3].actor, "bob");
  EXPECT_EQ(events[3].error, "UnauthorizedError");
  EXPECT_EQ(events[1].owner, "alice");
  EXPECT_EQ(events[1].name, "db");
  // Alice sees the events about her namespace only; bob sees none of them.
  for (const auto& e : vault.audit_events(kAlice, {})) EXPECT_EQ(e.owner, "alice");
  EXPECT_TRUE(vault.audit_events(kBob, AuditQuery{}).empty() ||
              vault.audit_events(kBob, {}).front().owner == "bob");
  EXPECT_THROW((void)vault.audit_events(kBob, AuditQuery{.owner = "alice", .name = {}, .action = {}, .since = {}}), UnauthorizedError);
  EXPECT_TRUE(vault.verify_audit().ok);
  EXPECT_GE(vault.audit_head().seq, 7);
  for (const auto& entry : fs::directory_iterator(dir_.path() / "vault")) {
    EXPECT_EQ(testing::read_file(entry.path()).find("canary-pw"), std::string::npos);
  }
}

TEST_F(MaintenanceTest, ListShowsWhenACredentialWasLastUsed) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "p"});
  EXPECT_FALSE(vault.list_credentials(kAlice).front().last_used.has_value());
  (void)vault.get_credential(kAlice, "db");
  const auto listed = vault.list_credentials(kAlice).front();
  ASSERT_TRUE(listed.last_used.has_value());
  EXPECT_GE(*listed.last_used, listed.created_at);
}

}  // namespace
}  // namespace credentials
