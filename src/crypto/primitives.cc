#include "crypto/primitives.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

namespace credentials::internal {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

void ensure_sodium() {
  static const bool ready = [] { return sodium_init() >= 0; }();
  if (!ready) fatal("libsodium failed to initialise");
}

// Fetched once: EVP_CIPHER_fetch per call costs a lock and a hash lookup.
const EVP_CIPHER* aes256_gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (!cipher) fatal("OpenSSL has no AES-256-GCM");
  return cipher;
}

const EVP_CIPHER* aes128_cbc() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  if (!cipher) fatal("OpenSSL has no AES-128-CBC");
  return cipher;
}

EVP_KDF* fetch_kdf(const char* name) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, name, nullptr);
  if (!kdf) fatal("OpenSSL KDF unavailable");
  return kdf;
}

}  // namespace

void fatal(const char* what) {
  std::fprintf(stderr, "credentials: fatal: %s\n", what);
  std::abort();
}

void random_fill(std::span<std::uint8_t> out) {
  ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  random_fill(out);
  return out;
}

SecretBytes random_secret(std::size_t n) {
  SecretBytes out(n);
  random_fill(out.mutable_span());
  return out;
}

Bytes aead_encrypt(const SecretBytes& key, ByteView plaintext, ByteView associated_data) {
  if (key.size() != kKeySize) fatal("AES-256-GCM key must be 32 bytes");
  Bytes out(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  random_fill(std::span(out.data(), kGcmNonceSize));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex2(ctx.get(), aes256_gcm(), key.data(), out.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kGcmNonceSize, &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kGcmNonceSize + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize,
                          out.data() + kGcmNonceSize + plaintext.size()) != 1) {
    fatal("AES-256-GCM encryption failed");
  }
  return out;
}

std::optional<SecretBytes> aead_decrypt(const SecretBytes& key, ByteView sealed,
                                        ByteView associated_data) {
  if (key.size() != kKeySize) fatal("AES-256-GCM key must be 32 bytes");
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) return std::nullopt;
  const std::size_t n = sealed.size() - kGcmNonceSize - kGcmTagSize;
  SecretBytes plain(n);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  std::uint8_t tag[kGcmTagSize];
  std::memcpy(tag, sealed.data() + kGcmNonceSize + n, kGcmTagSize);
  if (!ctx || EVP_DecryptInit_ex2(ctx.get(), aes256_gcm(), key.data(), sealed.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, sealed.data() + kGcmNonceSize,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, tag) != 1) {
    fatal("AES-256-GCM decryption setup failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &len) != 1) return std::nullopt;
  return plain;
}

SecretBytes hkdf_sha256(ByteView input_key, ByteView salt, std::string_view info,
                        std::size_t length) {
  static EVP_KDF* kdf = fetch_kdf("HKDF");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(input_key.data()),
                                        input_key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes out(length);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), length, params) != 1) fatal("HKDF failed");
  return out;
}

// HMAC and SHA-256 come from OpenSSL (SHA-NI where the CPU has it) with the
// algorithms fetched once: OpenSSL 3's one-shot HMAC() fetches them on every
// call, which dominated the cost of a blind-index lookup.
namespace {
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac) fatal("OpenSSL has no HMAC");
  return mac;
}
const EVP_MD* sha256_algorithm() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) fatal("OpenSSL has no SHA-256");
  return md;
}
}  // namespace

HmacSha256::HmacSha256(ByteView key) : keyed_(EVP_MAC_CTX_new(hmac_algorithm())) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  // A zero-length key needs a non-null pointer.
  static const std::uint8_t kEmpty = 0;
  if (!keyed_ || EVP_MAC_init(keyed_, key.empty() ? &kEmpty : key.data(), key.size(), params) != 1) {
    fatal("HMAC-SHA256 initialisation failed");
  }
}

HmacSha256::~HmacSha256() { EVP_MAC_CTX_free(keyed_); }

HmacSha256::HmacSha256(HmacSha256&& other) noexcept : keyed_(std::exchange(other.keyed_, nullptr)) {}

HmacSha256& HmacSha256::operator=(HmacSha256&& other) noexcept {
  if (this != &other) {
    EVP_MAC_CTX_free(keyed_);
    keyed_ = std::exchange(other.keyed_, nullptr);
  }
  return *this;
}

