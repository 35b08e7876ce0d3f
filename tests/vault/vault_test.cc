#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "credentials/credentials.h"
#include "support/temp_dir.h"
#include <sqlite3.h>
#include <atomic>
#include <thread>

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const UserContext kAlice{"alice", "alice@example.com", {"user"}};
const UserContext kBob{"bob", "bob@example.com", {"user"}};
const UserContext kAdmin{"root-admin", "admin@example.com", {"admin"}};
const UserContext kSuper{"sue", "sue@example.com", {"user", "superuser"}};

constexpr const char* kNastyPassword = "p@ss/w:rd#1%]'\"\\ ünï©ødé €";

class VaultTest : public ::testing::Test {
 protected:
  Vault open_vault() { return Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone()}); }

  NewCredential prod_db(SecretString password = "secret123") {
    return {.name = "prod_db", .db_type = "postgres", .host = "db.example.com", .port = 5432,
            .database = "production", .username = "dbuser", .password = std::move(password),
            .description = "Production database"};
  }

  // Every file of the vault directory, by name, with its bytes; but not
  // SQLite's -shm file, the shared-memory index of the log that every
  // connection rewrites (read marks, the index it rebuilds when it opens):
  // it holds no vault data and is not part of a copy of the vault.
  std::map<std::string, std::string> snapshot() {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(dir_.path() / "vault")) {
      if (entry.path().filename().string().ends_with("-shm")) continue;
      files[entry.path().filename().string()] = testing::read_file(entry.path());
    }
    return files;
  }

  TempDir dir_;
  SecretString key_ = generate_master_key();
};

TEST_F(VaultTest, StoredCredentialRoundTripsEveryField) {
  auto vault = open_vault();
  const std::string id = vault.store_credential(
      kAlice, {.name = "my_db", .db_type = "postgres", .host = "db.example.com", .port = 6543,
               .database = "mydb", .username = "dbuser", .password = kNastyPassword,
               .description = "Production database ✓", .ssl_mode = "require",
               .connection_timeout = 12});
  EXPECT_FALSE(id.empty());
  for (const std::string_view ref : {std::string_view("my_db"), std::string_view(id)}) {
    Credential c = vault.get_credential(kAlice, ref);
    EXPECT_EQ(c.credential_id, id);
    EXPECT_EQ(c.owner, "alice");
    EXPECT_EQ(c.name, "my_db");
    EXPECT_EQ(c.db_type, "postgres");
    EXPECT_EQ(c.host, "db.example.com");
    EXPECT_EQ(c.port, 6543);
    EXPECT_EQ(c.database, "mydb");
    EXPECT_EQ(c.username, "dbuser");
    EXPECT_EQ(c.password.reveal(), kNastyPassword);
    EXPECT_EQ(c.description, "Production database ✓");
    EXPECT_EQ(c.ssl_mode, "require");
    EXPECT_EQ(c.connection_timeout, 12);
    EXPECT_EQ(c.version, 1u);
    EXPECT_EQ(c.created_at, c.updated_at);
    EXPECT_GT(c.created_at.time_since_epoch().count(), 0);
  }
}

TEST_F(VaultTest, PortDefaultsByDatabaseType) {
  auto vault = open_vault();
  const std::map<std::string, int> expected = {
      {"postgres", 5432}, {"mysql", 3306}, {"mongodb", 27017}, {"redis", 6379}};
  for (const auto& [type, port] : expected) {
    vault.store_credential(kAlice, {.name = type, .db_type = type, .host = "h", .password = "p"});
    EXPECT_EQ(vault.get_credential(kAlice, type).port, port) << type;
  }
}

TEST_F(VaultTest, ReopenedVaultReadsWhatWasStored) {
  { open_vault().store_credential(kAlice, prod_db()); }
  auto vault = open_vault();
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "secret123");
}

