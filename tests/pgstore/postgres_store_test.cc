// What only the PostgreSQL store has: URLs and schemas, rights, migrations,
// server restarts, and moving a vault between the stores.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "credentials/credentials.h"
#include "pgstore/pg_fixture.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::PgDatabase;
using testing::TempDir;

const UserContext kAlice{"alice", "alice@example.com", {"user"}};
const UserContext kAdmin{"root-admin", "admin@example.com", {"admin"}};

VaultOptions pg_options(const std::string& url, const SecretString& key, bool create = true) {
  VaultOptions o;
  o.url = url;
  o.master_key = key.clone();
  o.create_if_missing = create;
  return o;
}

VaultOptions dir_options(const fs::path& dir, const SecretString& key, bool create = true) {
  VaultOptions o;
  o.directory = dir;
  o.master_key = key.clone();
  o.create_if_missing = create;
  return o;
}

// What a DatabaseError said, or "" when none was thrown.
template <typename F>
std::string database_error_of(F&& body) {
  try {
    body();
  } catch (const DatabaseError& e) {
    return e.what();
  }
  return "";
}

void expect_no_password(const std::string& message) {
  EXPECT_EQ(message.find(testing::kRolePassword), std::string::npos) << message;
  EXPECT_EQ(message.find(testing::percent_encode(testing::kRolePassword)), std::string::npos) << message;
  EXPECT_EQ(message.find("w:rd"), std::string::npos) << message;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  PgDatabase db_;
  SecretString key_ = generate_master_key();
};

TEST_F(PostgresStoreTest, SchemaParameterSelectsAVersionedSchemaOfItsOwn) {
  {
    auto a = Vault::open(pg_options(db_.url(), key_));
    a.store_credential(kAlice, {.name = "db", .host = "h", .password = "in-default"});
    auto b = Vault::open(pg_options(db_.url("team_b"), key_));
    b.store_credential(kAlice, {.name = "db", .host = "h", .password = "in-team-b"});
  }
  EXPECT_EQ(Vault::open(pg_options(db_.url(), key_)).get_credential(kAlice, "db").password.reveal(), "in-default");
  EXPECT_EQ(Vault::open(pg_options(db_.url("team_b"), key_)).get_credential(kAlice, "db").password.reveal(),
            "in-team-b");
  for (const char* schema : {"credential_vault", "team_b"}) {
    EXPECT_EQ(db_.query(fmt::format("SELECT max(version) FROM {}.schema_format", schema)),
              std::vector<std::string>{"1"});
  }
  // Nothing outside the vault schemas: the database is shared with the application.
  EXPECT_EQ(db_.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
            std::vector<std::string>{"0"});
  EXPECT_THROW((void)Vault::open(pg_options(db_.url("bad-name"), key_)), InvalidArgumentError);
  EXPECT_THROW((void)Vault::open(pg_options(db_.url("pg_catalog"), key_)), InvalidArgumentError);
}

TEST_F(PostgresStoreTest, MissingVaultIsNotFoundWithoutCreate) {
  EXPECT_THROW((void)Vault::open(pg_options(db_.url("nothing_here"), key_, /*create=*/false)),
               CredentialNotFoundError);
  EXPECT_TRUE(db_.query("SELECT 1 FROM pg_namespace WHERE nspname = 'nothing_here'").empty());
}

TEST_F(PostgresStoreTest, NewerOrPreReleaseSchemaIsRefusedAndLeftAsItWas) {
  { (void)Vault::open(pg_options(db_.url(), key_)); }
  db_.query("UPDATE credential_vault.schema_format SET version = 7 WHERE version = 1");
  const std::string newer = database_error_of([&] { (void)Vault::open(pg_options(db_.url(), key_)); });
  EXPECT_NE(newer.find("newer"), std::string::npos) << newer;
  db_.query("UPDATE credential_vault.schema_format SET version = 1 WHERE version = 7");
  EXPECT_NO_THROW((void)Vault::open(pg_options(db_.url(), key_)));  // the control
  // Pre-release schemas counted their migrations in schema_version.
  db_.query(
      "CREATE TABLE credential_vault.schema_version (version integer PRIMARY KEY); "
      "INSERT INTO credential_vault.schema_version VALUES (3)");
  const auto before = db_.dump();
  const std::string old =
      database_error_of([&] { (void)Vault::open(pg_options(db_.url(), key_)); });
  EXPECT_NE(old.find("pre-release"), std::string::npos) << old;
  EXPECT_EQ(db_.dump(), before);
}

