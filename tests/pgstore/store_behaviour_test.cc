// The vault's behaviour, run against both record stores: the embedded SQLite
// store and the shared PostgreSQL store (a real server, started by
// pg_virtualenv: without PGHOST the PostgreSQL cases fail).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>

#include "credentials/credentials.h"
#include "pgstore/pg_fixture.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::PgDatabase;
using testing::TempDir;

const UserContext kAlice{"alice", "alice@example.com", {"user"}};
const UserContext kBob{"bob", "bob@example.com", {"user"}};
const UserContext kAdmin{"root-admin", "admin@example.com", {"admin"}};

constexpr const char* kNastyPassword = "p@ss/w:rd#1%]'\"\\ ünï©ødé €";

enum class Backend { kEmbedded, kPostgres };

class StoreBehaviourTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) db_ = std::make_unique<PgDatabase>();
  }
  bool postgres() const { return GetParam() == Backend::kPostgres; }

  VaultOptions options(const SecretString& key, int history_depth = 5) {
    VaultOptions o;
    o.directory = dir_.path() / "vault";
    if (postgres()) o.url = db_->url();
    o.master_key = key.clone();
    o.history_depth = history_depth;
    return o;
  }
  Vault open_vault(const SecretString& key) { return Vault::open(options(key)); }
  Vault open_vault() { return open_vault(key_); }

  // Everything the store holds, as text: the vault files, or every row.
  // `with_shm` false leaves out SQLite's -shm file, the shared-memory index
  // of the log that every connection rewrites when it opens; it holds no
  // vault data.
  std::vector<std::string> snapshot(bool with_shm = true) {
    if (postgres()) return db_->dump();
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir_.path() / "vault")) {
      if (!with_shm && entry.path().filename().string().ends_with("-shm")) continue;
      out.push_back(entry.path().filename().string() + ": " + testing::read_file(entry.path()));
    }
    return out;
  }

  // Overwrites the sealed bytes of one stored version.
  void tamper_one_version() {
    if (postgres()) {
      db_->query("UPDATE credential_vault.versions SET sealed = '\\x00000000000000000000000000000000000000'"
                 " WHERE lookup = (SELECT lookup FROM credential_vault.versions ORDER BY lookup LIMIT 1)");
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() / "vault/vault.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE versions SET sealed = zeroblob(80) WHERE lookup = (SELECT min(lookup) FROM versions)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

  void fill(Vault& vault, int count) {
    std::vector<NewCredential> batch;
    for (int i = 0; i < count; ++i) {
      batch.push_back({.name = "db" + std::to_string(i), .host = "h", .password = "pw" + std::to_string(i)});
    }
    vault.store_credentials(kAlice, std::move(batch));
  }

  static NewCredential prod_db(SecretString password = "secret123") {
    return {.name = "prod_db", .db_type = "postgres", .host = "db.example.com", .port = 5432,
            .database = "production", .username = "dbuser", .password = std::move(password),
            .description = "Production database"};
  }

  TempDir dir_;
  std::unique_ptr<PgDatabase> db_;
  SecretString key_ = generate_master_key();
};

TEST_P(StoreBehaviourTest, StoredCredentialRoundTripsEveryFieldAndSurvivesReopening) {
  std::string id;
  {
    auto vault = open_vault();
    id = vault.store_credential(
        kAlice, {.name = "my_db", .db_type = "postgres", .host = "db.example.com", .port = 6543,
                 .database = "mydb", .username = "dbuser", .password = kNastyPassword,
                 .description = "Production database ✓", .ssl_mode = "require",
                 .connection_timeout = 12});
  }
  auto vault = open_vault();
  for (const std::string_view ref : {std::string_view("my_db"), std::string_view(id)}) {
    const Credential c = vault.get_credential(kAlice, ref);
    EXPECT_EQ(c.credential_id, id);
    EXPECT_EQ(c.owner, "alice");
    EXPECT_EQ(c.name, "my_db");
    EXPECT_EQ(c.host, "db.example.com");
    EXPECT_EQ(c.port, 6543);
    EXPECT_EQ(c.database, "mydb");
    EXPECT_EQ(c.username, "dbuser");
    EXPECT_EQ(c.password.reveal(), kNastyPassword);
    EXPECT_EQ(c.description, "Production database ✓");
    EXPECT_EQ(c.ssl_mode, "require");
    EXPECT_EQ(c.connection_timeout, 12);
    EXPECT_EQ(c.version, 1u);
  }
}

TEST_P(StoreBehaviourTest, UsersAreIsolatedAndAdministratorsReachEveryNamespace) {
  auto vault = open_vault();
  const std::string id = vault.store_credential(kAlice, prod_db());
  vault.store_credential(kBob, prod_db("bobs"));
  EXPECT_EQ(vault.get_credential(kBob, "prod_db").password.reveal(), "bobs");
  EXPECT_THROW((void)vault.get_credential(kBob, "alice", "prod_db"), UnauthorizedError);
  EXPECT_THROW((void)vault.get_credential(kBob, id), UnauthorizedError);
  EXPECT_THROW(vault.update_password(kBob, id, "stolen"), UnauthorizedError);
  EXPECT_THROW(vault.delete_credential(kBob, id), UnauthorizedError);
  EXPECT_EQ(vault.list_credentials(kBob).size(), 1u);
  EXPECT_EQ(vault.get_credential(kAdmin, "alice", "prod_db").password.reveal(), "secret123");
  EXPECT_EQ(vault.list_credentials(kAdmin).size(), 2u);
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "secret123");
}

