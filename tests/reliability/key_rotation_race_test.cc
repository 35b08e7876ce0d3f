// Key rotation races: a master-key rotation and another key operation at the
// same time, as separate processes of the real credential_manager and as a
// long-lived library handle whose key another process rotated away. On both
// stores (embedded SQLite and PostgreSQL).
//
// The guarantee (docs/THREAT_MODEL.md, "Key rotation"): every write that
// wraps a key under the KEK checks, inside its write transaction, that the
// KEK still unwraps the vault's keys. A handle whose master key was rotated
// by someone else gets MasterKeyRotatedError (exit 11) and wraps nothing, so
// after any race exactly one master key opens the vault: the new one when
// the rotation exited 0, else the old one; every credential reads back.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "credentials/credentials.h"
#include "pgstore/pg_fixture.h"
#include "reliability/reliability.h"
#include "support/cli_runner.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::Environment;
using testing::PgDatabase;
using testing::TempDir;

constexpr int kOk = 0;
constexpr int kDecryptionFailed = 5;
constexpr int kMasterKeyRotated = 11;

const UserContext kAlice{"alice", "alice", {"user"}};

enum class Store { kEmbedded, kPostgres };

std::string new_key() { return std::string(generate_master_key().reveal()); }

class KeyRotationRaceTest : public ::testing::TestWithParam<Store> {
 protected:
  void SetUp() override {
    if (GetParam() == Store::kPostgres) {
      pg_.emplace("race");
      url_ = pg_->url();
    }
  }

  [[nodiscard]] VaultOptions options(const std::string& key) const {
    VaultOptions options{.directory = tmp_ / "vault", .master_key = key};
    options.url = url_;
    return options;
  }

  // The CLI's environment for this vault; `next_key` is the rotation's new key.
  [[nodiscard]] Environment env(const std::string& key, const std::string& next_key = "") const {
    Environment env{{"CREDENTIAL_MASTER_KEY", key}};
    if (url_.empty()) {
      env["CREDENTIAL_VAULT_DIR"] = (tmp_ / "vault").string();
    } else {
      env["CREDENTIAL_VAULT_URL"] = url_;
    }
    if (!next_key.empty()) env["CREDENTIAL_MASTER_KEY_NEW"] = next_key;
    return env;
  }

  // Runs two CLI commands at once; returns their results in order.
  static std::pair<CliResult, CliResult> race(const std::vector<std::string>& args_a,
                                              const Environment& env_a,
                                              const std::vector<std::string>& args_b,
                                              const Environment& env_b,
                                              std::string_view stdin_b = {}) {
    CliResult a;
    std::thread other([&] { a = testing::run_cli(args_a, env_a); });
    CliResult b = testing::run_cli(args_b, env_b, stdin_b);
    other.join();
    return {a, b};
  }

  // Exit 5 of a process that opened the vault after a rotation: the key is
  // wrong (never "the vault was altered").
  static void expect_wrong_key_message(const CliResult& result) {
    EXPECT_NE(result.err.find("restore the original key"), std::string::npos) << result;
    EXPECT_EQ(result.err.find("altered"), std::string::npos) << result;
  }

  // The vault opens under `key` only, verifies, and alice's credential reads `password`.
  void expect_opens_only_under(const std::string& key, const std::vector<std::string>& other_keys,
                               const std::string& password) {
    Vault vault = Vault::open(options(key));
    EXPECT_EQ(vault.get_credential(kAlice, "db").password.reveal(), password);
    const VerifyReport report = vault.verify();
    EXPECT_TRUE(report.problems.empty()) << report.problems.front();
    for (const auto& other : other_keys) {
      EXPECT_THROW((void)Vault::open(options(other)), DecryptionFailedError);
    }
  }

  TempDir tmp_;
  std::optional<PgDatabase> pg_;
  std::string url_;
};

