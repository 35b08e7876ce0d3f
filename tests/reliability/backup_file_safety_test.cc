// The files of a backup and a restore (issue #23, items 7 and 8): a backup
// is written beside its target and renamed into place, so the backup
// already there stays whole (a hard link to it keeps the old one, a backup
// that fails part-way leaves it as it was); `restore --force` replaces a
// vault that another process has open without losing that process's later
// writes; and a vault file that is a symbolic link is never opened, nor
// created through one.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "credentials/credentials.h"
#include "support/cli_runner.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::read_file;
using testing::TempDir;

const UserContext kAlice{"alice", "alice", {"user"}};
const UserContext kAdmin{"auditor", "auditor", {"admin"}};

class BackupFileSafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::string(generate_master_key().reveal());
    Vault vault = open();
    store(vault, 0, 2);
  }
  [[nodiscard]] fs::path dir() const { return tmp_ / "vault"; }
  [[nodiscard]] Vault open() const { return Vault::open({.directory = dir(), .master_key = key_}); }
  // Credentials c<first> .. c<first + count - 1> of alice.
  static void store(Vault& vault, int first, int count) {
    std::vector<NewCredential> batch;
    for (int i = first; i < first + count; ++i) {
      batch.push_back(
          {.name = fmt::format("c{}", i), .host = "h", .password = fmt::format("pw-{}", i)});
    }
    (void)vault.store_credentials(kAlice, std::move(batch));
  }
  [[nodiscard]] CliResult cli(const std::vector<std::string>& args) const {
    return testing::run_cli(
        args, {{"CREDENTIAL_MASTER_KEY", key_}, {"CREDENTIAL_VAULT_DIR", dir().string()}}, {},
        tmp_.path());
  }
  // The number of credentials a backup holds, after it verified whole.
  [[nodiscard]] std::int64_t verified_credentials(const fs::path& backup) const {
    const VerifyReport report = verify_backup(backup, key_);
    EXPECT_TRUE(report.ok()) << backup << ": "
                             << (report.problems.empty() ? report.audit.problem
                                                         : report.problems.front());
    return report.credentials;
  }

  TempDir tmp_;
  std::string key_;
};

TEST_F(BackupFileSafetyTest, ABackupReplacesTheOldOneByRenameAHardLinkKeepsTheOldOneWhole) {
  const fs::path backup = tmp_ / "vault.bak";
  const fs::path kept = tmp_ / "kept.bak";
  ASSERT_EQ(cli({"backup", "--out", backup.string()}).exit_code, 0);
  ASSERT_EQ(::link(backup.c_str(), kept.c_str()), 0);
  const std::string old_bytes = read_file(kept);
  {
    Vault vault = open();
    store(vault, 2, 3);
    // By the library as by the binary.
    vault.backup(backup);
  }
  EXPECT_EQ(read_file(kept), old_bytes) << "the backup was written into the old file";
  EXPECT_EQ(verified_credentials(kept), 2);
  EXPECT_EQ(verified_credentials(backup), 5);
  ASSERT_EQ(::unlink(kept.c_str()), 0);
  ASSERT_EQ(::link(backup.c_str(), kept.c_str()), 0);
  {
    Vault vault = open();
    store(vault, 5, 1);
  }
  const CliResult again = cli({"backup", "--out", backup.string()});
  ASSERT_EQ(again.exit_code, 0) << again;
  EXPECT_EQ(verified_credentials(kept), 5);
  EXPECT_EQ(verified_credentials(backup), 6);
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat(kept.c_str(), &a), 0);
  ASSERT_EQ(::stat(backup.c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(b.st_mode & 0777, 0600u);
}

// A backup killed part-way (here by a file size limit: SIGXFSZ once it has
// written 64 KiB) leaves the backup already at the path as it was.
TEST_F(BackupFileSafetyTest, ABackupThatFailsPartWayLeavesTheBackupAtThePathUntouched) {
  const fs::path backup = tmp_ / "vault.bak";
  ASSERT_EQ(cli({"backup", "--out", backup.string()}).exit_code, 0);
  const std::string old_bytes = read_file(backup);
  {
    Vault vault = open();
    store(vault, 2, 600);  // the next backup is several times the limit
  }
  // The vault's log emptied, so that the verb's own writes to it stay small:
  // what the limit stops is the backup.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir() / "vault.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_GT(fs::file_size(dir() / "vault.db"), 2 * 65536u);

  constexpr rlim_t kLimit = 65536;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = kLimit;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);  // inherited by the child
  const CliResult failed = cli({"backup", "--out", backup.string()});
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  EXPECT_NE(failed.exit_code, 0) << failed;
  EXPECT_EQ(read_file(backup), old_bytes) << "the backup at the path was changed";
  EXPECT_EQ(verified_credentials(backup), 2);
  // It failed in the backup: a partial file was being written beside it.
  bool partial = false;
  for (const auto& entry : fs::directory_iterator(tmp_.path())) {
    partial = partial || entry.path().filename().string().starts_with("vault.bak.partial");
  }
  EXPECT_TRUE(partial || failed.err.find("backup failed") != std::string::npos) << failed;
  // The next backup, without the limit, replaces it.
  ASSERT_EQ(cli({"backup", "--out", backup.string()}).exit_code, 0);
  EXPECT_EQ(verified_credentials(backup), 602);
}

