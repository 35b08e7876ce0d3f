// `add` without a terminal: flags, --password-stdin, --password, and the
// errors a script can meet (exists, missing key, wrong key, missing fields).

#include <fstream>
#include <regex>
#include <string>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

using AddTest = CliTest;

const std::regex kIsoUtc(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z)");

TEST_F(AddTest, StoresEveryFieldGivenAsFlags) {
  const CliResult add = cli({"add",
                             "--user",
                             "alice",
                             "--name",
                             "prod_db",
                             "--db-type",
                             "postgres",
                             "--host",
                             "db.example.com",
                             "--port",
                             "6432",
                             "--database",
                             "production",
                             "--username",
                             "dbuser",
                             "--description",
                             "Production database",
                             "--ssl-mode",
                             "require",
                             "--connection-timeout",
                             "12",
                             "--password-stdin"},
                            "secret123\n");
  ASSERT_EQ(add.exit_code, kOk) << add;
  EXPECT_NE(add.out.find("alice/prod_db"), std::string::npos) << add;
  EXPECT_EQ(add.out.find("secret123"), std::string::npos) << add;

  const nlohmann::json shown = show_json("alice", "prod_db");
  EXPECT_EQ(shown["owner"], "alice");
  EXPECT_EQ(shown["name"], "prod_db");
  EXPECT_EQ(shown["db_type"], "postgres");
  EXPECT_EQ(shown["host"], "db.example.com");
  EXPECT_EQ(shown["port"], 6432);
  EXPECT_EQ(shown["database"], "production");
  EXPECT_EQ(shown["username"], "dbuser");
  EXPECT_EQ(shown["description"], "Production database");
  EXPECT_EQ(shown["ssl_mode"], "require");
  EXPECT_EQ(shown["connection_timeout"], 12);
  EXPECT_EQ(shown["version"], 1);
  EXPECT_EQ(shown["password"], "secret123");
  EXPECT_TRUE(std::regex_match(shown["created_at"].get<std::string>(), kIsoUtc)) << shown;
  EXPECT_TRUE(std::regex_match(shown["updated_at"].get<std::string>(), kIsoUtc)) << shown;
}

TEST_F(AddTest, JsonReportsTheNewId) {
  const CliResult add = cli({"add", "--user", "alice", "--name", "db", "--host", "h", "--database",
                             "d", "--username", "u", "--password-stdin", "--json"},
                            "pw\n");
  ASSERT_EQ(add.exit_code, kOk) << add;
  const nlohmann::json reported = nlohmann::json::parse(add.out);
  EXPECT_EQ(reported["owner"], "alice");
  EXPECT_EQ(reported["name"], "db");
  EXPECT_EQ(reported["version"], 1);
  EXPECT_EQ(reported["id"], show_json("alice", "db")["id"]);
}

TEST_F(AddTest, DefaultPortComesFromTheDbType) {
  add_postgres("alice", "pg", "pw");
  EXPECT_EQ(show_json("alice", "pg")["port"], 5432);
  const CliResult mysql =
      cli({"add", "--user", "alice", "--name", "my", "--db-type", "mysql", "--host", "h",
           "--database", "d", "--username", "u", "--password-stdin"},
          "pw\n");
  ASSERT_EQ(mysql.exit_code, kOk) << mysql;
  EXPECT_EQ(show_json("alice", "my")["port"], 3306);
  EXPECT_EQ(show_json("alice", "my")["connection_timeout"], 30);
}

TEST_F(AddTest, SqliteCredentialNeedsOnlyTheDatabaseFile) {
  const CliResult add = cli({"add", "--user", "alice", "--name", "local", "--db-type", "sqlite",
                             "--database", (work_dir() / "app.db").string()});
  ASSERT_EQ(add.exit_code, kOk) << add;
  const nlohmann::json shown = show_json("alice", "local");
  EXPECT_EQ(shown["db_type"], "sqlite");
  EXPECT_EQ(shown["database"], (work_dir() / "app.db").string());
  EXPECT_EQ(shown["password"], "");
}

