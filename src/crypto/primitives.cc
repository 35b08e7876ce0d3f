#include "crypto/primitives.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "crypto/libcrypto.h"

namespace credentials::internal {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { ossl::EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

void ensure_sodium() {
  static const bool ready = [] { return sodium_init() >= 0; }();
  if (!ready) fatal("libsodium failed to initialise");
}

// Fetched once: EVP_CIPHER_fetch per call costs a lock and a hash lookup.
const EVP_CIPHER* aes256_gcm() {
  static EVP_CIPHER* cipher = ossl::EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (!cipher) fatal("OpenSSL has no AES-256-GCM");
  return cipher;
}

const EVP_MD* sha256_md() {
  static EVP_MD* md = ossl::EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) fatal("OpenSSL has no SHA256");
  return md;
}

const EVP_CIPHER* aes128_cbc() {
  static EVP_CIPHER* cipher = ossl::EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  if (!cipher) fatal("OpenSSL has no AES-128-CBC");
  return cipher;
}

}  // namespace

void fatal(const char* what) {
  std::fprintf(stderr, "credentials: fatal: %s\n", what);
  std::abort();
}

void random_fill(std::span<std::uint8_t> out) {
  // An empty span may have no storage at all: randombytes_buf's pointer is
  // declared non-null.
  if (out.empty()) return;
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

// AES-256-GCM comes from libsodium where the CPU has AES-NI and PCLMULQDQ
// (libsodium has no portable AES), else from OpenSSL. Why not OpenSSL
// everywhere: OpenSSL 3's first cipher fetch constructs every cipher its
// provider offers, ~3.4 million instructions and their heap pages, which
// was a third of a whole `credential_manager list`. Both produce standard
// AES-256-GCM, so either opens what the other sealed (tests/crypto).
AeadEngine aead_engine() {
  static const AeadEngine engine = [] {
    ensure_sodium();
    return crypto_aead_aes256gcm_is_available() ? AeadEngine::kLibsodium : AeadEngine::kOpenssl;
  }();
  return engine;
}

Bytes aead_encrypt(const SecretBytes& key, ByteView plaintext, ByteView associated_data) {
  return aead_encrypt(aead_engine(), key, plaintext, associated_data);
}

std::optional<SecretBytes> aead_decrypt(const SecretBytes& key, ByteView sealed,
                                        ByteView associated_data) {
  return aead_decrypt(aead_engine(), key, sealed, associated_data);
}

Bytes aead_encrypt(AeadEngine engine, const SecretBytes& key, ByteView plaintext,
                   ByteView associated_data) {
  if (key.size() != kKeySize) fatal("AES-256-GCM key must be 32 bytes");
  Bytes out(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  random_fill(std::span(out.data(), kGcmNonceSize));
  std::uint8_t* const ciphertext = out.data() + kGcmNonceSize;
  std::uint8_t* const tag = ciphertext + plaintext.size();
  if (engine == AeadEngine::kLibsodium) {
    if (crypto_aead_aes256gcm_encrypt_detached(ciphertext, tag, nullptr, plaintext.data(),
                                               plaintext.size(), associated_data.data(),
                                               associated_data.size(), nullptr, out.data(),
                                               key.data()) != 0) {
      fatal("AES-256-GCM encryption failed");
    }
    return out;
  }
  CipherCtx ctx(ossl::EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || ossl::EVP_EncryptInit_ex2(ctx.get(), aes256_gcm(), key.data(), out.data(), nullptr) != 1 ||
      ossl::EVP_EncryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      ossl::EVP_EncryptUpdate(ctx.get(), ciphertext, &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      ossl::EVP_EncryptFinal_ex(ctx.get(), ciphertext + len, &len) != 1 ||
      ossl::EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, tag) != 1) {
    fatal("AES-256-GCM encryption failed");
  }
  return out;
}

std::optional<SecretBytes> aead_decrypt(AeadEngine engine, const SecretBytes& key, ByteView sealed,
                                        ByteView associated_data) {
  if (key.size() != kKeySize) fatal("AES-256-GCM key must be 32 bytes");
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) return std::nullopt;
  const std::size_t n = sealed.size() - kGcmNonceSize - kGcmTagSize;
  const std::uint8_t* const ciphertext = sealed.data() + kGcmNonceSize;
  const std::uint8_t* const tag = ciphertext + n;
  SecretBytes plain(n);
  if (engine == AeadEngine::kLibsodium) {
    // Verifies the tag (in constant time) before writing any plaintext.
    if (crypto_aead_aes256gcm_decrypt_detached(plain.data(), nullptr, ciphertext, n, tag,
                                               associated_data.data(), associated_data.size(),
                                               sealed.data(), key.data()) != 0) {
      return std::nullopt;
    }
    return plain;
  }
  CipherCtx ctx(ossl::EVP_CIPHER_CTX_new());
  int len = 0;
  std::uint8_t tag_copy[kGcmTagSize];
  std::memcpy(tag_copy, tag, kGcmTagSize);
  if (!ctx || ossl::EVP_DecryptInit_ex2(ctx.get(), aes256_gcm(), key.data(), sealed.data(), nullptr) != 1 ||
      ossl::EVP_DecryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      ossl::EVP_DecryptUpdate(ctx.get(), plain.data(), &len, ciphertext, static_cast<int>(n)) != 1 ||
      ossl::EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, tag_copy) != 1) {
    fatal("AES-256-GCM decryption setup failed");
  }
  if (ossl::EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &len) != 1) return std::nullopt;
  return plain;
}

