// `keygen`: a fresh 32-byte key as 44 characters of URL-safe base64, usable
// as CREDENTIAL_MASTER_KEY at once.

#include <optional>
#include <string>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

// Decodes URL-safe base64 with padding; nullopt for anything else.
std::optional<std::string> decode_base64url(const std::string& text) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  if (text.size() % 4 != 0) return std::nullopt;
  std::string bytes;
  unsigned buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=') {
      if (i + 2 < text.size()) return std::nullopt;
      break;
    }
    const std::size_t value = alphabet.find(text[i]);
    if (value == std::string::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return bytes;
}

using KeygenTest = CliTest;

TEST_F(KeygenTest, PrintsA44CharacterUrlSafeBase64KeyOf32Bytes) {
  const CliResult result = cli_with_env({"keygen"}, {});
  ASSERT_EQ(result.exit_code, kOk) << result;
  ASSERT_EQ(result.out.size(), 45u) << result;
  EXPECT_EQ(result.out.back(), '\n');
  const std::string key = result.out.substr(0, 44);
  const std::optional<std::string> bytes = decode_base64url(key);
  ASSERT_TRUE(bytes.has_value()) << key;
  EXPECT_EQ(bytes->size(), 32u) << key;
}

TEST_F(KeygenTest, EveryKeyIsNew) {
  const CliResult first = cli_with_env({"keygen"}, {});
  const CliResult second = cli_with_env({"keygen"}, {});
  ASSERT_EQ(first.exit_code, kOk) << first;
  ASSERT_EQ(second.exit_code, kOk) << second;
  EXPECT_NE(first.out, second.out);
}

TEST_F(KeygenTest, NeedsNoVaultAndWritesNothing) {
  const CliResult result = cli_with_env({"keygen"}, {});
  EXPECT_EQ(result.exit_code, kOk) << result;
  EXPECT_TRUE(std::filesystem::is_empty(work_dir()));
}

TEST_F(KeygenTest, TheKeyOpensANewVault) {
  const CliResult keygen = cli_with_env({"keygen"}, {});
  ASSERT_EQ(keygen.exit_code, kOk) << keygen;
  const Environment env = {{"CREDENTIAL_MASTER_KEY", keygen.out.substr(0, 44)},
                           {"CREDENTIAL_VAULT_DIR", vault_dir().string()}};
  const CliResult add = cli_with_env({"add", "--user", "alice", "--name", "db", "--host", "h",
                                      "--database", "d", "--username", "u", "--password-stdin"},
                                     env, "pw\n");
  ASSERT_EQ(add.exit_code, kOk) << add;
  const CliResult show = cli_with_env({"show", "--user", "alice", "--name", "db", "--reveal"}, env);
  EXPECT_EQ(show.exit_code, kOk) << show;
  EXPECT_NE(show.out.find("pw"), std::string::npos) << show;
}

}  // namespace
}  // namespace credentials::testing
