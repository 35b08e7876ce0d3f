// Exit codes of failures that are not the user's input: a vault whose schema
// lost a table (altered: 5, as altered bytes are), and a vault PostgreSQL
// that cannot be reached or refuses the login (could not connect: 7), as
// docs/cli_reference.md documents them. Real SQLite files, a real server.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"
#include "support/sqlite_rows.h"

namespace credentials::testing {
namespace {

class ExitCodeTest : public CliTest {};

const std::vector<std::vector<std::string>> kReadingVerbs = {
    {"verify"},
    {"audit", "verify"},
    {"list", "--user", "alice"},
    {"show", "--user", "alice", "--name", "db"}};

TEST_F(ExitCodeTest, AnEmbeddedVaultWithATableDroppedIsAlteredExit5) {
  for (const std::string table : {"audit", "versions", "keys", "ledger"}) {
    const auto dir = work_dir() / ("v-" + table);
    Environment environment = env();
    environment["CREDENTIAL_VAULT_DIR"] = dir.string();
    ASSERT_EQ(cli_with_env({"add", "--user", "alice", "--name", "db", "--host", "h", "--database",
                            "d", "--username", "u", "--password-stdin"},
                           environment, "pw\n")
                  .exit_code,
              kOk);
    (void)sqlite_rows(dir / "vault.db", "DROP TABLE " + table);
    // verify checks every table; the other verbs either do not need the
    // table or fail as verify does, never as an unexplained failure (exit 1).
    for (const auto& args : kReadingVerbs) {
      const CliResult result = cli_with_env(args, environment);
      if (args[0] == "verify") {
        EXPECT_EQ(result.exit_code, kDecryptionFailed) << table << " dropped: " << result;
      } else {
        EXPECT_TRUE(result.exit_code == kOk || result.exit_code == kDecryptionFailed)
            << table << " dropped, " << args[0] << ": " << result;
      }
    }
  }
}

TEST_F(ExitCodeTest, APostgresVaultWithATableDroppedIsAlteredExit5) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  const PostgresVault pg = make_postgres_vault();
  const Environment environment{{"CREDENTIAL_MASTER_KEY", kMasterKey},
                                {"CREDENTIAL_VAULT_URL", pg.url}};
  ASSERT_EQ(cli_with_env({"init"}, environment).exit_code, kOk);
  ASSERT_EQ(cli_with_env({"add", "--user", "alice", "--name", "db", "--host", "h", "--database",
                          "d", "--username", "u", "--password-stdin"},
                         environment, "pw\n")
                .exit_code,
            kOk);
  const std::string drop = "DROP TABLE credential_vault.audit";
  const std::string psql = "psql -q -v ON_ERROR_STOP=1 -d " + pg.database + " -c '" + drop + "'";
  ASSERT_EQ(std::system(psql.c_str()), 0);
  for (const auto& args : {std::vector<std::string>{"verify"}, {"audit", "verify"}}) {
    const CliResult result = cli_with_env(args, environment);
    EXPECT_EQ(result.exit_code, kDecryptionFailed) << args[0] << ": " << result;
    EXPECT_NE(result.err.find("altered"), std::string::npos) << result;
  }
}

TEST_F(ExitCodeTest, AVaultPostgresThatCannotBeReachedOrRefusesTheLoginIsExit7) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  const PostgresVault pg = make_postgres_vault();
  ASSERT_EQ(cli_with_env({"init"},
                         {{"CREDENTIAL_MASTER_KEY", kMasterKey}, {"CREDENTIAL_VAULT_URL", pg.url}})
                .exit_code,
            kOk);
  std::string wrong_password = pg.url;
  wrong_password.replace(wrong_password.find(pg.password), pg.password.size(), "NotThePassword");
  // Port 1 on the loopback: nothing listens there.
  const std::string closed_port = "postgresql://nobody:pw@127.0.0.1:1/none";
  for (const std::string& url : {wrong_password, closed_port}) {
    for (const auto& args : kReadingVerbs) {
      const CliResult result = cli_with_env(
          args, {{"CREDENTIAL_MASTER_KEY", kMasterKey}, {"CREDENTIAL_VAULT_URL", url}});
      EXPECT_EQ(result.exit_code, kCouldNotConnect) << args[0] << ": " << result;
      EXPECT_NE(result.err.find("PostgreSQL server"), std::string::npos) << result;  // the hint
      EXPECT_EQ(result.err.find(pg.password), std::string::npos) << result;
    }
  }
}

}  // namespace
}  // namespace credentials::testing
