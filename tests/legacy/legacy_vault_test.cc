// The Python vault reader against a real vault written by the Python code
// (tests/legacy/fixtures/legacy-vault, a copy of ../shared/fixtures) and
// against vaults made here with a passphrase key.
#include "legacy/legacy_vault.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "credentials/errors.h"
#include "crypto/primitives.h"
#include "legacy/fernet.h"
#include "support/temp_dir.h"

namespace credentials::internal {
namespace {

using testing::TempDir;

const std::filesystem::path kFixture =
    std::filesystem::path(CREDENTIALS_SOURCE_DIR) / "tests/legacy/fixtures/legacy-vault";

std::string fixture_key() { return testing::read_file(kFixture / "master_key"); }

void write_file(const std::filesystem::path& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good());
}

TEST(LegacyVaultTest, FixtureReadsEveryFieldAsExpected) {
  const nlohmann::json expected =
      nlohmann::json::parse(testing::read_file(kFixture / "expected.json"));
  ASSERT_EQ(fixture_key().size(), 44u);
  const std::vector<LegacyCredential> got =
      read_legacy_vault(kFixture / "vault.enc", SecretString(fixture_key()));

  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const nlohmann::json& want = expected[i];
    const LegacyCredential& c = got[i];
    SCOPED_TRACE(want["credential_id"].get<std::string>());
    EXPECT_EQ(c.credential_id, want["credential_id"]);
    EXPECT_EQ(c.user_id, want["user_id"]);
    EXPECT_EQ(c.name, want["name"]);
    EXPECT_EQ(c.db_type, want["db_type"]);
    EXPECT_EQ(c.host, want["host"]);
    EXPECT_EQ(c.port, want["port"]);
    EXPECT_EQ(c.database, want["database"]);
    EXPECT_EQ(c.username, want["username"]);
    EXPECT_EQ(c.password.reveal(), want["password"].get<std::string>());
    if (want["description"].is_null()) {
      EXPECT_FALSE(c.description.has_value());
    } else {
      EXPECT_EQ(c.description, want["description"].get<std::string>());
    }
    if (!want.contains("ssl_mode") || want["ssl_mode"].is_null()) {
      EXPECT_FALSE(c.ssl_mode.has_value());
    } else {
      EXPECT_EQ(c.ssl_mode, want["ssl_mode"].get<std::string>());
    }
    EXPECT_EQ(c.connection_timeout, want.value("connection_timeout", 30));
    EXPECT_LE(c.created_at, c.updated_at);
  }
}

TEST(LegacyVaultTest, FixtureTimestampsAreTheNaiveUtcTimesItStores) {
  // expected.json does not list them; these are the strings in the fixture's
  // plaintext (decrypted independently with `openssl enc -aes-128-cbc -d`).
  const std::vector<LegacyCredential> got =
      read_legacy_vault(kFixture / "vault.enc", SecretString(fixture_key()));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(format_timestamp(got[0].created_at), "2026-11-28T10:42:51.986048Z");
  EXPECT_EQ(format_timestamp(got[0].updated_at), "2026-11-28T10:42:51.986052Z");
  EXPECT_EQ(format_timestamp(got[1].created_at), "2026-11-28T10:42:51.986695Z");
  EXPECT_EQ(format_timestamp(got[2].updated_at), "2026-11-28T10:42:51.987288Z");
  // The id embeds the Unix time of the store: 1795862571.98... is 10:42:51 UTC.
  EXPECT_EQ(std::chrono::floor<std::chrono::seconds>(got[0].created_at).time_since_epoch().count(),
            1795862571);
}

TEST(LegacyVaultTest, KeyFileWithTrailingNewlineStillOpensTheFixture) {
  const std::vector<LegacyCredential> got =
      read_legacy_vault(kFixture / "vault.enc", SecretString(fixture_key() + "\n"));
  EXPECT_EQ(got.size(), 3u);
}

TEST(LegacyVaultTest, WrongKeyIsDecryptionFailed) {
  const std::string other_fernet_key = base64url_encode(random_bytes(32));
  EXPECT_THROW((void)read_legacy_vault(kFixture / "vault.enc", SecretString(other_fernet_key)),
               DecryptionFailedError);
  EXPECT_THROW((void)read_legacy_vault(kFixture / "vault.enc", SecretString("a passphrase")),
               DecryptionFailedError);
}