// HKDF-SHA256 as RFC 5869 defines it: extract = HMAC(salt, IKM), expand =
// HMAC(PRK, T(i-1) ‖ info ‖ i), over HmacSha256 below (crypto_kdf_hkdf_sha256
// does exactly this from libsodium 1.0.19; Debian 12 ships 1.0.18). Why not
// OpenSSL's HKDF: see HmacSha256 below. Checked against RFC 5869's vectors
// and OpenSSL's EVP_KDF in tests/crypto.
SecretBytes hkdf_sha256(ByteView input_key, ByteView salt, std::string_view info,
                        std::size_t length) {
  constexpr std::size_t kHashSize = crypto_auth_hmacsha256_BYTES;
  if (length == 0 || length > 255 * kHashSize) fatal("HKDF-SHA256 output length out of range");
  ensure_sodium();
  // RFC 5869 2.2: no salt means HashLen zero bytes.
  const std::uint8_t zeros[kHashSize] = {};
  const ByteView extract_key = salt.empty() ? ByteView(zeros, kHashSize) : salt;
  SecretBytes prk(kHashSize);
  HmacSha256::mac_once_into(extract_key, {input_key}, prk.mutable_span());
  SecretBytes out(length);
  SecretBytes block(kHashSize);
  const ByteView info_bytes(reinterpret_cast<const std::uint8_t*>(info.data()), info.size());
  for (std::size_t offset = 0, i = 1; offset < length; offset += kHashSize, ++i) {
    const std::uint8_t counter = static_cast<std::uint8_t>(i);
    const ByteView previous = i == 1 ? ByteView() : block.span();
    SecretBytes next(kHashSize);
    HmacSha256::mac_once_into(prk.span(), {previous, info_bytes, ByteView(&counter, 1)},
                              next.mutable_span());
    block = std::move(next);
    std::memcpy(out.data() + offset, block.data(), std::min(kHashSize, length - offset));
  }
  return out;
}

// HMAC-SHA256 and SHA-256 come from libsodium. (Not OpenSSL's: its first
// algorithm fetch in a process builds its name map and loads its
// configuration, more than a third of a whole `credential_manager list`.)
struct HmacSha256::Keyed {
  crypto_auth_hmacsha256_state sodium;
  ~Keyed() { sodium_memzero(&sodium, sizeof(sodium)); }
};

HmacSha256::HmacSha256(ByteView key) : keyed_(std::make_unique<Keyed>()) {
  ensure_sodium();
  // An empty key is a valid HMAC key, but an empty span may have no storage,
  // and libsodium takes the pointer as non-null.
  static constexpr std::uint8_t kEmpty = 0;
  if (key.empty()) key = ByteView(&kEmpty, 0);
  if (crypto_auth_hmacsha256_init(&keyed_->sodium, key.data(), key.size()) != 0) {
    fatal("HMAC-SHA256 initialisation failed");
  }
}

