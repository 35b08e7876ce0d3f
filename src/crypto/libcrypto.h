// OpenSSL's libcrypto, loaded when it is first needed rather than when the
// program starts.
//
// The vault's own primitives come from libsodium (crypto/primitives.cc).
// OpenSSL serves only the legacy importer (PBKDF2, AES-128-CBC),
// and AES-256-GCM on CPUs without AES-NI. Linked normally, it costs every
// process its relocations at start-up: ~300 KB of pointer tables (~75 fresh
// pages, ~1 ms of a `credential_manager list` on a virtual machine where a
// fresh page costs ~10 µs) for code that a normal command never runs. So the
// library does not link libcrypto: primitives.cc calls it through `ossl::`
// below, which opens libcrypto.so.3 with dlopen(3) at the first call. Only
// the types and constants come from OpenSSL's headers.
#pragma once

#include <openssl/evp.h>

#include <utility>

namespace credentials::internal::ossl {

// Every libcrypto function the library calls.
#define CREDENTIALS_LIBCRYPTO_FUNCTIONS(X)                                                    \
  X(EVP_CIPHER_fetch) X(EVP_CIPHER_free) X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free)      \
  X(EVP_CIPHER_CTX_ctrl) X(EVP_EncryptInit_ex2) X(EVP_EncryptUpdate) X(EVP_EncryptFinal_ex) \
  X(EVP_DecryptInit_ex2) X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex) X(EVP_MD_fetch)       \
  X(EVP_MD_free) X(PKCS5_PBKDF2_HMAC)

struct Api {
#define CREDENTIALS_LIBCRYPTO_POINTER(name) decltype(&::name) name = nullptr;
  CREDENTIALS_LIBCRYPTO_FUNCTIONS(CREDENTIALS_LIBCRYPTO_POINTER)
#undef CREDENTIALS_LIBCRYPTO_POINTER
};

// libcrypto's functions; loads libcrypto.so.3 at the first call. Thread-safe.
// Throws Error (saying to install libssl3) when it cannot be loaded.
const Api& api();

#define CREDENTIALS_LIBCRYPTO_FORWARD(name)             \
  template <typename... Args>                           \
  inline auto name(Args&&... args) {                    \
    return api().name(std::forward<Args>(args)...);     \
  }
CREDENTIALS_LIBCRYPTO_FUNCTIONS(CREDENTIALS_LIBCRYPTO_FORWARD)
#undef CREDENTIALS_LIBCRYPTO_FORWARD

}  // namespace credentials::internal::ossl
