// Careless keys and files: a key file that is not one (/dev/zero, a
// directory, a huge file), a key file or a vault others can read, a key too
// short or almost a generated one, a vault directory reached through a
// symbolic link. Each is refused with a message that says what to do, or
// warned about on stderr, and nothing is lost.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <sys/stat.h>

#include "cli/cli_fixture.h"
#include "credentials/credentials.h"

namespace credentials::testing {
namespace {

namespace fs = std::filesystem;

class CarelessKeysTest : public CliTest {
 protected:
  // The environment with the master key in a file instead of the variable.
  [[nodiscard]] Environment env_with_key_file(const fs::path& file) const {
    return {{"CREDENTIAL_MASTER_KEY_FILE", file.string()},
            {"CREDENTIAL_VAULT_DIR", vault_dir().string()}};
  }
  [[nodiscard]] Environment env_with_key(const std::string& key) const {
    return {{"CREDENTIAL_MASTER_KEY", key}, {"CREDENTIAL_VAULT_DIR", vault_dir().string()}};
  }
  [[nodiscard]] fs::path write_key_file(const std::string& name, const std::string& text,
                                        fs::perms mode) const {
    const fs::path file = work_dir() / name;
    std::ofstream(file, std::ios::binary) << text;
    fs::permissions(file, mode);
    return file;
  }
  [[nodiscard]] CliResult add(const Environment& env, const std::string& name = "db") const {
    return cli_with_env({"add", "--user", "alice", "--name", name, "--host", "h", "--database", "d",
                         "--username", "u", "--password-stdin"},
                        env, "pw\n");
  }
};

constexpr fs::perms kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;
constexpr fs::perms kWorldReadable = kOwnerOnly | fs::perms::group_read | fs::perms::others_read;

TEST_F(CarelessKeysTest, AKeyFileLongerThan4KiBIsRefusedWithoutReadingIt) {
  // A log file named by mistake: refused, naming the variable, not taken as
  // a 64 KiB passphrase for a new vault.
  const fs::path big = write_key_file("big.key", std::string(64 * 1024, 'k'), kOwnerOnly);
  const CliResult result = add(env_with_key_file(big));
  ASSERT_EQ(result.exit_code, kMissingKey) << result;
  EXPECT_NE(result.err.find("CREDENTIAL_MASTER_KEY_FILE"), std::string::npos) << result;
  EXPECT_NE(result.err.find("longer than 4 KiB"), std::string::npos) << result;
  EXPECT_FALSE(fs::exists(vault_dir())) << "nothing may be created";

  // /dev/zero never ends: it used to grow the process's memory without limit.
  const CliResult zero = add(env_with_key_file("/dev/zero"));
  EXPECT_EQ(zero.exit_code, kMissingKey) << zero;
  EXPECT_NE(zero.err.find("longer than 4 KiB"), std::string::npos) << zero;
  EXPECT_FALSE(fs::exists(vault_dir()));

  // The same rule for rotate-master-key's --new-key-file.
  ASSERT_EQ(add(env()).exit_code, kOk);
  const CliResult rotate = cli({"rotate-master-key", "--new-key-file", "/dev/zero"});
  EXPECT_EQ(rotate.exit_code, kUsage) << rotate;
  EXPECT_NE(rotate.err.find("--new-key-file"), std::string::npos) << rotate;
  EXPECT_NE(rotate.err.find("longer than 4 KiB"), std::string::npos) << rotate;
  EXPECT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk) << "the key did not change";
}

TEST_F(CarelessKeysTest, AKeyFromAPipeStillWorks) {
  // <(pass show vault-key) names a pipe: it is read, not refused.
  ASSERT_EQ(add(env()).exit_code, kOk);
  const CliResult result = cli_with_env(
      {"list", "--user", "alice"}, env_with_key_file("/dev/stdin"), std::string(kMasterKey) + "\n");
  EXPECT_EQ(result.exit_code, kOk) << result;
}

TEST_F(CarelessKeysTest, AKeyFileThatIsADirectoryIsExplained) {
  const fs::path directory = work_dir() / "keys";
  fs::create_directories(directory);
  const CliResult result = add(env_with_key_file(directory));
  EXPECT_EQ(result.exit_code, kMissingKey) << result;
  EXPECT_NE(result.err.find("CREDENTIAL_MASTER_KEY_FILE names a directory"), std::string::npos)
      << result;
  EXPECT_EQ(result.err.find("basic_filebuf"), std::string::npos) << "a raw C++ exception";
  EXPECT_FALSE(fs::exists(vault_dir()));

  ASSERT_EQ(add(env()).exit_code, kOk);
  const CliResult rotate = cli({"rotate-master-key", "--new-key-file", directory.string()});
  EXPECT_EQ(rotate.exit_code, kUsage) << rotate;
  EXPECT_NE(rotate.err.find("--new-key-file names a directory"), std::string::npos) << rotate;
}

TEST_F(CarelessKeysTest, AKeyFileOthersCanReadIsWarnedAbout) {
  const fs::path open = write_key_file("open.key", std::string(kMasterKey) + "\n", kWorldReadable);
  const CliResult warned = add(env_with_key_file(open));
  ASSERT_EQ(warned.exit_code, kOk) << warned;
  EXPECT_NE(warned.err.find("warning: the master key file " + open.string()), std::string::npos)
      << warned;
  EXPECT_NE(warned.err.find("mode 0644"), std::string::npos) << warned;
  EXPECT_NE(warned.err.find("chmod 600 " + open.string()), std::string::npos) << warned;

  fs::permissions(open, kOwnerOnly);
  const CliResult quiet = cli_with_env({"list", "--user", "alice"}, env_with_key_file(open));
  EXPECT_EQ(quiet.exit_code, kOk) << quiet;
  EXPECT_EQ(quiet.err, "") << quiet;

  // A new key file for rotate-master-key too.
  const fs::path next =
      write_key_file("next.key", std::string(kOtherMasterKey) + "\n", kWorldReadable);
  const CliResult rotate =
      cli_with_env({"rotate-master-key", "--new-key-file", next.string()}, env_with_key_file(open));
  EXPECT_EQ(rotate.exit_code, kOk) << rotate;
  EXPECT_NE(rotate.err.find("chmod 600 " + next.string()), std::string::npos) << rotate;
}

TEST_F(CarelessKeysTest, AShortPassphraseCannotCreateAVault) {
  for (const std::string& key : {std::string("hunter2"), std::string("elevenchars"),
                                 std::string("sh\xc3\xb6rt p\xc3\xa4ss")}) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"add", "--user", "alice", "--name", "db", "--host", "h",
                                   "--database", "d", "--username", "u", "--password-stdin"},
          std::vector<std::string>{"init"}}) {
      const CliResult result = cli_with_env(args, env_with_key(key), "pw\n");
      EXPECT_EQ(result.exit_code, kUsage) << key << " " << args[0] << ": " << result;
      EXPECT_NE(result.err.find("at least 12 characters"), std::string::npos) << result;
      EXPECT_NE(result.err.find("credential_manager keygen"), std::string::npos) << result;
      EXPECT_FALSE(fs::exists(vault_dir())) << "nothing may be created";
    }
  }
  // Twelve characters make a passphrase; the generated key is always fine.
  EXPECT_EQ(add(env_with_key("twelve chars")).exit_code, kOk);
}

