#include "db/libpq.h"

#include <dlfcn.h>

#include <string>

#include <fmt/format.h>

#include "credentials/errors.h"

namespace credentials::internal::pq {
namespace {

Api load() {
  // RTLD_LOCAL: libpq's symbols stay out of the global namespace, so an
  // application that links its own libpq is not affected.
  void* handle = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    throw DatabaseError(fmt::format(
        "PostgreSQL support needs libpq, which could not be loaded ({}): install it (Debian: "
        "apt-get install libpq5)",
        why ? why : "unknown error"));
  }
  Api api;
#define CREDENTIALS_LIBPQ_RESOLVE(name)                                                         \
  api.name = reinterpret_cast<decltype(api.name)>(::dlsym(handle, #name));                    \
  if (!api.name) {                                                                              \
    throw DatabaseError("the installed libpq is too old: it lacks " #name "; upgrade libpq5"); \
  }
  CREDENTIALS_LIBPQ_FUNCTIONS(CREDENTIALS_LIBPQ_RESOLVE)
#undef CREDENTIALS_LIBPQ_RESOLVE
  return api;  // the handle stays open for the life of the process
}

}  // namespace

const Api& api() {
  static const Api loaded = load();  // a throw leaves it to be tried again
  return loaded;
}

}  // namespace credentials::internal::pq