TEST_F(PostgresStoreTest, RoleWithoutRightsOnTheVaultSchemaGetsAClearError) {
  {
    auto vault = Vault::open(pg_options(db_.url(), key_));
    vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "secret"});
  }
  const std::string intruder = db_.create_role("intruder");
  const std::string no_usage =
      database_error_of([&] { (void)Vault::open(pg_options(db_.url("", intruder), key_)); });
  EXPECT_NE(no_usage.find("no rights on the vault schema 'credential_vault'"), std::string::npos) << no_usage;
  EXPECT_NE(no_usage.find(intruder), std::string::npos) << no_usage;
  expect_no_password(no_usage);
  // USAGE alone is not enough either: the tables are the owner's.
  auto& server = testing::PostgresServer::instance();
  db_.query(fmt::format("GRANT USAGE ON SCHEMA credential_vault TO {}", server.quote_identifier(intruder)));
  const std::string no_tables =
      database_error_of([&] { (void)Vault::open(pg_options(db_.url("", intruder), key_)); });
  EXPECT_NE(no_tables.find("no rights on the vault schema"), std::string::npos) << no_tables;
  EXPECT_NE(no_tables.find("permission denied"), std::string::npos) << no_tables;
  // A new schema needs the database's CREATE right, which this role lacks.
  const std::string no_create =
      database_error_of([&] { (void)Vault::open(pg_options(db_.url("its_own", intruder), key_)); });
  EXPECT_NE(no_create.find("may not create the vault schema 'its_own'"), std::string::npos) << no_create;
  EXPECT_NE(no_create.find("GRANT CREATE ON DATABASE"), std::string::npos) << no_create;
  // With the grants docs/POSTGRES.md lists, the role uses the vault.
  db_.query(fmt::format("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA credential_vault TO {}",
                        server.quote_identifier(intruder)));
  EXPECT_EQ(Vault::open(pg_options(db_.url("", intruder), key_)).get_credential(kAlice, "db").password.reveal(),
            "secret");
}

TEST_F(PostgresStoreTest, ErrorsNeverShowThePasswordOfTheUrl) {
  const std::string wrong = database_error_of(
      [&] { (void)Vault::open(pg_options(db_.url("", "", "wrong p@ss w:rd"), key_)); });
  EXPECT_NE(wrong.find("cannot connect"), std::string::npos) << wrong;
  EXPECT_EQ(wrong.find("wrong p@ss"), std::string::npos) << wrong;
  EXPECT_EQ(wrong.find("w:rd"), std::string::npos) << wrong;
  // A malformed URL: libpq's message quotes pieces of it; they are dropped.
  try {
    (void)Vault::open(pg_options("postgresql://user:se%ZZcret-pw@host/db", key_));
    FAIL() << "expected InvalidArgumentError";
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).find("cret-pw"), std::string::npos) << e.what();
  }
  const std::string refused = database_error_of([&] {
    (void)Vault::open(pg_options(fmt::format("postgresql://u:{}@127.0.0.1:1/db",
                                             testing::percent_encode(testing::kRolePassword)),
                                 key_));
  });
  EXPECT_NE(refused.find("cannot connect"), std::string::npos) << refused;
  expect_no_password(refused);
}

