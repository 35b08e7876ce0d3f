// The command line itself: --help and --version on every verb, and every
// kind of parse error is exit code 2.

#include <regex>
#include <string>
#include <vector>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

const std::vector<std::string> kVerbs = {"add",    "list", "show", "update",
                                         "delete", "test", "run",  "keygen"};
const std::vector<std::string> kVaultVerbs = {"add",    "list", "show", "update",
                                              "delete", "test", "run"};

using UsageTest = CliTest;

TEST_F(UsageTest, VersionOnTheProgramAndOnEveryVerb) {
  const std::regex version_line(R"(credential_manager \d+\.\d+\.\d+\n)");
  const CliResult program = cli({"--version"});
  EXPECT_EQ(program.exit_code, kOk) << program;
  EXPECT_TRUE(std::regex_match(program.out, version_line)) << program;
  for (const std::string& verb : kVerbs) {
    const CliResult result = cli({verb, "--version"});
    EXPECT_EQ(result.exit_code, kOk) << verb << ": " << result;
    EXPECT_EQ(result.out, program.out) << verb;
  }
}

TEST_F(UsageTest, HelpOnEveryVerbDescribesItsOptions) {
  for (const std::string& verb : kVerbs) {
    const CliResult result = cli({verb, "--help"});
    EXPECT_EQ(result.exit_code, kOk) << verb << ": " << result;
    EXPECT_NE(result.out.find(verb), std::string::npos) << result;
    EXPECT_NE(result.out.find("--version"), std::string::npos) << result;
  }
  for (const std::string& verb : kVaultVerbs) {
    const CliResult result = cli({verb, "--help"});
    EXPECT_NE(result.out.find("--vault-dir"), std::string::npos) << verb << ": " << result;
    EXPECT_NE(result.out.find("--user"), std::string::npos) << verb << ": " << result;
    EXPECT_NE(result.out.find("--roles"), std::string::npos) << verb << ": " << result;
  }
  const CliResult top = cli({"--help"});
  EXPECT_EQ(top.exit_code, kOk) << top;
  for (const std::string& verb : kVerbs) EXPECT_NE(top.out.find(verb), std::string::npos) << verb;
}

TEST_F(UsageTest, NoVerbIsAUsageError) {
  const CliResult result = cli({});
  EXPECT_EQ(result.exit_code, kUsage) << result;
  EXPECT_EQ(result.out, "") << result;
}

TEST_F(UsageTest, UnknownVerbIsAUsageError) {
  const CliResult result = cli({"frobnicate"});
  EXPECT_EQ(result.exit_code, kUsage) << result;
}

TEST_F(UsageTest, MissingUserIsAUsageErrorOnEveryCredentialVerb) {
  for (const char* verb : {"list", "show", "update", "delete", "test"}) {
    const CliResult result = cli({verb, "--name", "x"});
    EXPECT_EQ(result.exit_code, kUsage) << verb << ": " << result;
    EXPECT_NE(result.err.find("--user"), std::string::npos) << verb << ": " << result;
  }
}

TEST_F(UsageTest, MissingNameIsAUsageError) {
  for (const char* verb : {"show", "update", "delete", "test"}) {
    const CliResult result = cli({verb, "--user", "alice"});
    EXPECT_EQ(result.exit_code, kUsage) << verb << ": " << result;
    EXPECT_NE(result.err.find("--name"), std::string::npos) << verb << ": " << result;
  }
}

TEST_F(UsageTest, BadOptionValuesAreUsageErrors) {
  const std::vector<std::vector<std::string>> bad_command_lines = {
      {"add", "--user", "a", "--name", "n", "--port", "70000"},
      {"add", "--user", "a", "--name", "n", "--port", "http"},
      {"add", "--user", "a", "--name", "n", "--db-type", "oracle"},
      {"add", "--user", "a", "--name", "n", "--ssl-mode", "sometimes"},
      {"add", "--user", "a", "--name", "n", "--connection-timeout", "0"},
      {"add", "--user", "a", "--name", "n", "--password-stdin", "--password", "x"},
      {"list", "--user", "a", "--no-such-flag"},
      {"update", "--user", "a", "--name", "n", "--if-version", "many"},
  };
  for (const auto& args : bad_command_lines) {
    const CliResult result = cli(args, "pw\n");
    EXPECT_EQ(result.exit_code, kUsage) << args.back() << ": " << result;
    EXPECT_EQ(result.out, "") << result;
  }
  EXPECT_FALSE(std::filesystem::exists(vault_dir())) << "a usage error must not create a vault";
}