TEST_F(VaultTest, OtherUsersCredentialIsUnauthorized) {
  auto vault = open_vault();
  const std::string id = vault.store_credential(kAlice, prod_db());
  // By name, bob reaches only his own namespace.
  EXPECT_THROW((void)vault.get_credential(kBob, "prod_db"), CredentialNotFoundError);
  EXPECT_THROW((void)vault.get_credential(kBob, "alice", "prod_db"), UnauthorizedError);
  EXPECT_THROW((void)vault.get_credential(kBob, id), UnauthorizedError);
  EXPECT_THROW(vault.update_password(kBob, id, "stolen"), UnauthorizedError);
  EXPECT_THROW(vault.delete_credential(kBob, id), UnauthorizedError);
  // A denial does not tell whether the credential exists.
  try {
    (void)vault.get_credential(kBob, "alice", "no_such_db");
    FAIL() << "expected UnauthorizedError";
  } catch (const UnauthorizedError& e) {
    EXPECT_EQ(std::string(e.what()).find("no_such_db"), std::string::npos);
  }
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "secret123");
  EXPECT_EQ(vault.list_credentials(kBob).size(), 0u);
}

TEST_F(VaultTest, AdministratorsReachEveryNamespace) {
  auto vault = open_vault();
  const std::string id = vault.store_credential(kAlice, prod_db());
  vault.store_credential(kBob, prod_db("bobs"));
  for (const UserContext& admin : {kAdmin, kSuper}) {
    EXPECT_EQ(vault.get_credential(admin, "alice", "prod_db").password.reveal(), "secret123");
    EXPECT_EQ(vault.get_credential(admin, id).owner, "alice");
    EXPECT_EQ(vault.list_credentials(admin).size(), 2u);
  }
  vault.update_password(kAdmin, id, "rotated");
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "rotated");
  vault.delete_credential(kSuper, id);
  EXPECT_THROW((void)vault.get_credential(kAlice, "prod_db"), CredentialNotFoundError);
  const auto remaining = vault.list_credentials(kAdmin);
  ASSERT_EQ(remaining.size(), 1u);
  EXPECT_EQ(remaining[0].owner, "bob");
}

TEST_F(VaultTest, ListReturnsMetadataOfOwnCredentialsSorted) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "zeta", .host = "h", .password = "p"});
  vault.store_credential(kAlice, {.name = "alpha", .host = "h", .password = "p"});
  vault.store_credential(kBob, {.name = "bobs", .host = "h", .password = "p"});
  const auto list = vault.list_credentials(kAlice);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "alpha");
  EXPECT_EQ(list[1].name, "zeta");
}

TEST_F(VaultTest, UpdatePasswordMakesANewVersion) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db());
  EXPECT_EQ(vault.update_password(kAlice, "prod_db", "second"), 2u);
  const Credential c = vault.get_credential(kAlice, "prod_db");
  EXPECT_EQ(c.password.reveal(), "second");
  EXPECT_EQ(c.version, 2u);
  EXPECT_GE(c.updated_at, c.created_at);
  EXPECT_EQ(c.host, "db.example.com");
}

TEST_F(VaultTest, CheckAndSetRefusesAStaleVersion) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db());
  EXPECT_EQ(vault.update_password(kAlice, "prod_db", "two", 1), 2u);
  EXPECT_THROW(vault.update_password(kAlice, "prod_db", "lost", 1), ConflictError);
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "two");
}

TEST_F(VaultTest, UpdateCredentialChangesOtherFields) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db());
  CredentialChanges changes;
  changes.host = "db2.example.com";
  changes.port = 6432;
  vault.update_credential(kAlice, "prod_db", std::move(changes));
  const Credential c = vault.get_credential(kAlice, "prod_db");
  EXPECT_EQ(c.host, "db2.example.com");
  EXPECT_EQ(c.port, 6432);
  EXPECT_EQ(c.password.reveal(), "secret123");
}

TEST_F(VaultTest, DuplicateNameIsRefusedAndKeepsTheFirst) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db("first"));
  EXPECT_THROW(vault.store_credential(kAlice, prod_db("second")), AlreadyExistsError);
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "first");
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 1u);
  // Another user may use the same name.
  vault.store_credential(kBob, prod_db("bobs"));
  EXPECT_EQ(vault.get_credential(kBob, "prod_db").password.reveal(), "bobs");
}

