// import-legacy: the Python vault fixture (tests/legacy/fixtures/legacy-vault)
// imported with every field, idempotently, and nothing written on a dry run
// or with a wrong key.

#include <fstream>
#include <sstream>
#include <string>

#include "cli/cli_fixture.h"
#include "cli/vault_verbs.h"
#include "credentials/credentials.h"
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

// The shapes the Python version stored and this vault once refused or
// mangled: user ids with a space or in Cyrillic, a Cyrillic name with a
// space, a db type it does not know, a description over 1,024 bytes and over
// several lines. `nlohmann` writes them as UTF-8, json.dumps as \u escapes:
// both are read.
class AwkwardLegacyVaultTest : public ImportLegacyVerbTest {
 protected:
  static constexpr std::string_view kPassphrase = "the old passphrase";

  struct Record {
    std::string id, user, name, db_type;
    nlohmann::ordered_json description = nullptr;
    int port = 5432;
    std::string host = "db.example.com";
  };

  // `raw`: more records, as JSON objects keyed by their ids, written as given.
  [[nodiscard]] std::filesystem::path write_vault(const std::vector<Record>& records,
                                                  const std::string& file_name = "vault.enc",
                                                  const nlohmann::ordered_json& raw = {}) {
    const internal::FernetKey key = internal::legacy_fernet_key(kPassphrase);
    nlohmann::ordered_json vault = nlohmann::ordered_json::object();
    for (const Record& r : records) {
      vault[r.id] = {{"credential_id", r.id},
                     {"user_id", r.user},
                     {"name", r.name},
                     {"db_type", r.db_type},
                     {"host", r.host},
                     {"port", r.port},
                     {"database", "app"},
                     {"username", "svc"},
                     {"encrypted_password",
                      internal::fernet_encrypt(key, internal::as_bytes("pw of " + r.id))},
                     {"created_at", "2024-02-29T23:59:59"},
                     {"updated_at", "2024-03-01T00:00:00"},
                     {"description", r.description},
                     {"ssl_mode", nullptr},
                     {"connection_timeout", 30}};
    }
    if (raw.is_object()) vault.update(raw);
    const std::filesystem::path file = work_dir() / file_name;
    std::ofstream(file, std::ios::binary)
        << internal::fernet_encrypt(key, internal::as_bytes(vault.dump()));
    return file;
  }

  [[nodiscard]] CliResult import_file(const std::filesystem::path& file,
                                      const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"import-legacy", "--from", file.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli_with_env(args, legacy_env(std::string(kPassphrase)));
  }

  // The import events of the audit trail, as JSON.
  [[nodiscard]] std::vector<nlohmann::json> import_events() {
    const CliResult audit = cli({"audit", "--user", "root", "--roles", "admin", "--json"});
    EXPECT_EQ(audit.exit_code, kOk) << audit;
    std::vector<nlohmann::json> events;
    std::istringstream lines(audit.out);
    for (std::string line; std::getline(lines, line);) {
      nlohmann::json event = nlohmann::json::parse(line);
      if (event["action"].get<std::string>().starts_with("import_legacy")) events.push_back(event);
    }
    return events;
  }
};

std::string long_description() {
  std::string text = "Reporting replica.\nOwned by the data team;\n\tcall before rotating.\n";
  while (text.size() <= 1500) text += "Кириллица and ASCII, line after line.\n";
  return text;
}