Bytes HmacSha256::mac(std::initializer_list<ByteView> parts) const {
  if (!keyed_) fatal("HMAC-SHA256 used without a key");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_);
  Bytes out(32);
  std::size_t len = 0;
  bool ok = ctx != nullptr;
  for (ByteView part : parts) ok = ok && EVP_MAC_update(ctx, part.data(), part.size()) == 1;
  ok = ok && EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok || len != 32) fatal("HMAC-SHA256 failed");
  return out;
}

Bytes hmac_sha256(ByteView key, ByteView message) { return HmacSha256(key).mac(message); }

Bytes hmac_sha256(const SecretBytes& key, ByteView message) {
  return hmac_sha256(key.span(), message);
}

Bytes sha256(ByteView message) {
  Bytes out(32);
  unsigned int len = 0;
  if (EVP_Digest(message.data(), message.size(), out.data(), &len, sha256_algorithm(), nullptr) != 1) {
    fatal("SHA-256 failed");
  }
  return out;
}

SecretBytes pbkdf2_sha256(std::string_view passphrase, ByteView salt, std::uint32_t iterations,
                          std::size_t length) {
  SecretBytes out(length);
  if (PKCS5_PBKDF2_HMAC(passphrase.data(), static_cast<int>(passphrase.size()), salt.data(),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(length), out.data()) != 1) {
    fatal("PBKDF2 failed");
  }
  return out;
}

Argon2Params default_argon2_params() {
  return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

SecretBytes argon2id(std::string_view passphrase, ByteView salt, const Argon2Params& params,
                     std::size_t length) {
  ensure_sodium();
  if (salt.size() != crypto_pwhash_SALTBYTES) fatal("Argon2id salt must be 16 bytes");
  SecretBytes out(length);
  if (crypto_pwhash(out.data(), length, passphrase.data(), passphrase.size(), salt.data(),
                    params.ops_limit, params.mem_limit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    fatal("Argon2id ran out of memory");
  }
  return out;
}

Bytes aes128_cbc_encrypt(ByteView key, ByteView iv, ByteView plaintext) {
  if (key.size() != 16 || iv.size() != 16) fatal("AES-128-CBC needs a 16-byte key and IV");
  Bytes out(plaintext.size() + 16);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0, tail = 0;
  if (!ctx || EVP_EncryptInit_ex2(ctx.get(), aes128_cbc(), key.data(), iv.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1) {
    fatal("AES-128-CBC encryption failed");
  }
  out.resize(static_cast<std::size_t>(len + tail));
  return out;
}

std::optional<SecretBytes> aes128_cbc_decrypt(ByteView key, ByteView iv, ByteView ciphertext) {
  if (key.size() != 16 || iv.size() != 16) fatal("AES-128-CBC needs a 16-byte key and IV");
  if (ciphertext.empty() || ciphertext.size() % 16 != 0) return std::nullopt;
  SecretBytes out(ciphertext.size());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0, tail = 0;
  if (!ctx || EVP_DecryptInit_ex2(ctx.get(), aes128_cbc(), key.data(), iv.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1) {
    fatal("AES-128-CBC decryption setup failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1) return std::nullopt;
  out.truncate(static_cast<std::size_t>(len + tail));
  return out;
}

bool constant_time_equal(ByteView a, ByteView b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

std::string encode(ByteView data, int variant) {
  ensure_sodium();
  std::string out(sodium_base64_encoded_len(data.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), data.data(), data.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<Bytes> decode(std::string_view text, int padded_variant, int unpadded_variant) {
  ensure_sodium();
  Bytes out(text.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  const bool padded = !text.empty() && text.back() == '=';
  const int variant = padded || text.size() % 4 == 0 ? padded_variant : unpadded_variant;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

}  // namespace

std::string base64_encode(ByteView data) { return encode(data, sodium_base64_VARIANT_ORIGINAL); }
std::string base64url_encode(ByteView data) { return encode(data, sodium_base64_VARIANT_URLSAFE); }
std::optional<Bytes> base64_decode(std::string_view text) {
  return decode(text, sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}
std::optional<Bytes> base64url_decode(std::string_view text) {
  return decode(text, sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::string hex_encode(ByteView data) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (std::uint8_t b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace credentials::internal