TEST_F(VaultTest, InvalidInputIsRefusedAndStoresNothing) {
  auto vault = open_vault();
  auto expect_invalid = [&](NewCredential c) {
    EXPECT_THROW(vault.store_credential(kAlice, std::move(c)), InvalidArgumentError);
  };
  expect_invalid({.name = "", .host = "h", .password = "p"});
  expect_invalid({.name = "bad\nname", .host = "h", .password = "p"});
  expect_invalid({.name = "a\u200Bb", .host = "h", .password = "p"});
  expect_invalid({.name = std::string(129, 'a'), .host = "h", .password = "p"});
  expect_invalid({.name = "n", .db_type = "", .host = "h", .password = "p"});
  expect_invalid({.name = "n", .db_type = "oracle\x1b", .host = "h", .password = "p"});
  expect_invalid({.name = "n", .host = "", .password = "p"});
  expect_invalid({.name = "n", .host = "h", .port = 70000, .password = "p"});
  expect_invalid({.name = "n", .host = "h", .port = -1, .password = "p"});
  expect_invalid({.name = "n", .host = "h\nx", .password = "p"});
  expect_invalid({.name = "n", .host = "h", .password = "p", .ssl_mode = "sometimes"});
  expect_invalid({.name = "n", .host = "h", .password = "p", .connection_timeout = 0});
  expect_invalid({.name = "n", .host = "h", .password = std::string("a\0b", 3)});
  EXPECT_THROW(vault.store_credential({"bad\tuser", "", {}}, prod_db()), InvalidArgumentError);
  EXPECT_EQ(vault.list_credentials(kAdmin).size(), 0u);
}

TEST_F(VaultTest, MissingKeyIsAnErrorThatSaysHowToMakeOne) {
  try {
    (void)Vault::open({.directory = dir_.path() / "vault", .master_key = ""});
    FAIL() << "expected MissingKeyError";
  } catch (const MissingKeyError& e) {
    EXPECT_NE(std::string(e.what()).find("keygen"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "vault"));
}

TEST_F(VaultTest, WrongKeyFailsAndChangesNoByte) {
  { open_vault().store_credential(kAlice, prod_db()); }
  const auto before = snapshot();
  EXPECT_THROW((void)Vault::open({.directory = dir_.path() / "vault", .master_key = generate_master_key()}),
               DecryptionFailedError);
  EXPECT_THROW((void)Vault::open({.directory = dir_.path() / "vault", .master_key = "a passphrase"}),
               DecryptionFailedError);
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(open_vault().get_credential(kAlice, "prod_db").password.reveal(), "secret123");
}

TEST_F(VaultTest, FernetFormatKeyAndPassphraseAndKeyFileWork) {
  // The fixture's key was made by Fernet.generate_key().
  const SecretString fernet_key = "GFuSCI8ffLhYaTnFvpHmkhDTZv_83-wLRAlCfwWBtoo=";
  for (const char* material : {"GFuSCI8ffLhYaTnFvpHmkhDTZv_83-wLRAlCfwWBtoo=",
                               "correct horse battery staple"}) {
    TempDir dir;
    {
      auto vault = Vault::open({.directory = dir.path(), .master_key = material});
      vault.store_credential(kAlice, prod_db());
    }
    // The same material with a trailing newline, as a key file holds it.
    auto vault = Vault::open({.directory = dir.path(), .master_key = std::string(material) + "\n"});
    EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "secret123");
  }
  (void)fernet_key;
  const fs::path key_file = dir_.path() / "master.key";
  std::ofstream(key_file) << key_.reveal() << "\n";
  ::setenv("CREDENTIAL_MASTER_KEY_FILE", key_file.c_str(), 1);
  ::unsetenv("CREDENTIAL_MASTER_KEY");
  EXPECT_TRUE(master_key_from_environment().equals(key_));
  ::unsetenv("CREDENTIAL_MASTER_KEY_FILE");
  EXPECT_THROW((void)master_key_from_environment(), MissingKeyError);
}

