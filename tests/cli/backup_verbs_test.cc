// backup, restore and verify: a round trip through one file, a restore that
// refuses a directory already holding a vault, and problems reported.

#include <string>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"

namespace credentials::testing {
namespace {

class BackupVerbsTest : public CliTest {
 protected:
  void SetUp() override {
    add_postgres("alice", "prod_db", "backup-pw-a");
    add_postgres("bob", "bobs_db", "backup-pw-b");
  }
  [[nodiscard]] std::filesystem::path backup_file() const { return work_dir() / "vault.backup"; }
};

TEST_F(BackupVerbsTest, BackupRestoreVerifyRoundTrip) {
  const CliResult backup = cli({"backup", "--out", backup_file().string()});
  ASSERT_EQ(backup.exit_code, kOk) << backup;
  ASSERT_TRUE(std::filesystem::is_regular_file(backup_file()));
  EXPECT_EQ(std::filesystem::status(backup_file()).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  EXPECT_EQ(read_file(backup_file()).find("backup-pw-a"), std::string::npos) << "encrypted";

  const CliResult checked = cli({"verify", "--backup", backup_file().string(), "--json"});
  ASSERT_EQ(checked.exit_code, kOk) << checked;
  const nlohmann::json report = nlohmann::json::parse(checked.out);
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["credentials"], 2);
  EXPECT_TRUE(report["problems"].empty());

  const std::filesystem::path restored = work_dir() / "restored";
  const CliResult restore =
      cli({"restore", "--from", backup_file().string(), "--vault-dir", restored.string()});
  ASSERT_EQ(restore.exit_code, kOk) << restore;
  const CliResult verify = cli({"verify", "--vault-dir", restored.string()});
  ASSERT_EQ(verify.exit_code, kOk) << verify;
  EXPECT_NE(verify.out.find("OK"), std::string::npos) << verify;
  const CliResult show = cli({"show", "--user", "bob", "--name", "bobs_db", "--reveal", "--json",
                              "--vault-dir", restored.string()});
  ASSERT_EQ(show.exit_code, kOk) << show;
  EXPECT_EQ(nlohmann::json::parse(show.out)["password"], "backup-pw-b");
}

TEST_F(BackupVerbsTest, RestoreRefusesADirectoryHoldingAVaultUnlessForced) {
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  add_postgres("alice", "after_backup", "backup-pw-c");
  const CliResult refused = cli({"restore", "--from", backup_file().string()});
  EXPECT_EQ(refused.exit_code, kAlreadyExists) << refused;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused;
  EXPECT_EQ(show_json("alice", "after_backup", false)["name"], "after_backup") << "untouched";

  const CliResult forced = cli({"restore", "--from", backup_file().string(), "--force"});
  ASSERT_EQ(forced.exit_code, kOk) << forced;
  EXPECT_EQ(cli({"show", "--user", "alice", "--name", "after_backup"}).exit_code, kNotFound);
  EXPECT_EQ(cli({"verify"}).exit_code, kOk);
}

TEST_F(BackupVerbsTest, RestoreFailures) {
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  const std::filesystem::path target = work_dir() / "target";
  Environment wrong = env();
  wrong["CREDENTIAL_MASTER_KEY"] = kOtherMasterKey;
  const CliResult wrong_key = cli_with_env(
      {"restore", "--from", backup_file().string(), "--vault-dir", target.string()}, wrong);
  EXPECT_EQ(wrong_key.exit_code, kDecryptionFailed) << wrong_key;
  EXPECT_FALSE(std::filesystem::exists(target / "vault.db"));
  const CliResult missing =
      cli({"restore", "--from", (work_dir() / "nope").string(), "--vault-dir", target.string()});
  EXPECT_EQ(missing.exit_code, kUsage) << missing;
  EXPECT_EQ(cli({"restore", "--vault-dir", target.string()}).exit_code, kUsage) << "--from required";
  EXPECT_EQ(cli({"restore", "--from", backup_file().string(), "--vault-url",
                 "postgresql://localhost/x"})
                .exit_code,
            kUsage);
  EXPECT_EQ(cli({"backup"}).exit_code, kUsage) << "--out required";
  EXPECT_EQ(cli({"backup", "--out", backup_file().string(), "--vault-dir",
                 (work_dir() / "none").string()})
                .exit_code,
            kNotFound);
}

TEST_F(BackupVerbsTest, VerifyListsProblemsAndExits5) {
  const CliResult ok = cli({"verify", "--json"});
  ASSERT_EQ(ok.exit_code, kOk) << ok;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["versions"], 2);
  // Damage one stored version.
  sqlite_exec(vault_dir() / "vault.db",
              "UPDATE versions SET sealed = zeroblob(length(sealed)) WHERE lookup = "
              "(SELECT min(lookup) FROM versions)");
  const CliResult bad = cli({"verify"});
  EXPECT_EQ(bad.exit_code, kDecryptionFailed) << bad;
  EXPECT_NE(bad.out.find("problem:"), std::string::npos) << bad;
  EXPECT_NE(bad.err.find("does not verify"), std::string::npos) << bad;
  const CliResult bad_json = cli({"verify", "--json"});
  EXPECT_EQ(bad_json.exit_code, kDecryptionFailed) << bad_json;
  const nlohmann::json report = nlohmann::json::parse(bad_json.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["problems"].size(), 1u) << report;
  // A backup of a damaged vault does not restore.
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  EXPECT_EQ(cli({"verify", "--backup", backup_file().string()}).exit_code, kDecryptionFailed);
  EXPECT_EQ(cli({"restore", "--from", backup_file().string(), "--vault-dir",
                 (work_dir() / "r").string()})
                .exit_code,
            kDecryptionFailed);
}

}  // namespace
}  // namespace credentials::testing
