#include "crypto/libcrypto.h"

#include <dlfcn.h>

#include <fmt/format.h>

#include "credentials/errors.h"

namespace credentials::internal::ossl {
namespace {

Api load() {
  // RTLD_LOCAL: nothing of ours joins the global namespace. An application
  // that links libcrypto itself already has it loaded: dlopen returns that
  // same copy.
  void* handle = ::dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    throw Error(ErrorCode::kInternal,
                fmt::format("this needs OpenSSL's libcrypto 3, which could not be loaded ({}): "
                            "install it (Debian: apt-get install libssl3)",
                            why ? why : "unknown error"));
  }
  Api api;
#define CREDENTIALS_LIBCRYPTO_RESOLVE(name)                                                   \
  api.name = reinterpret_cast<decltype(api.name)>(::dlsym(handle, #name));                  \
  if (!api.name) {                                                                            \
    throw Error(ErrorCode::kInternal,                                                         \
                "the installed libcrypto is too old: it lacks " #name "; upgrade libssl3"); \
  }
  CREDENTIALS_LIBCRYPTO_FUNCTIONS(CREDENTIALS_LIBCRYPTO_RESOLVE)
#undef CREDENTIALS_LIBCRYPTO_RESOLVE
  return api;  // the handle stays open for the life of the process
}

}  // namespace

const Api& api() {
  static const Api loaded = load();  // a throw leaves it to be tried again
  return loaded;
}

}  // namespace credentials::internal::ossl
