// rotate-master-key, rotate-data-key, reencrypt and keys: vault-wide verbs,
// run by whoever holds the master key.

#include <algorithm>
#include <fstream>
#include <string>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

class KeyVerbsTest : public CliTest {
 protected:
  void SetUp() override {
    add_postgres("alice", "prod_db", "key-pw-a");
    add_postgres("bob", "bobs_db", "key-pw-b");
    add_postgres("bob", "other", "key-pw-c");
  }
  [[nodiscard]] Environment env_with(const std::string& key) const {
    Environment env = this->env();
    env["CREDENTIAL_MASTER_KEY"] = key;
    return env;
  }
  [[nodiscard]] nlohmann::json keys_json() {
    const CliResult keys = cli({"keys", "--json"});
    EXPECT_EQ(keys.exit_code, kOk) << keys;
    return nlohmann::json::parse(keys.out);
  }
};

TEST_F(KeyVerbsTest, RotateMasterKeyFromEnvironmentThenOnlyTheNewKeyOpens) {
  Environment env = this->env();
  env["CREDENTIAL_MASTER_KEY_NEW"] = kOtherMasterKey;
  const CliResult rotate = cli_with_env({"rotate-master-key"}, env);
  ASSERT_EQ(rotate.exit_code, kOk) << rotate;
  EXPECT_NE(rotate.err.find("CREDENTIAL_MASTER_KEY"), std::string::npos)
      << "reminds to update the key everywhere: " << rotate;
  EXPECT_EQ(rotate.out.find(kOtherMasterKey), std::string::npos) << rotate;
  EXPECT_EQ(rotate.err.find(kOtherMasterKey), std::string::npos) << rotate;

  const CliResult old_key = cli({"list", "--user", "alice"});
  EXPECT_EQ(old_key.exit_code, kDecryptionFailed) << old_key;
  const CliResult new_key = cli_with_env({"show", "--user", "alice", "--name", "prod_db", "--reveal",
                                          "--json"},
                                         env_with(kOtherMasterKey));
  ASSERT_EQ(new_key.exit_code, kOk) << new_key;
  EXPECT_EQ(nlohmann::json::parse(new_key.out)["password"], "key-pw-a");
}

TEST_F(KeyVerbsTest, RotateMasterKeyFromAFile) {
  const std::filesystem::path file = work_dir() / "new.key";
  std::ofstream(file) << kOtherMasterKey << "\n";
  const CliResult rotate = cli({"rotate-master-key", "--new-key-file", file.string(), "--json"});
  ASSERT_EQ(rotate.exit_code, kOk) << rotate;
  EXPECT_EQ(nlohmann::json::parse(rotate.out)["rotated"], true);
  EXPECT_EQ(cli({"list", "--user", "bob"}).exit_code, kDecryptionFailed);
  EXPECT_EQ(cli_with_env({"list", "--user", "bob"}, env_with(kOtherMasterKey)).exit_code, kOk);
}

TEST_F(KeyVerbsTest, RotateMasterKeyAsksTwiceWithoutEcho) {
  PtySession session({"rotate-master-key"}, env(), work_dir());
  ASSERT_TRUE(session.expect("New master key")) << session.transcript();
  session.send_line(kOtherMasterKey);
  ASSERT_TRUE(session.expect("Repeat")) << session.transcript();
  session.send_line(kOtherMasterKey);
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_EQ(session.transcript().find(kOtherMasterKey), std::string::npos) << "echo was on";
  EXPECT_EQ(cli_with_env({"list", "--user", "bob"}, env_with(kOtherMasterKey)).exit_code, kOk);
}

