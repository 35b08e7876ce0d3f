// `run`: a skill executed as a user against a real SQLite file, its result
// printed as JSON; a failed skill is exit code 9.

#include <fstream>
#include <string>

#include <sqlite3.h>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

class RunVerbTest : public CliTest {
 protected:
  void SetUp() override {
    const std::filesystem::path database = work_dir() / "users.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(database.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, name TEXT);"
                           "INSERT INTO users VALUES (123, 'ann@example.com', 'Ann'),"
                           "                         (124, 'x''); DROP TABLE users;--', 'Bob');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    ASSERT_EQ(cli({"add", "--user", "alice", "--name", "users_db", "--db-type", "sqlite",
                   "--database", database.string()})
                  .exit_code,
              kOk);
    write_skill("UserFetcher", "SELECT id, email, name FROM users WHERE id = {user_id}");
    write_skill("ByEmail", "SELECT id FROM users WHERE email = '{email}'");
    write_skill("Broken", "SELECT nope FROM missing_table WHERE id = {user_id}");
  }

  void write_skill(const std::string& name, const std::string& query) {
    const std::filesystem::path folder = skills_dir() / name;
    std::filesystem::create_directories(folder);
    std::ofstream out(folder / "skill.md");
    out << "---\nname: " << name << "\ndescription: test skill\nexecutor: action\n"
        << "action:\n  type: data_query\n  source: sqlite\n  query: \"" << query << "\"\n"
        << "  credential_ref: \"users_db\"\n---\n# " << name << "\n";
  }

  [[nodiscard]] std::filesystem::path skills_dir() const { return work_dir() / "skills"; }

  [[nodiscard]] CliResult run(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"run", "--user", "alice", "--skills-dir",
                                     skills_dir().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli(args);
  }
};

TEST_F(RunVerbTest, PrintsTheResultAsJson) {
  const CliResult result = run({"--skill", "UserFetcher", "--input", "user_id=123"});
  ASSERT_EQ(result.exit_code, kOk) << result;
  const nlohmann::json document = nlohmann::json::parse(result.out);
  EXPECT_EQ(document["row_count"], 1);
  ASSERT_EQ(document["query_result"].size(), 1u) << document;
  EXPECT_EQ(document["query_result"][0]["id"], 123);
  EXPECT_EQ(document["query_result"][0]["email"], "ann@example.com");
}

TEST_F(RunVerbTest, InputsAsOneJsonObject) {
  const CliResult result = run({"--skill", "UserFetcher", "--inputs", R"({"user_id": 124})"});
  ASSERT_EQ(result.exit_code, kOk) << result;
  EXPECT_EQ(nlohmann::json::parse(result.out)["query_result"][0]["name"], "Bob");
}

TEST_F(RunVerbTest, InputValuesAreBoundNotSpliced) {
  const CliResult result = run({"--skill", "ByEmail", "--input", "email=x'); DROP TABLE users;--"});
  ASSERT_EQ(result.exit_code, kOk) << result;
  const nlohmann::json document = nlohmann::json::parse(result.out);
  EXPECT_EQ(document["row_count"], 1) << document;
  EXPECT_EQ(document["query_result"][0]["id"], 124);
  // The table is still there.
  EXPECT_EQ(run({"--skill", "UserFetcher", "--input", "user_id=123"}).exit_code, kOk);
}

TEST_F(RunVerbTest, SkillsDirFromTheEnvironment) {
  Environment environment = env();
  environment["CREDENTIAL_SKILLS_DIR"] = skills_dir().string();
  const CliResult result = cli_with_env(
      {"run", "--user", "alice", "--skill", "UserFetcher", "--input", "user_id=123"}, environment);
  EXPECT_EQ(result.exit_code, kOk) << result;
}

TEST_F(RunVerbTest, FailedSkillsAreExitCode9) {
  const CliResult unknown = run({"--skill", "NoSuchSkill", "--input", "user_id=1"});
  EXPECT_EQ(unknown.exit_code, kSkillFailed) << unknown;
  EXPECT_EQ(unknown.out, "") << unknown;
  const CliResult missing_input = run({"--skill", "UserFetcher"});
  EXPECT_EQ(missing_input.exit_code, kSkillFailed) << missing_input;
  EXPECT_NE(missing_input.err.find("user_id"), std::string::npos) << missing_input;
  const CliResult bad_query = run({"--skill", "Broken", "--input", "user_id=1"});
  EXPECT_EQ(bad_query.exit_code, kSkillFailed) << bad_query;
}

TEST_F(RunVerbTest, AnotherUserHasNoSuchCredential) {
  const CliResult result = cli({"run", "--user", "bob", "--skills-dir", skills_dir().string(),
                                "--skill", "UserFetcher", "--input", "user_id=123"});
  EXPECT_EQ(result.exit_code, kNotFound) << result;
}

TEST_F(RunVerbTest, MalformedInputsAreUsageErrors) {
  EXPECT_EQ(run({"--skill", "UserFetcher", "--input", "no_equals_sign"}).exit_code, kUsage);
  EXPECT_EQ(run({"--skill", "UserFetcher", "--inputs", "[1, 2]"}).exit_code, kUsage);
  EXPECT_EQ(run({"--skill", "UserFetcher", "--inputs", "{not json"}).exit_code, kUsage);
}

TEST_F(RunVerbTest, ControlCharactersInMessagesAreEscaped) {
  const CliResult result = run({"--skill", "UserFetcher", "--input", "\x1b[2J\x1b]0;owned\x07"});
  EXPECT_EQ(result.exit_code, kUsage) << result;
  EXPECT_EQ(result.err.find('\x1b'), std::string::npos) << result;
  EXPECT_NE(result.err.find("\\x1b[2J"), std::string::npos) << result;
}

// The database's words reach the terminal escaped, whatever they hold: here
// a SQLite file whose view names a dropped table called "t<LF>FAKE LINE: ..."
// with U+202E and a byte that is not UTF-8 in it.
TEST_F(RunVerbTest, ADatabasesErrorTextCannotForgeLines) {
  const std::string table = "t\nFAKE LINE: skill succeeded\u202e\xff";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((work_dir() / "users.db").c_str(), &db), SQLITE_OK);
  const std::string sql = "CREATE TABLE \"" + table + "\"(a); CREATE VIEW v AS SELECT a FROM \"" +
                          table + "\"; DROP TABLE \"" + table + "\";";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  write_skill("ReadsTheView", "SELECT a FROM v");

  const CliResult result = run({"--skill", "ReadsTheView"});
  EXPECT_EQ(result.exit_code, kSkillFailed) << result;
  EXPECT_NE(result.err.find("no such table: main.t\\x0aFAKE LINE: skill succeeded\\u202e\\xff"),
            std::string::npos)
      << result;
  EXPECT_EQ(result.err.find("\nFAKE LINE"), std::string::npos) << result;
  EXPECT_EQ(result.err.find("\u202e"), std::string::npos) << result;
  EXPECT_EQ(result.err.find('\xff'), std::string::npos) << result;
}

TEST_F(RunVerbTest, DottedInputKeysBuildNestedObjects) {
  write_skill("Nested", "SELECT id FROM users WHERE id = {user.id}");
  const CliResult result = run({"--skill", "Nested", "--input", "user.id=124"});
  ASSERT_EQ(result.exit_code, kOk) << result;
  EXPECT_EQ(nlohmann::json::parse(result.out)["query_result"][0]["id"], 124);
}

}  // namespace
}  // namespace credentials::testing
