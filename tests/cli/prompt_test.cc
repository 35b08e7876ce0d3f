// The interactive side, on a real pseudo-terminal: prompts for missing
// fields, passwords asked twice without echo, mismatches refused, typed
// confirmation for delete, the terminal restored after Ctrl-C.

#include <signal.h>

#include <fstream>
#include <regex>
#include <string>

#include "cli/cli_fixture.h"

namespace credentials::testing {
namespace {

using PromptTest = CliTest;

TEST_F(PromptTest, AddAsksForEveryMissingFieldAndNeverEchoesThePassword) {
  const std::string password = "Typed-S3cret@:/#%";
  PtySession session({"add", "--user", "alice"}, env(), work_dir());
  ASSERT_TRUE(session.expect("Credential name: ")) << session.transcript();
  session.send_line("prod_db");
  ASSERT_TRUE(session.expect("Database type")) << session.transcript();
  session.send_line("");  // the default, postgres
  ASSERT_TRUE(session.expect("Host [localhost]: ")) << session.transcript();
  session.send_line("db.internal");
  ASSERT_TRUE(session.expect("Port [5432]: ")) << session.transcript();
  session.send_line("");
  ASSERT_TRUE(session.expect("Database name: ")) << session.transcript();
  session.send_line("production");
  ASSERT_TRUE(session.expect("Username: ")) << session.transcript();
  session.send_line("dbuser");
  ASSERT_TRUE(session.expect("SSL mode")) << session.transcript();
  session.send_line("require");
  ASSERT_TRUE(session.expect("Description (optional): ")) << session.transcript();
  session.send_line("Main database");
  ASSERT_TRUE(session.expect("Connection timeout in seconds [30]: ")) << session.transcript();
  session.send_line("15");
  ASSERT_TRUE(session.expect("Password: ")) << session.transcript();
  EXPECT_FALSE(session.echo_enabled()) << "echo must be off while the password is typed";
  session.send_line(password);
  ASSERT_TRUE(session.expect("Repeat password: ")) << session.transcript();
  session.send_line(password);
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_TRUE(session.echo_enabled()) << "echo must be back on afterwards";

  // Ordinary answers are echoed (so this transcript would show an echoed
  // password too); the password is not.
  EXPECT_NE(session.transcript().find("db.internal"), std::string::npos) << session.transcript();
  EXPECT_EQ(session.transcript().find(password), std::string::npos) << session.transcript();

  const nlohmann::json shown = show_json("alice", "prod_db");
  EXPECT_EQ(shown["password"], password);
  EXPECT_EQ(shown["host"], "db.internal");
  EXPECT_EQ(shown["port"], 5432);
  EXPECT_EQ(shown["database"], "production");
  EXPECT_EQ(shown["username"], "dbuser");
  EXPECT_EQ(shown["ssl_mode"], "require");
  EXPECT_EQ(shown["description"], "Main database");
  EXPECT_EQ(shown["connection_timeout"], 15);
}

TEST_F(PromptTest, OnlyMissingFieldsAreAskedFor) {
  PtySession session({"add", "--user", "alice", "--name", "db", "--host", "h", "--port", "5433",
                      "--database", "d", "--username", "u", "--ssl-mode", "disable",
                      "--description", "x", "--connection-timeout", "9"},
                     env(), work_dir());
  ASSERT_TRUE(session.expect("Database type")) << session.transcript();
  session.send_line("postgres");
  ASSERT_TRUE(session.expect("Password: ")) << session.transcript();
  session.send_line("pw-1");
  ASSERT_TRUE(session.expect("Repeat password: ")) << session.transcript();
  session.send_line("pw-1");
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_EQ(session.transcript().find("Host"), std::string::npos) << session.transcript();
  EXPECT_EQ(show_json("alice", "db")["port"], 5433);
}

TEST_F(PromptTest, MismatchedPasswordsAreRefusedAndNothingIsStored) {
  PtySession session({"add",     "--user",        "alice",    "--name",
                      "db",      "--db-type",     "postgres", "--host",
                      "h",       "--port",        "5432",     "--database",
                      "d",       "--username",    "u",        "--ssl-mode",
                      "disable", "--description", "",         "--connection-timeout",
                      "30"},
                     env(), work_dir());
  ASSERT_TRUE(session.expect("Password: ")) << session.transcript();
  session.send_line("first-try");
  ASSERT_TRUE(session.expect("Repeat password: ")) << session.transcript();
  session.send_line("second-try");
  EXPECT_EQ(session.wait(), kUsage) << session.transcript();
  EXPECT_NE(session.transcript().find("do not match"), std::string::npos) << session.transcript();
  EXPECT_EQ(session.transcript().find("first-try"), std::string::npos) << session.transcript();
  const CliResult show = cli({"show", "--user", "alice", "--name", "db"});
  EXPECT_EQ(show.exit_code, kNotFound) << show;
}

TEST_F(PromptTest, ExistingNameIsRefusedBeforeAnyPasswordIsTyped) {
  add_postgres("alice", "db", "pw");
  PtySession session({"add", "--user", "alice", "--name", "db"}, env(), work_dir());
  EXPECT_EQ(session.wait(), kAlreadyExists) << session.transcript();
  EXPECT_EQ(session.transcript().find("Password"), std::string::npos) << session.transcript();
}

TEST_F(PromptTest, UpdateAsksForTheNewPasswordTwice) {
  add_postgres("alice", "db", "old");
  PtySession session({"update", "--user", "alice", "--name", "db"}, env(), work_dir());
  ASSERT_TRUE(session.expect("New password for alice/db")) << session.transcript();
  ASSERT_TRUE(session.expect("Password: ")) << session.transcript();
  session.send_line("rotated-pw");
  ASSERT_TRUE(session.expect("Repeat password: ")) << session.transcript();
  session.send_line("rotated-pw");
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_EQ(session.transcript().find("rotated-pw"), std::string::npos) << session.transcript();
  EXPECT_EQ(show_json("alice", "db")["password"], "rotated-pw");
}

TEST_F(PromptTest, UpdateMismatchKeepsTheOldPassword) {
  add_postgres("alice", "db", "old");
  PtySession session({"update", "--user", "alice", "--name", "db"}, env(), work_dir());
  ASSERT_TRUE(session.expect("Password: ")) << session.transcript();
  session.send_line("one");
  ASSERT_TRUE(session.expect("Repeat password: ")) << session.transcript();
  session.send_line("two");
  EXPECT_EQ(session.wait(), kUsage) << session.transcript();
  const nlohmann::json shown = show_json("alice", "db");
  EXPECT_EQ(shown["password"], "old");
  EXPECT_EQ(shown["version"], 1);
}

TEST_F(PromptTest, DeleteGoesAheadWhenTheNameIsTyped) {
  add_postgres("alice", "db", "pw");
  PtySession session({"delete", "--user", "alice", "--name", "db"}, env(), work_dir());
  ASSERT_TRUE(session.expect("Type the name 'db' to confirm: ")) << session.transcript();
  session.send_line("db");
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_EQ(cli({"show", "--user", "alice", "--name", "db"}).exit_code, kNotFound);
}

TEST_F(PromptTest, DeleteIsCancelledByAnyOtherAnswer) {
  add_postgres("alice", "db", "pw");
  PtySession session({"delete", "--user", "alice", "--name", "db"}, env(), work_dir());
  ASSERT_TRUE(session.expect("to confirm: ")) << session.transcript();
  session.send_line("y");
  EXPECT_EQ(session.wait(), kFailure) << session.transcript();
  EXPECT_NE(session.transcript().find("not deleted"), std::string::npos) << session.transcript();
  EXPECT_EQ(show_json("alice", "db")["version"], 1);
}

TEST_F(PromptTest, EchoIsRestoredWhenInterruptedAtThePasswordPrompt) {
  add_postgres("alice", "db", "pw");
  PtySession update({"update", "--user", "alice", "--name", "db"}, env(), work_dir());
  ASSERT_TRUE(update.expect("Password: ")) << update.transcript();
  ASSERT_FALSE(update.echo_enabled());
  update.signal(SIGINT);
  EXPECT_EQ(update.wait(), 128 + SIGINT) << update.transcript();
  EXPECT_TRUE(update.echo_enabled()) << "Ctrl-C at the prompt must not leave the terminal silent";
}

TEST_F(PromptTest, CoreDumpsAreDisabledWhileASecretIsInMemory) {
  add_postgres("alice", "db", "pw");
  PtySession session({"update", "--user", "alice", "--name", "db"}, env(), work_dir());
  ASSERT_TRUE(session.expect("Password: ")) << session.transcript();
  std::ifstream limits("/proc/" + std::to_string(session.pid()) + "/limits");
  std::string line;
  bool found = false;
  while (std::getline(limits, line)) {
    if (line.rfind("Max core file size", 0) != 0) continue;
    found = true;
    EXPECT_TRUE(std::regex_search(line, std::regex(R"(^Max core file size\s+0\s+0\s)"))) << line;
  }
  EXPECT_TRUE(found);
  session.signal(SIGTERM);
  (void)session.wait();
}

TEST_F(PromptTest, PasswordFlagIsWipedFromTheProcessCommandLine) {
  PtySession session({"add", "--user", "alice", "--password", "argv-secret-123", "--db-type",
                      "postgres", "--host", "h", "--database", "d", "--username", "u"},
                     env(), work_dir());
  ASSERT_TRUE(session.expect("Credential name: ")) << session.transcript();
  std::ifstream cmdline("/proc/" + std::to_string(session.pid()) + "/cmdline", std::ios::binary);
  const std::string arguments((std::istreambuf_iterator<char>(cmdline)),
                              std::istreambuf_iterator<char>());
  EXPECT_NE(arguments.find("--password"), std::string::npos);
  EXPECT_EQ(arguments.find("argv-secret-123"), std::string::npos);
  session.signal(SIGTERM);
  (void)session.wait();
}

}  // namespace
}  // namespace credentials::testing
