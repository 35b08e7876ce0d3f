// The rule for user ids and credential names (any UTF-8 text of 1-128 bytes
// without a control or format character), its Cf table checked against
// Python's unicodedata, and the field rules the Python version's records need
// (unknown db types, long and multi-line descriptions).

#include "vault/validation.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

using namespace std::string_literals;

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

// One letter per code point, from Python's unicodedata: 'f' Cf, 'c' Cc,
// 'n' Cn (unassigned in Python's Unicode version), 's' Cs, '.' the rest.
std::string python_categories() {
  const char* command =
      "/usr/bin/python3 -c \"import sys, unicodedata as u; "
      "m = {'Cf': 'f', 'Cc': 'c', 'Cn': 'n', 'Cs': 's'}; "
      "sys.stdout.write(''.join(m.get(u.category(chr(i)), '.') for i in range(0x110000)))\"";
  std::FILE* pipe = popen(command, "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[65536];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  pclose(pipe);
  return out;
}

TEST(ValidationTest, ControlAndFormatCharactersAreUnicodesCcAndCf) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const std::string python = python_categories();
  ASSERT_EQ(python.size(), 0x110000u);
  int format = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    const char category = python[c];
    if (category == 's') continue;  // surrogates are not UTF-8
    if (category == 'f') {
      EXPECT_TRUE(is_format_character(c)) << std::hex << "U+" << static_cast<unsigned>(c);
      ++format;
    } else if (category == 'c') {
      EXPECT_TRUE(is_control_or_format(c) && !is_format_character(c))
          << std::hex << static_cast<unsigned>(c);
    } else if (is_format_character(c)) {
      // Cf in a later Unicode version than Python's (e.g. U+13439-1343F in 15.0).
      EXPECT_EQ(category, 'n') << std::hex << "U+" << static_cast<unsigned>(c);
    } else {
      EXPECT_FALSE(is_control_or_format(c)) << std::hex << "U+" << static_cast<unsigned>(c);
    }
    // The identifier rule is exactly "no Cc, no Cf", wherever the character is.
    const std::string name = "a" + utf8(c) + "b";
    EXPECT_EQ(is_valid_identifier(name), !is_control_or_format(c))
        << std::hex << static_cast<unsigned>(c);
  }
  EXPECT_GT(format, 150);  // the comparison ran over the real table
}

TEST(ValidationTest, NamesAreAnyUtf8TextWithoutControlOrFormatCharacters) {
  for (const std::string& name : std::vector<std::string>{
           "alice", "alice smith", "юзер", "база данных", "日本語のデータベース", "🔑 keys",
           " leading", "a/b", "a'b\"c", "../etc", "tab-free", "Ünïcödé", std::string(128, 'n'),
           // 64 two-byte characters: 128 bytes.
           [] {
             std::string s;
             for (int i = 0; i < 64; ++i) s += "ж";
             return s;
           }()}) {
    EXPECT_TRUE(is_valid_identifier(name)) << name;
    EXPECT_NO_THROW(validate_identifier(name, "credential name")) << name;
  }
  const std::pair<std::string, std::string> bad[] = {
      {"", "it is empty"},
      {std::string(129, 'n'), "it is 129 bytes long"},
      {[] {
         std::string s = "a";
         for (int i = 0; i < 64; ++i) s += "ж";
         return s;
       }(),
       "129 bytes"},
      {std::string("a\0b", 3), "control character U+0000 (at byte 1)"},
      {"a\x1b[31mb", "control character U+001B"},
      {"a\nb", "control character U+000A"},
      {"a\x7f", "control character U+007F"},
      {"a\u0085", "control character U+0085"},
      {"a\u200Bb", "invisible format character U+200B"},
      {"admin\u202Egpj", "invisible format character U+202E"},
      {"\uFEFFalice", "invisible format character U+FEFF (at byte 0)"},
      {"a\U000E0041", "invisible format character U+E0041"},
      {"ab\xff", "not valid UTF-8 (at byte 2)"},
      {"\xc0\xaf", "not valid UTF-8"},          // overlong '/'
      {"\xed\xa0\x80", "not valid UTF-8"},      // a surrogate
      {"\xd0", "not valid UTF-8"},              // cut short
      {"\xf4\x90\x80\x80", "not valid UTF-8"},  // beyond U+10FFFF
  };
  for (const auto& [name, reason] : bad) {
    EXPECT_FALSE(is_valid_identifier(name)) << reason;
    try {
      validate_identifier(name, "credential name");
      ADD_FAILURE() << "accepted: " << reason;
    } catch (const InvalidArgumentError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("invalid credential name: "), std::string::npos) << message;
      EXPECT_NE(message.find(reason), std::string::npos) << message;
      EXPECT_NE(message.find("1-128 bytes of UTF-8 text"), std::string::npos) << message;
    }
  }
}

