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

}  // namespace

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF). Written here because none of the project's libraries exposes a
// validator; it is small and fuzzed through the record and CLI targets.
bool is_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    int extra = 0;
    unsigned char min2 = 0x80, max2 = 0xbf;  // allowed range of the second byte
    if (c < 0x80) {
      ++p;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      if (c == 0xe0) min2 = 0xa0;  // overlong
      if (c == 0xed) max2 = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      if (c == 0xf0) min2 = 0x90;  // overlong
      if (c == 0xf4) max2 = 0x8f;  // beyond U+10FFFF
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    if (p[1] < min2 || p[1] > max2) return false;
    for (int i = 2; i <= extra; ++i) {
      if (p[i] < 0x80 || p[i] > 0xbf) return false;
    }
    p += extra + 1;
  }
  return true;
}

namespace {

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
  if (!is_utf8(text)) throw InvalidArgumentError(fmt::format("{} must be valid UTF-8", what));
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
