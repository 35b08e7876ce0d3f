// The crypto seam: every primitive the project uses, from OpenSSL 3 and
// libsodium. Nothing here knows about credentials. All functions are
// thread-safe. Failures of the underlying library abort via
// internal::fatal (they mean a broken installation, not bad input), except
// authentication failures, which are reported to the caller.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secret_bytes.h"


namespace credentials::internal {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

[[noreturn]] void fatal(const char* what);

// Random bytes from the OS CSPRNG: getrandom(2) (libsodium randombytes_buf).
void random_fill(std::span<std::uint8_t> out);
[[nodiscard]] Bytes random_bytes(std::size_t n);
[[nodiscard]] SecretBytes random_secret(std::size_t n);

constexpr std::size_t kKeySize = 32;
constexpr std::size_t kGcmNonceSize = 12;
constexpr std::size_t kGcmTagSize = 16;

// AES-256-GCM with a random 96-bit nonce. Output: nonce ‖ ciphertext ‖ tag.
// There is no overload without associated data, on purpose.
[[nodiscard]] Bytes aead_encrypt(const SecretBytes& key, ByteView plaintext,
                                 ByteView associated_data);
// Returns nullopt when the tag does not verify (wrong key, altered bytes,
// wrong associated data).
[[nodiscard]] std::optional<SecretBytes> aead_decrypt(const SecretBytes& key,
                                                      ByteView sealed,
                                                      ByteView associated_data);

// The implementation behind aead_encrypt/aead_decrypt on this CPU. Both are
// standard AES-256-GCM; the explicit overloads let tests check that either
// opens what the other sealed.
enum class AeadEngine { kLibsodium, kOpenssl };
[[nodiscard]] AeadEngine aead_engine();
[[nodiscard]] Bytes aead_encrypt(AeadEngine engine, const SecretBytes& key, ByteView plaintext,
                                 ByteView associated_data);
[[nodiscard]] std::optional<SecretBytes> aead_decrypt(AeadEngine engine, const SecretBytes& key,
                                                      ByteView sealed, ByteView associated_data);

// HKDF-SHA256 (RFC 5869).
[[nodiscard]] SecretBytes hkdf_sha256(ByteView input_key, ByteView salt, std::string_view info,
                                      std::size_t length);
// HMAC-SHA256 (RFC 2104) under one key, keyed once: the padded key state is
// computed at construction and copied for each message, so a blind-index or
// audit MAC costs only the message's own compression rounds. Thread-safe for
// concurrent mac() calls.
class HmacSha256 {
 public:
  explicit HmacSha256(ByteView key);
  HmacSha256();
  HmacSha256(HmacSha256&&) noexcept;
  HmacSha256& operator=(HmacSha256&&) noexcept;
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  ~HmacSha256();

  // One MAC under `key` (HKDF, Fernet).
  static void mac_once_into(ByteView key, std::initializer_list<ByteView> parts,
                            std::span<std::uint8_t> out);

  // The MAC of the concatenation of `parts`.
  [[nodiscard]] Bytes mac(std::initializer_list<ByteView> parts) const;
  [[nodiscard]] Bytes mac(ByteView message) const { return mac({message}); }
  // The same into `out` (32 bytes), for MACs that are secrets themselves.
  void mac_into(std::initializer_list<ByteView> parts, std::span<std::uint8_t> out) const;

 private:
  struct Keyed;  // libsodium's keyed state (primitives.cc)
  std::unique_ptr<Keyed> keyed_;
};

[[nodiscard]] Bytes hmac_sha256(const SecretBytes& key, ByteView message);
[[nodiscard]] Bytes hmac_sha256(ByteView key, ByteView message);
[[nodiscard]] Bytes sha256(ByteView message);
// PBKDF2-HMAC-SHA256.
[[nodiscard]] SecretBytes pbkdf2_sha256(std::string_view passphrase, ByteView salt,
                                        std::uint32_t iterations, std::size_t length);

struct Argon2Params {
  std::uint64_t ops_limit;
  std::size_t mem_limit;
};
// libsodium's "interactive" Argon2id parameters (2 passes, 64 MiB).
[[nodiscard]] Argon2Params default_argon2_params();
constexpr std::size_t kArgon2SaltSize = 16;
// Argon2id via libsodium crypto_pwhash.
[[nodiscard]] SecretBytes argon2id(std::string_view passphrase, ByteView salt,
                                   const Argon2Params& params, std::size_t length);

// AES-128-CBC with PKCS#7 padding, for the legacy Fernet importer only.
[[nodiscard]] Bytes aes128_cbc_encrypt(ByteView key, ByteView iv, ByteView plaintext);
[[nodiscard]] std::optional<SecretBytes> aes128_cbc_decrypt(ByteView key, ByteView iv,
                                                            ByteView ciphertext);

[[nodiscard]] bool constant_time_equal(ByteView a, ByteView b);

// Base64 (RFC 4648). The url variant uses '-' and '_'; both write padding and
// accept input with or without it. Decoding returns nullopt on bad input.
[[nodiscard]] std::string base64_encode(ByteView data);
[[nodiscard]] std::string base64url_encode(ByteView data);
[[nodiscard]] std::optional<Bytes> base64_decode(std::string_view text);
[[nodiscard]] std::optional<Bytes> base64url_decode(std::string_view text);
[[nodiscard]] std::string hex_encode(ByteView data);
// The bytes of an even-length hex text; nullopt when it is not one.
[[nodiscard]] std::optional<Bytes> hex_decode(std::string_view hex);

}  // namespace credentials::internal
