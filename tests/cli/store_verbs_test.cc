// init, migrate-store and --vault-url / CREDENTIAL_VAULT_URL against the real
// PostgreSQL server pg_virtualenv starts around the test run (these tests
// fail, not skip, without it). The URL holds a password: it must never be
// printed.

#include <string>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"

namespace credentials::testing {
namespace {

class StoreVerbsTest : public CliTest {
 protected:
  static void expect_no_url(const CliResult& result, const PostgresVault& vault) {
    EXPECT_EQ(result.out.find(vault.password), std::string::npos) << result;
    EXPECT_EQ(result.err.find(vault.password), std::string::npos) << result;
  }
};

TEST_F(StoreVerbsTest, InitCreatesAnEmbeddedVaultOnceThenChecksIt) {
  const std::filesystem::path dir = work_dir() / "fresh";
  const CliResult created = cli({"init", "--vault-dir", dir.string(), "--json"});
  ASSERT_EQ(created.exit_code, kOk) << created;
  EXPECT_EQ(nlohmann::json::parse(created.out)["created"], true);
  EXPECT_TRUE(std::filesystem::exists(dir / "vault.db"));
  const CliResult again = cli({"init", "--vault-dir", dir.string()});
  ASSERT_EQ(again.exit_code, kOk) << again;
  EXPECT_NE(again.out.find("already exists"), std::string::npos) << again;
  Environment wrong = env();
  wrong["CREDENTIAL_MASTER_KEY"] = kOtherMasterKey;
  EXPECT_EQ(cli_with_env({"init", "--vault-dir", dir.string()}, wrong).exit_code, kDecryptionFailed);
  EXPECT_EQ(cli_with_env({"init", "--vault-dir", dir.string()}, {}).exit_code, kMissingKey);
  // list works on the new, empty vault.
  const CliResult list = cli({"list", "--user", "alice", "--vault-dir", dir.string(), "--json"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  EXPECT_EQ(nlohmann::json::parse(list.out), nlohmann::json::array());
}

TEST_F(StoreVerbsTest, InitWithVaultUrlCreatesTheSchemaAndEveryVerbWorksThere) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  const PostgresVault pg = make_postgres_vault();
  const CliResult missing = cli({"list", "--user", "alice", "--vault-url", pg.url});
  EXPECT_EQ(missing.exit_code, kNotFound) << missing;
  EXPECT_NE(missing.err.find("init"), std::string::npos) << missing;
  expect_no_url(missing, pg);

  const CliResult init = cli({"init", "--vault-url", pg.url});
  ASSERT_EQ(init.exit_code, kOk) << init;
  EXPECT_NE(init.out.find("Created"), std::string::npos) << init;
  expect_no_url(init, pg);

  // The flag and the environment variable reach the same vault.
  ASSERT_EQ(cli({"add", "--user", "alice", "--name", "shared", "--host", "h", "--database", "d",
                 "--username", "u", "--password-stdin", "--vault-url", pg.url},
                "shared-pw\n")
                .exit_code,
            kOk);
  Environment by_env = {{"CREDENTIAL_MASTER_KEY", kMasterKey}, {"CREDENTIAL_VAULT_URL", pg.url}};
  const CliResult show =
      cli_with_env({"show", "--user", "alice", "--name", "shared", "--reveal", "--json"}, by_env);
  ASSERT_EQ(show.exit_code, kOk) << show;
  EXPECT_EQ(nlohmann::json::parse(show.out)["password"], "shared-pw");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"verify"}, {"keys"}, {"audit", "verify"}, {"init"},
        {"audit", "--user", "alice"}, {"history", "--user", "alice", "--name", "shared"}}) {
    const CliResult result = cli_with_env(args, by_env);
    EXPECT_EQ(result.exit_code, kOk) << args[0] << ": " << result;
    expect_no_url(result, pg);
  }
  // An explicit --vault-dir wins over CREDENTIAL_VAULT_URL.
  EXPECT_EQ(cli_with_env({"list", "--user", "alice", "--vault-dir", (work_dir() / "none").string()},
                         by_env)
                .exit_code,
            kNotFound);
}

