// Fuzzes DATABASE_URL parsing (internal::parse_database_url): malformed URLs
// are InvalidArgumentError and nothing else. (That the message never repeats
// the URL is checked with canary passwords by tests/reliability/leak_test.cc:
// a fuzzed input can coincide with the fixed text of a message.)
#include <cstdlib>
#include <string>

#include "credentials/errors.h"
#include "db/connection.h"
#include "fuzz/fuzz_support.h"

using namespace credentials;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string url(credentials::fuzz::as_text(data, size));
  try {
    internal::ConnectionParams params = internal::parse_database_url(url);
    if (params.port < 0 || params.port > 65535) std::abort();
  } catch (const InvalidArgumentError&) {
  }
  return 0;
}
