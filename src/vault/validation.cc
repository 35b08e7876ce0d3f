#include "vault/validation.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

// The code point that starts at text[at], moving `at` past it; nullopt where
// no well-formed sequence starts (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF). Written here because none of the
// project's libraries exposes a decoder; it is small and fuzzed through the
// record and CLI targets.
std::optional<char32_t> next_code_point(std::string_view text, std::size_t& at) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + at;
  const std::size_t left = text.size() - at;
  const unsigned char c = p[0];
  if (c < 0x80) {
    ++at;
    return c;
  }
  std::size_t extra = 0;
  unsigned char min2 = 0x80, max2 = 0xbf;  // allowed range of the second byte
  char32_t code_point = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    extra = 1;
    code_point = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    extra = 2;
    code_point = c & 0x0f;
    if (c == 0xe0) min2 = 0xa0;  // overlong
    if (c == 0xed) max2 = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    extra = 3;
    code_point = c & 0x07;
    if (c == 0xf0) min2 = 0x90;  // overlong
    if (c == 0xf4) max2 = 0x8f;  // beyond U+10FFFF
  } else {
    return std::nullopt;
  }
  if (left <= extra || p[1] < min2 || p[1] > max2) return std::nullopt;
  for (std::size_t i = 1; i <= extra; ++i) {
    if (p[i] < 0x80 || p[i] > 0xbf) return std::nullopt;
    code_point = (code_point << 6) | (p[i] & 0x3f);
  }
  at += extra + 1;
  return code_point;
}

// General category Cf, Unicode 16.0 (tests/vault/validation_test.cc checks
// it against Python's unicodedata).
constexpr std::pair<char32_t, char32_t> kFormatCharacters[] = {
    {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},
    {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},
    {0x200B, 0x200F},   {0x202A, 0x202E},   {0x2060, 0x2064},   {0x2066, 0x206F},
    {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
    {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
    {0xE0020, 0xE007F},
};

// The first thing in `text` that breaks the identifier rule.
struct Flaw {
  enum Kind { kNone, kEmpty, kTooLong, kNotUtf8, kControl, kFormat } kind = kNone;
  std::size_t at = 0;       // its byte offset
  char32_t code_point = 0;  // for kControl and kFormat
};

Flaw find_flaw(std::string_view text) {
  if (text.empty()) return {Flaw::kEmpty};
  if (text.size() > kMaxIdentifierLength) return {Flaw::kTooLong};
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t start = at;
    const std::optional<char32_t> c = next_code_point(text, at);
    if (!c) return {Flaw::kNotUtf8, start};
    if (is_control_or_format(*c)) {
      return {is_format_character(*c) ? Flaw::kFormat : Flaw::kControl, start, *c};
    }
  }
  return {};
}

}  // namespace

bool is_format_character(char32_t c) {
  if (c < 0xAD) return false;  // the common case: ASCII and Latin-1 letters
  return std::any_of(std::begin(kFormatCharacters), std::end(kFormatCharacters),
                     [c](const auto& range) { return c >= range.first && c <= range.second; });
}

bool is_control_or_format(char32_t c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || is_format_character(c);
}

bool is_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    if (!next_code_point(text, at)) return false;
  }
  return true;
}

std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  // Back over continuation bytes to the start of the character that is cut.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  return text.substr(0, end);
}

namespace {

// Free text fields may hold any printable UTF-8 but no control characters:
// a NUL or a newline in a host name is a mistake or an attack, never data. A
// description may run over several lines (tabs, line breaks).
void validate_text(std::string_view text, std::string_view what, std::size_t max,
                   bool multiline = false) {
  if (text.size() > max) {
    throw InvalidArgumentError(fmt::format("{} is too long: at most {} bytes", what, max));
  }
  for (unsigned char c : text) {
    if (multiline && (c == '\t' || c == '\n' || c == '\r')) continue;
    if (c < 0x20 || c == 0x7f) {
      throw InvalidArgumentError(
          fmt::format("{} must not contain control characters{}", what,
                      multiline ? " (other than tabs and line breaks)" : ""));
    }
  }
  if (!is_utf8(text)) throw InvalidArgumentError(fmt::format("{} must be valid UTF-8", what));
}

constexpr std::array<std::string_view, 5> kDbTypes = {"postgres", "mysql", "mongodb", "redis",
                                                      "sqlite"};
constexpr std::array<std::string_view, 6> kSslModes = {"disable", "allow",     "prefer",
                                                       "require", "verify-ca", "verify-full"};

}  // namespace

bool is_valid_identifier(std::string_view text) { return find_flaw(text).kind == Flaw::kNone; }

std::optional<std::string> identifier_problem(std::string_view text) {
  const Flaw flaw = find_flaw(text);
  switch (flaw.kind) {
    case Flaw::kNone:
      return std::nullopt;
    case Flaw::kEmpty:
      return "it is empty";
    case Flaw::kTooLong:
      return fmt::format("it is {} bytes long", text.size());
    case Flaw::kNotUtf8:
      return fmt::format("it is not valid UTF-8 (at byte {})", flaw.at);
    case Flaw::kControl:
    case Flaw::kFormat:
      return fmt::format("it holds the {} character U+{:04X} (at byte {})",
                         flaw.kind == Flaw::kControl ? "control" : "invisible format",
                         static_cast<std::uint32_t>(flaw.code_point), flaw.at);
  }
  return std::nullopt;
}

void validate_identifier(std::string_view text, std::string_view what) {
  const std::optional<std::string> problem = identifier_problem(text);
  if (!problem) return;
  throw InvalidArgumentError(fmt::format(
      "invalid {}: {}; use 1-{} bytes of UTF-8 text without control or format characters "
      "(spaces and any letters are fine)",
      what, *problem, kMaxIdentifierLength));
}

void validate_fields(CredentialInfo& info, const SecretString& password) {
  validate_identifier(info.owner, "user id");
  validate_identifier(info.name, "credential name");
  // A known type in any case is normalised; any other is kept as given (the
  // Python version took any text): stored and shown, but `test` and skills
  // say they cannot connect with it.
  std::string type = info.db_type;
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (type == "postgresql") type = "postgres";
  const bool known = std::find(kDbTypes.begin(), kDbTypes.end(), type) != kDbTypes.end();
  if (known) {
    info.db_type = type;
  } else {
    validate_identifier(info.db_type, "db type");
    type = info.db_type;
  }
  validate_text(info.host, "host", 255);
  validate_text(info.database, "database", kMaxFieldLength);
  validate_text(info.username, "username", kMaxFieldLength);
  validate_text(info.description, "description", kMaxDescriptionLength, /*multiline=*/true);
  if (type == "sqlite") {
    if (info.database.empty()) {
      throw InvalidArgumentError(
          "sqlite credentials need a database: the path of the database file");
    }
  } else if (known && info.host.empty()) {
    throw InvalidArgumentError("host must not be empty");
  }
  // An unknown type has no default port: 0 is kept as "none given".
  if (info.port == 0 && known) info.port = default_port(type);
  if (info.port < 0 || info.port > 65535 || (info.port == 0 && known && type != "sqlite")) {
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
