// A Python project directory: the framework keeps its CREDENTIAL_* variables
// in ./.env, and the Python version's vault in .credentials/vault.enc. The CLI
// reads ./.env for what the environment does not set (never writing it), and
// its "no vault" error there says how to import the old vault.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kLegacyFixture =
    fs::path(CREDENTIALS_SOURCE_DIR) / "tests/legacy/fixtures/legacy-vault";

class PythonProjectTest : public CliTest {
 protected:
  void write_dotenv(const std::string& text) const {
    std::ofstream(work_dir() / ".env", std::ios::binary) << text;
  }
  [[nodiscard]] CliResult add_with(const Environment& env, const std::string& name) const {
    return cli_with_env({"add", "--user", "alice", "--name", name, "--db-type", "postgres",
                         "--host", "h", "--database", "d", "--username", "u", "--password-stdin"},
                        env, "pw\n");
  }
  // `list` with the test's own key and vault directory: the vault opens with kMasterKey.
  [[nodiscard]] CliResult list_with_test_key() const { return cli({"list", "--user", "alice"}); }
};

TEST_F(PythonProjectTest, TakesTheKeyAndTheVaultDirectoryFromDotEnvAndNeverWritesIt) {
  const std::string dotenv = std::string("# the framework's settings\n") +
                             "DATABASE_URL=postgresql://app@db/app\n" +
                             "export CREDENTIAL_MASTER_KEY=" + kMasterKey + "\n" +
                             "CREDENTIAL_VAULT_DIR='" + vault_dir().string() + "'\r\n";
  write_dotenv(dotenv);
  const fs::file_time_type written = fs::last_write_time(work_dir() / ".env");

  const CliResult added = add_with({}, "from_dotenv");
  ASSERT_EQ(added.exit_code, kOk) << added;
  EXPECT_TRUE(fs::exists(vault_dir() / "vault.db"));
  const CliResult listed = cli_with_env({"list", "--user", "alice"}, {});
  EXPECT_EQ(listed.exit_code, kOk) << listed;
  EXPECT_NE(listed.out.find("from_dotenv"), std::string::npos) << listed;
  // The key was the file's: the test's own environment (the same key) opens it.
  const CliResult checked = list_with_test_key();
  EXPECT_EQ(checked.exit_code, kOk) << checked;
  EXPECT_NE(checked.out.find("from_dotenv"), std::string::npos) << checked;

  EXPECT_EQ(read_file(work_dir() / ".env"), dotenv);
  EXPECT_EQ(fs::last_write_time(work_dir() / ".env"), written);
  // keygen, which makes a key, does not put it there either.
  ASSERT_EQ(cli_with_env({"keygen"}, {}).exit_code, kOk);
  EXPECT_EQ(read_file(work_dir() / ".env"), dotenv);
}

TEST_F(PythonProjectTest, TheEnvironmentWinsOverDotEnv) {
  write_dotenv(std::string("CREDENTIAL_MASTER_KEY=") + kOtherMasterKey +
               "\nCREDENTIAL_VAULT_DIR=elsewhere\n");
  const CliResult added = add_with(env(), "db");
  ASSERT_EQ(added.exit_code, kOk) << added;
  EXPECT_FALSE(fs::exists(work_dir() / "elsewhere"));
  const CliResult listed = list_with_test_key();
  EXPECT_EQ(listed.exit_code, kOk) << listed;
}

// CREDENTIAL_MASTER_KEY and CREDENTIAL_MASTER_KEY_FILE name one thing, and so
// do CREDENTIAL_VAULT_DIR and CREDENTIAL_VAULT_URL: the library prefers the
// first of each, so a file that supplied it would override the environment's
// choice of the second.
TEST_F(PythonProjectTest, DotEnvNeverOverridesTheOtherVariableOfAPairSetInTheEnvironment) {
  const fs::path key_file = work_dir() / "master.key";
  std::ofstream(key_file) << kMasterKey << "\n";
  write_dotenv(std::string("CREDENTIAL_MASTER_KEY=") + kOtherMasterKey +
               "\nCREDENTIAL_VAULT_URL=postgresql://nobody@nowhere.invalid/db\n");
  const Environment env = {{"CREDENTIAL_MASTER_KEY_FILE", key_file.string()},
                           {"CREDENTIAL_VAULT_DIR", vault_dir().string()}};
  const CliResult added = add_with(env, "db");
  ASSERT_EQ(added.exit_code, kOk) << added;
  const CliResult listed = list_with_test_key();  // made with the key file's key
  EXPECT_EQ(listed.exit_code, kOk) << listed;
}