TEST_F(AddTest, PasswordWithSpecialAndNonAsciiCharactersRoundTrips) {
  const std::string password = "p@ss/w:rd#%]'\"\\ ?&=+ é日本🔑 end";
  add_postgres("alice", "special", password);
  EXPECT_EQ(show_json("alice", "special")["password"], password);

  const CliResult human = cli({"show", "--user", "alice", "--name", "special", "--reveal"});
  ASSERT_EQ(human.exit_code, kOk) << human;
  EXPECT_NE(human.out.find(password + "\n"), std::string::npos) << human;
}

TEST_F(AddTest, PasswordStdinTakesOneLineWithoutItsLineEnding) {
  add_postgres("alice", "lf", "first line\nsecond line\n");
  EXPECT_EQ(show_json("alice", "lf")["password"], "first line");
  add_postgres("alice", "crlf", "windows\r\n");
  EXPECT_EQ(show_json("alice", "crlf")["password"], "windows");
  add_postgres("alice", "no_newline", "  spaces kept  ");
  EXPECT_EQ(show_json("alice", "no_newline")["password"], "  spaces kept  ");
}

TEST_F(AddTest, EmptyPasswordOnStdinIsRefused) {
  for (const std::string stdin_text : {"", "\n"}) {
    const CliResult add = cli({"add", "--user", "alice", "--name", "db", "--host", "h",
                               "--database", "d", "--username", "u", "--password-stdin"},
                              stdin_text);
    EXPECT_EQ(add.exit_code, kUsage) << add;
  }
  const CliResult show = cli({"show", "--user", "alice", "--name", "db"});
  EXPECT_EQ(show.exit_code, kNotFound) << "nothing may be stored: " << show;
}

TEST_F(AddTest, PasswordFlagWorksButWarnsThatItIsVisible) {
  const CliResult add = cli({"add", "--user", "alice", "--name", "db", "--host", "h", "--database",
                             "d", "--username", "u", "--password", "visible-secret"});
  ASSERT_EQ(add.exit_code, kOk) << add;
  EXPECT_NE(add.err.find("warning"), std::string::npos) << add;
  EXPECT_NE(add.err.find("process list"), std::string::npos) << add;
  EXPECT_EQ(add.out.find("visible-secret"), std::string::npos) << add;
  EXPECT_EQ(add.err.find("visible-secret"), std::string::npos) << add;
  EXPECT_EQ(show_json("alice", "db")["password"], "visible-secret");
}

TEST_F(AddTest, AddingAnExistingNameIsExitCode6AndKeepsTheOriginal) {
  add_postgres("alice", "db", "original");
  const CliResult again = cli({"add", "--user", "alice", "--name", "db", "--host", "other",
                               "--database", "d", "--username", "u", "--password-stdin"},
                              "replacement\n");
  EXPECT_EQ(again.exit_code, kAlreadyExists) << again;
  EXPECT_NE(again.err.find("credential_manager update --user alice --name db"), std::string::npos)
      << again;
  EXPECT_EQ(again.err.find("replacement"), std::string::npos) << again;
  const nlohmann::json shown = show_json("alice", "db");
  EXPECT_EQ(shown["password"], "original");
  EXPECT_EQ(shown["host"], "db.example.com");
}

TEST_F(AddTest, SameNameForAnotherUserIsAnotherCredential) {
  add_postgres("alice", "db", "alice-pw");
  add_postgres("bob", "db", "bob-pw");
  EXPECT_EQ(show_json("alice", "db")["password"], "alice-pw");
  EXPECT_EQ(show_json("bob", "db")["password"], "bob-pw");
}

TEST_F(AddTest, MissingFieldsWithoutATerminalAreNamedAndNothingIsCreated) {
  const CliResult add = cli({"add", "--user", "alice", "--name", "db", "--password-stdin"}, "pw\n");
  EXPECT_EQ(add.exit_code, kUsage) << add;
  for (const char* flag : {"--host", "--username", "--database"}) {
    EXPECT_NE(add.err.find(flag), std::string::npos) << flag << ": " << add;
  }
  EXPECT_FALSE(std::filesystem::exists(vault_dir()));
}

TEST_F(AddTest, MissingPasswordWithoutATerminalIsAUsageError) {
  const CliResult add = cli({"add", "--user", "alice", "--name", "db", "--host", "h", "--database",
                             "d", "--username", "u"});
  EXPECT_EQ(add.exit_code, kUsage) << add;
  EXPECT_NE(add.err.find("--password-stdin"), std::string::npos) << add;
}