TEST_F(AwkwardLegacyVaultTest, ImportsWholeAndEachIsReachableByItsOriginalUserAndName) {
  const std::string description = long_description();
  const std::filesystem::path file = write_vault({
      {"alice smith_prod_1.5", "alice smith", "prod", "postgres"},
      {"юзер_база данных_2.5", "юзер", "база данных", "postgres", description},
      {"bob_mssql_3.5", "bob", "mssql", "sqlserver", "two\nlines", 1433},
      // The Python version's names were not unique: the second is renamed.
      {"юзер_база данных_4.5", "юзер", "база данных", "postgres"},
  });
  const CliResult result = import_file(file, {"--json"});
  ASSERT_EQ(result.exit_code, kOk) << result;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["imported"], 4);
  EXPECT_EQ(report["renamed"], 1);
  EXPECT_EQ(report["invalid"], 0);
  EXPECT_EQ(report["credentials"][3]["name"], "база данных-2");

  // show, by name and by the legacy id.
  const nlohmann::json alice = show_json("alice smith", "prod");
  EXPECT_EQ(alice["owner"], "alice smith");
  EXPECT_EQ(alice["password"], "pw of alice smith_prod_1.5");
  const nlohmann::json cyrillic = show_json("юзер", "база данных");
  EXPECT_EQ(cyrillic["name"], "база данных");
  EXPECT_EQ(cyrillic["description"], description) << "kept whole, line breaks and all";
  EXPECT_EQ(cyrillic["password"], "pw of юзер_база данных_2.5");
  EXPECT_EQ(show_json("юзер", "база данных-2")["password"], "pw of юзер_база данных_4.5");
  EXPECT_EQ(show_json("юзер", "юзер_база данных_4.5")["name"], "база данных-2");
  const nlohmann::json mssql = show_json("bob", "mssql");
  EXPECT_EQ(mssql["db_type"], "sqlserver");
  EXPECT_EQ(mssql["port"], 1433);
  EXPECT_EQ(mssql["description"], "two\nlines");

  // list: the names as they are, unescaped, in the table and the JSON.
  const CliResult list = cli({"list", "--user", "юзер"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  EXPECT_NE(list.out.find("база данных "), std::string::npos) << list;
  EXPECT_NE(list.out.find("база данных-2"), std::string::npos) << list;
  const CliResult list_json = cli({"list", "--user", "alice smith", "--json"});
  ASSERT_EQ(list_json.exit_code, kOk) << list_json;
  EXPECT_EQ(nlohmann::json::parse(list_json.out)[0]["name"], "prod");
  const CliResult text = cli({"show", "--user", "юзер", "--name", "база данных"});
  EXPECT_NE(text.out.find("база данных"), std::string::npos) << text;

  // `test` says the type is not one it can connect to.
  const CliResult test = cli({"test", "--user", "bob", "--name", "mssql"});
  EXPECT_EQ(test.exit_code, kFailure) << test;
  EXPECT_NE(test.err.find("unknown database type 'sqlserver'"), std::string::npos) << test;

  // update and delete by the original user id and name.
  const CliResult update =
      cli({"update", "--user", "юзер", "--name", "база данных", "--password-stdin"}, "new pw\n");
  ASSERT_EQ(update.exit_code, kOk) << update;
  EXPECT_EQ(show_json("юзер", "база данных")["password"], "new pw");
  const CliResult describe =
      cli({"update", "--user", "bob", "--name", "mssql", "--description", "still\nsqlserver"});
  ASSERT_EQ(describe.exit_code, kOk) << describe;
  EXPECT_EQ(show_json("bob", "mssql")["db_type"], "sqlserver");
  const CliResult remove = cli({"delete", "--user", "alice smith", "--name", "prod", "--yes"});
  ASSERT_EQ(remove.exit_code, kOk) << remove;
  EXPECT_EQ(cli({"show", "--user", "alice smith", "--name", "prod"}).exit_code, kNotFound);

  // The library reaches them by the same user ids and names.
  Vault vault = Vault::open({.directory = vault_dir(), .master_key = SecretString(kMasterKey)});
  const UserContext user{"юзер", "юзер@app", {"user"}};
  EXPECT_EQ(vault.get_credential(user, "база данных").password.reveal(), "new pw");
  EXPECT_EQ(vault.get_credential(user, "база данных-2").description, "");
  EXPECT_EQ(vault.list_credentials(user).size(), 2u);
  EXPECT_THROW((void)vault.get_credential({"bob", "bob@app", {"user"}}, "база данных"),
               CredentialNotFoundError);

  const std::vector<nlohmann::json> events = import_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["name"], "4 imported (1 renamed), 0 already imported, 0 invalid");
}

