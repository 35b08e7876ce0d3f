// backup, restore and verify: a round trip through one file, a restore that
// refuses a directory already holding a vault, and problems reported.

#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"

namespace credentials::testing {
namespace {

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

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

// Files that must not pass for a backup of this vault, and the exit code each
// gets: 2 for what is no vault at all, 5 for a vault that was emptied or
// damaged, or that this master key does not open (issue #23, item 2).
struct BadBackup {
  std::string what;
  std::filesystem::path file;
  int exit_code;
};

class NotABackupTest : public BackupVerbsTest {
 protected:
  std::vector<BadBackup> bad_backups() {
    std::vector<BadBackup> out;
    const auto file = [&](const std::string& name) { return work_dir() / name; };
    EXPECT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
    const std::string real = read_file(backup_file());

    write_file(file("empty.bak"), "");
    out.push_back({"a 0-byte file", file("empty.bak"), kUsage});
    write_file(file("text.bak"), "these are not the bytes of a vault backup at all\n");
    out.push_back({"a text file", file("text.bak"), kUsage});
    write_file(file("no_tables.bak"), "");
    sqlite_exec(file("no_tables.bak"), "PRAGMA user_version = 7");
    out.push_back({"an SQLite database without tables", file("no_tables.bak"), kUsage});
    write_file(file("foreign.bak"), "");
    sqlite_exec(
        file("foreign.bak"),
        "CREATE TABLE settings (key TEXT, value TEXT); INSERT INTO settings VALUES ('a', 'b')");
    out.push_back({"another program's SQLite database", file("foreign.bak"), kUsage});

    write_file(file("emptied.bak"), real);
    sqlite_exec(file("emptied.bak"),
                "DELETE FROM meta; DELETE FROM keys; DELETE FROM credentials; DELETE FROM "
                "credential_ids; DELETE FROM versions; DELETE FROM audit; DELETE FROM ledger");
    out.push_back({"a backup whose rows were all deleted", file("emptied.bak"), kDecryptionFailed});
    write_file(file("no_credentials.bak"), real);
    sqlite_exec(file("no_credentials.bak"),
                "DELETE FROM credentials; DELETE FROM credential_ids; DELETE FROM versions");
    out.push_back({"a backup whose credential rows were deleted", file("no_credentials.bak"),
                   kDecryptionFailed});
    write_file(file("truncated.bak"), real.substr(0, real.size() / 2));
    out.push_back({"a backup cut in half", file("truncated.bak"), kDecryptionFailed});

    // A vault of its own, under another master key.
    const std::filesystem::path other_dir = work_dir() / "other-vault";
    Environment other = env();
    other["CREDENTIAL_MASTER_KEY"] = kOtherMasterKey;
    other["CREDENTIAL_VAULT_DIR"] = other_dir.string();
    EXPECT_EQ(cli_with_env({"add", "--user", "carol", "--name", "x", "--db-type", "sqlite",
                            "--database", "/tmp/x.db", "--password-stdin"},
                           other, "other-pw\n")
                  .exit_code,
              kOk);
    EXPECT_EQ(cli_with_env({"backup", "--out", file("other_vault.bak").string()}, other).exit_code,
              kOk);
    out.push_back({"a backup of another vault", file("other_vault.bak"), kDecryptionFailed});
    return out;
  }

