// import-legacy: the Python vault fixture (tests/legacy/fixtures/legacy-vault)
// imported with every field, idempotently, and nothing written on a dry run
// or with a wrong key.

#include <string>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"

namespace credentials::testing {
namespace {

const std::filesystem::path kFixture =
    std::filesystem::path(CREDENTIALS_SOURCE_DIR) / "tests/legacy/fixtures/legacy-vault";

class ImportLegacyVerbTest : public CliTest {
 protected:
  [[nodiscard]] Environment legacy_env(const std::string& key) const {
    Environment env = this->env();
    env["CREDENTIAL_MASTER_KEY_LEGACY"] = key;
    return env;
  }
  [[nodiscard]] std::string fixture_key() const { return read_file(kFixture / "master_key"); }
  [[nodiscard]] CliResult import(const std::vector<std::string>& extra, const std::string& key) {
    std::vector<std::string> args = {"import-legacy", "--from", (kFixture / "vault.enc").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli_with_env(args, legacy_env(key));
  }
  [[nodiscard]] int credential_rows() const {
    return sqlite_count(vault_dir() / "vault.db", "SELECT count(*) FROM credentials");
  }
};

TEST_F(ImportLegacyVerbTest, ImportsEveryFieldOfTheFixture) {
  const CliResult result = import({"--json"}, fixture_key());
  ASSERT_EQ(result.exit_code, kOk) << result;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["imported"], 3);
  EXPECT_EQ(report["already_imported"], 0);
  EXPECT_EQ(report["dry_run"], false);
  ASSERT_EQ(report["credentials"].size(), 3u);

  const nlohmann::json expected = nlohmann::json::parse(read_file(kFixture / "expected.json"));
  for (const nlohmann::json& want : expected) {
    const std::string owner = want["user_id"];
    const nlohmann::json got = show_json(owner, want["name"]);
    EXPECT_EQ(got["id"], want["credential_id"]);
    EXPECT_EQ(got["owner"], owner);
    for (const char* field : {"name", "db_type", "host", "port", "database", "username", "password"}) {
      EXPECT_EQ(got[field], want[field]) << field;
    }
    EXPECT_EQ(got["description"], want["description"].is_null() ? "" : want["description"]);
    EXPECT_EQ(got["ssl_mode"], want.value("ssl_mode", ""));
    // The old credential id keeps working as a reference.
    const CliResult by_id = cli({"show", "--user", owner, "--name", want["credential_id"], "--json"});
    EXPECT_EQ(by_id.exit_code, kOk) << by_id;
  }
  EXPECT_EQ(result.out.find("s3cret"), std::string::npos) << "no password in the report";
}

TEST_F(ImportLegacyVerbTest, TextReportAndASecondImportReportsAlreadyImported) {
  const CliResult first = import({}, fixture_key());
  ASSERT_EQ(first.exit_code, kOk) << first;
  EXPECT_NE(first.out.find("alice/prod_db"), std::string::npos) << first;
  EXPECT_NE(first.out.find("3 imported"), std::string::npos) << first;

  const CliResult second = import({"--json"}, fixture_key());
  ASSERT_EQ(second.exit_code, kOk) << second;
  const nlohmann::json report = nlohmann::json::parse(second.out);
  EXPECT_EQ(report["imported"], 0);
  EXPECT_EQ(report["already_imported"], 3);
  for (const nlohmann::json& item : report["credentials"]) EXPECT_EQ(item["status"], "already_imported");
  EXPECT_EQ(credential_rows(), 3);
  const CliResult text = import({}, fixture_key());
  EXPECT_NE(text.out.find("3 already imported"), std::string::npos) << text;
}

TEST_F(ImportLegacyVerbTest, DryRunWritesNothing) {
  add_postgres("carol", "existing", "carol-pw");
  const CliResult dry = import({"--dry-run", "--json"}, fixture_key());
  ASSERT_EQ(dry.exit_code, kOk) << dry;
  const nlohmann::json report = nlohmann::json::parse(dry.out);
  EXPECT_EQ(report["dry_run"], true);
  EXPECT_EQ(report["imported"], 3);
  EXPECT_EQ(credential_rows(), 1);
  EXPECT_EQ(cli({"show", "--user", "alice", "--name", "prod_db"}).exit_code, kNotFound);
  const CliResult text = import({"--dry-run"}, fixture_key());
  EXPECT_NE(text.out.find("nothing was written"), std::string::npos) << text;
  // A dry run does not create a vault either.
  const std::filesystem::path none = work_dir() / "none";
  EXPECT_EQ(import({"--dry-run", "--vault-dir", none.string()}, fixture_key()).exit_code, kNotFound);
  EXPECT_FALSE(std::filesystem::exists(none / "vault.db"));
}

TEST_F(ImportLegacyVerbTest, WrongLegacyKeyImportsNothing) {
  add_postgres("carol", "existing", "carol-pw");
  const CliResult wrong = import({}, kOtherMasterKey);  // a valid Fernet key, not this file's
  EXPECT_NE(wrong.err.find("CREDENTIAL_MASTER_KEY_LEGACY"), std::string::npos) << wrong;
  EXPECT_EQ(wrong.exit_code, kDecryptionFailed) << wrong;
  EXPECT_EQ(credential_rows(), 1);
  const CliResult passphrase = import({}, "not the key");
  EXPECT_EQ(passphrase.exit_code, kDecryptionFailed) << passphrase;
  EXPECT_EQ(credential_rows(), 1);
  // 44 characters that are not a Fernet key: a usage error, nothing imported.
  EXPECT_EQ(import({}, "GFuSCI8ffLhYaTnFvpHmkhDTZv_83-wLRAlCfwWBtox=").exit_code, kUsage);
  EXPECT_EQ(credential_rows(), 1);
}

TEST_F(ImportLegacyVerbTest, OtherFailures) {
  // No legacy key and no terminal.
  const CliResult no_key =
      cli({"import-legacy", "--from", (kFixture / "vault.enc").string()});
  EXPECT_EQ(no_key.exit_code, kUsage) << no_key;
  EXPECT_NE(no_key.err.find("CREDENTIAL_MASTER_KEY_LEGACY"), std::string::npos) << no_key;
  EXPECT_EQ(cli_with_env({"import-legacy"}, legacy_env(fixture_key())).exit_code, kUsage);
  const CliResult missing = cli_with_env(
      {"import-legacy", "--from", (work_dir() / "vault.enc").string()}, legacy_env(fixture_key()));
  EXPECT_NE(missing.exit_code, kOk) << missing;
}

TEST_F(ImportLegacyVerbTest, AsksForTheLegacyKeyOnATerminal) {
  PtySession session({"import-legacy", "--from", (kFixture / "vault.enc").string()}, env(),
                     work_dir());
  ASSERT_TRUE(session.expect("CREDENTIAL_MASTER_KEY: ")) << session.transcript();
  session.send_line(fixture_key());
  EXPECT_EQ(session.wait(), kOk) << session.transcript();
  EXPECT_EQ(session.transcript().find(fixture_key()), std::string::npos) << "echo was on";
  EXPECT_EQ(credential_rows(), 3);
}

}  // namespace
}  // namespace credentials::testing
