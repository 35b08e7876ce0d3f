// `update` and `delete` without a terminal: rotations, field changes,
// check-and-set, confirmation, and per-user isolation.

#include <string>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

class UpdateDeleteTest : public CliTest {
 protected:
  void SetUp() override { add_postgres("alice", "db", "old-password"); }
};

TEST_F(UpdateDeleteTest, UpdateRotatesThePasswordFromStdin) {
  const CliResult update =
      cli({"update", "--user", "alice", "--name", "db", "--password-stdin"}, "n3w p@ss:#%\n");
  ASSERT_EQ(update.exit_code, kOk) << update;
  EXPECT_NE(update.out.find("version 2"), std::string::npos) << update;
  EXPECT_EQ(update.out.find("n3w"), std::string::npos) << update;
  const nlohmann::json shown = show_json("alice", "db");
  EXPECT_EQ(shown["password"], "n3w p@ss:#%");
  EXPECT_EQ(shown["version"], 2);
  EXPECT_EQ(shown["host"], "db.example.com");
}

TEST_F(UpdateDeleteTest, UpdateChangesOtherFieldsAndKeepsThePassword) {
  const CliResult update = cli({"update", "--user", "alice", "--name", "db", "--host", "new.host",
                                "--port", "6543", "--description", "moved", "--ssl-mode",
                                "verify-full", "--connection-timeout", "5", "--json"});
  ASSERT_EQ(update.exit_code, kOk) << update;
  const nlohmann::json reported = nlohmann::json::parse(update.out);
  EXPECT_EQ(reported["version"], 2);
  EXPECT_EQ(reported["name"], "db");
  EXPECT_EQ(reported["owner"], "alice");
  const nlohmann::json shown = show_json("alice", "db");
  EXPECT_EQ(shown["host"], "new.host");
  EXPECT_EQ(shown["port"], 6543);
  EXPECT_EQ(shown["description"], "moved");
  EXPECT_EQ(shown["ssl_mode"], "verify-full");
  EXPECT_EQ(shown["connection_timeout"], 5);
  EXPECT_EQ(shown["database"], "production");
  EXPECT_EQ(shown["password"], "old-password");
}

TEST_F(UpdateDeleteTest, UpdatePasswordFlagWarns) {
  const CliResult update =
      cli({"update", "--user", "alice", "--name", "db", "--password", "flag-pw"});
  ASSERT_EQ(update.exit_code, kOk) << update;
  EXPECT_NE(update.err.find("process list"), std::string::npos) << update;
  EXPECT_EQ(show_json("alice", "db")["password"], "flag-pw");
}

TEST_F(UpdateDeleteTest, UpdateWithNothingToChangeAndNoTerminalIsAUsageError) {
  const CliResult update = cli({"update", "--user", "alice", "--name", "db"});
  EXPECT_EQ(update.exit_code, kUsage) << update;
  EXPECT_NE(update.err.find("--password-stdin"), std::string::npos) << update;
  EXPECT_EQ(show_json("alice", "db")["version"], 1);
}

TEST_F(UpdateDeleteTest, UpdateIfVersionRefusesAStaleVersionWithExitCode10) {
  const CliResult first = cli(
      {"update", "--user", "alice", "--name", "db", "--if-version", "1", "--host", "first.host"});
  ASSERT_EQ(first.exit_code, kOk) << first;
  const CliResult stale = cli(
      {"update", "--user", "alice", "--name", "db", "--if-version", "1", "--host", "stale.host"});
  EXPECT_EQ(stale.exit_code, kConflict) << stale;
  const nlohmann::json shown = show_json("alice", "db");
  EXPECT_EQ(shown["host"], "first.host");
  EXPECT_EQ(shown["version"], 2);
}

TEST_F(UpdateDeleteTest, UpdateOfAnUnknownNameIsNotFound) {
  const CliResult update =
      cli({"update", "--user", "alice", "--name", "nope", "--password-stdin"}, "pw\n");
  EXPECT_EQ(update.exit_code, kNotFound) << update;
  EXPECT_NE(update.err.find("list --user alice"), std::string::npos) << update;
}

TEST_F(UpdateDeleteTest, AnotherUserCannotUpdate) {
  const std::string id = show_json("alice", "db")["id"];
  const CliResult update =
      cli({"update", "--user", "mallory", "--name", id, "--password-stdin"}, "hijacked\n");
  EXPECT_EQ(update.exit_code, kUnauthorized) << update;
  EXPECT_EQ(show_json("alice", "db")["password"], "old-password");
}

TEST_F(UpdateDeleteTest, AdministratorUpdatesAnotherOwnersCredential) {
  const CliResult update = cli({"update", "--user", "root", "--roles", "admin", "--owner", "alice",
                                "--name", "db", "--password-stdin"},
                               "rotated-by-admin\n");
  ASSERT_EQ(update.exit_code, kOk) << update;
  EXPECT_EQ(show_json("alice", "db")["password"], "rotated-by-admin");
}

TEST_F(UpdateDeleteTest, DeleteWithYesRemovesTheCredential) {
  const CliResult remove = cli({"delete", "--user", "alice", "--name", "db", "--yes"});
  ASSERT_EQ(remove.exit_code, kOk) << remove;
  EXPECT_NE(remove.out.find("alice/db"), std::string::npos) << remove;
  const CliResult show = cli({"show", "--user", "alice", "--name", "db"});
  EXPECT_EQ(show.exit_code, kNotFound) << show;
}

TEST_F(UpdateDeleteTest, DeleteShortFlagAndJson) {
  const CliResult remove = cli({"delete", "--user", "alice", "--name", "db", "-y", "--json"});
  ASSERT_EQ(remove.exit_code, kOk) << remove;
  const nlohmann::json reported = nlohmann::json::parse(remove.out);
  EXPECT_EQ(reported["deleted"], true);
  EXPECT_EQ(reported["name"], "db");
}

TEST_F(UpdateDeleteTest, DeleteWithoutConfirmationAndNoTerminalIsRefused) {
  const CliResult remove = cli({"delete", "--user", "alice", "--name", "db"});
  EXPECT_EQ(remove.exit_code, kUsage) << remove;
  EXPECT_NE(remove.err.find("--yes"), std::string::npos) << remove;
  EXPECT_EQ(show_json("alice", "db")["password"], "old-password");
}

TEST_F(UpdateDeleteTest, DeleteOfAnUnknownNameIsNotFound) {
  const CliResult remove = cli({"delete", "--user", "alice", "--name", "nope", "--yes"});
  EXPECT_EQ(remove.exit_code, kNotFound) << remove;
}

TEST_F(UpdateDeleteTest, AnotherUserCannotDelete) {
  const CliResult remove =
      cli({"delete", "--user", "mallory", "--owner", "alice", "--name", "db", "--yes"});
  EXPECT_EQ(remove.exit_code, kUnauthorized) << remove;
  EXPECT_EQ(show_json("alice", "db")["version"], 1);
}

TEST_F(UpdateDeleteTest, DeletedNameCanBeAddedAgain) {
  ASSERT_EQ(cli({"delete", "--user", "alice", "--name", "db", "--yes"}).exit_code, kOk);
  add_postgres("alice", "db", "second-life");
  const nlohmann::json shown = show_json("alice", "db");
  EXPECT_EQ(shown["password"], "second-life");
  EXPECT_EQ(shown["version"], 1);
}

}  // namespace
}  // namespace credentials::testing