TEST_P(StoreBehaviourTest, DuplicateNameIsRefusedAndKeepsTheFirst) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db("first"));
  EXPECT_THROW(vault.store_credential(kAlice, prod_db("second")), AlreadyExistsError);
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "first");
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 1u);
  // A batch with one duplicate stores none of it.
  std::vector<NewCredential> batch;
  batch.push_back({.name = "new_one", .host = "h", .password = "p"});
  batch.push_back(prod_db("third"));
  EXPECT_THROW(vault.store_credentials(kAlice, std::move(batch)), AlreadyExistsError);
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 1u);
}

TEST_P(StoreBehaviourTest, WrongKeyFailsAndWritesNothing) {
  { open_vault().store_credential(kAlice, prod_db()); }
  const auto before = snapshot(/*with_shm=*/false);
  EXPECT_THROW((void)open_vault(generate_master_key()), DecryptionFailedError);
  EXPECT_THROW((void)open_vault("a passphrase"), DecryptionFailedError);
  EXPECT_EQ(snapshot(/*with_shm=*/false), before);
  EXPECT_EQ(open_vault().get_credential(kAlice, "prod_db").password.reveal(), "secret123");
}

TEST_P(StoreBehaviourTest, UpdatesCheckAndSetHistoryAndRollback) {
  auto vault = Vault::open(options(key_, /*history_depth=*/3));
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "v1"});
  EXPECT_EQ(vault.update_password(kAlice, "db", "v2", 1), 2u);
  EXPECT_THROW(vault.update_password(kAlice, "db", "lost", 1), ConflictError);
  for (int v = 3; v <= 5; ++v) vault.update_password(kAlice, "db", "v" + std::to_string(v));
  CredentialChanges changes;
  changes.host = "h2";
  EXPECT_EQ(vault.update_credential(kAlice, "db", std::move(changes)), 6u);
  const auto history = vault.history(kAlice, "db");
  ASSERT_EQ(history.size(), 3u);  // depth 3: versions 4, 5, 6
  EXPECT_EQ(history.front().version, 4u);
  EXPECT_TRUE(history.back().current);
  EXPECT_EQ(vault.rollback(kAlice, "db", 4), 7u);
  const Credential c = vault.get_credential(kAlice, "db");
  EXPECT_EQ(c.password.reveal(), "v4");
  EXPECT_EQ(c.host, "h");
  EXPECT_THROW(vault.rollback(kAlice, "db", 1), CredentialNotFoundError);
  vault.delete_credential(kAlice, "db");
  EXPECT_THROW((void)vault.history(kAlice, "db"), CredentialNotFoundError);
  EXPECT_TRUE(vault.verify().ok());
}

TEST_P(StoreBehaviourTest, MasterKeyRotationRewrapsKeysAndKeepsRecords) {
  const SecretString new_key = generate_master_key();
  {
    auto vault = open_vault();
    fill(vault, 10);
    vault.rotate_master_key(new_key.clone());
    EXPECT_EQ(vault.get_credential(kAlice, "db3").password.reveal(), "pw3");
    vault.store_credential(kAlice, {.name = "after", .host = "h", .password = "x"});
  }
  EXPECT_THROW((void)open_vault(key_), DecryptionFailedError);
  auto vault = open_vault(new_key);
  EXPECT_EQ(vault.get_credential(kAlice, "db9").password.reveal(), "pw9");
  EXPECT_EQ(vault.get_credential(kAlice, "after").password.reveal(), "x");
  EXPECT_TRUE(vault.verify().ok());
}