TEST(LegacyVaultTest, TruncatedFileIsAnError) {
  TempDir dir;
  const std::string original = testing::read_file(kFixture / "vault.enc");
  for (const std::size_t keep : {std::size_t{0}, std::size_t{10}, original.size() / 2,
                                 original.size() - 4, original.size() - 1}) {
    SCOPED_TRACE(keep);
    write_file(dir / "vault.enc", original.substr(0, keep));
    EXPECT_THROW((void)read_legacy_vault(dir / "vault.enc", SecretString(fixture_key())),
                 DecryptionFailedError);
  }
}

TEST(LegacyVaultTest, CorruptedFileIsAnError) {
  TempDir dir;
  const std::string original = testing::read_file(kFixture / "vault.enc");
  for (const std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{40}, original.size() / 2,
                               original.size() - 10}) {
    SCOPED_TRACE(at);
    std::string corrupted = original;
    corrupted[at] = corrupted[at] == 'A' ? 'B' : 'A';
    write_file(dir / "vault.enc", corrupted);
    EXPECT_THROW((void)read_legacy_vault(dir / "vault.enc", SecretString(fixture_key())),
                 DecryptionFailedError);
  }
}

TEST(LegacyVaultTest, MissingFileIsInvalidArgument) {
  TempDir dir;
  EXPECT_THROW((void)read_legacy_vault(dir / "no-such-vault.enc", SecretString(fixture_key())),
               InvalidArgumentError);
  EXPECT_THROW((void)read_legacy_vault(dir.path(), SecretString(fixture_key())),
               InvalidArgumentError);
}

// A vault as the Python code wrote it, made here with a passphrase key.
class PassphraseVaultTest : public ::testing::Test {
 protected:
  static constexpr std::string_view kPassphrase = "my old passphrase";
  FernetKey key_ = legacy_fernet_key(kPassphrase);
  TempDir dir_;

  std::string password_token(std::string_view password) {
    return fernet_encrypt(key_, as_bytes(password));
  }
  nlohmann::ordered_json credential(const std::string& id, const std::string& user,
                                    const std::string& name, std::string_view password) {
    return {{"credential_id", id},
            {"user_id", user},
            {"name", name},
            {"db_type", "postgres"},
            {"host", "db.example.com"},
            {"port", 5432},
            {"database", "app"},
            {"username", "svc"},
            {"encrypted_password", password_token(password)},
            {"created_at", "2024-02-29T23:59:59"},
            {"updated_at", "2024-03-01T00:00:00.000001"},
            {"description", nullptr},
            {"ssl_mode", nullptr},
            {"connection_timeout", 30}};
  }
  std::filesystem::path write_vault(std::string_view json) {
    const std::filesystem::path path = dir_ / "vault.enc";
    write_file(path, fernet_encrypt(key_, as_bytes(json)));
    return path;
  }
  std::vector<LegacyCredential> read(std::string_view json) {
    return read_legacy_vault(write_vault(json), SecretString(kPassphrase));
  }
};