TEST_F(PostgresStoreTest, ProcessesCreatingTheVaultAtOnceMakeOne) {
  std::vector<pid_t> children;
  for (int p = 0; p < 4; ++p) {
    children.push_back(testing::spawn([&, p] {
      auto vault = Vault::open(pg_options(db_.url(), key_));
      vault.store_credential(kAlice, {.name = "c" + std::to_string(p), .host = "h", .password = "p"});
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(testing::wait_for(child), 0);
  EXPECT_EQ(db_.query("SELECT count(*) FROM credential_vault.keys"), std::vector<std::string>{"3"});
  auto vault = Vault::open(pg_options(db_.url(), key_));
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 4u);
}

TEST_F(PostgresStoreTest, UrlComesFromTheEnvironment) {
  ::setenv("CREDENTIAL_VAULT_URL", db_.url("from_env").c_str(), 1);
  ::setenv("CREDENTIAL_MASTER_KEY", std::string(key_.reveal()).c_str(), 1);
  {
    auto vault = Vault::open(vault_options_from_environment());
    vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "env"});
  }
  ::unsetenv("CREDENTIAL_VAULT_URL");
  ::unsetenv("CREDENTIAL_MASTER_KEY");
  EXPECT_EQ(db_.query("SELECT count(*) FROM from_env.credentials"), std::vector<std::string>{"1"});
}

// --- init and migrate-store ---------------------------------------------------------

TEST_F(PostgresStoreTest, InitCreatesTheSchemaAndHeaderOnceAndChecksTheKey) {
  EXPECT_TRUE(init_vault(pg_options(db_.url(), key_)));
  EXPECT_EQ(db_.query("SELECT count(*) FROM credential_vault.keys"), std::vector<std::string>{"3"});
  EXPECT_FALSE(init_vault(pg_options(db_.url(), key_)));
  EXPECT_THROW((void)init_vault(pg_options(db_.url(), generate_master_key())), DecryptionFailedError);
  EXPECT_EQ(db_.query("SELECT count(*) FROM credential_vault.keys"), std::vector<std::string>{"3"});
  TempDir dir;
  EXPECT_TRUE(init_vault(dir_options(dir.path() / "v", key_)));
  EXPECT_TRUE(fs::exists(dir.path() / "v" / "vault.db"));
}

TEST_F(PostgresStoreTest, MigrateDirectoryToPostgresAndBackKeepsEverythingVerified) {
  TempDir dir;
  const fs::path source = dir.path() / "source";
  std::string id;
  std::int64_t source_head = 0;
  {
    auto vault = Vault::open(dir_options(source, key_));
    for (int i = 0; i < 30; ++i) {
      vault.store_credential(kAlice, {.name = "db" + std::to_string(i), .host = "h", .password = "pw" + std::to_string(i)});
    }
    id = vault.store_credential(kAlice, {.name = "rotated", .host = "h", .password = "v1"});
    vault.update_password(kAlice, "rotated", "v2");
    vault.update_password(kAlice, "rotated", "v3");
    for (const char* name : {"rotated", "db1", "db2"}) (void)vault.get_credential(kAlice, name);
    vault.rotate_data_key();
    vault.store_credential(kAdmin, {.name = "admins", .host = "h", .password = "a"});
    source_head = vault.audit_head().seq;
  }
  migrate_vault(dir_options(source, key_, false), pg_options(db_.url(), SecretString("")));
  {
    auto vault = Vault::open(pg_options(db_.url(), key_, false));
    EXPECT_EQ(vault.list_credentials(kAdmin).size(), 32u);
    EXPECT_EQ(vault.get_credential(kAlice, "db29").password.reveal(), "pw29");
    EXPECT_EQ(vault.get_credential(kAlice, id).password.reveal(), "v3");  // ids resolve
    EXPECT_EQ(vault.history(kAlice, "rotated").size(), 3u);
    EXPECT_TRUE(vault.list_credentials(kAlice).back().last_used.has_value());
    EXPECT_TRUE(vault.verify().ok());
    // The chain continued: every source event, then the migration's.
    const auto events = vault.audit_events(kAdmin, {.limit = 100000});
    EXPECT_GT(vault.audit_head().seq, source_head);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front().action, "create_vault");
    EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                            [](const AuditEvent& e) { return e.action == "migrate_store"; }));
    // The source's reads came in its segments (FORMAT.md, "Audit segments"), still listed and
    // verified.
    EXPECT_EQ(db_.query("SELECT count(*) >= 3 FROM credential_vault.audit_segment"),
              std::vector<std::string>{"t"});
    EXPECT_EQ(vault.audit_events(kAlice, {.action = "get"}).size(), 3u + 2u);  // and the two gets above
    const AuditVerification chain = vault.verify_audit();
    EXPECT_TRUE(chain.ok) << chain.problem;
    vault.update_password(kAlice, "db0", "changed-on-pg");
  }
  // Into a target that holds a vault: refused, and the target is unchanged.
  const auto before = db_.dump();
  EXPECT_THROW(migrate_vault(dir_options(source, key_, false), pg_options(db_.url(), key_)), AlreadyExistsError);
  EXPECT_EQ(db_.dump(), before);

  const fs::path back = dir.path() / "back";
  migrate_vault(pg_options(db_.url(), key_, false), dir_options(back, SecretString("")));
  auto vault = Vault::open(dir_options(back, key_, false));
  EXPECT_EQ(vault.list_credentials(kAdmin).size(), 32u);
  EXPECT_EQ(vault.get_credential(kAlice, "db0").password.reveal(), "changed-on-pg");
  EXPECT_EQ(vault.get_credential(kAlice, "rotated").password.reveal(), "v3");
  EXPECT_TRUE(vault.verify().ok());
  // Into a directory that holds a vault: refused.
  EXPECT_THROW(migrate_vault(pg_options(db_.url(), key_, false), dir_options(source, key_)), AlreadyExistsError);
}