TEST_F(StoreVerbsTest, MigrateStoreToPostgresAndBackVerified) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  add_postgres("alice", "prod_db", "migrate-pw-a");
  add_postgres("bob", "bobs_db", "migrate-pw-b");
  const PostgresVault pg = make_postgres_vault("vault_migrated");

  const CliResult to_pg = cli({"migrate-store", "--from", vault_dir().string(), "--to", pg.url});
  ASSERT_EQ(to_pg.exit_code, kOk) << to_pg;
  EXPECT_NE(to_pg.out.find("verified"), std::string::npos) << to_pg;
  expect_no_url(to_pg, pg);
  const CliResult show = cli({"show", "--user", "bob", "--name", "bobs_db", "--reveal", "--json",
                              "--vault-url", pg.url});
  ASSERT_EQ(show.exit_code, kOk) << show;
  EXPECT_EQ(nlohmann::json::parse(show.out)["password"], "migrate-pw-b");

  // The target must hold no vault.
  const CliResult twice = cli({"migrate-store", "--from", vault_dir().string(), "--to", pg.url});
  EXPECT_EQ(twice.exit_code, kAlreadyExists) << twice;
  expect_no_url(twice, pg);

  const std::filesystem::path back = work_dir() / "back";
  const CliResult to_dir =
      cli({"migrate-store", "--from", pg.url, "--to", back.string(), "--json"});
  ASSERT_EQ(to_dir.exit_code, kOk) << to_dir;
  EXPECT_EQ(nlohmann::json::parse(to_dir.out)["migrated"], true);
  EXPECT_EQ(cli({"verify", "--vault-dir", back.string()}).exit_code, kOk);
  const CliResult again = cli({"show", "--user", "alice", "--name", "prod_db", "--reveal", "--json",
                               "--vault-dir", back.string()});
  ASSERT_EQ(again.exit_code, kOk) << again;
  EXPECT_EQ(nlohmann::json::parse(again.out)["password"], "migrate-pw-a");
}

TEST_F(StoreVerbsTest, MigrateStoreFailuresCopyNothing) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  add_postgres("alice", "prod_db", "migrate-pw-a");
  const PostgresVault pg = make_postgres_vault();
  Environment wrong = env();
  wrong["CREDENTIAL_MASTER_KEY"] = kOtherMasterKey;
  const CliResult wrong_key =
      cli_with_env({"migrate-store", "--from", vault_dir().string(), "--to", pg.url}, wrong);
  EXPECT_EQ(wrong_key.exit_code, kDecryptionFailed) << wrong_key;
  EXPECT_EQ(cli({"list", "--user", "alice", "--vault-url", pg.url}).exit_code, kNotFound)
      << "nothing was copied";
  const CliResult no_source =
      cli({"migrate-store", "--from", (work_dir() / "none").string(), "--to", pg.url});
  EXPECT_EQ(no_source.exit_code, kNotFound) << no_source;
  EXPECT_EQ(cli({"migrate-store", "--from", vault_dir().string()}).exit_code, kUsage);
  EXPECT_EQ(cli({"migrate-store", "--from", vault_dir().string(), "--to", vault_dir().string()})
                .exit_code,
            kUsage);
  // Into a directory that already holds a vault.
  const std::filesystem::path other = work_dir() / "other";
  ASSERT_EQ(cli({"init", "--vault-dir", other.string()}).exit_code, kOk);
  EXPECT_EQ(cli({"migrate-store", "--from", vault_dir().string(), "--to", other.string()}).exit_code,
            kAlreadyExists);
}

TEST_F(StoreVerbsTest, UnreachableServerIsAClearErrorWithoutTheUrl) {
  const std::string url = "postgresql://vault:Hidden-Pw-42@127.0.0.1:1/db?connect_timeout=2";
  const CliResult result = cli({"init", "--vault-url", url});
  EXPECT_NE(result.exit_code, kOk) << result;
  EXPECT_EQ(result.err.find("Hidden-Pw-42"), std::string::npos) << result;
  EXPECT_EQ(result.out.find("Hidden-Pw-42"), std::string::npos) << result;
}

}  // namespace
}  // namespace credentials::testing