TEST_F(PassphraseVaultTest, ReadsBackInStoredOrderWithEveryField) {
  const std::string awkward = "p@ss/w:rd#1%]'\"\\ é 密码";
  nlohmann::ordered_json vault;
  // Not alphabetical: the order stored must survive.
  vault["zed_db_1700000000.5"] = credential("zed_db_1700000000.5", "zed", "db", "first");
  vault["alice_db_1700000001.5"] = credential("alice_db_1700000001.5", "alice", "db", awkward);
  vault["alice_db_1700000002.5"] = credential("alice_db_1700000002.5", "alice", "db", "third");
  auto& third = vault["alice_db_1700000002.5"];
  third["description"] = "Ünïcode description";
  third["ssl_mode"] = "verify-full";
  third["connection_timeout"] = 7;
  third["port"] = 6543;
  third["db_type"] = "mysql";
  third.erase("connection_timeout");  // absent: the default, 30

  // ensure_ascii as Python's json.dumps: non-ASCII arrives as \u escapes.
  const std::vector<LegacyCredential> got = read(vault.dump(2, ' ', /*ensure_ascii=*/true));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].credential_id, "zed_db_1700000000.5");
  EXPECT_EQ(got[1].credential_id, "alice_db_1700000001.5");
  EXPECT_EQ(got[2].credential_id, "alice_db_1700000002.5");
  EXPECT_EQ(got[0].password.reveal(), "first");
  EXPECT_EQ(got[1].password.reveal(), awkward);
  EXPECT_EQ(got[1].user_id, "alice");
  EXPECT_EQ(got[1].name, "db");
  EXPECT_EQ(got[1].host, "db.example.com");
  EXPECT_EQ(got[1].port, 5432);
  EXPECT_EQ(got[1].database, "app");
  EXPECT_EQ(got[1].username, "svc");
  EXPECT_FALSE(got[1].description.has_value());
  EXPECT_FALSE(got[1].ssl_mode.has_value());
  EXPECT_EQ(format_timestamp(got[1].created_at), "2024-02-29T23:59:59.000000Z");
  EXPECT_EQ(format_timestamp(got[1].updated_at), "2024-03-01T00:00:00.000001Z");
  EXPECT_EQ(got[2].description, "Ünïcode description");
  EXPECT_EQ(got[2].ssl_mode, "verify-full");
  EXPECT_EQ(got[2].connection_timeout, 30);
  EXPECT_EQ(got[2].port, 6543);
  EXPECT_EQ(got[2].db_type, "mysql");
}

TEST_F(PassphraseVaultTest, EmptyVaultIsEmpty) { EXPECT_TRUE(read("{}").empty()); }

TEST_F(PassphraseVaultTest, WrongPassphraseIsDecryptionFailed) {
  const std::filesystem::path path = write_vault("{}");
  EXPECT_THROW((void)read_legacy_vault(path, SecretString("another passphrase")),
               DecryptionFailedError);
}

TEST_F(PassphraseVaultTest, MalformedJsonIsInvalidArgumentWithoutItsText) {
  try {
    (void)read(R"({"id": {"user_id": topsecretvalue}})");
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)read("[]"), InvalidArgumentError);
  EXPECT_THROW((void)read(R"({"id": 5})"), InvalidArgumentError);
  EXPECT_THROW((void)read(""), InvalidArgumentError);
}

TEST_F(PassphraseVaultTest, BadFieldIsInvalidArgumentNamingIt) {
  struct Case {
    const char* field;
    nlohmann::ordered_json value;  // null: remove the field
    bool remove;
  };
  const std::vector<Case> cases = {
      {"user_id", nullptr, true},
      {"name", 42, false},
      {"db_type", nullptr, false},
      {"port", "not-a-port", false},
      {"port", 70000, false},
      {"port", -1, false},
      {"connection_timeout", "soon", false},
      {"created_at", "yesterday", false},
      {"updated_at", nullptr, true},
      {"encrypted_password", nullptr, true},
      {"description", 3.5, false},
      {"credential_id", "someone_else_1.0", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    nlohmann::ordered_json vault;
    vault["alice_db_1.0"] = credential("alice_db_1.0", "alice", "db", "pw");
    if (c.remove) {
      vault["alice_db_1.0"].erase(c.field);
    } else {
      vault["alice_db_1.0"][c.field] = c.value;
    }
    try {
      (void)read(vault.dump());
      ADD_FAILURE() << "no error";
    } catch (const InvalidArgumentError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(std::string("'") + c.field + "'"), std::string::npos) << message;
      EXPECT_NE(message.find("alice_db_1.0"), std::string::npos) << message;
    }
  }
}

TEST_F(PassphraseVaultTest, LenientWhereThePythonModelWas) {
  nlohmann::ordered_json vault;
  vault["a_db_1.0"] = credential("a_db_1.0", "a", "db", "pw");
  vault["a_db_1.0"]["port"] = "5433";        // a string of digits
  vault["a_db_1.0"]["host"] = nullptr;       // null: empty
  vault["a_db_1.0"].erase("credential_id");  // the key is the id
  vault["a_db_1.0"].erase("ssl_mode");
  const std::vector<LegacyCredential> got = read(vault.dump());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].port, 5433);
  EXPECT_EQ(got[0].host, "");
  EXPECT_EQ(got[0].credential_id, "a_db_1.0");
  EXPECT_FALSE(got[0].ssl_mode.has_value());
}