TEST_F(AddTest, MissingMasterKeyIsExitCode8AndPointsAtKeygen) {
  const CliResult add = cli_with_env({"add", "--user", "alice", "--name", "db", "--host", "h",
                                      "--database", "d", "--username", "u", "--password-stdin"},
                                     {{"CREDENTIAL_VAULT_DIR", vault_dir().string()}}, "pw\n");
  EXPECT_EQ(add.exit_code, kMissingKey) << add;
  EXPECT_NE(add.err.find("credential_manager keygen"), std::string::npos) << add;
  EXPECT_FALSE(std::filesystem::exists(vault_dir())) << "no throwaway key, no vault";
}

TEST_F(AddTest, MasterKeyFromAFileWorks) {
  const std::filesystem::path key_file = work_dir() / "master.key";
  {
    std::ofstream out(key_file);
    out << kMasterKey << "\n";  // the trailing newline is trimmed, not part of the key
  }
  const CliResult add = cli_with_env({"add", "--user", "alice", "--name", "db", "--host", "h",
                                      "--database", "d", "--username", "u", "--password-stdin"},
                                     {{"CREDENTIAL_MASTER_KEY_FILE", key_file.string()},
                                      {"CREDENTIAL_VAULT_DIR", vault_dir().string()}},
                                     "pw\n");
  ASSERT_EQ(add.exit_code, kOk) << add;
  // The same vault opens with the key given directly: the file held the same key.
  EXPECT_EQ(show_json("alice", "db")["password"], "pw");
}

TEST_F(AddTest, WrongMasterKeyIsExitCode5AndChangesNothing) {
  add_postgres("alice", "db", "pw");
  const Environment wrong_key = {{"CREDENTIAL_MASTER_KEY", kOtherMasterKey},
                                 {"CREDENTIAL_VAULT_DIR", vault_dir().string()}};
  const CliResult add = cli_with_env({"add", "--user", "alice", "--name", "other", "--host", "h",
                                      "--database", "d", "--username", "u", "--password-stdin"},
                                     wrong_key, "pw2\n");
  EXPECT_EQ(add.exit_code, kDecryptionFailed) << add;
  EXPECT_NE(add.err.find("restore the original key"), std::string::npos) << add;
  const CliResult show = cli_with_env({"show", "--user", "alice", "--name", "db"}, wrong_key);
  EXPECT_EQ(show.exit_code, kDecryptionFailed) << show;
  const CliResult list = cli_with_env({"list", "--user", "alice"}, wrong_key);
  EXPECT_EQ(list.exit_code, kDecryptionFailed) << list;
  EXPECT_EQ(list.out, "") << list;
  // The right key still reads everything, and nothing was added.
  EXPECT_EQ(show_json("alice", "db")["password"], "pw");
  const CliResult other = cli({"show", "--user", "alice", "--name", "other"});
  EXPECT_EQ(other.exit_code, kNotFound) << other;
}

TEST_F(AddTest, VaultDirFlagOverridesTheEnvironment) {
  const std::filesystem::path elsewhere = work_dir() / "elsewhere";
  const CliResult add =
      cli({"add", "--user", "alice", "--name", "db", "--vault-dir", elsewhere.string(), "--host",
           "h", "--database", "d", "--username", "u", "--password-stdin"},
          "pw\n");
  ASSERT_EQ(add.exit_code, kOk) << add;
  EXPECT_TRUE(std::filesystem::exists(elsewhere));
  EXPECT_FALSE(std::filesystem::exists(vault_dir()));
  const CliResult show =
      cli({"show", "--user", "alice", "--name", "db", "--vault-dir", elsewhere.string()});
  EXPECT_EQ(show.exit_code, kOk) << show;
}

TEST_F(AddTest, DefaultVaultDirIsDotCredentialsInTheWorkingDirectory) {
  const CliResult add = cli_with_env({"add", "--user", "alice", "--name", "db", "--host", "h",
                                      "--database", "d", "--username", "u", "--password-stdin"},
                                     {{"CREDENTIAL_MASTER_KEY", kMasterKey}}, "pw\n");
  ASSERT_EQ(add.exit_code, kOk) << add;
  EXPECT_TRUE(std::filesystem::is_directory(work_dir() / ".credentials"));
}

}  // namespace
}  // namespace credentials::testing
