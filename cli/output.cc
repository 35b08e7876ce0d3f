#include "output.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "exit_codes.h"

namespace credentials::cli {
namespace {

// One UTF-8 sequence at the start of `text`: its code point and length, or
// length 0 when the first byte does not start a valid sequence (overlong,
// surrogate, beyond U+10FFFF, truncated).
struct Decoded {
  char32_t code_point;
  std::size_t length;
};
Decoded decode_utf8(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char first = byte(0);
  if (first < 0x80) return {first, 1};
  std::size_t length = 0;
  char32_t code_point = 0;
  char32_t minimum = 0;
  if ((first & 0xE0) == 0xC0) {
    length = 2;
    code_point = first & 0x1F;
    minimum = 0x80;
  } else if ((first & 0xF0) == 0xE0) {
    length = 3;
    code_point = first & 0x0F;
    minimum = 0x800;
  } else if ((first & 0xF8) == 0xF0) {
    length = 4;
    code_point = first & 0x07;
    minimum = 0x10000;
  } else {
    return {0, 0};
  }
  if (text.size() < length) return {0, 0};
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return {0, 0};
    code_point = (code_point << 6) | (byte(i) & 0x3F);
  }
  if (code_point < minimum || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return {0, 0};
  }
  return {code_point, length};
}

// Unicode's format characters (general category Cf, Unicode 15.0/16.0):
// invisible, and some reorder what a terminal shows (U+202E).
constexpr std::pair<char32_t, char32_t> kFormatCharacters[] = {
    {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},
    {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},
    {0x200B, 0x200F},   {0x202A, 0x202E},   {0x2060, 0x2064},   {0x2066, 0x206F},
    {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
    {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
    {0xE0020, 0xE007F},
};

// Control characters (Cc: C0, DEL, C1), format characters (Cf) and the line
// and paragraph separators (U+2028, U+2029), which some terminals and log
// viewers take as line breaks.
bool is_invisible_or_control(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029) return true;
  return std::any_of(std::begin(kFormatCharacters), std::end(kFormatCharacters),
                     [c](const auto& range) { return c >= range.first && c <= range.second; });
}

// Columns are aligned by characters, not bytes: UTF-8 continuation bytes take
// no column of their own.
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string padded(std::string_view text, std::size_t width) {
  std::string result(text);
  const std::size_t current = display_width(text);
  if (current < width) result.append(width - current, ' ');
  return result;
}

std::string port_text(const CredentialInfo& info) {
  return info.port == 0 ? std::string("-") : std::to_string(info.port);
}

std::string or_dash(std::string_view text) {
  return text.empty() ? std::string("-") : printable(text);
}

std::string dump_or_throw(const nlohmann::ordered_json& document, int indent) {
  try {
    return document.dump(indent);
  } catch (const nlohmann::ordered_json::type_error&) {
    // The exception text quotes the offending bytes, which may be a password.
    throw CommandError(ExitCode::kFailure,
                       "a field is not valid UTF-8 and cannot be printed as JSON",
                       "run the command without --json");
  }
}

}  // namespace

// "2026-11-28 10:50:41" from format_timestamp's "2026-11-28T10:50:41.123456Z":
// seconds are precise enough in a table.
std::string short_timestamp(Timestamp t) {
  std::string text = format_timestamp(t);
  if (text.size() >= 19) {
    text.resize(19);
    text[10] = ' ';
  }
  return text;
}

nlohmann::ordered_json to_json(const CredentialInfo& info) {
  return nlohmann::ordered_json{
      {"id", info.credential_id},
      {"owner", info.owner},
      {"name", info.name},
      {"db_type", info.db_type},
      {"host", info.host},
      {"port", info.port},
      {"database", info.database},
      {"username", info.username},
      {"description", info.description},
      {"ssl_mode", info.ssl_mode},
      {"connection_timeout", info.connection_timeout},
      {"created_at", format_timestamp(info.created_at)},
      {"updated_at", format_timestamp(info.updated_at)},
      {"version", info.version},
  };
}

void print_json(const nlohmann::ordered_json& document) {
  std::string text = dump_or_throw(document, 2);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fill(text.begin(), text.end(), '\0');  // may hold a revealed password
}

void print_json_line(const nlohmann::ordered_json& document) {
  std::string text = dump_or_throw(document, -1);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
}

std::string printable(std::string_view text) {
  std::string result;
  result.reserve(text.size());
  std::size_t at = 0;
  while (at < text.size()) {
    const auto [code_point, length] = decode_utf8(text.substr(at));
    if (length == 0) {  // not UTF-8: the byte, escaped
      result += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[at]));
      ++at;
      continue;
    }
    if (!is_invisible_or_control(code_point)) {
      result.append(text.substr(at, length));
    } else if (code_point < 0x80) {
      result += fmt::format("\\x{:02x}", static_cast<std::uint32_t>(code_point));
    } else if (code_point <= 0xFFFF) {
      result += fmt::format("\\u{:04x}", static_cast<std::uint32_t>(code_point));
    } else {
      result += fmt::format("\\U{:08x}", static_cast<std::uint32_t>(code_point));
    }
    at += length;
  }
  return result;
}