TEST_P(StoreBehaviourTest, DataKeyRotationAndReencryptMoveEveryRecord) {
  auto vault = open_vault();
  fill(vault, 25);
  vault.update_password(kAlice, "db0", "new0");
  const std::int64_t new_key = vault.rotate_data_key();
  vault.store_credential(kAlice, {.name = "fresh", .host = "h", .password = "f"});
  const auto result = vault.reencrypt({}, 10);
  EXPECT_EQ(result.done, 26);
  EXPECT_EQ(result.target_key_id, new_key);
  for (const auto& key : vault.keys()) {
    if (key.purpose == "data") {
      EXPECT_EQ(key.records, key.key_id == new_key ? 27 : 0);
    }
  }
  EXPECT_EQ(vault.get_credential(kAlice, "db0").password.reveal(), "new0");
  EXPECT_TRUE(vault.verify().ok());
  EXPECT_EQ(vault.reencrypt().done, 0);
}

TEST_P(StoreBehaviourTest, AuditChainRecordsEveryOperationAndVerifies) {
  auto vault = open_vault();
  const std::string id = vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "canary-pw-1"});
  (void)vault.get_credential(kAlice, "db");
  EXPECT_THROW((void)vault.get_credential(kBob, id), UnauthorizedError);
  vault.update_password(kAlice, "db", "canary-pw-2");
  vault.delete_credential(kAlice, "db");
  std::vector<std::string> actions;
  for (const auto& e : vault.audit_events(kAdmin, {})) actions.push_back(e.action + ":" + e.outcome);
  EXPECT_EQ(actions, (std::vector<std::string>{"create_vault:ok", "store:ok", "get:ok",
                                               "get:denied", "update_password:ok", "delete:ok"}));
  EXPECT_TRUE(vault.verify_audit().ok);
  // The chain: the vault's creation, the store, the anchor of the two reads'
  // segment, the update, the delete, and the anchor of the audit query's
  // own event.
  EXPECT_EQ(vault.audit_head().seq, 6);
  for (const auto& row : snapshot()) EXPECT_EQ(row.find("canary-pw"), std::string::npos);
}

TEST_P(StoreBehaviourTest, NoPlaintextInTheStore) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, {.name = "plainname_zz", .host = "plainhost.example", .database = "plaindb_q",
                                    .username = "plainuser_x", .password = "plainpassword_y"});
    (void)vault.get_credential(kAlice, "plainname_zz");
  }
  auto hex = [](std::string_view s) {
    std::string out;
    for (unsigned char ch : s) out += fmt::format("{:02x}", ch);
    return out;
  };
  for (const auto& row : snapshot()) {
    for (const char* needle : {"plainname_zz", "plainhost", "plaindb_q", "plainuser_x", "plainpassword", "alice"}) {
      EXPECT_EQ(row.find(needle), std::string::npos) << needle;
      EXPECT_EQ(row.find(hex(needle)), std::string::npos) << needle << " (hex)";
    }
  }
}

TEST_P(StoreBehaviourTest, VerifyFindsATamperedRecord) {
  auto vault = open_vault();
  fill(vault, 3);
  EXPECT_TRUE(vault.verify().ok());
  tamper_one_version();
  const auto report = vault.verify();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.problems.size(), 1u);
}

TEST_P(StoreBehaviourTest, BackupRestoresIntoAnEmbeddedVaultThatVerifies) {
  auto vault = open_vault();
  fill(vault, 20);
  vault.update_password(kAlice, "db7", "rotated7");
  (void)vault.get_credential(kAlice, "db7");
  const fs::path backup = dir_.path() / "snapshot.db";
  vault.backup(backup);
  struct stat st {};
  ASSERT_EQ(::stat(backup.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find("partial"), std::string::npos) << entry.path();
  }
  EXPECT_TRUE(verify_backup(backup, key_).ok());
  EXPECT_THROW((void)verify_backup(backup, generate_master_key()), DecryptionFailedError);
  const fs::path target = dir_.path() / "restored";
  restore_vault(backup, target, key_);
  auto restored = Vault::open({.directory = target, .master_key = key_.clone()});
  EXPECT_EQ(restored.list_credentials(kAlice).size(), 20u);
  EXPECT_EQ(restored.get_credential(kAlice, "db19").password.reveal(), "pw19");
  EXPECT_EQ(restored.get_credential(kAlice, "db7").password.reveal(), "rotated7");
  EXPECT_EQ(restored.history(kAlice, "db7").size(), 2u);
  EXPECT_TRUE(restored.verify().ok());
  EXPECT_GE(restored.audit_head().seq, vault.audit_head().seq - 2);
}

