// The credential record model, with the Python system's field names.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "credentials/secret.h"

namespace credentials {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// ISO-8601 UTC with microseconds, e.g. "2026-11-28T10:50:41.123456Z".
[[nodiscard]] std::string format_timestamp(Timestamp t);
// Accepts what format_timestamp writes and the Python version's naive-UTC
// isoformat ("2026-11-28T10:50:41.123456"). Throws InvalidArgumentError.
[[nodiscard]] Timestamp parse_timestamp(std::string_view text);

// What store_credential takes. Field order matches the Python keyword
// arguments so that a designated initializer reads like the Python call.
struct NewCredential {
  std::string name{};
  std::string db_type =
      "postgres";  // postgres | mysql | mongodb | redis | sqlite, or kept as given
  std::string host{};                  // for sqlite: unused (may be empty)
  int port = 0;                      // 0: the db type's default port
  std::string database{};              // for sqlite: the database file path
  std::string username{};
  SecretString password{};
  std::string description{};           // empty: none
  std::string ssl_mode{};              // libpq sslmode; empty: driver default
  int connection_timeout = 30;       // seconds
};

// Everything about a credential except its password: what list_credentials
// returns.
struct CredentialInfo {
  std::string credential_id;
  std::string owner;  // the Python version's user_id
  std::string name;
  std::string db_type;
  std::string host;
  int port = 0;
  std::string database;
  std::string username;
  std::string description;
  std::string ssl_mode;
  int connection_timeout = 30;
  Timestamp created_at{};
  Timestamp updated_at{};
  std::uint64_t version = 0;  // 1 for the first store, +1 per update
  std::optional<Timestamp> last_used;  // last successful get (list_credentials fills it)
};

// A credential with its decrypted password, as get_credential returns it.
struct Credential : CredentialInfo {
  SecretString password;
};

// Optional changes to the non-secret fields, for update_credential.
struct CredentialChanges {
  std::optional<std::string> db_type{};
  std::optional<std::string> host{};
  std::optional<int> port{};
  std::optional<std::string> database{};
  std::optional<std::string> username{};
  std::optional<std::string> description{};
  std::optional<std::string> ssl_mode{};
  std::optional<int> connection_timeout{};
  std::optional<SecretString> password{};
};

// Overrides applied by build_connection_string (db_config.json may carry them).
struct ConnectionOverrides {
  std::optional<std::string> host{};
  std::optional<int> port{};
  std::optional<std::string> database{};
};

// The default port of a db type (postgres 5432, mysql 3306, mongodb 27017,
// redis 6379); 0 for sqlite. Throws InvalidArgumentError for an unknown type.
[[nodiscard]] int default_port(std::string_view db_type);

// A URL for the credential: postgresql://, mysql://, mongodb://, redis://,
// sqlite:///path. User, password and database are percent-encoded (RFC 3986),
// so any password character survives a URL parser; sslmode and
// connect_timeout are carried as query parameters when set. The result holds
// the password, so it is a SecretString.
[[nodiscard]] SecretString build_connection_string(
    const Credential& credential, const ConnectionOverrides& overrides = {});

}  // namespace credentials