TEST_F(VaultTest, NoPlaintextInAnyVaultFile) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, {.name = "plainname_zz", .host = "plainhost.example", .database = "plaindb_q",
                                    .username = "plainuser_x", .password = "plainpassword_y",
                                    .description = "plaindescription"});
    (void)vault.get_credential(kAlice, "plainname_zz");
    vault.update_password(kAlice, "plainname_zz", "plainpassword_two");
  }
  for (const auto& [file, bytes] : snapshot()) {
    for (const char* needle : {"plainname_zz", "plainhost", "plaindb_q", "plainuser_x", "plainpassword",
                               "plaindescription", "alice"}) {
      EXPECT_EQ(bytes.find(needle), std::string::npos) << needle << " in " << file;
    }
  }
}

// Opens the vault's SQLite file directly, as an attacker with write access would.
class RawDb {
 public:
  explicit RawDb(const fs::path& file) { EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK); }
  ~RawDb() { sqlite3_close(db_); }
  std::string blob(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      out.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)), sqlite3_column_bytes(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  void set_blob(const char* sql, const std::string& value) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    sqlite3_bind_blob(stmt, 1, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST_F(VaultTest, EveryFlippedRecordByteFailsToDecrypt) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db());
  RawDb raw(dir_.path() / "vault" / "vault.db");
  const std::string original = raw.blob("SELECT sealed FROM versions");
  ASSERT_GT(original.size(), 28u);
  for (std::size_t i = 0; i < original.size(); ++i) {
    std::string tampered = original;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    raw.set_blob("UPDATE versions SET sealed = ?1", tampered);
    EXPECT_THROW((void)vault.get_credential(kAlice, "prod_db"), DecryptionFailedError) << "byte " << i;
  }
  raw.set_blob("UPDATE versions SET sealed = ?1", original);
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "secret123");
}

TEST_F(VaultTest, RecordMovedToAnotherOwnerOrNameFailsToDecrypt) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, prod_db("alices"));
    vault.store_credential(kBob, prod_db("bobs"));
    vault.store_credential(kBob, {.name = "other", .host = "h", .password = "other"});
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "vault" / "vault.db").c_str(), &db), SQLITE_OK);
  // Copy every sealed record over every other one: each copy lands under
  // another owner or name and must not decrypt there.
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TEMP TABLE original AS SELECT lookup, sealed FROM versions;"
                         "UPDATE versions SET sealed = (SELECT o.sealed FROM original o "
                         "WHERE o.lookup > versions.lookup ORDER BY o.lookup LIMIT 1) "
                         "WHERE EXISTS (SELECT 1 FROM original o WHERE o.lookup > versions.lookup);"
                         "UPDATE versions SET sealed = (SELECT sealed FROM original ORDER BY lookup LIMIT 1) "
                         "WHERE lookup = (SELECT max(lookup) FROM original);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto vault = open_vault();
  EXPECT_THROW((void)vault.get_credential(kAlice, "prod_db"), DecryptionFailedError);
  EXPECT_THROW((void)vault.get_credential(kBob, "prod_db"), DecryptionFailedError);
  EXPECT_THROW((void)vault.get_credential(kBob, "other"), DecryptionFailedError);
}

TEST_F(VaultTest, OwnerTagMovedInTheIndexIsDetected) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, prod_db("alices"));
    vault.store_credential(kBob, {.name = "bobs", .host = "h", .password = "b"});
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "vault" / "vault.db").c_str(), &db), SQLITE_OK);
  // Relabel every credential as bob's: alice's record must not show up for bob.
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE credentials SET owner_tag = (SELECT owner_tag FROM credentials c2 "
                         "GROUP BY owner_tag ORDER BY count(*) LIMIT 1)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto vault = open_vault();
  std::size_t returned = 0;
  for (const UserContext& user : {kAlice, kBob}) {
    try {
      for (const auto& info : vault.list_credentials(user)) {
        EXPECT_EQ(info.owner, user.user_id);
        ++returned;
      }
    } catch (const DecryptionFailedError&) {
    }
  }
  EXPECT_LE(returned, 1u);
}

