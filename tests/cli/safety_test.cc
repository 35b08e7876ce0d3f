// Promises that span every verb: nothing written outside the vault
// directory, private file modes, and no password on stdout or stderr unless
// --reveal asked for it.

#include <string>
#include <vector>

#include <sys/stat.h>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

using SafetyTest = CliTest;

TEST_F(SafetyTest, NothingIsWrittenOutsideTheVaultDirectory) {
  TempDir vault_home;
  const std::string vault = (vault_home.path() / "vault").string();
  const Environment key_only = {{"CREDENTIAL_MASTER_KEY", kMasterKey}};
  const std::vector<std::pair<std::vector<std::string>, std::string>> runs = {
      {{"keygen"}, ""},
      {{"add", "--user", "alice", "--name", "db", "--host", "h", "--database", "d", "--username",
        "u", "--connection-timeout", "2", "--password-stdin", "--vault-dir", vault},
       "pw\n"},
      {{"list", "--user", "alice", "--vault-dir", vault}, ""},
      {{"list", "--user", "alice", "--json", "--vault-dir", vault}, ""},
      {{"show", "--user", "alice", "--name", "db", "--reveal", "--vault-dir", vault}, ""},
      {{"update", "--user", "alice", "--name", "db", "--password-stdin", "--vault-dir", vault},
       "pw2\n"},
      {{"test", "--user", "alice", "--name", "db", "--vault-dir", vault}, ""},
      {{"show", "--user", "bob", "--name", "db", "--vault-dir", vault}, ""},
      {{"delete", "--user", "alice", "--name", "db", "--yes", "--vault-dir", vault}, ""},
  };
  for (const auto& [args, input] : runs) {
    const CliResult result = cli_with_env(args, key_only, input);
    EXPECT_NE(result.exit_code, kUsage) << args[0] << ": " << result;
  }
  std::vector<std::string> stray;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(work_dir())) {
    stray.push_back(entry.path().string());
  }
  EXPECT_TRUE(stray.empty()) << "written outside the vault: " << ::testing::PrintToString(stray);
  std::vector<std::string> outside_vault;
  for (const auto& entry : std::filesystem::directory_iterator(vault_home.path())) {
    if (entry.path() != vault) outside_vault.push_back(entry.path().string());
  }
  EXPECT_TRUE(outside_vault.empty()) << ::testing::PrintToString(outside_vault);
}

TEST_F(SafetyTest, VaultFilesArePrivateWhateverTheUmask) {
  add_postgres("alice", "db", "pw");
  struct stat info {};
  ASSERT_EQ(::stat(vault_dir().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 077, 0u) << std::oct << info.st_mode;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(vault_dir())) {
    ASSERT_EQ(::stat(entry.path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 077, 0u) << entry.path() << " " << std::oct << info.st_mode;
  }
}

TEST_F(SafetyTest, NoVerbPrintsThePasswordUnlessRevealed) {
  const std::string password = "never-print-me-7731";
  add_postgres("alice", "db", password);
  const std::vector<std::vector<std::string>> runs = {
      {"list", "--user", "alice"},
      {"list", "--user", "alice", "--json"},
      {"list", "--user", "root", "--roles", "admin", "--json"},
      {"show", "--user", "alice", "--name", "db"},
      {"show", "--user", "alice", "--name", "db", "--json"},
      {"show", "--user", "bob", "--owner", "alice", "--name", "db", "--reveal"},
      {"test", "--user", "alice", "--name", "db"},
      {"test", "--user", "alice", "--name", "db", "--json"},
      {"update", "--user", "alice", "--name", "db", "--host", "elsewhere"},
      {"delete", "--user", "alice", "--name", "db"},
      {"add", "--user", "alice", "--name", "db", "--host", "h", "--database", "d", "--username",
       "u", "--password", password},
  };
  for (const auto& args : runs) {
    const CliResult result = cli(args);
    EXPECT_EQ(result.out.find(password), std::string::npos) << result;
    EXPECT_EQ(result.err.find(password), std::string::npos) << result;
  }
}

}  // namespace
}  // namespace credentials::testing
