// CliTest: each test gets its own temporary directory (the working directory
// of every run), a vault directory inside it, and a master key, and runs the
// real credential_manager binary against them.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cli_runner.h"
#include "support/temp_dir.h"

namespace credentials::testing {

// Two different valid master keys (44 characters of URL-safe base64 of 32 bytes).
inline constexpr const char* kMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
inline constexpr const char* kOtherMasterKey = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM=";

// The exit codes docs/cli_reference.md promises.
enum Exit : int {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,
  kNotFound = 3,
  kUnauthorized = 4,
  kDecryptionFailed = 5,
  kAlreadyExists = 6,
  kCouldNotConnect = 7,
  kMissingKey = 8,
  kSkillFailed = 9,
  kConflict = 10,
  kMasterKeyRotated = 11,
};

class CliTest : public ::testing::Test {
 protected:
  [[nodiscard]] std::filesystem::path work_dir() const { return temp_.path(); }
  [[nodiscard]] std::filesystem::path vault_dir() const { return temp_ / "vault"; }

  // The environment of every run: the key and the vault directory.
  [[nodiscard]] Environment env() const {
    return {{"CREDENTIAL_MASTER_KEY", kMasterKey}, {"CREDENTIAL_VAULT_DIR", vault_dir().string()}};
  }

  [[nodiscard]] CliResult cli(const std::vector<std::string>& args,
                              std::string_view stdin_text = {}) const {
    return run_cli(args, env(), stdin_text, work_dir());
  }
  [[nodiscard]] CliResult cli_with_env(const std::vector<std::string>& args, const Environment& env,
                                       std::string_view stdin_text = {}) const {
    return run_cli(args, env, stdin_text, work_dir());
  }

  // Stores a postgres credential non-interactively; the test fails if it cannot.
  void add_postgres(const std::string& user, const std::string& name, const std::string& password,
                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {
        "add",        "--user",     user,     "--name",          name,
        "--db-type",  "postgres",   "--host", "db.example.com",  "--database",
        "production", "--username", "dbuser", "--password-stdin"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliResult result = cli(args, password + "\n");
    ASSERT_EQ(result.exit_code, kOk) << result;
  }

  // `show --reveal --json` parsed; the test fails if it cannot.
  [[nodiscard]] nlohmann::json show_json(const std::string& user, const std::string& name,
                                         bool reveal = true) {
    std::vector<std::string> args = {"show", "--user", user, "--name", name, "--json"};
    if (reveal) args.push_back("--reveal");
    const CliResult result = cli(args);
    EXPECT_EQ(result.exit_code, kOk) << result;
    return nlohmann::json::parse(result.out);
  }

 private:
  TempDir temp_;
};

}  // namespace credentials::testing