  // The vault in vault_dir() is as SetUp left it.
  void expect_vault_unchanged(const std::string& what) {
    const CliResult show =
        cli({"show", "--user", "alice", "--name", "prod_db", "--reveal", "--json"});
    ASSERT_EQ(show.exit_code, kOk) << what << ": " << show;
    EXPECT_EQ(nlohmann::json::parse(show.out)["password"], "backup-pw-a") << what;
    const CliResult verify = cli({"verify", "--json"});
    ASSERT_EQ(verify.exit_code, kOk) << what << ": " << verify;
    EXPECT_EQ(nlohmann::json::parse(verify.out)["credentials"], 2) << what;
  }
};

TEST_F(NotABackupTest, VerifyBackupRefusesWhatIsNotABackupOfThisVault) {
  for (const BadBackup& bad : bad_backups()) {
    const std::string before = read_file(bad.file);
    const CliResult verify = cli({"verify", "--backup", bad.file.string()});
    EXPECT_EQ(verify.exit_code, bad.exit_code) << bad.what << ": " << verify;
    EXPECT_EQ(verify.out.find("OK"), std::string::npos) << bad.what << ": " << verify;
    EXPECT_NE(verify.err.find(bad.exit_code == kUsage ? "is not a vault backup" : "the backup"),
              std::string::npos)
        << bad.what << ": " << verify;
    EXPECT_EQ(read_file(bad.file), before) << bad.what << ": the file itself is never written";
  }
}

TEST_F(NotABackupTest, RestoreForceFromWhatIsNotABackupChangesNothing) {
  for (const BadBackup& bad : bad_backups()) {
    const CliResult forced = cli({"restore", "--from", bad.file.string(), "--force"});
    EXPECT_EQ(forced.exit_code, bad.exit_code) << bad.what << ": " << forced;
    EXPECT_EQ(forced.out.find("Restored"), std::string::npos) << bad.what << ": " << forced;
    expect_vault_unchanged(bad.what);
    const std::filesystem::path empty_dir = work_dir() / "restore-target";
    const CliResult into_empty =
        cli({"restore", "--from", bad.file.string(), "--vault-dir", empty_dir.string()});
    EXPECT_EQ(into_empty.exit_code, bad.exit_code) << bad.what << ": " << into_empty;
    EXPECT_FALSE(std::filesystem::exists(empty_dir / "vault.db")) << bad.what;
  }
}

// The other places that open a file that must already be a vault: a
// migration's source, and the vault directory of any verb but `add`/`init`.
TEST_F(NotABackupTest, MigrateAndVaultVerbsNeverInitializeAFileThatIsNotAVault) {
  for (const BadBackup& bad : bad_backups()) {
    // (Those that are vaults are refused by their checks: other tests.)
    if (bad.what == "a backup of another vault" || bad.what == "a text file" ||
        bad.what == "a backup whose credential rows were deleted") {
      continue;
    }
    const std::filesystem::path dir = work_dir() / "source";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directory(dir);
    std::filesystem::copy_file(bad.file, dir / "vault.db");
    const std::string before = read_file(dir / "vault.db");
    const std::filesystem::path target = work_dir() / "migrated";
    const CliResult migrate =
        cli({"migrate-store", "--from", dir.string(), "--to", target.string()});
    EXPECT_NE(migrate.exit_code, kOk) << bad.what << ": " << migrate;
    EXPECT_FALSE(std::filesystem::exists(target / "vault.db")) << bad.what;
    const CliResult list = cli({"list", "--user", "alice", "--vault-dir", dir.string()});
    EXPECT_NE(list.exit_code, kOk) << bad.what << ": " << list;
    const CliResult verify = cli({"verify", "--vault-dir", dir.string()});
    EXPECT_NE(verify.exit_code, kOk) << bad.what << ": " << verify;
    EXPECT_EQ(verify.out.find("OK"), std::string::npos) << bad.what << ": " << verify;
    if (bad.what == "a 0-byte file" || bad.what == "an SQLite database without tables") {
      EXPECT_EQ(migrate.exit_code, kNotFound) << bad.what << ": " << migrate;
      EXPECT_EQ(list.exit_code, kNotFound) << bad.what << ": " << list;
    } else {
      EXPECT_EQ(migrate.exit_code, bad.exit_code) << bad.what << ": " << migrate;
      EXPECT_EQ(list.exit_code, bad.exit_code) << bad.what << ": " << list;
      // Creating a vault there is refused too: it would mix a vault into
      // another program's file, or give an emptied vault new keys.
      const CliResult add =
          cli({"add", "--user", "alice", "--name", "n", "--db-type", "sqlite", "--database",
               "/tmp/x.db", "--password-stdin", "--vault-dir", dir.string()},
              "pw\n");
      EXPECT_EQ(add.exit_code, bad.exit_code) << bad.what << ": " << add;
    }
    EXPECT_EQ(read_file(dir / "vault.db"), before) << bad.what << ": the file was written";
  }
}

TEST_F(BackupVerbsTest, RestoreTreatsCredentialVaultUrlAsTheFlag) {
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  const Environment url_env = {{"CREDENTIAL_MASTER_KEY", kMasterKey},
                               {"CREDENTIAL_VAULT_URL", "postgresql://127.0.0.1:1/nowhere"}};
  const CliResult by_env = cli_with_env({"restore", "--from", backup_file().string()}, url_env);
  EXPECT_EQ(by_env.exit_code, kUsage) << by_env;
  EXPECT_NE(by_env.err.find("CREDENTIAL_VAULT_URL"), std::string::npos) << by_env;
  EXPECT_FALSE(std::filesystem::exists(work_dir() / ".credentials"))
      << "restored into ./.credentials";
  // --vault-dir names the target explicitly and wins over the variable.
  const std::filesystem::path dir = work_dir() / "restored";
  const CliResult by_dir = cli_with_env(
      {"restore", "--from", backup_file().string(), "--vault-dir", dir.string()}, url_env);
  EXPECT_EQ(by_dir.exit_code, kOk) << by_dir;
  EXPECT_TRUE(std::filesystem::exists(dir / "vault.db"));
}

// Every verb that takes --vault-url behaves the same with the URL in
// CREDENTIAL_VAULT_URL (here an address where nothing listens), and none
// falls back to ./.credentials.
TEST_F(BackupVerbsTest, EveryVerbTreatsCredentialVaultUrlAsTheFlag) {
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  const std::string url = "postgresql://127.0.0.1:1/nowhere?connect_timeout=2";
  const std::string bak = backup_file().string();
  const std::vector<std::vector<std::string>> verbs = {
      {"add", "--user", "alice", "--name", "n", "--db-type", "sqlite", "--database", "/tmp/x.db",
       "--password-stdin"},
      {"list", "--user", "alice"},
      {"show", "--user", "alice", "--name", "prod_db"},
      {"update", "--user", "alice", "--name", "prod_db", "--password-stdin"},
      {"delete", "--user", "alice", "--name", "prod_db", "-y"},
      {"history", "--user", "alice", "--name", "prod_db"},
      {"audit", "--user", "alice"},
      {"rotate-data-key"},
      {"reencrypt"},
      {"keys"},
      {"backup", "--out", (work_dir() / "from-url.bak").string()},
      {"restore", "--from", bak},
      {"verify"},
      {"init"},
  };
  for (const auto& verb : verbs) {
    std::vector<std::string> with_flag = verb;
    with_flag.insert(with_flag.begin() + 1, {"--vault-url", url});
    const Environment key_only = {{"CREDENTIAL_MASTER_KEY", kMasterKey}};
    Environment url_env = key_only;
    url_env["CREDENTIAL_VAULT_URL"] = url;
    const CliResult by_flag = cli_with_env(with_flag, key_only, "pw\n");
    const CliResult by_env = cli_with_env(verb, url_env, "pw\n");
    EXPECT_NE(by_env.exit_code, kOk) << verb[0] << ": " << by_env;
    EXPECT_EQ(by_env.exit_code, by_flag.exit_code)
        << verb[0] << ": flag " << by_flag << "\nenvironment " << by_env;
    EXPECT_FALSE(std::filesystem::exists(work_dir() / ".credentials")) << verb[0];
  }
}

TEST_F(BackupVerbsTest, BackupRefusesToReplaceAFileThatIsNotABackupOfThisVault) {
  const std::filesystem::path notes = work_dir() / "notes.txt";
  write_file(notes, "precious notes\n");
  const CliResult refused = cli({"backup", "--out", notes.string()});
  EXPECT_EQ(refused.exit_code, kAlreadyExists) << refused;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused;
  EXPECT_EQ(read_file(notes), "precious notes\n");

  // A backup of another vault, a symbolic link and a directory are refused too.
  const std::filesystem::path other_dir = work_dir() / "other-vault";
  Environment other = env();
  other["CREDENTIAL_VAULT_DIR"] = other_dir.string();
  ASSERT_EQ(cli_with_env({"add", "--user", "carol", "--name", "x", "--db-type", "sqlite",
                          "--database", "/tmp/x.db", "--password-stdin"},
                         other, "other-pw\n")
                .exit_code,
            kOk);
  const std::filesystem::path other_backup = work_dir() / "other.bak";
  ASSERT_EQ(cli_with_env({"backup", "--out", other_backup.string()}, other).exit_code, kOk);
  const std::string other_bytes = read_file(other_backup);
  EXPECT_EQ(cli({"backup", "--out", other_backup.string()}).exit_code, kAlreadyExists);
  EXPECT_EQ(read_file(other_backup), other_bytes);
  const std::filesystem::path link = work_dir() / "link.bak";
  std::filesystem::create_symlink(notes, link);
  EXPECT_EQ(cli({"backup", "--out", link.string()}).exit_code, kAlreadyExists);
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  const std::filesystem::path directory = work_dir() / "a-directory";
  std::filesystem::create_directory(directory);
  EXPECT_EQ(cli({"backup", "--out", directory.string()}).exit_code, kAlreadyExists);

  // A backup of this vault is replaced without asking; anything with --force.
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  add_postgres("alice", "later", "backup-pw-later");
  const CliResult again = cli({"backup", "--out", backup_file().string(), "--json"});
  ASSERT_EQ(again.exit_code, kOk) << again;
  const CliResult checked = cli({"verify", "--backup", backup_file().string(), "--json"});
  ASSERT_EQ(checked.exit_code, kOk) << checked;
  EXPECT_EQ(nlohmann::json::parse(checked.out)["credentials"], 3);
  const CliResult forced = cli({"backup", "--out", notes.string(), "--force"});
  ASSERT_EQ(forced.exit_code, kOk) << forced;
  EXPECT_EQ(cli({"verify", "--backup", notes.string()}).exit_code, kOk);
  // Nothing is left beside the files.
  for (const auto& entry : std::filesystem::directory_iterator(work_dir())) {
    EXPECT_EQ(entry.path().filename().string().find(".partial"), std::string::npos) << entry.path();
  }
}

TEST_F(BackupVerbsTest, ADamagedVaultFileExits5) {
  ASSERT_EQ(cli({"backup", "--out", backup_file().string()}).exit_code, kOk);
  const std::string real = read_file(backup_file());
  // Every page but the first overwritten: SQLite reports "malformed".
  std::string damaged = real.substr(0, 4096) + std::string(real.size() - 4096, '\x5a');
  const std::filesystem::path dir = work_dir() / "damaged";
  std::filesystem::create_directory(dir);
  write_file(dir / "vault.db", damaged);
  const CliResult verify = cli({"verify", "--vault-dir", dir.string()});
  EXPECT_EQ(verify.exit_code, kDecryptionFailed) << verify;
  EXPECT_NE(verify.err.find("damaged"), std::string::npos) << verify;
  const CliResult list = cli({"list", "--user", "alice", "--vault-dir", dir.string()});
  EXPECT_EQ(list.exit_code, kDecryptionFailed) << list;
  write_file(work_dir() / "damaged.bak", damaged);
  EXPECT_EQ(cli({"verify", "--backup", (work_dir() / "damaged.bak").string()}).exit_code,
            kDecryptionFailed);
  // A damaged vault is what restore is for: --force replaces it.
  const CliResult restored =
      cli({"restore", "--from", backup_file().string(), "--vault-dir", dir.string(), "--force"});
  ASSERT_EQ(restored.exit_code, kOk) << restored;
  EXPECT_EQ(cli({"verify", "--vault-dir", dir.string()}).exit_code, kOk);
}

}  // namespace
}  // namespace credentials::testing
