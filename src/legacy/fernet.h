// Fernet tokens (https://github.com/fernet/spec), for reading the Python
// version's vault only. New data never uses Fernet: it is AES-128-CBC with
// HMAC-SHA256, where the project's own records use AES-256-GCM.
//
// Token (url-safe base64 with padding):
//   version 0x80 ‖ timestamp (u64 big-endian, Unix seconds) ‖ IV (16 bytes)
//   ‖ AES-128-CBC ciphertext (PKCS#7) ‖ HMAC-SHA256(signing key, all before it)
// The 32-byte key is signing key (first 16 bytes) ‖ encryption key (last 16).
//
// All functions are thread-safe. Plaintext is returned in SecretBytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/primitives.h"
#include "crypto/secret_bytes.h"

namespace credentials::internal {

class FernetKey {
 public:
  static constexpr std::size_t kSize = 32;
  // The length of a key's text form (url-safe base64 of 32 bytes, padded).
  static constexpr std::size_t kTextSize = 44;

  // From the key's text form, as Fernet.generate_key() prints it. The
  // standard base64 alphabet ('+', '/') is accepted too, as Python's decoder
  // accepted it. nullopt unless the text decodes to exactly 32 bytes.
  [[nodiscard]] static std::optional<FernetKey> from_text(std::string_view text);
  // REQUIRES: bytes.size() == kSize (aborts otherwise).
  explicit FernetKey(SecretBytes bytes);

  [[nodiscard]] ByteView signing_key() const { return bytes_.span().first(16); }
  [[nodiscard]] ByteView encryption_key() const { return bytes_.span().last(16); }
  [[nodiscard]] ByteView bytes() const { return bytes_.span(); }

 private:
  SecretBytes bytes_;
};

// The Python version's CREDENTIAL_MASTER_KEY rule: a key of exactly 44
// characters (Unicode code points, as Python's len() counts) is the Fernet key
// itself; anything else is a passphrase: PBKDF2-HMAC-SHA256 over its UTF-8
// bytes, 100,000 iterations, salt "agentskills_salt", 32 bytes (which the
// Python code then base64-encoded to make the Fernet key). No trimming: the
// key is used exactly as given. Throws InvalidArgumentError for a
// 44-character key that is not base64 of 32 bytes (the Python code could
// not have used it either).
[[nodiscard]] FernetKey legacy_fernet_key(std::string_view master_key);

constexpr std::uint8_t kFernetVersion = 0x80;
constexpr std::uint32_t kLegacyPbkdf2Iterations = 100'000;
constexpr std::string_view kLegacyPbkdf2Salt = "agentskills_salt";

// Why a token was refused.
enum class FernetFailure {
  kNone,
  kMalformed,      // not base64url, too short, bad version byte, bad length
  kBadSignature,   // HMAC mismatch: wrong key, or the token was altered
  kExpired,        // older than the TTL (only when a TTL is checked)
  kFromTheFuture,  // more than 60 s ahead of now (only when a TTL is checked)
  kBadPadding,     // authentic, but the plaintext padding is wrong
};

// Optional time check, as Python's Fernet.decrypt(token, ttl=...) does it.
// The legacy vault never used one.
struct FernetTtl {
  std::chrono::seconds ttl;
  std::int64_t now;  // Unix seconds
};

// The outcome of fernet_decrypt: the plaintext, or why there is none.
struct FernetDecrypted {
  std::optional<SecretBytes> plaintext;
  FernetFailure failure = FernetFailure::kNone;
  std::uint64_t timestamp = 0;  // set when the token was authentic

  [[nodiscard]] bool ok() const { return plaintext.has_value(); }
};

// Verifies (HMAC first, in constant time) and decrypts a token.
[[nodiscard]] FernetDecrypted fernet_decrypt(const FernetKey& key, std::string_view token,
                                             const std::optional<FernetTtl>& ttl = std::nullopt);

// Makes a token with a random IV and the current time.
[[nodiscard]] std::string fernet_encrypt(const FernetKey& key, ByteView plaintext);
// Makes a token with the given timestamp and IV (16 bytes): for test vectors.
[[nodiscard]] std::string fernet_encrypt(const FernetKey& key, ByteView plaintext,
                                         std::uint64_t timestamp, ByteView iv);

}  // namespace credentials::internal