TEST_P(StoreBehaviourTest, RotationInAnotherProcessIsSeenAtTheNextGet) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db("v1"));
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "v1");
  for (int round = 2; round <= 4; ++round) {
    const std::string next = "v" + std::to_string(round);
    EXPECT_EQ(testing::wait_for(testing::spawn([&] {
                open_vault().update_password(kAlice, "prod_db", next);
                return 0;
              })),
              0);
    EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), next);
  }
}

TEST_P(StoreBehaviourTest, EightProcessesStoringAtOnceLoseNothing) {
  { (void)open_vault(); }
  std::vector<pid_t> children;
  for (int p = 0; p < 8; ++p) {
    children.push_back(testing::spawn([&, p] {
      auto vault = open_vault();
      for (int i = 0; i < 50; ++i) {
        vault.store_credential(kAlice, {.name = "db-" + std::to_string(p) + "-" + std::to_string(i),
                                        .host = "h", .password = "pw-" + std::to_string(i)});
      }
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(testing::wait_for(child), 0);
  auto vault = open_vault();
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 400u);
  EXPECT_EQ(vault.get_credential(kAlice, "db-7-49").password.reveal(), "pw-49");
  // Appends from eight processes made one valid chain.
  EXPECT_TRUE(vault.verify_audit().ok);
  EXPECT_GE(vault.audit_head().seq, 400);
}

// Two hosts (processes with their own vault handles) rotate one password
// with check-and-set and read it in a loop: every read is the version
// committed last before the read began, or one committed during it — never
// an older one, and never a record whose password is not its version's.
TEST_P(StoreBehaviourTest, TwoHostsRotatingAndReadingSeeOnlyTheCurrentOrJustPreviousPassword) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, {.name = "shared", .host = "h", .password = "pw-1"});
  }
  struct Shared {
    std::atomic<std::uint64_t> committed{1};
    std::atomic<int> reads{0};
    std::atomic<int> rotations{0};
  };
  void* memory = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* shared = new (memory) Shared;
  constexpr int kRounds = 150;
  std::vector<pid_t> hosts;
  for (int host = 0; host < 2; ++host) {
    hosts.push_back(testing::spawn([&, host] {
      auto vault = open_vault();
      std::uint64_t last_seen = 0;
      for (int i = 0; i < kRounds; ++i) {
        const std::uint64_t lo = shared->committed.load();
        const Credential c = vault.get_credential(kAlice, "shared");
        const std::uint64_t hi = shared->committed.load();
        shared->reads++;
        if (c.password.reveal() != "pw-" + std::to_string(c.version) || c.version < lo ||
            c.version > hi + 1 || c.version < last_seen) {
          std::fprintf(stderr, "host %d read version %llu password %s; committed %llu..%llu\n", host,
                       static_cast<unsigned long long>(c.version), std::string(c.password.reveal()).c_str(),
                       static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi));
          return 2;
        }
        last_seen = c.version;
        if ((i + host) % 2 == 0) {
          try {
            const std::uint64_t next = c.version + 1;
            vault.update_password(kAlice, "shared", "pw-" + std::to_string(next), c.version);
            std::uint64_t cur = shared->committed.load();
            while (cur < next && !shared->committed.compare_exchange_weak(cur, next)) {
            }
            shared->rotations++;
          } catch (const ConflictError&) {
          }
        }
      }
      return 0;
    }));
  }
  for (pid_t host : hosts) EXPECT_EQ(testing::wait_for(host), 0);
  EXPECT_EQ(shared->reads.load(), 2 * kRounds);
  // Enough rotations to have raced the reads (the hosts' attempts conflict
  // more or less often depending on how their reads interleave).
  EXPECT_GT(shared->rotations.load(), kRounds / 4);
  auto vault = open_vault();
  const Credential final_credential = vault.get_credential(kAlice, "shared");
  EXPECT_EQ(final_credential.version, shared->committed.load());
  EXPECT_EQ(final_credential.version, static_cast<std::uint64_t>(shared->rotations.load()) + 1);
  EXPECT_TRUE(vault.verify().ok());
  ::munmap(memory, sizeof(Shared));
}

INSTANTIATE_TEST_SUITE_P(BothStores, StoreBehaviourTest,
                         ::testing::Values(Backend::kEmbedded, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kEmbedded ? std::string("Embedded")
                                                                   : std::string("Postgres");
                         });

}  // namespace
}  // namespace credentials