// A handle opened before another process rotated the master key: its key
// operations fail with MasterKeyRotatedError, its record writes (under data
// keys the rotation did not change) succeed, and the vault stays whole
// under the new key.
TEST_P(KeyRotationRaceTest, AStaleHandleNeverWrapsUnderARotatedMasterKey) {
  const std::string old_key = new_key(), next_key = new_key();
  Vault stale = Vault::open(options(old_key));
  (void)stale.store_credential(
      kAlice, {.name = "db", .host = "h", .database = "d", .username = "u", .password = "pw-1"});

  const CliResult rotated = testing::run_cli({"rotate-master-key"}, env(old_key, next_key));
  ASSERT_EQ(rotated.exit_code, kOk) << rotated;

  try {
    (void)stale.rotate_data_key();
    ADD_FAILURE() << "rotate_data_key under a rotated master key succeeded";
  } catch (const MasterKeyRotatedError& e) {
    EXPECT_NE(std::string(e.what()).find("rotated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(stale.rotate_master_key(SecretString(new_key())), MasterKeyRotatedError);
  // Records are sealed under data keys, which the rotation re-wrapped but
  // did not change: the stale handle may still write them.
  (void)stale.store_credential(
      kAlice, {.name = "db2", .host = "h", .database = "d", .username = "u", .password = "pw-2"});
  (void)stale.update_password(kAlice, "db", "pw-1b");
  (void)stale.reencrypt();

  // A data key added under the new master key: the stale handle cannot
  // unwrap it, and says why.
  const CliResult data_key = testing::run_cli({"rotate-data-key"}, env(next_key));
  ASSERT_EQ(data_key.exit_code, kOk) << data_key;
  EXPECT_THROW((void)stale.reencrypt(), MasterKeyRotatedError);
  EXPECT_THROW((void)stale.rotate_data_key(), MasterKeyRotatedError);

  expect_opens_only_under(next_key, {old_key}, "pw-1b");
  Vault fresh = Vault::open(options(next_key));
  EXPECT_EQ(fresh.get_credential(kAlice, "db2").password.reveal(), "pw-2");
  EXPECT_EQ(fresh.reencrypt().done, 3);  // db v1, db v2 and db2, to the newest data key
}

// The same with passphrases, where the key derivation also depends on the
// vault's Argon2 salt, which every rotation replaces.
TEST_P(KeyRotationRaceTest, AStaleHandleOnAPassphraseVaultNeverWrapsUnderARotatedKey) {
  const std::string old_key = "correct horse battery staple",
                    next_key = "a longer passphrase, rotated in";
  Vault stale = Vault::open(options(old_key));
  (void)stale.store_credential(
      kAlice, {.name = "db", .host = "h", .database = "d", .username = "u", .password = "pw-1"});
  Vault other = Vault::open(options(old_key));
  other.rotate_master_key(SecretString(next_key));
  EXPECT_THROW((void)stale.rotate_data_key(), MasterKeyRotatedError);
  EXPECT_THROW(stale.rotate_master_key(SecretString("yet another long passphrase")),
               MasterKeyRotatedError);
  (void)stale.update_password(kAlice, "db", "pw-2");
  (void)other.rotate_data_key();  // the rotating handle goes on under the new key
  EXPECT_THROW((void)stale.reencrypt(), MasterKeyRotatedError);
  expect_opens_only_under(next_key, {old_key}, "pw-2");
}

// The reproduction: `rotate-master-key` and `rotate-data-key` at
// the same time, again and again. Before the fix the data key could be
// wrapped under the old master key after the rotation re-wrapped the rest,
// and then no key opened the vault.
TEST_P(KeyRotationRaceTest, RotateMasterKeyRacingRotateDataKeyLeavesOneKeyThatOpensTheVault) {
  std::string current = new_key();
  ASSERT_EQ(testing::run_cli({"add", "-u", "alice", "-n", "db", "--db-type", "sqlite", "--database",
                              (tmp_ / "x.db").string(), "--password-stdin"},
                             env(current), "pw\n")
                .exit_code,
            kOk);
  const int iterations = testing::count_for_mode(12, 60);
  int rotations = 0, refused = 0;
  for (int i = 0; i < iterations; ++i) {
    const std::string next = new_key();
    const auto [rotation, data_key] =
        race({"rotate-master-key"}, env(current, next), {"rotate-data-key"}, env(current));
    ASSERT_TRUE(rotation.exit_code == kOk || rotation.exit_code == kMasterKeyRotated) << rotation;
    // The data-key rotation either ran first, was refused as stale, or
    // opened the vault after the rotation (the old key no longer opens it).
    ASSERT_TRUE(data_key.exit_code == kOk || data_key.exit_code == kMasterKeyRotated ||
                data_key.exit_code == kDecryptionFailed)
        << data_key;
    if (data_key.exit_code == kMasterKeyRotated) {
      ++refused;
      EXPECT_NE(data_key.err.find("rotated"), std::string::npos) << data_key;
    }
    if (data_key.exit_code == kDecryptionFailed) expect_wrong_key_message(data_key);
    const std::string previous = current;
    if (rotation.exit_code == kOk) {
      current = next;
      ++rotations;
    }
    const CliResult show = testing::run_cli({"show", "-u", "alice", "-n", "db"}, env(current));
    ASSERT_EQ(show.exit_code, kOk) << "iteration " << i << ": no key opens the vault: " << show;
    if (current != previous) {
      EXPECT_EQ(testing::run_cli({"show", "-u", "alice", "-n", "db"}, env(previous)).exit_code,
                kDecryptionFailed);
    }
  }
  expect_opens_only_under(current, {}, "pw");
  testing::print_figures(
      "KeyRotationRace",
      fmt::format("{} races: {} rotations, {} data-key rotations refused as stale", iterations,
                  rotations, refused));
}

// A master-key rotation racing each operation that another process may run
// with the old key: a second rotation, reencrypt, update and backup.
TEST_P(KeyRotationRaceTest, RotateMasterKeyRacingOtherKeyAndRecordOperationsKeepsTheVaultWhole) {
  std::string current = new_key();
  std::string password = "pw-0";
  ASSERT_EQ(testing::run_cli({"add", "-u", "alice", "-n", "db", "--host", "h", "--database", "d",
                              "--username", "u", "--password-stdin"},
                             env(current), password + "\n")
                .exit_code,
            kOk);
  const int rounds = testing::count_for_mode(3, 12);
  for (int round = 0; round < rounds; ++round) {
    // Two rotations from the same key: exactly one wins.
    {
      const std::string key_a = new_key(), key_b = new_key();
      const auto [a, b] = race({"rotate-master-key"}, env(current, key_a), {"rotate-master-key"},
                               env(current, key_b));
      ASSERT_NE(a.exit_code == kOk, b.exit_code == kOk) << a << "\n" << b;
      for (const CliResult* loser : {&a, &b}) {
        if (loser->exit_code != kOk) {
          EXPECT_TRUE(loser->exit_code == kMasterKeyRotated ||
                      loser->exit_code == kDecryptionFailed)
              << *loser;
          if (loser->exit_code == kDecryptionFailed) expect_wrong_key_message(*loser);
        }
      }
      const std::string winner = a.exit_code == kOk ? key_a : key_b;
      expect_opens_only_under(winner, {current, a.exit_code == kOk ? key_b : key_a}, password);
      current = winner;
    }
    // A data key first, so that reencrypt has records to move.
    ASSERT_EQ(testing::run_cli({"rotate-data-key"}, env(current)).exit_code, kOk);
    for (const std::string verb : {"reencrypt", "update", "backup"}) {
      const std::string next = new_key();
      std::vector<std::string> args{verb};
      std::string stdin_text;
      const std::string next_password = fmt::format("pw-{}-{}", round, verb);
      if (verb == "update") {
        args = {"update", "-u", "alice", "-n", "db", "--password-stdin"};
        stdin_text = next_password + "\n";
      }
      const fs::path backup_file = tmp_ / fmt::format("b-{}.bak", round);
      if (verb == "backup") args = {"backup", "--out", backup_file.string()};
      const auto [rotation, other] =
          race({"rotate-master-key"}, env(current, next), args, env(current), stdin_text);
      ASSERT_EQ(rotation.exit_code, kOk) << rotation;  // nothing else rotates the master key here
      // Opened before the rotation: done (reencrypt: or refused as stale, when
      // it meets a key it cannot unwrap). Opened after it: the old key is wrong.
      ASSERT_TRUE(other.exit_code == kOk || other.exit_code == kDecryptionFailed ||
                  (verb == "reencrypt" && other.exit_code == kMasterKeyRotated))
          << verb << ": " << other;
      if (other.exit_code == kDecryptionFailed) expect_wrong_key_message(other);
      if (verb == "update" && other.exit_code == kOk) password = next_password;
      if (verb == "backup" && other.exit_code == kOk) {
        // Taken before or after the rotation: it opens under one of the keys.
        const bool under_old =
            testing::run_cli({"verify", "--backup", backup_file.string()}, env(current))
                .exit_code == kOk;
        const bool under_new =
            testing::run_cli({"verify", "--backup", backup_file.string()}, env(next)).exit_code ==
            kOk;
        EXPECT_NE(under_old, under_new) << "the backup must verify under exactly one key";
      }
      expect_opens_only_under(next, {current}, password);
      current = next;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, KeyRotationRaceTest,
                         ::testing::Values(Store::kEmbedded, Store::kPostgres),
                         [](const ::testing::TestParamInfo<Store>& info) {
                           return info.param == Store::kEmbedded ? "Embedded" : "Postgres";
                         });

}  // namespace
}  // namespace credentials
