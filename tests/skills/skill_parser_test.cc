// skill.md parsing, the registry's reports of malformed skills, and query
// templates (placeholders -> bound parameters).
#include <gtest/gtest.h>

#include "credentials/skills.h"
#include "skills/query_template.h"
#include "skills/skill_fixture.h"

namespace credentials {
namespace {

using internal::DbKind;
using internal::Param;
using internal::QueryTemplate;
using testing::TempDir;
using testing::write_skill;

std::string error_of(const std::filesystem::path& skill_md) {
  try {
    (void)load_skill(skill_md);
  } catch (const SkillError& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(SkillParserTest, ExampleSkillsLoad) {
  const auto dir = std::filesystem::path(CREDENTIALS_SOURCE_DIR) / "skills";
  const SkillInfo fetcher = load_skill(dir / "DatabaseUserFetcher" / "skill.md");
  EXPECT_EQ(fetcher.name, "DatabaseUserFetcher");
  EXPECT_EQ(fetcher.requires_inputs, std::vector<std::string>{"user_id"});
  EXPECT_EQ(fetcher.produces, (std::vector<std::string>{"user_profile", "profile_found"}));
  EXPECT_EQ(fetcher.executor, "action");
  EXPECT_EQ(fetcher.source, "postgres");
  const SkillInfo orders = load_skill(dir / "DatabaseOrderLookup" / "skill.md");
  EXPECT_EQ(orders.name, "DatabaseOrderLookup");
  EXPECT_EQ(orders.requires_inputs, (std::vector<std::string>{"customer_id", "status"}));
}

TEST(SkillParserTest, MalformedSkillsAreReportedWithFileAndLine) {
  TempDir tmp;
  struct Case {
    std::string front_matter;
    int line;
    std::string says;
  };
  const std::vector<Case> cases = {
      // YAML syntax error on file line 4 (front matter starts on line 2).
      {"name: Bad\ndescription: x\naction: [unclosed\n", 4, "YAML"},
      {"description: no name\n", 2, "name: missing"},
      {"name: Bad\nexecutor: action\naction:\n  type: data_query\n  source: oracle\n  query: "
       "SELECT 1\n",
       6, "unknown source 'oracle'"},
      {"name: Bad\nexecutor: action\naction:\n  type: data_query\n  source: sqlite\n", 4,
       "action.query: missing"},
      {"name: Bad\nexecutor: action\naction:\n  type: data_query\n  query: SELECT 1\n"
       "  db_config_file: ../elsewhere/db_config.json\n",
       7, "inside the skill's folder"},
      {"name: Bad\nexecutor: action\naction:\n  type: data_query\n"
       "  query: \"SELECT * FROM t WHERE name LIKE '%{name}%'\"\n",
       6, "inside the string literal"},
      {"name: Bad\nrequires: user_id\n", 3, "requires: must be a list"},
      {"name: Bad\nexecutor: action\naction:\n  type: data_query\n  query: SELECT 1\n  timeout: "
       "-3\n",
       7, "action.timeout"},
  };
  int n = 0;
  for (const Case& c : cases) {
    const auto path = write_skill(tmp.path(), fmt::format("S{}", n++), c.front_matter);
    const std::string message = error_of(path);
    EXPECT_NE(message.find(fmt::format("{}:{}:", path.string(), c.line)), std::string::npos)
        << "want line " << c.line << " in: " << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
  }
}

TEST(SkillParserTest, FrontMatterMustBeOpenedAndClosed) {
  TempDir tmp;
  testing::write_file(tmp / "A" / "skill.md", "name: NoSeparators\n");
  EXPECT_NE(error_of(tmp / "A" / "skill.md").find("skill.md:1: the file must start with"),
            std::string::npos);
  testing::write_file(tmp / "B" / "skill.md", "---\nname: Unclosed\n");
  EXPECT_NE(error_of(tmp / "B" / "skill.md").find("never closed"), std::string::npos);
}

TEST(SkillRegistryTest, MalformedSkillDoesNotHideTheOthers) {
  TempDir tmp;
  const auto vault_dir = tmp / "vault";
  Vault vault = Vault::open({.directory = vault_dir, .master_key = generate_master_key()});
  testing::copy_example_skills(tmp / "skills");
  const auto broken = write_skill(tmp / "skills", "Broken",
                                  "name: Broken\nexecutor: action\naction:\n  type: data_query\n"
                                  "  source: oracle\n  query: SELECT 1\n");
  SkillRunner runner = SkillRunner::open(vault, {.skills_dir = tmp / "skills"});
  std::vector<std::string> names;
  for (const auto& info : runner.skills()) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"DatabaseOrderLookup", "DatabaseUserFetcher"}));
  ASSERT_EQ(runner.problems().size(), 1u);
  EXPECT_EQ(runner.problems()[0].file, broken);
  EXPECT_EQ(runner.problems()[0].line, 6);
  try {
    (void)runner.execute("Broken", nlohmann::json::object(), testing::user("alice"));
    ADD_FAILURE() << "a malformed skill executed";
  } catch (const SkillError& e) {
    EXPECT_NE(std::string(e.what()).find(broken.string() + ":6:"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)runner.execute("NoSuchSkill", {}, testing::user("alice")), SkillError);
}

TEST(SkillRegistryTest, MissingDirectoryIsAnError) {
  TempDir tmp;
  Vault vault = Vault::open({.directory = tmp / "vault", .master_key = generate_master_key()});
  EXPECT_THROW((void)SkillRunner::open(vault, {.skills_dir = tmp / "nope"}), SkillError);
}

TEST(QueryTemplateTest, PlaceholdersBecomeNumberedOrQuestionMarkParameters) {
  const auto t = QueryTemplate::compile(
      "SELECT * FROM users WHERE id = {user_id} AND email = '{email}' AND org = {user.org.id}");
  EXPECT_EQ(t.render(DbKind::kPostgres),
            "SELECT * FROM users WHERE id = $1 AND email = $2 AND org = $3");
  EXPECT_EQ(t.render(DbKind::kSqlite),
            "SELECT * FROM users WHERE id = ? AND email = ? AND org = ?");
  const auto params = t.bind(
      nlohmann::json::parse(R"({"user_id": 5, "email": "a@b", "user": {"org": {"id": 2.5}}})"),
      "S");
  ASSERT_EQ(params.size(), 3u);
  EXPECT_EQ(std::get<std::int64_t>(params[0]), 5);
  EXPECT_EQ(std::get<std::string>(params[1]), "a@b");
  EXPECT_EQ(std::get<double>(params[2]), 2.5);
}

TEST(QueryTemplateTest, ValuesAreTypedFromJson) {
  const auto t = QueryTemplate::compile("SELECT {a}, {b}, {c}, {d}, {e}, {f.0}");
  const auto params =
      t.bind(nlohmann::json::parse(R"({"a": 1, "b": 1.5, "c": true, "d": null, "e": "x",
                                       "f": ["first"]})"),
             "S");
  EXPECT_TRUE(std::holds_alternative<std::int64_t>(params[0]));
  EXPECT_TRUE(std::holds_alternative<double>(params[1]));
  EXPECT_TRUE(std::holds_alternative<bool>(params[2]));
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(params[3]));
  EXPECT_TRUE(std::holds_alternative<std::string>(params[4]));
  EXPECT_EQ(std::get<std::string>(params[5]), "first");
}