// `restore --force` while another process has the vault open: a write that
// process makes after the restore is in the restored vault, not in a file
// no longer in use (issue #23, item 7).
TEST_F(BackupFileSafetyTest, AWriteAfterARestoreByAProcessThatHadTheVaultOpenIsKept) {
  const fs::path backup = tmp_ / "vault.bak";
  ASSERT_EQ(cli({"backup", "--out", backup.string()}).exit_code, 0);
  Vault held = open();  // opened before the restore, used after it
  store(held, 2, 1);    // c2: not in the backup, so the restore removes it
  (void)held.get_credential(kAlice, "c0");
  const CliResult restored = cli({"restore", "--from", backup.string(), "--force"});
  ASSERT_EQ(restored.exit_code, 0) << restored;

  EXPECT_THROW((void)held.get_credential(kAlice, "c2"), CredentialNotFoundError)
      << "the process still reads the vault that was replaced";
  store(held, 3, 1);  // c3, after the restore
  EXPECT_EQ(held.update_password(kAlice, "c0", "pw-0b"), 2u);

  Vault fresh = open();
  EXPECT_EQ(fresh.get_credential(kAlice, "c3").password.reveal(), "pw-3") << "the write was lost";
  EXPECT_EQ(fresh.get_credential(kAlice, "c0").password.reveal(), "pw-0b");
  EXPECT_THROW((void)fresh.get_credential(kAlice, "c2"), CredentialNotFoundError);
  const VerifyReport report = fresh.verify();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? report.audit.problem
                                                       : report.problems.front());
  EXPECT_EQ(report.credentials, 3);
  const CliResult show = cli({"show", "--user", "alice", "--name", "c3"});
  EXPECT_EQ(show.exit_code, 0) << show;
}

// A restore of another vault's backup (same master key): a process that had
// the old vault open cannot write what it seals for that vault into the
// restored one; its write fails, nothing is written, and the vault verifies.
TEST_F(BackupFileSafetyTest, AProcessThatHadAnotherVaultOpenCannotWriteIntoTheRestoredOne) {
  const fs::path other_dir = tmp_ / "other";
  const fs::path backup = tmp_ / "other.bak";
  {
    Vault other = Vault::open({.directory = other_dir, .master_key = key_});
    (void)other.store_credential(kAlice, {.name = "theirs", .host = "h", .password = "pw-theirs"});
    other.backup(backup);
  }
  Vault held = open();
  (void)held.get_credential(kAlice, "c0");
  const CliResult restored = cli({"restore", "--from", backup.string(), "--force"});
  ASSERT_EQ(restored.exit_code, 0) << restored;
  EXPECT_THROW((void)held.store_credential(kAlice, {.name = "late", .host = "h", .password = "pw"}),
               DatabaseError);
  Vault fresh = open();
  EXPECT_EQ(fresh.get_credential(kAlice, "theirs").password.reveal(), "pw-theirs");
  EXPECT_THROW((void)fresh.get_credential(kAlice, "late"), CredentialNotFoundError);
  const VerifyReport report = fresh.verify();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? report.audit.problem
                                                       : report.problems.front());
}

// The vault file opened through a symbolic link: never, on either path of
// SqliteStore::open (an existing file, and the file a new vault creates).
TEST_F(BackupFileSafetyTest, AVaultFileThatIsASymbolicLinkIsNeverOpenedNorCreatedThrough) {
  // An existing vault reached through a link.
  const fs::path linked = tmp_ / "linked";
  fs::create_directory(linked);
  fs::create_symlink(dir() / "vault.db", linked / "vault.db");
  const std::string before = read_file(dir() / "vault.db");
  EXPECT_THROW(
      (void)Vault::open({.directory = linked, .master_key = key_, .create_if_missing = false}),
      InvalidArgumentError);
  EXPECT_THROW((void)Vault::open({.directory = linked, .master_key = key_}), InvalidArgumentError);
  const CliResult list = cli({"list", "--user", "alice", "--vault-dir", linked.string()});
  EXPECT_EQ(list.exit_code, 2) << list;
  EXPECT_NE(list.err.find("symbolic link"), std::string::npos) << list;
  EXPECT_EQ(cli({"verify", "--vault-dir", linked.string()}).exit_code, 2);
  const fs::path backup = tmp_ / "vault.bak";
  ASSERT_EQ(cli({"backup", "--out", backup.string()}).exit_code, 0);
  EXPECT_EQ(cli({"restore", "--from", backup.string(), "--vault-dir", linked.string(), "--force"})
                .exit_code,
            2);
  EXPECT_TRUE(fs::is_symlink(linked / "vault.db"));
  EXPECT_FALSE(fs::exists(linked / "vault.db-wal"));

  // A new vault whose file name is a dangling link: nothing is created at
  // the link's target.
  const fs::path dangling = tmp_ / "dangling";
  fs::create_directory(dangling);
  const fs::path target = tmp_ / "elsewhere.db";
  fs::create_symlink(target, dangling / "vault.db");
  EXPECT_THROW((void)Vault::open({.directory = dangling, .master_key = key_}),
               InvalidArgumentError);
  EXPECT_FALSE(fs::exists(target)) << "a vault file was created through the link";
  const CliResult add = testing::run_cli(
      {"add", "--user", "alice", "--name", "n", "--db-type", "sqlite", "--database", "/tmp/x.db",
       "--password-stdin", "--vault-dir", dangling.string()},
      {{"CREDENTIAL_MASTER_KEY", key_}}, "pw\n", tmp_.path());
  EXPECT_EQ(add.exit_code, 2) << add;
  EXPECT_FALSE(fs::exists(target)) << "a vault file was created through the link";
  EXPECT_EQ(read_file(dir() / "vault.db"), before);
}

}  // namespace
}  // namespace credentials
