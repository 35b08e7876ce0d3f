// Fernet against the specification's own test vectors
// (github.com/fernet/spec: generate.json, verify.json, invalid.json), and the
// Python version's CREDENTIAL_MASTER_KEY rule against Python's hashlib.
#include "legacy/fernet.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "credentials/errors.h"
#include "crypto/primitives.h"

namespace credentials::internal {
namespace {

// The vectors' shared secret.
constexpr std::string_view kSpecSecret = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
// generate.json / verify.json: "hello" at 1985-10-26T01:20:00-07:00 with IV 0..15.
constexpr std::string_view kSpecToken =
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_"
    "5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
constexpr std::uint64_t kSpecGenerateTime = 499162800;  // 1985-10-26T01:20:00-07:00
constexpr std::int64_t kSpecVerifyTime = 499162801;     // 1985-10-26T01:20:01-07:00
constexpr std::chrono::seconds kSpecTtl{60};

FernetKey spec_key() {
  std::optional<FernetKey> key = FernetKey::from_text(kSpecSecret);
  if (!key) ADD_FAILURE() << "the spec's secret did not parse";
  return std::move(*key);
}

Bytes iv_0_to_15() {
  Bytes iv(16);
  for (std::size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<std::uint8_t>(i);
  return iv;
}

TEST(FernetTest, GenerateVectorMatchesTheSpec) {
  const std::string token =
      fernet_encrypt(spec_key(), as_bytes("hello"), kSpecGenerateTime, iv_0_to_15());
  EXPECT_EQ(token, kSpecToken);
}

TEST(FernetTest, VerifyVectorDecryptsWithinItsTtl) {
  const FernetDecrypted result =
      fernet_decrypt(spec_key(), kSpecToken, FernetTtl{kSpecTtl, kSpecVerifyTime});
  ASSERT_TRUE(result.ok()) << static_cast<int>(result.failure);
  EXPECT_EQ(result.plaintext->as_chars(), "hello");
  EXPECT_EQ(result.timestamp, kSpecGenerateTime);
  EXPECT_EQ(result.failure, FernetFailure::kNone);
}

struct InvalidVector {
  const char* desc;
  const char* token;
  std::int64_t now;
  FernetFailure expected;
};

// invalid.json, every case; all with ttl_sec 60. "now" is
// 1985-10-26T01:20:01-07:00 except for the expired case (01:21:31-07:00).
const std::vector<InvalidVector>& invalid_vectors() {
  static const std::vector<InvalidVector> vectors = {
      {"incorrect mac",
       "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-"
       "szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==",
       499162801, FernetFailure::kBadSignature},
      {"too short", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==", 499162801,
       FernetFailure::kMalformed},
      {"invalid base64",
       "%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-"
       "p1YsUD2Q==",
       499162801, FernetFailure::kMalformed},
      {"payload size not multiple of block size",
       "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_"
       "v7mrfyudzUm",
       499162801, FernetFailure::kMalformed},
      {"payload padding error",
       "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-"
       "JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==",
       499162801, FernetFailure::kBadPadding},
      {"far-future TS (unacceptable clock skew)",
       "gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-"
       "iX9b_qXQcw==",
       499162801, FernetFailure::kFromTheFuture},
      {"expired TTL",
       "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-"
       "p1YsUD2Q==",
       499162891, FernetFailure::kExpired},
      {"incorrect IV (causes padding error)",
       "gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-"
       "fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==",
       499162801, FernetFailure::kBadPadding},
      {"trailing characters after b64 padding",
       "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_"
       "5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==trailingdata",
       499162801, FernetFailure::kMalformed},
      {"invalid characters in b64",
       "*gAAAAAAdwJ6wAAECAwQFBgcI!CQoLDA0ODy021?cpGVWKZ_eEwC@GM4BLLF_"
       "5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
       499162801, FernetFailure::kMalformed},
      {"invalid non-urlsafe characters in b64",
       "gAAAAAAdwJ6wAAEC/"
       "AwQFBgcICQoLDA0ODy+021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
       499162801, FernetFailure::kMalformed},
  };
  return vectors;
}

TEST(FernetTest, EveryInvalidVectorIsRefusedForItsReason) {
  const FernetKey key = spec_key();
  for (const InvalidVector& v : invalid_vectors()) {
    SCOPED_TRACE(v.desc);
    const FernetDecrypted result = fernet_decrypt(key, v.token, FernetTtl{kSpecTtl, v.now});
    EXPECT_FALSE(result.ok());
    EXPECT_FALSE(result.plaintext.has_value());
    EXPECT_EQ(result.failure, v.expected);
  }
}

TEST(FernetTest, WithoutTtlOnlyTheTimeChecksAreSkipped) {
  // The legacy vault never passed a TTL: the expired and far-future tokens
  // are authentic and decrypt (to the empty string, as `openssl enc -d` also
  // finds); every other invalid vector is still refused.
  const FernetKey key = spec_key();
  for (const InvalidVector& v : invalid_vectors()) {
    SCOPED_TRACE(v.desc);
    const FernetDecrypted result = fernet_decrypt(key, v.token);
    if (v.expected == FernetFailure::kExpired || v.expected == FernetFailure::kFromTheFuture) {
      ASSERT_TRUE(result.ok()) << static_cast<int>(result.failure);
      EXPECT_EQ(result.plaintext->as_chars(), "");
    } else {
      EXPECT_EQ(result.failure, v.expected);
    }
  }
}

TEST(FernetTest, RoundTripWithRandomIvAndCurrentTime) {
  const FernetKey key = spec_key();
  const std::string plaintext = "p@ss/w:rd#1%]'\"\\ é 密码";
  const std::string a = fernet_encrypt(key, as_bytes(plaintext));
  const std::string b = fernet_encrypt(key, as_bytes(plaintext));
  EXPECT_NE(a, b);  // fresh IV each time
  for (const std::string& token : {a, b}) {
    const FernetDecrypted result = fernet_decrypt(key, token);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.plaintext->as_chars(), plaintext);
  }
}

TEST(FernetTest, EmptyPlaintextRoundTrips) {
  const FernetKey key = spec_key();
  const FernetDecrypted result = fernet_decrypt(key, fernet_encrypt(key, {}));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.plaintext->empty());
}

TEST(FernetTest, EveryAlteredByteIsRefused) {
  const FernetKey key = spec_key();
  const Bytes original = *base64url_decode(kSpecToken);
  for (std::size_t i = 0; i < original.size(); ++i) {
    Bytes altered = original;
    altered[i] ^= 0x01;
    const FernetDecrypted result = fernet_decrypt(key, base64url_encode(altered));
    EXPECT_FALSE(result.ok()) << "byte " << i;
    EXPECT_TRUE(result.failure == FernetFailure::kBadSignature ||
                (i == 0 && result.failure == FernetFailure::kMalformed))
        << "byte " << i;
  }
}

TEST(FernetTest, AnotherKeyIsRefused) {
  const FernetKey other(random_secret(FernetKey::kSize));
  EXPECT_EQ(fernet_decrypt(other, kSpecToken).failure, FernetFailure::kBadSignature);
}

TEST(FernetTest, KeyTextMustBe32BytesOfBase64) {
  EXPECT_TRUE(FernetKey::from_text(kSpecSecret).has_value());
  EXPECT_FALSE(FernetKey::from_text("").has_value());
  EXPECT_FALSE(FernetKey::from_text(std::string(kSpecSecret) + "\n").has_value());
  EXPECT_FALSE(FernetKey::from_text("%w_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").has_value());
  // 44 characters, but only 31 bytes.
  EXPECT_FALSE(FernetKey::from_text("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4Q==").has_value());
}

TEST(FernetTest, KeyTextInTheStandardAlphabetIsTheSameKey) {
  std::string standard(kSpecSecret);
  for (char& c : standard) c = c == '-' ? '+' : c == '_' ? '/' : c;
  ASSERT_NE(standard, kSpecSecret);
  const std::optional<FernetKey> key = FernetKey::from_text(standard);
  ASSERT_TRUE(key.has_value());
  EXPECT_TRUE(constant_time_equal(key->bytes(), spec_key().bytes()));
}

TEST(LegacyKeyRuleTest, A44CharacterKeyIsTheFernetKeyItself) {
  const FernetKey key = legacy_fernet_key(kSpecSecret);
  EXPECT_EQ(base64url_encode(key.bytes()), kSpecSecret);
  EXPECT_TRUE(constant_time_equal(key.signing_key(), ByteView(key.bytes()).first(16)));
  EXPECT_TRUE(constant_time_equal(key.encryption_key(), ByteView(key.bytes()).last(16)));
}

TEST(LegacyKeyRuleTest, AnyOtherLengthIsAPbkdf2Passphrase) {
  // Expected values from Python:
  //   base64.urlsafe_b64encode(hashlib.pbkdf2_hmac('sha256', p, b'agentskills_salt', 100000, 32))
  EXPECT_EQ(base64url_encode(legacy_fernet_key("correct horse battery staple").bytes()),
            "f6NgZpxTtSW9hFznfBirpsR96PZXxn97uO4asF0K700=");
  EXPECT_EQ(base64url_encode(legacy_fernet_key("pässwörd-ünïcode").bytes()),
            "4IY0VFpV5jtfTdcGeNR7JJyfncW7-cWuk-0683IxEr0=");
}

TEST(LegacyKeyRuleTest, AKeyWithATrailingNewlineIsAPassphraseAsInPython) {
  const FernetKey exact = legacy_fernet_key(kSpecSecret);
  const FernetKey with_newline = legacy_fernet_key(std::string(kSpecSecret) + "\n");
  EXPECT_FALSE(constant_time_equal(exact.bytes(), with_newline.bytes()));
}

TEST(LegacyKeyRuleTest, LengthIsCountedInCharactersNotBytes) {
  // 44 characters but 46 bytes: Python treated it as a Fernet key, which is
  // invalid, so no vault can have been written with it.
  const std::string forty_four_chars = "éé" + std::string(42, 'a');
  ASSERT_EQ(forty_four_chars.size(), 46u);
  EXPECT_THROW((void)legacy_fernet_key(forty_four_chars), InvalidArgumentError);
  // 44 bytes but 42 characters: a passphrase.
  const std::string forty_four_bytes = "éé" + std::string(40, 'a');
  ASSERT_EQ(forty_four_bytes.size(), 44u);
  EXPECT_NO_THROW((void)legacy_fernet_key(forty_four_bytes));
}

TEST(LegacyKeyRuleTest, A44CharacterKeyThatIsNotBase64IsRefusedWithoutEchoingIt) {
  const std::string bad(44, '!');
  try {
    (void)legacy_fernet_key(bad);
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).find(bad), std::string::npos);
  }
}

}  // namespace
}  // namespace credentials::internal