// A Python dict read from the file: a repeated key keeps its first position
// and takes its last value, whatever the values in between were.
TEST_F(PassphraseVaultTest, RepeatedIdKeepsItsFirstPlaceAndItsLastValue) {
  const std::string a_old = credential("a_db_1.0", "a", "db", "old").dump();
  const std::string a_new = credential("a_db_1.0", "a", "db", "new").dump();
  const std::string b = credential("b_db_2.0", "b", "db", "b-pw").dump();
  const std::vector<LegacyCredential> got =
      read(R"({"a_db_1.0": )" + a_old + R"(, "b_db_2.0": )" + b + R"(, "a_db_1.0": )" + a_new + "}");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].credential_id, "a_db_1.0");
  EXPECT_EQ(got[0].password.reveal(), "new");
  EXPECT_EQ(got[1].credential_id, "b_db_2.0");

  // A value that would not read, replaced by one that does, is no error...
  EXPECT_EQ(read(R"({"a_db_1.0": 5, "a_db_1.0": )" + a_new + "}").size(), 1u);
  EXPECT_EQ(read(R"({"a_db_1.0": {"port": "x"}, "a_db_1.0": )" + a_new + "}").size(), 1u);
  // ...and one that reads, replaced by one that does not, is.
  EXPECT_THROW((void)read(R"({"a_db_1.0": )" + a_new + R"(, "a_db_1.0": [1, 2]})"), InvalidArgumentError);
}

// Values nested in a credential are read as documents: fields the reader
// does not know are skipped whatever they hold, and a known field that holds
// an object or an array is named in the error.
TEST_F(PassphraseVaultTest, NestedValuesAreSkippedOrNamed) {
  nlohmann::ordered_json vault;
  vault["a_db_1.0"] = credential("a_db_1.0", "a", "db", "pw");
  vault["a_db_1.0"]["extra"] = {{"list", {1, {{"deep", {true, nullptr, 2.5}}}, "x"}}, {"empty", nlohmann::ordered_json::object()}};
  vault["b_db_2.0"] = credential("b_db_2.0", "b", "db", "pw-b");
  const std::vector<LegacyCredential> got = read(vault.dump());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].password.reveal(), "pw-b");

  vault["a_db_1.0"]["host"] = {{"inner", {1, 2}}};
  try {
    (void)read(vault.dump());
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("'host'"), std::string::npos) << e.what();
  }
}

// The whole file parses before any credential's error is reported: a syntax
// error after a bad credential is the error.
TEST_F(PassphraseVaultTest, SyntaxErrorComesBeforeFieldErrors) {
  const std::string bad = R"({"a_db_1.0": {"user_id": 5}, "b": )";
  try {
    (void)read(bad);
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)read("5"), InvalidArgumentError);
  EXPECT_THROW((void)read(R"("text")"), InvalidArgumentError);
  EXPECT_THROW((void)read(R"([{"a": 1}])"), InvalidArgumentError);
  try {
    (void)read(R"({"a_db_1.0": 1e999})");
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
}

// A value nested deeper than any stack would allow for recursion is read
// (the parser and the document's destruction are iterative) and named.
TEST_F(PassphraseVaultTest, DeeplyNestedValueIsAnErrorNotACrash) {
  constexpr std::size_t kDepth = 200'000;
  const std::string nested = std::string(kDepth, '[') + std::string(kDepth, ']');
  try {
    (void)read(R"({"a_db_1.0": )" + nested + "}");
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("a_db_1.0"), std::string::npos) << e.what();
  }
  nlohmann::ordered_json vault;
  vault["a_db_1.0"] = credential("a_db_1.0", "a", "db", "pw");
  std::string text = vault.dump();
  text.insert(text.size() - 2, R"(, "extra": )" + nested);
  EXPECT_EQ(read(text).size(), 1u);
}

TEST_F(PassphraseVaultTest, PasswordUnderAnotherKeyIsDecryptionFailed) {
  nlohmann::ordered_json vault;
  vault["a_db_1.0"] = credential("a_db_1.0", "a", "db", "pw");
  const FernetKey other(random_secret(FernetKey::kSize));
  vault["a_db_1.0"]["encrypted_password"] = fernet_encrypt(other, as_bytes("pw"));
  EXPECT_THROW((void)read(vault.dump()), DecryptionFailedError);
}

}  // namespace
}  // namespace credentials::internal