TEST(ValidationTest, Utf8PrefixNeverCutsACharacter) {
  EXPECT_EQ(utf8_prefix("abc", 5), "abc");
  EXPECT_EQ(utf8_prefix("abc", 2), "ab");
  EXPECT_EQ(utf8_prefix("aж", 2), "a");  // ж is two bytes
  EXPECT_EQ(utf8_prefix("aж", 3), "aж");
  EXPECT_EQ(utf8_prefix("🔑🔑", 7), "🔑");  // four bytes each
  EXPECT_EQ(utf8_prefix("🔑", 3), "");
}

CredentialInfo fields(std::string db_type) {
  CredentialInfo info;
  info.owner = "alice smith";
  info.name = "база данных";
  info.db_type = std::move(db_type);
  info.host = "db.example.com";
  info.database = "app";
  return info;
}

TEST(ValidationTest, KnownDbTypesAreNormalisedOthersKeptAsGiven) {
  const SecretString password("pw");
  CredentialInfo known = fields("PostgreSQL");
  validate_fields(known, password);
  EXPECT_EQ(known.db_type, "postgres");
  EXPECT_EQ(known.port, 5432);

  CredentialInfo other = fields("SQLServer");
  validate_fields(other, password);
  EXPECT_EQ(other.db_type, "SQLServer");
  EXPECT_EQ(other.port, 0) << "no default port is made up for a type not known";
  other.port = 1433;
  other.host = "";  // what a type needs is not known either
  EXPECT_NO_THROW(validate_fields(other, password));

  for (const std::string& type :
       {""s, "sql\x1bserver"s, "sql\u200Bserver"s, std::string(129, 't'), "\xff"s}) {
    CredentialInfo bad = fields(type);
    EXPECT_THROW(validate_fields(bad, password), InvalidArgumentError) << type;
  }
  CredentialInfo postgres_without_host = fields("postgres");
  postgres_without_host.host = "";
  EXPECT_THROW(validate_fields(postgres_without_host, password), InvalidArgumentError);
}

TEST(ValidationTest, DescriptionsMayBeLongAndRunOverLines) {
  const SecretString password("pw");
  CredentialInfo info = fields("postgres");
  info.description = "Line one\nline two\r\n\tindented: " + std::string(5000, 'd');
  EXPECT_NO_THROW(validate_fields(info, password));
  info.description = std::string(kMaxDescriptionLength, 'd');
  EXPECT_NO_THROW(validate_fields(info, password));
  info.description += "d";
  EXPECT_THROW(validate_fields(info, password), InvalidArgumentError);
  info.description = "a\x1b[2Jb";
  EXPECT_THROW(validate_fields(info, password), InvalidArgumentError);
  info.description = std::string("a\0b", 3);
  EXPECT_THROW(validate_fields(info, password), InvalidArgumentError);
  // Other free-text fields stay on one line.
  info = fields("postgres");
  info.host = "a\nb";
  EXPECT_THROW(validate_fields(info, password), InvalidArgumentError);
}

}  // namespace
}  // namespace credentials::internal