void HmacSha256::mac_once_into(ByteView key, std::initializer_list<ByteView> parts,
                               std::span<std::uint8_t> out) {
  HmacSha256(key).mac_into(parts, out);
}

HmacSha256::HmacSha256() = default;
HmacSha256::HmacSha256(HmacSha256&&) noexcept = default;
HmacSha256& HmacSha256::operator=(HmacSha256&&) noexcept = default;
HmacSha256::~HmacSha256() = default;

void HmacSha256::mac_into(std::initializer_list<ByteView> parts, std::span<std::uint8_t> out) const {
  if (!keyed_) fatal("HMAC-SHA256 used without a key");
  if (out.size() != crypto_auth_hmacsha256_BYTES) fatal("HMAC-SHA256 output must be 32 bytes");
  crypto_auth_hmacsha256_state state = keyed_->sodium;
  for (ByteView part : parts) crypto_auth_hmacsha256_update(&state, part.data(), part.size());
  crypto_auth_hmacsha256_final(&state, out.data());
  sodium_memzero(&state, sizeof(state));
}

Bytes HmacSha256::mac(std::initializer_list<ByteView> parts) const {
  Bytes out(crypto_auth_hmacsha256_BYTES);
  mac_into(parts, out);
  return out;
}

Bytes hmac_sha256(ByteView key, ByteView message) {
  Bytes out(crypto_auth_hmacsha256_BYTES);
  HmacSha256::mac_once_into(key, {message}, out);
  return out;
}

Bytes hmac_sha256(const SecretBytes& key, ByteView message) {
  return hmac_sha256(key.span(), message);
}

Bytes sha256(ByteView message) {
  ensure_sodium();
  Bytes out(crypto_hash_sha256_BYTES);
  crypto_hash_sha256(out.data(), message.data(), message.size());
  return out;
}

SecretBytes pbkdf2_sha256(std::string_view passphrase, ByteView salt, std::uint32_t iterations,
                          std::size_t length) {
  SecretBytes out(length);
  if (ossl::PKCS5_PBKDF2_HMAC(passphrase.data(), static_cast<int>(passphrase.size()), salt.data(),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), sha256_md(),
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
  CipherCtx ctx(ossl::EVP_CIPHER_CTX_new());
  int len = 0, tail = 0;
  if (!ctx || ossl::EVP_EncryptInit_ex2(ctx.get(), aes128_cbc(), key.data(), iv.data(), nullptr) != 1 ||
      ossl::EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      ossl::EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1) {
    fatal("AES-128-CBC encryption failed");
  }
  out.resize(static_cast<std::size_t>(len + tail));
  return out;
}

std::optional<SecretBytes> aes128_cbc_decrypt(ByteView key, ByteView iv, ByteView ciphertext) {
  if (key.size() != 16 || iv.size() != 16) fatal("AES-128-CBC needs a 16-byte key and IV");
  if (ciphertext.empty() || ciphertext.size() % 16 != 0) return std::nullopt;
  SecretBytes out(ciphertext.size());
  CipherCtx ctx(ossl::EVP_CIPHER_CTX_new());
  int len = 0, tail = 0;
  if (!ctx || ossl::EVP_DecryptInit_ex2(ctx.get(), aes128_cbc(), key.data(), iv.data(), nullptr) != 1 ||
      ossl::EVP_DecryptUpdate(ctx.get(), out.data(), &len, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1) {
    fatal("AES-128-CBC decryption setup failed");
  }
  if (ossl::EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1) return std::nullopt;
  out.truncate(static_cast<std::size_t>(len + tail));
  return out;
}

bool constant_time_equal(ByteView a, ByteView b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
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

std::optional<Bytes> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes out(hex.size() / 2);
  std::size_t written = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written, &end) !=
          0 ||
      written != out.size() || end != hex.data() + hex.size()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace credentials::internal
