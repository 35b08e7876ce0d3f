#include "dotenv.h"

#include <stdlib.h>

#include <array>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>

#include "credentials/secret.h"

namespace credentials::cli {
namespace {

constexpr std::string_view kPrefix = "CREDENTIAL_";
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kPairs = {{
    {"CREDENTIAL_MASTER_KEY", "CREDENTIAL_MASTER_KEY_FILE"},
    {"CREDENTIAL_VAULT_DIR", "CREDENTIAL_VAULT_URL"},
}};

bool is_set(std::string_view name) {
  const char* value = ::getenv(std::string(name).c_str());
  return value != nullptr && *value != '\0';
}

// Which pairs the environment decides (it sets one of their variables).
std::array<bool, kPairs.size()> pairs_set_by_environment() {
  std::array<bool, kPairs.size()> decided{};
  for (std::size_t i = 0; i < kPairs.size(); ++i) {
    decided[i] = is_set(kPairs[i].first) || is_set(kPairs[i].second);
  }
  return decided;
}

// Whether the file may set `name`: not when the environment (as it was before
// the file was read, for a pair) sets it.
bool file_may_set(std::string_view name, const std::array<bool, kPairs.size()>& decided) {
  for (std::size_t i = 0; i < kPairs.size(); ++i) {
    if (name == kPairs[i].first || name == kPairs[i].second) return !decided[i];
  }
  return !is_set(name);
}

bool is_name_char(char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

std::string_view trim_left(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

std::string_view trim_right(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// The value after `=`. Single quotes keep everything up to the closing one;
// double quotes take \" \\ \n escapes; an unquoted value ends at a ` #`
// comment. An unterminated quote is no value.
std::optional<SecretString> parse_value(std::string_view text) {
  text = trim_left(text);
  SecretString value;
  if (!text.empty() && (text.front() == '\'' || text.front() == '"')) {
    const char quote = text.front();
    for (std::size_t i = 1; i < text.size(); ++i) {
      char c = text[i];
      if (c == quote) {
        const std::string_view after = trim_right(trim_left(text.substr(i + 1)));
        if (!after.empty() && after.front() != '#') return std::nullopt;
        return value;
      }
      if (quote == '"' && c == '\\' && i + 1 < text.size()) {
        const char next = text[++i];
        c = next == 'n' ? '\n' : next;
        if (next != 'n' && next != '"' && next != '\\') value.append("\\");
      }
      value.append(std::string_view(&c, 1));
    }
    return std::nullopt;
  }
  std::size_t end = text.size();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
      end = i;
      break;
    }
  }
  value.append(trim_right(text.substr(0, end)));
  return value;
}

}  // namespace

std::vector<std::string> load_dotenv(const std::filesystem::path& file) {
  std::vector<std::string> set;
  std::ifstream in(file);
  if (!in) return set;
  const auto decided = pairs_set_by_environment();
  std::string line;
  while (std::getline(in, line)) {
    const SecretString wipe(std::move(line));  // the line may hold a key: wiped when done
    std::string_view text = trim_left(wipe.reveal());
    if (text.starts_with("export ") || text.starts_with("export\t")) {
      text = trim_left(text.substr(7));
    }
    std::size_t length = 0;
    while (length < text.size() && is_name_char(text[length], length == 0)) ++length;
    const std::string name(text.substr(0, length));
    std::string_view rest = trim_left(text.substr(length));
    if (length == 0 || !name.starts_with(kPrefix) || rest.empty() || rest.front() != '=') continue;
    if (!file_may_set(name, decided)) continue;
    const std::optional<SecretString> value = parse_value(rest.substr(1));
    if (!value || value->empty()) continue;
    std::string terminated(value->reveal());
    ::setenv(name.c_str(), terminated.c_str(), /*overwrite=*/0);
    const SecretString wipe_copy(std::move(terminated));
    set.push_back(name);
  }
  return set;
}

}  // namespace credentials::cli