TEST_F(CarelessKeysTest, AVaultMadeUnderAShortPassphraseStillOpens) {
  // Made before the rule (or by a program that rotated to one): still
  // opened, and `add` (which may create) still writes to it.
  {
    Vault vault = Vault::open({.directory = vault_dir(), .master_key = kMasterKey});
    vault.rotate_master_key("hunter2");
  }
  EXPECT_EQ(add(env_with_key("hunter2")).exit_code, kOk);
  EXPECT_EQ(cli_with_env({"list", "--user", "alice"}, env_with_key("hunter2")).exit_code, kOk);
}

TEST_F(CarelessKeysTest, AKeyThatIsAlmostAGeneratedKeyIsWarnedAbout) {
  const std::string key = kMasterKey;
  for (const std::string& mistyped : {key.substr(0, 43), key.substr(1), key + "=", "A" + key}) {
    TempDir home;
    const Environment environment = {{"CREDENTIAL_MASTER_KEY", mistyped},
                                     {"CREDENTIAL_VAULT_DIR", (home.path() / "vault").string()}};
    const CliResult result = add(environment);
    EXPECT_EQ(result.exit_code, kOk) << result;
    EXPECT_NE(
        result.err.find(fmt::format("warning: the master key from CREDENTIAL_MASTER_KEY is {} "
                                    "characters of base64",
                                    mistyped.size())),
        std::string::npos)
        << mistyped << ": " << result;
  }
  // The generated key itself, and a passphrase, are not warned about.
  EXPECT_EQ(add(env()).err, "");
  EXPECT_EQ(add(env_with_key("correct horse battery staple"), "other").err.find("warning"),
            std::string::npos);
}