void print_credential_table(const std::vector<CredentialInfo>& credentials, bool with_owner) {
  std::vector<std::string> headers = {"NAME",     "TYPE",     "HOST",          "PORT",
                                      "DATABASE", "USERNAME", "UPDATED (UTC)", "VERSION"};
  if (with_owner) headers.insert(headers.begin(), "OWNER");
  std::vector<std::vector<std::string>> rows;
  rows.reserve(credentials.size());
  for (const CredentialInfo& info : credentials) {
    std::vector<std::string> row = {printable(info.name),
                                    printable(info.db_type),
                                    or_dash(info.host),
                                    port_text(info),
                                    or_dash(info.database),
                                    or_dash(info.username),
                                    short_timestamp(info.updated_at),
                                    std::to_string(info.version)};
    if (with_owner) row.insert(row.begin(), printable(info.owner));
    rows.push_back(std::move(row));
  }
  print_table(headers, rows);
}

void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(headers.size());
  for (std::size_t column = 0; column < headers.size(); ++column) {
    widths[column] = display_width(headers[column]);
    for (const auto& row : rows)
      widths[column] = std::max(widths[column], display_width(printable(row[column])));
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t column = 0; column < cells.size(); ++column) {
      const bool last = column + 1 == cells.size();
      line +=
          last ? printable(cells[column]) : padded(printable(cells[column]), widths[column]) + "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print_row(headers);
  for (const auto& row : rows) print_row(row);
}

void print_credential_fields(const CredentialInfo& info,
                             std::optional<std::string_view> revealed_password) {
  // A revealed password is written straight to stdout below, never copied
  // into a formatting buffer.
  const std::string masked = fmt::format("{}  (--reveal shows it)", kPasswordMask);
  const std::pair<std::string_view, std::string> fields[] = {
      {"id", printable(info.credential_id)},
      {"owner", printable(info.owner)},
      {"name", printable(info.name)},
      {"db_type", printable(info.db_type)},
      {"host", or_dash(info.host)},
      {"port", port_text(info)},
      {"database", or_dash(info.database)},
      {"username", or_dash(info.username)},
      {"password", masked},
      {"description", or_dash(info.description)},
      {"ssl_mode",
       info.ssl_mode.empty() ? std::string("- (driver default)") : printable(info.ssl_mode)},
      {"connection_timeout", fmt::format("{} s", info.connection_timeout)},
      {"created_at", format_timestamp(info.created_at)},
      {"updated_at", format_timestamp(info.updated_at)},
      {"version", std::to_string(info.version)},
  };
  for (const auto& [label, value] : fields) {
    fmt::print("{:<20}", fmt::format("{}:", label));
    if (label == "password" && revealed_password) {
      std::fwrite(revealed_password->data(), 1, revealed_password->size(), stdout);
      std::fputc('\n', stdout);
    } else {
      fmt::print("{}\n", printable(value));
    }
  }
}

std::string display_name(const CredentialInfo& info) {
  return printable(info.owner) + "/" + printable(info.name);
}

std::string describe_target(const CredentialInfo& info) {
  if (info.db_type == "sqlite") return fmt::format("sqlite, {}", printable(info.database));
  std::string target = printable(info.db_type) + ", ";
  if (!info.username.empty()) target += printable(info.username) + "@";
  target += printable(info.host);
  if (info.port != 0) target += fmt::format(":{}", info.port);
  if (!info.database.empty()) target += fmt::format("/{}", printable(info.database));
  return target;
}

void warn(std::string_view message) {
  fmt::print(stderr, "credential_manager: warning: {}\n", printable(message));
}

void note(std::string_view message) { fmt::print(stderr, "{}\n", message); }

}  // namespace credentials::cli