TEST(QueryTemplateTest, BracesInLiteralsCommentsAndIdentifiersAreLeftAlone) {
  const auto t = QueryTemplate::compile(
      "SELECT '{\"k\": 1}'::jsonb, \"{odd}\" -- {comment}\n FROM t /* {x} */ WHERE a = {a} "
      "AND b = $$ {y} $$ AND c = E'it\\'s {'");
  EXPECT_EQ(t.placeholders(), std::vector<std::string>{"a"});
  EXPECT_EQ(t.render(DbKind::kPostgres),
            "SELECT '{\"k\": 1}'::jsonb, \"{odd}\" -- {comment}\n FROM t /* {x} */ WHERE a = $1 "
            "AND b = $$ {y} $$ AND c = E'it\\'s {'");
}

TEST(QueryTemplateTest, MissingInputsAreNamedAndNeverEmptyStrings) {
  const auto t = QueryTemplate::compile("SELECT {a}, {b.c}, {a}");
  try {
    (void)t.bind(nlohmann::json::parse(R"({"b": {}})"), "S");
    ADD_FAILURE() << "bound without inputs";
  } catch (const SkillError& e) {
    EXPECT_NE(std::string(e.what()).find("a, b.c"), std::string::npos) << e.what();
  }
}

TEST(QueryTemplateTest, UnterminatedLiteralIsAnError) {
  EXPECT_THROW((void)QueryTemplate::compile("SELECT 'abc"), SkillError);
  EXPECT_THROW((void)QueryTemplate::compile("   "), SkillError);
}

}  // namespace
}  // namespace credentials