TEST_F(CarelessKeysTest, RotatingToAShortOrMistypedKey) {
  ASSERT_EQ(add(env()).exit_code, kOk);
  Environment short_key = env();
  short_key["CREDENTIAL_MASTER_KEY_NEW"] = "hunter2";
  const CliResult refused = cli_with_env({"rotate-master-key"}, short_key);
  EXPECT_EQ(refused.exit_code, kUsage) << refused;
  EXPECT_NE(refused.err.find("CREDENTIAL_MASTER_KEY_NEW"), std::string::npos) << refused;
  EXPECT_NE(refused.err.find("at least 12 characters"), std::string::npos) << refused;
  EXPECT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk) << "the old key still opens it";

  Environment mistyped = env();
  const std::string almost = std::string(kOtherMasterKey).substr(0, 43);
  mistyped["CREDENTIAL_MASTER_KEY_NEW"] = almost;
  const CliResult warned = cli_with_env({"rotate-master-key"}, mistyped);
  EXPECT_EQ(warned.exit_code, kOk) << warned;
  EXPECT_NE(warned.err.find("CREDENTIAL_MASTER_KEY_NEW is 43 characters of base64"),
            std::string::npos)
      << warned;
  EXPECT_EQ(cli_with_env({"list", "--user", "alice"}, env_with_key(almost)).exit_code, kOk);
}

TEST_F(CarelessKeysTest, AVaultOthersCanReadIsWarnedAboutAndVerifyReportsIt) {
  ASSERT_EQ(add(env()).exit_code, kOk);
  EXPECT_EQ(cli({"list", "--user", "alice"}).err, "") << "a private vault is not warned about";

  fs::permissions(vault_dir(), fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
  const CliResult directory = cli({"list", "--user", "alice"});
  EXPECT_EQ(directory.exit_code, kOk) << directory;
  EXPECT_NE(directory.err.find(vault_dir().string() + " (0755)"), std::string::npos) << directory;
  EXPECT_NE(directory.err.find("chmod -R go= " + vault_dir().string()), std::string::npos)
      << directory;

  fs::permissions(vault_dir(), fs::perms::owner_all);
  fs::permissions(vault_dir() / "vault.db", kWorldReadable);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"list", "--user", "alice"}, std::vector<std::string>{"verify"},
        std::vector<std::string>{"verify", "--json"}}) {
    const CliResult result = cli(args);
    EXPECT_EQ(result.exit_code, kOk) << result;
    EXPECT_NE(result.err.find((vault_dir() / "vault.db").string() + " (0644)"), std::string::npos)
        << args[0] << ": " << result;
  }
}

TEST_F(CarelessKeysTest, AVaultDirectoryThroughASymbolicLinkIsRefusedBeforeAnythingIsMade) {
  const fs::path real = work_dir() / "real";
  fs::create_directories(real);
  const fs::path link = work_dir() / "link";
  fs::create_directory_symlink(real, link);

  // The directory itself is a link, or a directory above it is.
  for (const fs::path& directory : {link, link / "vault"}) {
    const Environment environment = {{"CREDENTIAL_MASTER_KEY", kMasterKey},
                                     {"CREDENTIAL_VAULT_DIR", directory.string()}};
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"add", "--user", "alice", "--name", "db", "--host", "h",
                                   "--database", "d", "--username", "u", "--password-stdin"},
          std::vector<std::string>{"init"}, std::vector<std::string>{"list", "--user", "alice"}}) {
      const CliResult result = cli_with_env(args, environment, "pw\n");
      EXPECT_EQ(result.exit_code, kUsage) << directory << " " << args[0] << ": " << result;
      EXPECT_NE(result.err.find("symbolic link (" + link.string() + ")"), std::string::npos)
          << result;
      EXPECT_NE(result.err.find(fs::canonical(real).string()), std::string::npos) << result;
      EXPECT_TRUE(fs::is_empty(real)) << directory << " " << args[0] << ": something was made";
    }
  }

  // Nor is a backup restored through one.
  ASSERT_EQ(add(env()).exit_code, kOk);
  const fs::path backup = work_dir() / "vault.backup";
  ASSERT_EQ(cli({"backup", "--out", backup.string()}).exit_code, kOk);
  const CliResult restore =
      cli({"restore", "--from", backup.string(), "--vault-dir", link.string()});
  EXPECT_EQ(restore.exit_code, kUsage) << restore;
  EXPECT_NE(restore.err.find("symbolic link"), std::string::npos) << restore;
  EXPECT_TRUE(fs::is_empty(real)) << "restored through the link";
  for (const auto& entry : fs::directory_iterator(work_dir())) {
    EXPECT_EQ(entry.path().filename().string().find(".restore-"), std::string::npos)
        << "a scratch copy was made: " << entry.path();
  }
}

}  // namespace
}  // namespace credentials::testing
