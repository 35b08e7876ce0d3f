// `history` and `rollback`: versions with times and no passwords, the
// current one marked; rolling back makes an old password current again.

#include <string>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

class HistoryVerbTest : public CliTest {
 protected:
  void SetUp() override {
    add_postgres("alice", "prod_db", "history-pw-1");
    for (const char* password : {"history-pw-2", "history-pw-3"}) {
      ASSERT_EQ(cli({"update", "--user", "alice", "--name", "prod_db", "--password-stdin"},
                    std::string(password) + "\n")
                    .exit_code,
                kOk);
    }
  }
};

TEST_F(HistoryVerbTest, ListsVersionsWithTheCurrentMarkedAndNoPasswords) {
  const CliResult table = cli({"history", "--user", "alice", "--name", "prod_db"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_EQ(table.out.rfind("VERSION", 0), 0u) << table;
  EXPECT_NE(table.out.find("current"), std::string::npos) << table;
  EXPECT_EQ(table.out.find("history-pw"), std::string::npos) << table;

  const CliResult json = cli({"history", "--user", "alice", "--name", "prod_db", "--json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  const nlohmann::json document = nlohmann::json::parse(json.out);
  const nlohmann::json& versions = document["versions"];
  ASSERT_EQ(versions.size(), 3u) << document;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(versions[i]["version"], i + 1);
    EXPECT_EQ(versions[i]["current"], i == 2);
    EXPECT_TRUE(versions[i]["updated_at"].is_string());
    EXPECT_TRUE(versions[i]["key_id"].is_number_integer());
  }
  EXPECT_EQ(json.out.find("history-pw"), std::string::npos) << json;
}

TEST_F(HistoryVerbTest, RollbackMakesAnOldVersionCurrentAsANewVersion) {
  const CliResult rollback =
      cli({"rollback", "--user", "alice", "--name", "prod_db", "--to", "1", "--json"});
  ASSERT_EQ(rollback.exit_code, kOk) << rollback;
  const nlohmann::json result = nlohmann::json::parse(rollback.out);
  EXPECT_EQ(result["version"], 4);
  EXPECT_EQ(result["rolled_back_to"], 1);
  EXPECT_EQ(show_json("alice", "prod_db")["password"], "history-pw-1");

  const CliResult text = cli({"rollback", "--user", "alice", "--name", "prod_db", "--to", "3"});
  ASSERT_EQ(text.exit_code, kOk) << text;
  EXPECT_NE(text.out.find("version 5"), std::string::npos) << text;
  EXPECT_EQ(show_json("alice", "prod_db")["password"], "history-pw-3");
}

TEST_F(HistoryVerbTest, Failures) {
  EXPECT_EQ(cli({"history", "--user", "alice", "--name", "nope"}).exit_code, kNotFound);
  EXPECT_EQ(cli({"history", "--user", "bob", "--name", "prod_db"}).exit_code, kNotFound);
  const CliResult gone = cli({"rollback", "--user", "alice", "--name", "prod_db", "--to", "99"});
  EXPECT_EQ(gone.exit_code, kNotFound) << gone;
  EXPECT_NE(gone.err.find("history"), std::string::npos) << gone;
  EXPECT_EQ(cli({"rollback", "--user", "alice", "--name", "prod_db"}).exit_code, kUsage);
  EXPECT_EQ(cli({"rollback", "--user", "alice", "--name", "prod_db", "--to", "0"}).exit_code, kUsage);
  EXPECT_EQ(cli({"history", "--name", "prod_db"}).exit_code, kUsage);
  EXPECT_EQ(show_json("alice", "prod_db")["version"], 3) << "failures changed nothing";
}

}  // namespace
}  // namespace credentials::testing