TEST_F(KeyVerbsTest, RotateMasterKeyFailures) {
  // No new key and no terminal.
  const CliResult none = cli({"rotate-master-key"});
  EXPECT_EQ(none.exit_code, kUsage) << none;
  EXPECT_NE(none.err.find("CREDENTIAL_MASTER_KEY_NEW"), std::string::npos) << none;
  // The same key again.
  Environment same = env();
  same["CREDENTIAL_MASTER_KEY_NEW"] = kMasterKey;
  EXPECT_EQ(cli_with_env({"rotate-master-key"}, same).exit_code, kUsage);
  // A wrong current key changes nothing.
  Environment wrong = env_with(kOtherMasterKey);
  wrong["CREDENTIAL_MASTER_KEY_NEW"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  EXPECT_EQ(cli_with_env({"rotate-master-key"}, wrong).exit_code, kDecryptionFailed);
  EXPECT_EQ(cli({"rotate-master-key", "--new-key-file", (work_dir() / "missing").string()}).exit_code,
            kUsage);
  EXPECT_EQ(cli({"rotate-master-key", "--user", "alice"}).exit_code, kUsage) << "no --user";
  EXPECT_EQ(cli({"list", "--user", "alice"}).exit_code, kOk) << "the old key still opens it";
}

TEST_F(KeyVerbsTest, RotateDataKeyKeysAndReencrypt) {
  const nlohmann::json before = keys_json();
  std::int64_t first_data_key = 0;
  for (const nlohmann::json& key : before) {
    for (const char* field : {"key_id", "purpose", "created_at", "encryptions", "records", "current"}) {
      EXPECT_TRUE(key.contains(field)) << field << ": " << key;
    }
    if (key["purpose"] == "data") {
      EXPECT_EQ(key["current"], true);
      EXPECT_EQ(key["records"], 3);
      EXPECT_GE(key["encryptions"].get<int>(), 3);
      first_data_key = key["key_id"];
    }
  }
  ASSERT_NE(first_data_key, 0);

  const CliResult rotate = cli({"rotate-data-key", "--json"});
  ASSERT_EQ(rotate.exit_code, kOk) << rotate;
  const std::int64_t new_key = nlohmann::json::parse(rotate.out)["key_id"];
  EXPECT_NE(new_key, first_data_key);

  const CliResult table = cli({"keys"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_EQ(table.out.rfind("KEY ID", 0), 0u) << table;
  EXPECT_NE(table.out.find("current"), std::string::npos) << table;

  // Not a terminal: one summary line.
  const CliResult reencrypt = cli({"reencrypt", "--batch", "2"});
  ASSERT_EQ(reencrypt.exit_code, kOk) << reencrypt;
  EXPECT_NE(reencrypt.out.find("Re-encrypted 3 records to data key " + std::to_string(new_key)),
            std::string::npos)
      << reencrypt;
  EXPECT_EQ(std::count(reencrypt.out.begin(), reencrypt.out.end(), '\n'), 1) << reencrypt;
  EXPECT_EQ(reencrypt.err.find('\r'), std::string::npos) << "no progress bar off a terminal";

  for (const nlohmann::json& key : keys_json()) {
    if (key["key_id"] == first_data_key) {
      EXPECT_EQ(key["records"], 0) << key;
    }
    if (key["key_id"] == new_key) {
      EXPECT_EQ(key["records"], 3) << key;
      EXPECT_EQ(key["current"], true) << key;
    }
  }
  EXPECT_EQ(show_json("bob", "other")["password"], "key-pw-c");

  const CliResult again = cli({"reencrypt", "--json"});
  ASSERT_EQ(again.exit_code, kOk) << again;
  EXPECT_EQ(nlohmann::json::parse(again.out)["reencrypted"], 0);
  EXPECT_EQ(cli({"verify"}).exit_code, kOk);
}

TEST_F(KeyVerbsTest, ReencryptDrawsAProgressBarOnATerminal) {
  ASSERT_EQ(cli({"rotate-data-key"}).exit_code, kOk);
  PtySession session({"reencrypt", "--batch", "1"}, env(), work_dir());
  ASSERT_TRUE(session.expect("3/3 records")) << session.transcript();
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_NE(session.transcript().find("\r"), std::string::npos) << "redrawn in place";
  EXPECT_NE(session.transcript().find("ETA"), std::string::npos) << session.transcript();
  EXPECT_NE(session.transcript().find("Re-encrypted 3 records"), std::string::npos);
}

TEST_F(KeyVerbsTest, VaultWideVerbsNeedAVaultAndAKeyAndRejectBadFlags) {
  const std::string none = (work_dir() / "none").string();
  for (const char* verb : {"keys", "rotate-data-key", "reencrypt", "rotate-master-key"}) {
    EXPECT_EQ(cli({verb, "--vault-dir", none}).exit_code, kNotFound) << verb;
    EXPECT_EQ(cli_with_env({verb}, {{"CREDENTIAL_VAULT_DIR", vault_dir().string()}}).exit_code,
              kMissingKey)
        << verb;
  }
  EXPECT_FALSE(std::filesystem::exists(none));
  EXPECT_EQ(cli({"reencrypt", "--batch", "0"}).exit_code, kUsage);
  EXPECT_EQ(cli({"keys", "--vault-dir", "a", "--vault-url", "postgresql://x/y"}).exit_code, kUsage);
  EXPECT_EQ(cli({"keys", "--vault-url", "mysql://x/y"}).exit_code, kUsage);
}

}  // namespace
}  // namespace credentials::testing
