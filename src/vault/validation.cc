#include "vault/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '-';
}

// Free text fields may hold any printable UTF-8 but no control characters:
// a NUL or a newline in a host name is a mistake or an attack, never data.
void validate_text(std::string_view text, std::string_view what, std::size_t max) {
  if (text.size() > max) {
    throw InvalidArgumentError(fmt::format("{} is too long: at most {} bytes", what, max));
  }
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      throw InvalidArgumentError(fmt::format("{} must not contain control characters", what));
    }
  }
}

constexpr std::array<std::string_view, 5> kDbTypes = {"postgres", "mysql", "mongodb", "redis",
                                                      "sqlite"};
constexpr std::array<std::string_view, 6> kSslModes = {"disable", "allow",     "prefer",
                                                       "require", "verify-ca", "verify-full"};

}  // namespace

bool is_valid_identifier(std::string_view text) {
  return !text.empty() && text.size() <= kMaxIdentifierLength &&
         std::all_of(text.begin(), text.end(), is_identifier_char);
}

void validate_identifier(std::string_view text, std::string_view what) {
  if (is_valid_identifier(text)) return;
  throw InvalidArgumentError(fmt::format(
      "invalid {}: use 1-{} characters from A-Z a-z 0-9 . _ @ -", what, kMaxIdentifierLength));
}

void validate_fields(CredentialInfo& info, const SecretString& password) {
  validate_identifier(info.owner, "user id");
  validate_identifier(info.name, "credential name");
  std::string type = info.db_type;
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (type == "postgresql") type = "postgres";
  if (std::find(kDbTypes.begin(), kDbTypes.end(), type) == kDbTypes.end()) {
    throw InvalidArgumentError(
        "unknown db type: use one of postgres, mysql, mongodb, redis, sqlite");
  }
  info.db_type = type;
  validate_text(info.host, "host", 255);
  validate_text(info.database, "database", kMaxFieldLength);
  validate_text(info.username, "username", kMaxFieldLength);
  validate_text(info.description, "description", kMaxFieldLength);
  if (type == "sqlite") {
    if (info.database.empty()) {
      throw InvalidArgumentError("sqlite credentials need a database: the path of the database file");
    }
  } else if (info.host.empty()) {
    throw InvalidArgumentError("host must not be empty");
  }
  if (info.port == 0) info.port = default_port(type);
  if (info.port < 0 || info.port > 65535 || (info.port == 0 && type != "sqlite")) {
    throw InvalidArgumentError("port must be between 1 and 65535");
  }
  if (!info.ssl_mode.empty() &&
      std::find(kSslModes.begin(), kSslModes.end(), info.ssl_mode) == kSslModes.end()) {
    throw InvalidArgumentError(
        "unknown ssl mode: use disable, allow, prefer, require, verify-ca or verify-full");
  }
  if (info.connection_timeout < 1 || info.connection_timeout > 3600) {
    throw InvalidArgumentError("connection timeout must be between 1 and 3600 seconds");
  }
  if (password.size() > kMaxPasswordLength) {
    throw InvalidArgumentError(
        fmt::format("password is too long: at most {} bytes", kMaxPasswordLength));
  }
  for (char c : password.reveal()) {
    if (c == '\0') throw InvalidArgumentError("password must not contain NUL bytes");
  }
}

}  // namespace credentials::internal

namespace credentials {

int default_port(std::string_view db_type) {
  if (db_type == "postgres" || db_type == "postgresql") return 5432;
  if (db_type == "mysql") return 3306;
  if (db_type == "mongodb") return 27017;
  if (db_type == "redis") return 6379;
  if (db_type == "sqlite") return 0;
  throw InvalidArgumentError("unknown db type: use one of postgres, mysql, mongodb, redis, sqlite");
}


}  // namespace credentials