TEST_F(UsageTest, NameThatBreaksTheNamingRuleIsAUsageError) {
  const CliResult result = cli({"add", "--user", "alice", "--name", "bad\x1bname", "--host", "h",
                                "--database", "d", "--username", "u", "--password-stdin"},
                               "pw\n");
  EXPECT_EQ(result.exit_code, kUsage) << result;
  EXPECT_NE(result.err.find("control character U+001B"), std::string::npos) << result;
  // The same rule for every name and user id given to `add`; nothing is stored.
  const std::pair<std::string, std::string> bad[] = {
      {"a\u200Bb", "U+200B"}, {"admin\u202Egpj", "U+202E"},         {"\uFEFFdb", "U+FEFF"},
      {"a\u0085b", "U+0085"}, {std::string(129, 'n'), "129 bytes"}, {"ab\xff", "not valid UTF-8"}};
  for (const auto& [text, reason] : bad) {
    for (const bool as_user : {false, true}) {
      const CliResult refused =
          cli({"add", "--user", as_user ? text : "alice", "--name", as_user ? "db" : text, "--host",
               "h", "--database", "d", "--username", "u", "--password-stdin"},
              "pw\n");
      EXPECT_EQ(refused.exit_code, kUsage) << reason << ": " << refused;
      EXPECT_NE(refused.err.find(reason), std::string::npos) << refused;
      EXPECT_NE(refused.err.find(as_user ? "invalid user id" : "invalid credential name"),
                std::string::npos)
          << refused;
    }
  }
  // Spaces and other scripts are names like any other.
  const CliResult accepted = cli({"add", "--user", "alice smith", "--name", "база данных", "--host",
                                  "h", "--database", "d", "--username", "u", "--password-stdin"},
                                 "pw\n");
  EXPECT_EQ(accepted.exit_code, kOk) << accepted;
  const CliResult list = cli({"list", "--user", "alice smith", "--json"});
  EXPECT_EQ(nlohmann::json::parse(list.out).size(), 1u) << list;
}

// The verbs of the audit trail, versions, keys, backups, import and stores.
const std::vector<std::vector<std::string>> kVaultWideVerbs = {
    {"history"}, {"rollback"},      {"audit"},        {"audit", "verify"},
    {"audit", "head"}, {"rotate-master-key"}, {"rotate-data-key"}, {"reencrypt"},
    {"keys"},    {"backup"},        {"restore"},      {"verify"},
    {"import-legacy"}, {"init"},    {"migrate-store"}};

TEST_F(UsageTest, HelpAndVersionOnEveryVaultWideVerb) {
  const CliResult program = cli({"--version"});
  const CliResult top = cli({"--help"});
  for (const std::vector<std::string>& verb : kVaultWideVerbs) {
    std::vector<std::string> help = verb;
    help.push_back("--help");
    const CliResult result = cli(help);
    EXPECT_EQ(result.exit_code, kOk) << verb.back() << ": " << result;
    EXPECT_NE(result.out.find(verb.back()), std::string::npos) << result;
    if (verb.front() != "migrate-store") {
      EXPECT_NE(result.out.find("--vault-dir"), std::string::npos) << verb.back() << ": " << result;
      EXPECT_NE(result.out.find("--vault-url"), std::string::npos) << verb.back() << ": " << result;
    }
    std::vector<std::string> version = verb;
    version.push_back("--version");
    EXPECT_EQ(cli(version).out, program.out) << verb.back();
    EXPECT_NE(top.out.find(verb.front()), std::string::npos) << verb.front();
  }
  for (const std::string& verb : kVaultVerbs) {
    const CliResult result = cli({verb, "--help"});
    EXPECT_NE(result.out.find("--vault-url"), std::string::npos) << verb << ": " << result;
  }
}

TEST_F(UsageTest, VaultUrlIsNeverEchoedInAUsageError) {
  const CliResult result =
      cli({"list", "--user", "a", "--vault-url", "mysql://u:Secret-Pw-9@h/d"});
  EXPECT_EQ(result.exit_code, kUsage) << result;
  EXPECT_EQ(result.err.find("Secret-Pw-9"), std::string::npos) << result;
}

}  // namespace
}  // namespace credentials::testing
