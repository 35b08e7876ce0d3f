// The primitives against published test vectors, and the two AES-256-GCM
// implementations (libsodium where the CPU has AES-NI, OpenSSL otherwise)
// against each other: a vault sealed on one machine must open on another.

#include "crypto/primitives.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <memory>
#include <vector>

#include <string>
#include <string_view>

namespace credentials::internal {
namespace {

Bytes unhex(std::string_view hex) {
  Bytes out(hex.size() / 2);
  std::size_t written = 0;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written, nullptr) != 0 ||
      written != out.size()) {
    ADD_FAILURE() << "bad hex in the test: " << hex;
  }
  return out;
}

Bytes concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

std::string to_hex(const SecretBytes& bytes) { return hex_encode(ByteView(bytes.data(), bytes.size())); }

constexpr AeadEngine kEngines[] = {AeadEngine::kLibsodium, AeadEngine::kOpenssl};

bool engine_usable(AeadEngine engine) {
  return engine == AeadEngine::kOpenssl || aead_engine() == AeadEngine::kLibsodium;
}

const char* engine_name(AeadEngine engine) {
  return engine == AeadEngine::kLibsodium ? "libsodium" : "OpenSSL";
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16:
// AES-256, 96-bit IV, associated data. Stored as we store it: IV ‖ C ‖ T.
struct GcmVector {
  Bytes key = unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  Bytes plaintext = unhex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  Bytes aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  Bytes sealed = concat({unhex("cafebabefacedbaddecaf888"),
                         unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                               "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"),
                         unhex("76fc6ece0f4e1768cddf8853bb2d551b")});
};

TEST(AesGcmTest, BothEnginesOpenThePublishedVector) {
  const GcmVector v;
  for (AeadEngine engine : kEngines) {
    if (!engine_usable(engine)) continue;
    SCOPED_TRACE(engine_name(engine));
    const auto plain = aead_decrypt(engine, SecretBytes(v.key), v.sealed, v.aad);
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(to_hex(*plain), hex_encode(v.plaintext));
  }
}

TEST(AesGcmTest, BothEnginesRefuseAnyChangedByteAndWrongAssociatedData) {
  const GcmVector v;
  for (AeadEngine engine : kEngines) {
    if (!engine_usable(engine)) continue;
    SCOPED_TRACE(engine_name(engine));
    for (std::size_t i = 0; i < v.sealed.size(); ++i) {
      Bytes altered = v.sealed;
      altered[i] ^= 0x01;
      EXPECT_FALSE(aead_decrypt(engine, SecretBytes(v.key), altered, v.aad).has_value()) << "byte " << i;
    }
    Bytes other_aad = v.aad;
    other_aad.back() ^= 0x80;
    EXPECT_FALSE(aead_decrypt(engine, SecretBytes(v.key), v.sealed, other_aad).has_value());
    EXPECT_FALSE(aead_decrypt(engine, SecretBytes(v.key), ByteView(v.sealed).first(27), v.aad).has_value());
  }
}

TEST(AesGcmTest, EachEngineOpensWhatTheOtherSealed) {
  if (aead_engine() != AeadEngine::kLibsodium) {
    GTEST_SKIP() << "this CPU has no AES-NI/PCLMULQDQ: only OpenSSL's AES-256-GCM runs here";
  }
  const SecretBytes key = random_secret(kKeySize);
  for (std::size_t size : {0, 1, 15, 16, 17, 255, 4096, 65537}) {
    const Bytes plaintext = random_bytes(size);
    const Bytes aad = random_bytes(size % 40);
    for (AeadEngine sealer : kEngines) {
      for (AeadEngine opener : kEngines) {
        SCOPED_TRACE(std::string(engine_name(sealer)) + " -> " + engine_name(opener) + ", " +
                     std::to_string(size) + " bytes");
        const Bytes sealed = aead_encrypt(sealer, key, plaintext, aad);
        ASSERT_EQ(sealed.size(), kGcmNonceSize + size + kGcmTagSize);
        const auto opened = aead_decrypt(opener, key, sealed, aad);
        ASSERT_TRUE(opened.has_value());
        EXPECT_EQ(to_hex(*opened), hex_encode(plaintext));
      }
    }
  }
}