TEST_F(PythonProjectTest, ReadsQuotedValuesSpacesAndComments) {
  write_dotenv(std::string("  CREDENTIAL_MASTER_KEY = \"") + kMasterKey + "\"  # the key\n" +
               "CREDENTIAL_VAULT_DIR=\"my vault #1\"\n" +
               "CREDENTIAL_SKILLS_DIR=skills # unquoted, with a comment\n" + "not a line\n" +
               "CREDENTIAL_BROKEN='unterminated\n");
  const CliResult added = add_with({}, "db");
  ASSERT_EQ(added.exit_code, kOk) << added;
  EXPECT_TRUE(fs::exists(work_dir() / "my vault #1" / "vault.db"));
}

TEST_F(PythonProjectTest, HelpSaysDotEnvIsRead) {
  const CliResult help = cli_with_env({"--help"}, {});
  ASSERT_EQ(help.exit_code, kOk) << help;
  EXPECT_NE(help.out.find("./.env"), std::string::npos) << help;
  EXPECT_NE(help.out.find("nothing is ever written to it"), std::string::npos) << help;
}

TEST_F(PythonProjectTest, EveryVerbsNoVaultErrorSaysToImportThePythonVault) {
  fs::create_directories(work_dir() / ".credentials");
  fs::copy_file(kLegacyFixture / "vault.enc", work_dir() / ".credentials" / "vault.enc");
  const Environment env = {{"CREDENTIAL_MASTER_KEY", kMasterKey}};  // ./.credentials
  const std::string advice = "credential_manager import-legacy --from .credentials/vault.enc";
  const std::vector<std::vector<std::string>> verbs = {
      {"list", "--user", "alice"},
      {"show", "--user", "alice", "--name", "db"},
      {"update", "--user", "alice", "--name", "db", "--password-stdin"},
      {"delete", "--user", "alice", "--name", "db", "--yes"},
      {"test", "--user", "alice", "--name", "db"},
      {"history", "--user", "alice", "--name", "db"},
      {"rollback", "--user", "alice", "--name", "db", "--to", "1"},
      {"audit", "--user", "alice"},
      {"verify"},
      {"rotate-data-key"},
  };
  for (const std::vector<std::string>& args : verbs) {
    const CliResult result = cli_with_env(args, env, "pw\n");
    EXPECT_EQ(result.exit_code, kNotFound) << args[0] << ": " << result;
    EXPECT_NE(result.err.find(advice), std::string::npos) << args[0] << ": " << result;
  }
  EXPECT_FALSE(fs::exists(work_dir() / ".credentials" / "vault.db"));

  // The advice works as given.
  Environment import_env = env;
  import_env["CREDENTIAL_MASTER_KEY_LEGACY"] = read_file(kLegacyFixture / "master_key");
  const CliResult imported =
      cli_with_env({"import-legacy", "--from", ".credentials/vault.enc"}, import_env);
  ASSERT_EQ(imported.exit_code, kOk) << imported;
  const CliResult listed = cli_with_env({"list", "--user", "root", "--roles", "admin"}, env);
  EXPECT_EQ(listed.exit_code, kOk) << listed;

  // A directory without vault.enc keeps the ordinary advice.
  const CliResult elsewhere =
      cli_with_env({"list", "--user", "alice", "--vault-dir", "empty"}, env);
  EXPECT_EQ(elsewhere.exit_code, kNotFound) << elsewhere;
  EXPECT_EQ(elsewhere.err.find("import-legacy"), std::string::npos) << elsewhere;
}

}  // namespace
}  // namespace credentials::testing
