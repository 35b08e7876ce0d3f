// `list` and `show`: tables and field lists for people, one JSON document for
// scripts, passwords masked unless --reveal, and per-user isolation.

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

class ListShowTest : public CliTest {
 protected:
  void SetUp() override {
    add_postgres("alice", "prod_db", "alice-prod-pw", {"--description", "main"});
    add_postgres("alice", "reporting", "alice-report-pw");
    add_postgres("bob", "bobs_db", "bob-pw");
  }
};

const std::set<std::string> kListFields = {"id",
                                           "owner",
                                           "name",
                                           "db_type",
                                           "host",
                                           "port",
                                           "database",
                                           "username",
                                           "description",
                                           "ssl_mode",
                                           "connection_timeout",
                                           "created_at",
                                           "updated_at",
                                           "version"};

TEST_F(ListShowTest, ListShowsATableOfTheUsersOwnCredentials) {
  const CliResult list = cli({"list", "--user", "alice"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  EXPECT_EQ(list.out.rfind("NAME", 0), 0u) << "header first, no OWNER column: " << list;
  EXPECT_NE(list.out.find("prod_db"), std::string::npos) << list;
  EXPECT_NE(list.out.find("reporting"), std::string::npos) << list;
  EXPECT_NE(list.out.find("db.example.com"), std::string::npos) << list;
  EXPECT_EQ(list.out.find("bobs_db"), std::string::npos) << list;
  EXPECT_EQ(list.out.find("-pw"), std::string::npos) << "no password in a list: " << list;
  EXPECT_EQ(list.err, "") << list;
}

TEST_F(ListShowTest, AdministratorsSeeEveryOwner) {
  for (const std::string roles : {"admin", "user,admin", "superuser"}) {
    const CliResult list = cli({"list", "--user", "root", "--roles", roles});
    ASSERT_EQ(list.exit_code, kOk) << list;
    EXPECT_EQ(list.out.rfind("OWNER", 0), 0u) << list;
    for (const char* name : {"prod_db", "reporting", "bobs_db", "alice", "bob"}) {
      EXPECT_NE(list.out.find(name), std::string::npos) << roles << " " << name << ": " << list;
    }
  }
}

TEST_F(ListShowTest, ListJsonIsOneArrayWithEveryDocumentedField) {
  const CliResult list = cli({"list", "--user", "alice", "--json"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  const nlohmann::json array = nlohmann::json::parse(list.out);  // throws on anything extra
  ASSERT_TRUE(array.is_array()) << list;
  ASSERT_EQ(array.size(), 2u) << list;
  const std::regex iso_utc(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z)");
  for (const nlohmann::json& item : array) {
    std::set<std::string> keys;
    for (const auto& [key, value] : item.items()) keys.insert(key);
    EXPECT_EQ(keys, kListFields) << item;
    EXPECT_EQ(item["owner"], "alice");
    EXPECT_TRUE(item["port"].is_number_integer()) << item;
    EXPECT_TRUE(item["version"].is_number_integer()) << item;
    EXPECT_TRUE(item["connection_timeout"].is_number_integer()) << item;
    EXPECT_TRUE(std::regex_match(item["created_at"].get<std::string>(), iso_utc)) << item;
    EXPECT_TRUE(std::regex_match(item["updated_at"].get<std::string>(), iso_utc)) << item;
  }
  std::set<std::string> names;
  for (const nlohmann::json& item : array) names.insert(item["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"prod_db", "reporting"}));
  EXPECT_EQ(list.out.find("-pw"), std::string::npos) << list;
}

TEST_F(ListShowTest, AdministratorJsonListsEveryOwner) {
  const CliResult list = cli({"list", "--user", "root", "--roles", "admin", "--json"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  std::set<std::string> owners;
  for (const nlohmann::json& item : nlohmann::json::parse(list.out)) {
    owners.insert(item["owner"].get<std::string>());
  }
  EXPECT_EQ(owners, (std::set<std::string>{"alice", "bob"}));
}

TEST_F(ListShowTest, UserWithoutCredentialsGetsAnEmptyList) {
  const CliResult json = cli({"list", "--user", "carol", "--json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  EXPECT_EQ(nlohmann::json::parse(json.out), nlohmann::json::array());
  const CliResult table = cli({"list", "--user", "carol"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_NE(table.out.find("No credentials"), std::string::npos) << table;
}

TEST_F(ListShowTest, ListWithoutAVaultIsNotFoundAndCreatesNothing) {
  const std::filesystem::path missing = work_dir() / "typo";
  const CliResult list = cli({"list", "--user", "alice", "--vault-dir", missing.string()});
  EXPECT_EQ(list.exit_code, kNotFound) << list;
  EXPECT_NE(list.err.find("no vault"), std::string::npos) << list;
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(ListShowTest, ShowPrintsEveryFieldWithThePasswordMasked) {
  const CliResult show = cli({"show", "--user", "alice", "--name", "prod_db"});
  ASSERT_EQ(show.exit_code, kOk) << show;
  for (const char* label : {"id:", "owner:", "name:", "db_type:", "host:", "port:", "database:",
                            "username:", "password:", "description:", "ssl_mode:",
                            "connection_timeout:", "created_at:", "updated_at:", "version:"}) {
    EXPECT_NE(show.out.find(label), std::string::npos) << label << ": " << show;
  }
  EXPECT_NE(show.out.find("********"), std::string::npos) << show;
  EXPECT_EQ(show.out.find("alice-prod-pw"), std::string::npos) << show;
  EXPECT_NE(show.out.find("main"), std::string::npos) << show;
}

TEST_F(ListShowTest, ShowRevealPrintsThePassword) {
  const CliResult show = cli({"show", "--user", "alice", "--name", "prod_db", "--reveal"});
  ASSERT_EQ(show.exit_code, kOk) << show;
  EXPECT_NE(show.out.find("alice-prod-pw"), std::string::npos) << show;
  EXPECT_EQ(show.out.find("********"), std::string::npos) << show;
}

TEST_F(ListShowTest, ShowJsonHasNoPasswordUnlessRevealed) {
  const nlohmann::json masked = show_json("alice", "prod_db", /*reveal=*/false);
  EXPECT_FALSE(masked.contains("password")) << masked;
  for (const std::string& field : kListFields) EXPECT_TRUE(masked.contains(field)) << field;
  EXPECT_EQ(masked.dump().find("alice-prod-pw"), std::string::npos);
  EXPECT_EQ(show_json("alice", "prod_db")["password"], "alice-prod-pw");
}

TEST_F(ListShowTest, ShowByCredentialIdWorksForTheOwner) {
  const std::string id = show_json("alice", "prod_db")["id"];
  const CliResult show = cli({"show", "--user", "alice", "--name", id, "--json"});
  ASSERT_EQ(show.exit_code, kOk) << show;
  EXPECT_EQ(nlohmann::json::parse(show.out)["name"], "prod_db");
}

TEST_F(ListShowTest, UnknownNameIsExitCode3AndSuggestsList) {
  const CliResult show = cli({"show", "--user", "alice", "--name", "nope"});
  EXPECT_EQ(show.exit_code, kNotFound) << show;
  EXPECT_EQ(show.out, "") << show;
  EXPECT_NE(show.err.find("credential_manager list --user alice"), std::string::npos) << show;
}

TEST_F(ListShowTest, NotFoundHintCarriesTheVaultDirFlag) {
  const CliResult show =
      cli({"show", "--user", "alice", "--name", "nope", "--vault-dir", vault_dir().string()});
  EXPECT_EQ(show.exit_code, kNotFound) << show;
  EXPECT_NE(show.err.find("list --user alice --vault-dir " + vault_dir().string()),
            std::string::npos)
      << show;
}

TEST_F(ListShowTest, AnotherUsersCredentialIsExitCode4AndRevealsNothing) {
  const std::string alice_id = show_json("alice", "prod_db")["id"];
  const CliResult by_id = cli({"show", "--user", "bob", "--name", alice_id, "--reveal"});
  EXPECT_EQ(by_id.exit_code, kUnauthorized) << by_id;
  EXPECT_NE(by_id.err.find("per user"), std::string::npos) << by_id;
  EXPECT_EQ(by_id.out, "") << by_id;
  EXPECT_EQ(by_id.err.find("alice-prod-pw"), std::string::npos) << by_id;

  const CliResult by_owner =
      cli({"show", "--user", "bob", "--owner", "alice", "--name", "prod_db", "--reveal"});
  EXPECT_EQ(by_owner.exit_code, kUnauthorized) << by_owner;
  EXPECT_EQ(by_owner.out, "") << by_owner;
}

TEST_F(ListShowTest, AdministratorReachesAnotherOwnersCredential) {
  const CliResult show = cli({"show", "--user", "root", "--roles", "admin", "--owner", "alice",
                              "--name", "prod_db", "--json", "--reveal"});
  ASSERT_EQ(show.exit_code, kOk) << show;
  const nlohmann::json shown = nlohmann::json::parse(show.out);
  EXPECT_EQ(shown["owner"], "alice");
  EXPECT_EQ(shown["password"], "alice-prod-pw");
}

TEST_F(ListShowTest, ControlCharactersInFieldsAreRefused) {
  // An escape sequence stored in a description would run in the terminal of
  // whoever lists it (an administrator, say).
  const CliResult add =
      cli({"add", "--user", "alice", "--name", "evil", "--host", "h", "--database", "d",
           "--username", "u", "--description", "\x1b]0;owned\x07 text", "--password-stdin"},
          "pw\n");
  EXPECT_EQ(add.exit_code, kUsage) << add;
  EXPECT_EQ(add.err.find('\x1b'), std::string::npos) << add;
  EXPECT_EQ(cli({"show", "--user", "alice", "--name", "evil"}).exit_code, kNotFound);
}

// Fields may hold any printable UTF-8, which includes characters that are
// invisible or reorder text on a terminal: a host "db<U+202E>moc.evil" shows
// as "dblive.com". Tables and field lists escape every control (C1 too) and
// format character; --json keeps the exact text.
TEST_F(ListShowTest, FormatAndControlCharactersInFieldsAreEscaped) {
  struct Field {
    const char* flag;
    std::string raw;
    std::string escaped;
  };
  const std::vector<Field> fields = {
      {"--host", "db\u202emoc.evil\u200b", "db\\u202emoc.evil\\u200b"},
      {"--username", "ad\u00admin\u2066x\u2069", "ad\\u00admin\\u2066x\\u2069"},
      {"--database", "prod\u0085line\u2028sep\u2029\u061c",
       "prod\\u0085line\\u2028sep\\u2029\\u061c"},
      {"--description", "bom\ufeff tag\U000e0041\U000e007f fmt\U0001d173 kaithi\U000110bd",
       "bom\\ufeff tag\\U000e0041\\U000e007f fmt\\U0001d173 kaithi\\U000110bd"},
  };
  std::vector<std::string> args = {"add", "--user", "alice", "--name", "spoof", "--password-stdin"};
  for (const Field& field : fields) {
    args.push_back(field.flag);
    args.push_back(field.raw);
  }
  const CliResult add = cli(args, "pw\n");
  ASSERT_EQ(add.exit_code, kOk) << add;

  const CliResult list = cli({"list", "--user", "alice"});
  const CliResult show = cli({"show", "--user", "alice", "--name", "spoof"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  ASSERT_EQ(show.exit_code, kOk) << show;
  for (const Field& field : fields) {
    EXPECT_EQ(show.out.find(field.raw), std::string::npos) << field.flag << ": " << show;
    EXPECT_NE(show.out.find(field.escaped), std::string::npos) << field.flag << ": " << show;
    if (std::string(field.flag) == "--description") continue;  // not a column of the table
    EXPECT_EQ(list.out.find(field.raw), std::string::npos) << field.flag << ": " << list;
    EXPECT_NE(list.out.find(field.escaped), std::string::npos) << field.flag << ": " << list;
  }
  // No byte of a C1 control or a format character is printed at all.
  for (const std::string raw : {"\u202e", "\u200b", "\u00ad", "\u0085", "\u2028", "\ufeff"}) {
    EXPECT_EQ(list.out.find(raw), std::string::npos) << list;
    EXPECT_EQ(show.out.find(raw), std::string::npos) << show;
  }

  const nlohmann::json json = show_json("alice", "spoof", /*reveal=*/false);
  EXPECT_EQ(json["host"], fields[0].raw);
  EXPECT_EQ(json["username"], fields[1].raw);
  EXPECT_EQ(json["database"], fields[2].raw);
  EXPECT_EQ(json["description"], fields[3].raw);
  const CliResult list_json = cli({"list", "--user", "alice", "--json"});
  ASSERT_EQ(list_json.exit_code, kOk) << list_json;
  bool found = false;
  for (const nlohmann::json& item : nlohmann::json::parse(list_json.out)) {
    if (item["name"] != "spoof") continue;
    found = true;
    EXPECT_EQ(item["host"], fields[0].raw);
  }
  EXPECT_TRUE(found) << list_json;
}

}  // namespace
}  // namespace credentials::testing