// Names and user ids with control or format characters, or over 128 bytes:
// every one is named with its reason in one run and nothing is written;
// with --skip-invalid the others are imported and those reported.
TEST_F(AwkwardLegacyVaultTest, InvalidRecordsAreAllNamedAndImportedOnlyWithSkipInvalid) {
  const std::vector<Record> records = {
      {"good_1.0", "alice", "good", "postgres"},
      {"nul_2.0", "alice", std::string("a\0b", 3), "postgres"},
      {"esc_3.0", "alice\x1b[31m", "db", "postgres"},
      {"zwsp_4.0", "alice", "a\u200Bb", "postgres"},
      {"rlo_5.0", "alice", "admin\u202Egpj", "postgres"},
      {"bom_6.0", "\uFEFFalice", "db", "postgres"},
      {"long_7.0", "alice", std::string(129, 'n'), "postgres"},
      {"type_8.0", "alice", "typed", "sql\u200Bserver"},
      {"also_good_9.0", "юзер", "ok", "sqlserver"},
  };
  const std::filesystem::path file = write_vault(records);
  const CliResult refused = import_file(file);
  EXPECT_EQ(refused.exit_code, kUsage) << refused;
  EXPECT_NE(refused.err.find("7 of its 9 credentials cannot be imported, so none was"),
            std::string::npos)
      << refused;
  for (const std::string_view line :
       {"cannot import nul_2.0: invalid credential name: it holds the control character U+0000",
        "cannot import esc_3.0: invalid user id: it holds the control character U+001B",
        "cannot import zwsp_4.0: invalid credential name: it holds the invisible format character "
        "U+200B",
        "cannot import rlo_5.0: invalid credential name: it holds the invisible format character "
        "U+202E",
        "cannot import bom_6.0: invalid user id: it holds the invisible format character U+FEFF",
        "cannot import long_7.0: invalid credential name: it is 129 bytes long",
        "cannot import type_8.0: invalid db type: it holds the invisible format character "
        "U+200B"}) {
    EXPECT_NE(refused.err.find(line), std::string::npos) << line << "\n" << refused;
  }
  EXPECT_NE(refused.err.find("--skip-invalid"), std::string::npos) << refused;
  EXPECT_EQ(refused.err.find("pw of"), std::string::npos) << refused;
  EXPECT_EQ(refused.err.find("good_1.0"), std::string::npos) << refused;
  EXPECT_EQ(credential_rows(), 0);

  const CliResult dry = import_file(file, {"--skip-invalid", "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, kOk) << dry;
  EXPECT_EQ(nlohmann::json::parse(dry.out)["invalid"], 7);
  EXPECT_EQ(credential_rows(), 0);

  const CliResult skipped = import_file(file, {"--skip-invalid", "--json"});
  ASSERT_EQ(skipped.exit_code, kOk) << skipped;
  const nlohmann::json report = nlohmann::json::parse(skipped.out);
  EXPECT_EQ(report["imported"], 2);
  EXPECT_EQ(report["invalid"], 7);
  int invalid_lines = 0;
  for (const nlohmann::json& item : report["credentials"]) {
    if (item["status"] == "invalid") {
      ++invalid_lines;
      EXPECT_FALSE(item["reason"].get<std::string>().empty()) << item;
    }
  }
  EXPECT_EQ(invalid_lines, 7);
  EXPECT_EQ(credential_rows(), 2);
  EXPECT_EQ(show_json("alice", "good")["password"], "pw of good_1.0");
  EXPECT_EQ(show_json("юзер", "ok")["db_type"], "sqlserver");

  // The text report names each skipped one; a second run finds the
  // imported ones already there and still reports the others.
  const CliResult again = import_file(file, {"--skip-invalid"});
  ASSERT_EQ(again.exit_code, kOk) << again;
  EXPECT_NE(again.out.find("not imported zwsp_4.0: invalid credential name"), std::string::npos)
      << again;
  EXPECT_NE(again.out.find("0 imported (0 renamed), 2 already imported, 7 invalid and skipped."),
            std::string::npos)
      << again;

  // The audit trail counts; it names no credential and holds no secret.
  const std::vector<nlohmann::json> events = import_events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["outcome"], "error");
  EXPECT_EQ(events[0]["name"], "none imported, 7 invalid");
  EXPECT_EQ(events[1]["outcome"], "ok");
  EXPECT_EQ(events[1]["name"], "2 imported (0 renamed), 0 already imported, 7 invalid");
  EXPECT_EQ(events[2]["name"], "0 imported (0 renamed), 2 already imported, 7 invalid");
}

// Records that do not read at all (a field missing, a password that does
// not decrypt under the file's key) are invalid ones too: named, all of
// them, and skipped only with --skip-invalid.
TEST_F(AwkwardLegacyVaultTest, UnreadableRecordsAreNamedAndSkippedLikeInvalidOnes) {
  const internal::FernetKey other = internal::legacy_fernet_key("another passphrase entirely");
  nlohmann::ordered_json raw = nlohmann::ordered_json::object();
  raw["no_user_2.0"] = {{"credential_id", "no_user_2.0"}, {"name", "n"}, {"db_type", "postgres"}};
  raw["other_key_3.0"] = {
      {"credential_id", "other_key_3.0"},
      {"user_id", "alice"},
      {"name", "o"},
      {"db_type", "postgres"},
      {"host", "h"},
      {"port", 5432},
      {"database", "app"},
      {"username", "svc"},
      {"encrypted_password", internal::fernet_encrypt(other, internal::as_bytes("hunter2"))},
      {"created_at", "2024-02-29T23:59:59"},
      {"updated_at", "2024-03-01T00:00:00"}};
  const std::filesystem::path file =
      write_vault({{"good_1.0", "alice", "good", "postgres"}}, "vault.enc", raw);
  const CliResult refused = import_file(file);
  EXPECT_EQ(refused.exit_code, kUsage) << refused;
  EXPECT_NE(refused.err.find("2 of its 3 credentials cannot be imported"), std::string::npos)
      << refused;
  EXPECT_NE(refused.err.find("cannot import no_user_2.0: "), std::string::npos) << refused;
  EXPECT_NE(refused.err.find("user_id"), std::string::npos) << refused;
  EXPECT_NE(refused.err.find("cannot import other_key_3.0: "), std::string::npos) << refused;
  EXPECT_NE(refused.err.find("does not decrypt"), std::string::npos) << refused;
  EXPECT_EQ(refused.err.find("hunter2"), std::string::npos) << refused;
  EXPECT_EQ(credential_rows(), 0);

  const CliResult skipped = import_file(file, {"--skip-invalid", "--json"});
  ASSERT_EQ(skipped.exit_code, kOk) << skipped;
  const nlohmann::json report = nlohmann::json::parse(skipped.out);
  EXPECT_EQ(report["imported"], 1);
  EXPECT_EQ(report["invalid"], 2);
  EXPECT_EQ(credential_rows(), 1);
  EXPECT_EQ(show_json("alice", "good")["password"], "pw of good_1.0");
}

}  // namespace
}  // namespace credentials::testing