// A read's event is a row of its handle's segment, committed without the
// vault's write lock (docs/FORMAT.md, "Audit segments"): with the audit
// chain locked against writes by another session, reads go on and are
// audited, while a write waits for the lock (the control). Once the lock is
// gone, the reads are anchored and the trail verifies.
TEST_F(PostgresStoreTest, ReadsAreAuditedWithoutTheChainsWriteLock) {
  auto vault = Vault::open(pg_options(db_.url(), key_));
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
  PGconn* holder = db_.connect();
  PQclear(PQexec(holder, "BEGIN; LOCK TABLE credential_vault.audit IN EXCLUSIVE MODE"));
  auto reads = std::async(std::launch::async, [&] {
    for (int i = 0; i < 20; ++i) (void)vault.get_credential(kAlice, "db");
  });
  const bool reads_done = reads.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  EXPECT_TRUE(reads_done) << "reads waited for the chain's lock";
  EXPECT_EQ(db_.query("SELECT count(*) FROM credential_vault.audit_segment"),
            std::vector<std::string>{"20"});
  auto other = Vault::open(pg_options(db_.url(), key_));
  auto write = std::async(std::launch::async,
                          [&] { other.update_password(kAlice, "db", SecretString("pw-2")); });
  EXPECT_EQ(write.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "a write did not wait for the chain's lock";
  PQclear(PQexec(holder, "COMMIT"));
  PQfinish(holder);
  reads.get();
  write.get();
  EXPECT_EQ(vault.audit_events(kAdmin, {.action = "get"}).size(), 20u);
  const AuditVerification chain = vault.verify_audit();
  EXPECT_TRUE(chain.ok) << chain.problem;
}

TEST_F(PostgresStoreTest, MigrateWithAWrongKeyCopiesNothing) {
  TempDir dir;
  { Vault::open(dir_options(dir.path() / "s", key_)).store_credential(kAlice, {.name = "db", .host = "h", .password = "p"}); }
  EXPECT_THROW(migrate_vault(dir_options(dir.path() / "s", generate_master_key(), false), pg_options(db_.url(), key_)),
               DecryptionFailedError);
  EXPECT_TRUE(db_.query("SELECT 1 FROM pg_namespace WHERE nspname = 'credential_vault'").empty());
}

// --- server restarts -------------------------------------------------------------------

// The server stops and starts again in the middle of a write loop: every
// write that returned is there afterwards, the writes made while it was down
// fail with a DatabaseError that says so, and the same vault handle works
// again once the server is back. A private cluster, so that the restart
// disturbs no other test.
TEST(PostgresRestartTest, ServerRestartInTheMiddleOfAWriteLoopLosesNoAcknowledgedWrite) {
  ASSERT_TRUE(testing::PostgresServer::available()) << testing::PostgresServer::kNotConfigured;
  testing::PrivateCluster cluster;
  const SecretString key = generate_master_key();
  auto vault = Vault::open(pg_options(cluster.url(), key));
  std::mutex mutex;
  std::vector<int> acknowledged;
  std::vector<std::string> errors;
  std::atomic<bool> stop{false};
  std::atomic<int> other_errors{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      for (;;) {  // retried until it is acknowledged
        try {
          vault.store_credential(kAlice, {.name = "w" + std::to_string(i), .host = "h",
                                          .password = "pw" + std::to_string(i)});
          break;
        } catch (const AlreadyExistsError&) {
          break;  // an attempt whose commit was cut off did commit
        } catch (const DatabaseError& e) {
          std::lock_guard lock(mutex);
          errors.emplace_back(e.what());
        } catch (const std::exception&) {
          ++other_errors;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (stop) return;
      }
      std::lock_guard lock(mutex);
      acknowledged.push_back(i);
    }
  });
  auto wait_for_count = [&](std::size_t n) {
    for (int t = 0; t < 3000; ++t) {
      {
        std::lock_guard lock(mutex);
        if (acknowledged.size() >= n) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  wait_for_count(20);
  cluster.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::size_t acknowledged_while_down = 0;
  {
    std::lock_guard lock(mutex);
    acknowledged_while_down = acknowledged.size();
  }
  cluster.start();
  wait_for_count(acknowledged_while_down + 20);
  stop = true;
  writer.join();

  EXPECT_EQ(other_errors.load(), 0);
  ASSERT_FALSE(errors.empty()) << "no write failed while the server was down";
  std::cout << "while the server was down (" << errors.size() << " failures): " << errors.front() << "\n";
  for (const auto& message : errors) {
    const bool clear = message.find("unreachable") != std::string::npos ||
                       message.find("was lost") != std::string::npos ||
                       message.find("cannot connect") != std::string::npos;
    EXPECT_TRUE(clear) << message;
  }
  ASSERT_GE(acknowledged.size(), acknowledged_while_down + 20);
  auto fresh = Vault::open(pg_options(cluster.url(), key, false));
  for (int i : acknowledged) {
    EXPECT_EQ(fresh.get_credential(kAlice, "w" + std::to_string(i)).password.reveal(), "pw" + std::to_string(i));
  }
  EXPECT_TRUE(fresh.verify().ok());
  // The handle that lived through the restart reads again too.
  EXPECT_EQ(vault.get_credential(kAlice, "w0").password.reveal(), "pw0");
}

}  // namespace
}  // namespace credentials