TEST(AesGcmTest, NoncesAreFreshForEverySeal) {
  const SecretBytes key = random_secret(kKeySize);
  const Bytes a = aead_encrypt(key, Bytes{1, 2, 3}, Bytes{});
  const Bytes b = aead_encrypt(key, Bytes{1, 2, 3}, Bytes{});
  EXPECT_NE(hex_encode(ByteView(a).first(kGcmNonceSize)), hex_encode(ByteView(b).first(kGcmNonceSize)));
}

// RFC 5869, test case 1.
TEST(HkdfTest, MatchesRfc5869) {
  const Bytes ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const Bytes salt = unhex("000102030405060708090a0b0c");
  const Bytes info = unhex("f0f1f2f3f4f5f6f7f8f9");
  const SecretBytes okm =
      hkdf_sha256(ikm, salt, std::string_view(reinterpret_cast<const char*>(info.data()), info.size()), 42);
  EXPECT_EQ(to_hex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 5869, test case 3: no salt, no info.
TEST(HkdfTest, MatchesRfc5869WithoutSaltOrInfo) {
  const Bytes ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  EXPECT_EQ(to_hex(hkdf_sha256(ikm, {}, "", 42)),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

// OpenSSL's HKDF, for the cross-check.
SecretBytes openssl_hkdf(ByteView key, ByteView salt, std::string_view info, std::size_t length) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  // OpenSSL refuses an empty salt parameter; leaving it out means no salt.
  std::vector<OSSL_PARAM> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size())};
  if (!salt.empty()) {
    params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                       const_cast<std::uint8_t*>(salt.data()), salt.size()));
  }
  params.push_back(OSSL_PARAM_construct_end());
  SecretBytes out(length);
  EXPECT_EQ(EVP_KDF_derive(ctx, out.data(), length, params.data()), 1);
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return out;
}

TEST(HkdfTest, AgreesWithOpenSslForEveryLengthAndInput) {
  for (std::size_t length : {1, 16, 31, 32, 33, 64, 65, 100, 255}) {
    const Bytes key = random_bytes(1 + length % 70);
    const Bytes salt = random_bytes(length % 3 == 0 ? 0 : 16);
    const std::string info = "credentials test info " + std::to_string(length);
    SCOPED_TRACE(length);
    EXPECT_EQ(to_hex(hkdf_sha256(key, salt, info, length)), to_hex(openssl_hkdf(key, salt, info, length)));
  }
}

// RFC 4231, test case 2.
TEST(HmacTest, MatchesRfc4231) {
  const std::string key = "Jefe";
  const std::string message = "what do ya want for nothing?";
  const Bytes mac = hmac_sha256(Bytes(key.begin(), key.end()), Bytes(message.begin(), message.end()));
  EXPECT_EQ(hex_encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4231, test case 6: a key longer than the block (hashed first).
TEST(HmacTest, MatchesRfc4231WithALongKey) {
  const Bytes key(131, 0xaa);
  const std::string message = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(hex_encode(hmac_sha256(key, Bytes(message.begin(), message.end()))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacTest, OneKeyedInstanceGivesTheMacOfTheConcatenatedParts) {
  const HmacSha256 keyed(Bytes(32, 7));
  const Bytes whole = keyed.mac(Bytes{1, 2, 3, 4, 5});
  EXPECT_EQ(keyed.mac({Bytes{1, 2}, Bytes{}, Bytes{3, 4, 5}}), whole);
  EXPECT_EQ(hmac_sha256(Bytes(32, 7), Bytes{1, 2, 3, 4, 5}), whole);
  EXPECT_NE(keyed.mac(Bytes{1, 2, 3, 4, 6}), whole);
}

// RFC 4231, test cases 2 and 6 (a key longer than the block).
TEST(HmacSha256Test, MatchesRfc4231) {
  const std::string message = "what do ya want for nothing?";
  EXPECT_EQ(hex_encode(hmac_sha256(Bytes{'J', 'e', 'f', 'e'}, Bytes(message.begin(), message.end()))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string long_key_message = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(hex_encode(hmac_sha256(Bytes(131, 0xaa), Bytes(long_key_message.begin(), long_key_message.end()))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

// FIPS 180-2, appendix B.1.
TEST(Sha256Test, MatchesFips180) {
  const std::string message = "abc";
  EXPECT_EQ(hex_encode(sha256(Bytes(message.begin(), message.end()))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace credentials::internal