TEST_F(VaultTest, FilesArePrivateEvenUnderUmaskZero) {
  const mode_t old = ::umask(0);
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, prod_db());
    struct stat st {};
    ASSERT_EQ(::stat((dir_.path() / "vault").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    for (const auto& entry : fs::directory_iterator(dir_.path() / "vault")) {
      ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
    }
  }
  ::umask(old);
}

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

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(VaultTest, EightProcessesStoringAtOnceLoseNothing) {
  { (void)open_vault(); }
  std::vector<pid_t> children;
  for (int p = 0; p < 8; ++p) {
    children.push_back(spawn([&, p] {
      auto vault = open_vault();
      for (int i = 0; i < 50; ++i) {
        vault.store_credential(kAlice, {.name = "db-" + std::to_string(p) + "-" + std::to_string(i),
                                        .host = "h", .password = "pw-" + std::to_string(i)});
      }
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(wait_for(child), 0);
  auto vault = open_vault();
  const auto list = vault.list_credentials(kAlice);
  EXPECT_EQ(list.size(), 400u);
  EXPECT_EQ(vault.get_credential(kAlice, "db-7-49").password.reveal(), "pw-49");
}

TEST_F(VaultTest, RotationInAnotherProcessIsSeenAtTheNextGet) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db("v1"));
  EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), "v1");
  for (int round = 2; round <= 4; ++round) {
    const std::string next = "v" + std::to_string(round);
    EXPECT_EQ(wait_for(spawn([&] {
                open_vault().update_password(kAlice, "prod_db", next);
                return 0;
              })),
              0);
    EXPECT_EQ(vault.get_credential(kAlice, "prod_db").password.reveal(), next);
  }
}

TEST_F(VaultTest, ConcurrentThreadsShareOneVault) {
  auto vault = open_vault();
  vault.store_credential(kAlice, prod_db());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 20; ++i) {
          vault.store_credential(kBob, {.name = "t" + std::to_string(t) + "-" + std::to_string(i),
                                        .host = "h", .password = "p"});
          if (vault.get_credential(kAlice, "prod_db").host != "db.example.com") ++failures;
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(vault.list_credentials(kBob).size(), 160u);
}

// --- build_connection_string ----------------------------------------------------

