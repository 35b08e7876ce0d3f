// import-legacy: the Python vault fixture (tests/legacy/fixtures/legacy-vault)
// imported with every field, idempotently, and nothing written on a dry run
// or with a wrong key.

#include <fstream>
#include <string>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"
#include "crypto/primitives.h"
#include "legacy/fernet.h"

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
    for (const char* field :
         {"name", "db_type", "host", "port", "database", "username", "password"}) {
      EXPECT_EQ(got[field], want[field]) << field;
    }
    EXPECT_EQ(got["description"], want["description"].is_null() ? "" : want["description"]);
    EXPECT_EQ(got["ssl_mode"], want.value("ssl_mode", ""));
    // The old credential id keeps working as a reference.
    const CliResult by_id =
        cli({"show", "--user", owner, "--name", want["credential_id"], "--json"});
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
  for (const nlohmann::json& item : report["credentials"])
    EXPECT_EQ(item["status"], "already_imported");
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
  EXPECT_EQ(import({"--dry-run", "--vault-dir", none.string()}, fixture_key()).exit_code,
            kNotFound);
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
  const CliResult no_key = cli({"import-legacy", "--from", (kFixture / "vault.enc").string()});
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

// A Python vault with records this vault cannot take: each is named by its
// legacy id with its reason, all of them in one run, and nothing is imported.
TEST_F(ImportLegacyVerbTest, EveryRecordThatCannotBeImportedIsNamedAndNothingIsImported) {
  constexpr std::string_view kPassphrase = "the old passphrase";
  const internal::FernetKey key = internal::legacy_fernet_key(kPassphrase);
  auto record = [&](const std::string& id, const std::string& user, const std::string& host) {
    return nlohmann::ordered_json{
        {"credential_id", id},
        {"user_id", user},
        {"name", "db"},
        {"db_type", "postgres"},
        {"host", host},
        {"port", 5432},
        {"database", "app"},
        {"username", "svc"},
        {"encrypted_password", internal::fernet_encrypt(key, internal::as_bytes("pw"))},
        {"created_at", "2024-02-29T23:59:59"},
        {"updated_at", "2024-03-01T00:00:00"},
        {"description", nullptr},
        {"ssl_mode", nullptr},
        {"connection_timeout", 30}};
  };
  nlohmann::ordered_json vault = nlohmann::ordered_json::object();
  vault["alice_db_1.5"] = record("alice_db_1.5", "alice", "db.example.com");
  vault["eve_db_2.5"] = record("eve_db_2.5", "eve\x07", "db.example.com");  // a control character
  vault["bob_db_3.5"] = record("bob_db_3.5", "bob", "");                    // no host
  vault["carol_db_4.5"] = record("carol_db_4.5", "carol", "db.example.com");
  const std::filesystem::path file = work_dir() / "awkward.enc";
  std::ofstream(file, std::ios::binary)
      << internal::fernet_encrypt(key, internal::as_bytes(vault.dump()));

  Environment env = this->env();
  env["CREDENTIAL_MASTER_KEY_LEGACY"] = std::string(kPassphrase);
  const CliResult result = cli_with_env({"import-legacy", "--from", file.string()}, env);
  EXPECT_EQ(result.exit_code, kUsage) << result;
  EXPECT_NE(result.err.find("2 of its 4 credentials cannot be imported, so none was"),
            std::string::npos)
      << result;
  EXPECT_NE(result.err.find("eve_db_2.5: invalid user id"), std::string::npos) << result;
  EXPECT_NE(result.err.find("bob_db_3.5: host must not be empty"), std::string::npos) << result;
  EXPECT_EQ(result.err.find("alice_db_1.5"), std::string::npos) << result;
  EXPECT_EQ(result.err.find("carol_db_4.5"), std::string::npos) << result;
  EXPECT_EQ(result.err.find("pw"), std::string::npos) << result;
  EXPECT_EQ(credential_rows(), 0);
}

}  // namespace
}  // namespace credentials::testing
