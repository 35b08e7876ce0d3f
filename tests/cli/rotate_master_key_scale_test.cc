// `credential_manager rotate-master-key` on a vault of 10,000 credentials
// (issue #6): the real binary re-wraps the keys, the old key is refused, the
// vault verifies with the new one and every credential reads its password.

#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli_fixture.h"
#include "credentials/credentials.h"

namespace credentials::testing {
namespace {

constexpr int kOwners = 4;
constexpr int kPerOwner = 2500;

std::string owner_id(int o) { return fmt::format("owner{}", o); }
std::string name_of(int i) { return fmt::format("db{:04}", i); }
std::string password_of(int o, int i) { return fmt::format("cli-pw-{}-{}-'\"@:/?#% ", o, i); }

class RotateMasterKeyScaleTest : public CliTest {};

TEST_F(RotateMasterKeyScaleTest, RotatesTenThousandCredentialVault) {
  {
    Vault vault = Vault::open({.directory = vault_dir(), .master_key = kMasterKey});
    for (int o = 0; o < kOwners; ++o) {
      std::vector<NewCredential> batch;
      for (int i = 0; i < kPerOwner; ++i) {
        batch.push_back({.name = name_of(i),
                         .host = "db.example.com",
                         .database = "prod",
                         .username = "svc",
                         .password = password_of(o, i)});
      }
      const UserContext user{owner_id(o), owner_id(o), {"user"}};
      ASSERT_EQ(vault.store_credentials(user, std::move(batch)).size(), std::size_t{kPerOwner});
    }
  }

  Environment rotate_env = env();
  rotate_env["CREDENTIAL_MASTER_KEY_NEW"] = kOtherMasterKey;
  const CliResult rotate = cli_with_env({"rotate-master-key", "--json"}, rotate_env);
  ASSERT_EQ(rotate.exit_code, kOk) << rotate;
  EXPECT_EQ(nlohmann::json::parse(rotate.out)["rotated"], true);

  // The old key is refused, by the binary and by the library.
  const CliResult old_key = cli({"verify"});
  EXPECT_EQ(old_key.exit_code, kDecryptionFailed) << old_key;
  EXPECT_THROW(
      (void)Vault::open(
          {.directory = vault_dir(), .master_key = kMasterKey, .create_if_missing = false}),
      DecryptionFailedError);

  Environment new_env = env();
  new_env["CREDENTIAL_MASTER_KEY"] = kOtherMasterKey;
  const CliResult verify = cli_with_env({"verify", "--json"}, new_env);
  ASSERT_EQ(verify.exit_code, kOk) << verify;
  const nlohmann::json report = nlohmann::json::parse(verify.out);
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["credentials"], kOwners * kPerOwner);
  EXPECT_EQ(report["versions"], kOwners * kPerOwner);

  const CliResult show = cli_with_env(
      {"show", "--user", owner_id(3), "--name", name_of(kPerOwner - 1), "--reveal", "--json"},
      new_env);
  ASSERT_EQ(show.exit_code, kOk) << show;
  EXPECT_EQ(nlohmann::json::parse(show.out)["password"], password_of(3, kPerOwner - 1));

  // Every one of the 10,000 reads its own password under the new key.
  Vault vault = Vault::open(
      {.directory = vault_dir(), .master_key = kOtherMasterKey, .create_if_missing = false});
  const UserContext admin{"admin", "admin", {"admin"}};
  int wrong = 0;
  for (int o = 0; o < kOwners; ++o) {
    for (int i = 0; i < kPerOwner; ++i) {
      if (vault.get_credential(admin, owner_id(o), name_of(i)).password.reveal() !=
              password_of(o, i) &&
          ++wrong <= 5) {
        ADD_FAILURE() << owner_id(o) << "/" << name_of(i) << " reads the wrong password";
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace credentials::testing
