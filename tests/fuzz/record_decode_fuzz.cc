// Fuzzes the record decoder (internal::decode_record), which runs on bytes
// from disk after the AEAD: it must refuse anything malformed with
// DecryptionFailedError, and whatever it accepts must re-encode to a record
// that decodes to the same credential.
#include <cstdlib>

#include "credentials/errors.h"
#include "fuzz/fuzz_support.h"
#include "vault/record_codec.h"

using namespace credentials;

namespace {
bool same(const Credential& a, const Credential& b) {
  return a.credential_id == b.credential_id && a.owner == b.owner && a.name == b.name &&
         a.db_type == b.db_type && a.host == b.host && a.port == b.port && a.database == b.database &&
         a.username == b.username && a.description == b.description && a.ssl_mode == b.ssl_mode &&
         a.connection_timeout == b.connection_timeout && a.created_at == b.created_at &&
         a.updated_at == b.updated_at && a.version == b.version && a.password.equals(b.password);
}

// CREDENTIALS_FUZZ_WRITE_SEEDS=<dir>: writes valid encoded records there (the
// checked-in seed corpus was made this way) and exits.
void write_seeds(const char* dir) {
  int n = 0;
  for (const char* password : {"secret123", "", "p@ss/w:rd#1%]'\"\\ \xc3\xbc"}) {
    Credential c;
    c.credential_id = "alice_prod_db_0011223344556677";
    c.owner = "alice";
    c.name = "prod_db";
    c.db_type = n == 2 ? "sqlite" : "postgres";
    c.host = n == 2 ? "" : "db.example.com";
    c.port = n == 2 ? 0 : 5432;
    c.database = n == 2 ? "/var/lib/app.db" : "production";
    c.username = "dbuser";
    c.password = password;
    c.description = n == 1 ? "Production database \xe2\x9c\x93" : "";
    c.ssl_mode = n == 1 ? "require" : "";
    c.connection_timeout = 30 + n;
    c.version = static_cast<std::uint64_t>(n + 1);
    const internal::SecretBytes bytes = internal::encode_record(c);
    const auto span = bytes.span();
    credentials::fuzz::write_file(std::filesystem::path(dir) / ("record-" + std::to_string(n++)),
                                  {reinterpret_cast<const char*>(span.data()), span.size()});
  }
  std::exit(0);
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("CREDENTIALS_FUZZ_WRITE_SEEDS")) write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Credential decoded;
  try {
    decoded = internal::decode_record({data, size});
  } catch (const DecryptionFailedError&) {
    return 0;
  }
  const internal::SecretBytes again = internal::encode_record(decoded);
  const Credential twice = internal::decode_record(again.span());
  if (!same(decoded, twice)) std::abort();
  return 0;
}