std::map<std::string, std::string> parse_with_libpq(const SecretString& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(std::string(url.reveal()).c_str(), &error);
  if (!options) {
    std::string message = error ? error : "?";
    PQfreemem(error);
    ADD_FAILURE() << "libpq rejected the URL: " << message;
    return {};
  }
  std::map<std::string, std::string> values;
  for (auto* o = options; o->keyword; ++o) {
    if (o->val) values[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return values;
}

Credential make_credential(std::string type, std::string password) {
  Credential c;
  c.db_type = std::move(type);
  c.host = "db.example.com";
  c.port = 5432;
  c.database = "my db/x";
  c.username = "user@corp";
  c.password = std::move(password);
  return c;
}

TEST(ConnectionStringTest, EveryPasswordCharacterSurvivesLibpqParsing) {
  for (const char* password : {"p@ss/w:rd#1%]", "'\"\\ ?&=[]{}", "ünï©ødé €", "%25%", "a b+c"}) {
    Credential c = make_credential("postgres", password);
    c.ssl_mode = "require";
    c.connection_timeout = 7;
    const auto values = parse_with_libpq(build_connection_string(c));
    EXPECT_EQ(values.at("password"), password);
    EXPECT_EQ(values.at("user"), "user@corp");
    EXPECT_EQ(values.at("host"), "db.example.com");
    EXPECT_EQ(values.at("port"), "5432");
    EXPECT_EQ(values.at("dbname"), "my db/x");
    EXPECT_EQ(values.at("sslmode"), "require");
    EXPECT_EQ(values.at("connect_timeout"), "7");
  }
}

TEST(ConnectionStringTest, OverridesReplaceHostPortAndDatabase) {
  Credential c = make_credential("postgres", "pw");
  const auto values =
      parse_with_libpq(build_connection_string(c, {.host = "other", .port = 6000, .database = "d2"}));
  EXPECT_EQ(values.at("host"), "other");
  EXPECT_EQ(values.at("port"), "6000");
  EXPECT_EQ(values.at("dbname"), "d2");
}

TEST(ConnectionStringTest, UrlsForEveryType) {
  Credential c = make_credential("mysql", "p@ss/w:rd#1%]");
  c.port = 3306;
  EXPECT_EQ(build_connection_string(c).reveal(),
            "mysql://user%40corp:p%40ss%2Fw%3Ard%231%25%5D@db.example.com:3306/my%20db%2Fx?connect_timeout=30");
  c.db_type = "mongodb";
  c.port = 27017;
  EXPECT_EQ(build_connection_string(c).reveal(),
            "mongodb://user%40corp:p%40ss%2Fw%3Ard%231%25%5D@db.example.com:27017/my%20db%2Fx?connectTimeoutMS=30000");
  c.db_type = "redis";
  c.port = 6379;
  c.database = "0";
  EXPECT_EQ(build_connection_string(c).reveal(), "redis://user%40corp:p%40ss%2Fw%3Ard%231%25%5D@db.example.com:6379/0");
  Credential s;
  s.db_type = "sqlite";
  s.database = "/var/lib/app data/x.db";
  EXPECT_EQ(build_connection_string(s).reveal(), "sqlite:////var/lib/app%20data/x.db");
}

TEST(TimestampTest, FormatsAndParsesIso8601) {
  const Timestamp t = parse_timestamp("2026-11-28T10:50:41.123456");
  EXPECT_EQ(format_timestamp(t), "2026-11-28T10:50:41.123456Z");
  EXPECT_EQ(parse_timestamp("2026-11-28T10:50:41.123456Z"), t);
  EXPECT_EQ(parse_timestamp("2026-11-28T10:50:41.123456+00:00"), t);
  EXPECT_THROW((void)parse_timestamp("yesterday"), InvalidArgumentError);
  EXPECT_THROW((void)parse_timestamp("2026-13-01T00:00:00"), InvalidArgumentError);
}

// The date part is kept per second: consecutive times across a second, a
// day and a year boundary, and back, each format as themselves.
TEST(TimestampTest, FormatsAcrossSecondBoundaries) {
  for (const char* text : {"2026-12-31T23:59:59.999999Z", "2027-01-01T00:00:00.000000Z",
                           "2027-01-01T00:00:00.000007Z", "2026-12-31T23:59:59.000000Z",
                           "1999-02-28T01:02:03.040506Z", "2026-12-31T23:59:59.999999Z"}) {
    EXPECT_EQ(format_timestamp(parse_timestamp(text)), text);
  }
  // A year of five digits is written whole (parse_timestamp reads four).
  const Timestamp far = parse_timestamp("9999-12-31T23:59:59.5Z") + std::chrono::hours(24);
  EXPECT_EQ(format_timestamp(far), "10000-01-01T23:59:59.500000Z");
}

TEST(UserContextTest, AdminAndSuperuserAreAdministrators) {
  EXPECT_TRUE(kAdmin.is_admin());
  EXPECT_TRUE(kSuper.is_admin());
  EXPECT_FALSE(kAlice.is_admin());
  EXPECT_FALSE((UserContext{"x", "x", {"administrator", "Admin"}}.is_admin()));
}

TEST(SecretStringTest, KeyGenerationMakesFernetFormatKeys) {
  const SecretString a = generate_master_key();
  const SecretString b = generate_master_key();
  EXPECT_EQ(a.size(), 44u);
  EXPECT_FALSE(a.equals(b));
}

}  // namespace
}  // namespace credentials
