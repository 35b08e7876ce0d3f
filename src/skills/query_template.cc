#include "skills/query_template.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Length of a placeholder `{a.b.c}` starting at query[at] == '{', or 0.
std::size_t placeholder_length(std::string_view query, std::size_t at) {
  std::size_t i = at + 1;
  if (i >= query.size() || !is_ident_start(query[i])) return 0;
  while (i < query.size() && is_ident_char(query[i])) ++i;
  while (i + 1 < query.size() && query[i] == '.' && is_ident_char(query[i + 1])) {
    ++i;
    while (i < query.size() && is_ident_char(query[i])) ++i;
  }
  if (i >= query.size() || query[i] != '}') return 0;
  return i + 1 - at;
}

// Index just past the end of a quoted run starting at query[at] == quote;
// a doubled quote is an escaped one; `backslash` honours E'...\'...' escapes.
std::size_t end_of_quoted(std::string_view query, std::size_t at, char quote, bool backslash) {
  for (std::size_t i = at + 1; i < query.size(); ++i) {
    if (backslash && query[i] == '\\') {
      ++i;
    } else if (query[i] == quote) {
      if (i + 1 < query.size() && query[i + 1] == quote) {
        ++i;
      } else {
        return i + 1;
      }
    }
  }
  return std::string_view::npos;
}

// A PostgreSQL dollar-quote tag ($$ or $tag$) at query[at] == '$', or "".
std::string_view dollar_tag(std::string_view query, std::size_t at) {
  std::size_t i = at + 1;
  if (i < query.size() && query[i] == '$') return query.substr(at, 2);
  if (i >= query.size() || !is_ident_start(query[i])) return {};
  while (i < query.size() && is_ident_char(query[i])) ++i;
  if (i < query.size() && query[i] == '$') return query.substr(at, i + 1 - at);
  return {};
}

}  // namespace

QueryTemplate QueryTemplate::compile(std::string_view query) {
  QueryTemplate t;
  std::string text;
  auto add_placeholder = [&](std::string_view path) {
    t.texts_.push_back(std::move(text));
    text.clear();
    t.paths_.emplace_back(path);
  };
  bool any = false;
  for (std::size_t i = 0; i < query.size();) {
    const char c = query[i];
    if (std::isspace(static_cast<unsigned char>(c)) == 0) any = true;
    if (c == '{') {
      if (const std::size_t n = placeholder_length(query, i); n > 0) {
        add_placeholder(query.substr(i + 1, n - 2));
        i += n;
        continue;
      }
      text += c;
      ++i;
    } else if (c == '\'') {
      if (i + 1 < query.size() && query[i + 1] == '{') {
        const std::size_t n = placeholder_length(query, i + 1);
        if (n > 0 && i + 1 + n < query.size() && query[i + 1 + n] == '\'') {
          add_placeholder(query.substr(i + 2, n - 2));
          i += n + 2;
          continue;
        }
      }
      const bool escape_string = i > 0 && (query[i - 1] == 'E' || query[i - 1] == 'e') &&
                                 (i < 2 || !is_ident_char(query[i - 2]));
      const std::size_t end = end_of_quoted(query, i, '\'', escape_string);
      if (end == std::string_view::npos)
        throw SkillError("the query has an unterminated string literal");
      const std::string_view literal = query.substr(i, end - i);
      for (std::size_t b = literal.find('{'); b != std::string_view::npos;
           b = literal.find('{', b + 1)) {
        if (const std::size_t n = placeholder_length(literal, b); n > 0) {
          const std::string_view name = literal.substr(b + 1, n - 2);
          throw SkillError(fmt::format(
              "placeholder {{{}}} is inside the string literal {}: its value would be spliced "
              "into SQL. Bind it alone ('{{{}}}' or {{{}}}) and build the text in SQL, e.g. "
              "'%' || {{{}}} || '%'",
              name, literal, name, name, name));
        }
      }
      text.append(literal);
      i = end;
    } else if (c == '"') {
      const std::size_t end = end_of_quoted(query, i, '"', false);
      if (end == std::string_view::npos)
        throw SkillError("the query has an unterminated quoted identifier");
      text.append(query.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < query.size() && query[i + 1] == '-') {
      const std::size_t end = std::min(query.find('\n', i), query.size());
      text.append(query.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < query.size() && query[i + 1] == '*') {
      const std::size_t close = query.find("*/", i + 2);
      if (close == std::string_view::npos)
        throw SkillError("the query has an unterminated /* comment");
      text.append(query.substr(i, close + 2 - i));
      i = close + 2;
    } else if (c == '$' && !dollar_tag(query, i).empty() &&
               (i == 0 || !is_ident_char(query[i - 1]))) {
      const std::string_view tag = dollar_tag(query, i);
      const std::size_t close = query.find(tag, i + tag.size());
      if (close == std::string_view::npos)
        throw SkillError("the query has an unterminated dollar-quoted string");
      text.append(query.substr(i, close + tag.size() - i));
      i = close + tag.size();
    } else {
      text += c;
      ++i;
    }
  }
  if (!any) throw SkillError("the query is empty");
  t.texts_.push_back(std::move(text));
  return t;
}

std::string QueryTemplate::render(DbKind kind) const {
  std::string sql = texts_[0];
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (kind == DbKind::kPostgres) {
      sql += fmt::format("${}", i + 1);
    } else {
      sql += '?';
    }
    sql += texts_[i + 1];
  }
  return sql;
}

const nlohmann::json* find_input(const nlohmann::json& inputs, std::string_view path) {
  const nlohmann::json* node = &inputs;
  while (true) {
    const std::size_t dot = path.find('.');
    const std::string_view segment = path.substr(0, dot);
    if (node->is_object()) {
      auto it = node->find(std::string(segment));
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      std::size_t index = 0;
      auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
      if (ec != std::errc() || end != segment.data() + segment.size() || index >= node->size()) {
        return nullptr;
      }
      node = &(*node)[index];
    } else {
      return nullptr;
    }
    if (dot == std::string_view::npos) return node;
    path = path.substr(dot + 1);
  }
}

std::vector<Param> QueryTemplate::bind(const nlohmann::json& inputs,
                                       std::string_view skill_name) const {
  std::vector<Param> params;
  params.reserve(paths_.size());
  std::vector<std::string> missing;
  for (const std::string& path : paths_) {
    const nlohmann::json* value = find_input(inputs, path);
    if (value == nullptr) {
      if (std::find(missing.begin(), missing.end(), path) == missing.end()) missing.push_back(path);
      continue;
    }
    switch (value->type()) {
      case nlohmann::json::value_t::null:
        params.emplace_back(nullptr);
        break;
      case nlohmann::json::value_t::boolean:
        params.emplace_back(value->get<bool>());
        break;
      case nlohmann::json::value_t::number_integer:
        params.emplace_back(value->get<std::int64_t>());
        break;
      case nlohmann::json::value_t::number_unsigned: {
        const auto u = value->get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          params.emplace_back(static_cast<double>(u));
        } else {
          params.emplace_back(static_cast<std::int64_t>(u));
        }
        break;
      }
      case nlohmann::json::value_t::number_float:
        params.emplace_back(value->get<double>());
        break;
      case nlohmann::json::value_t::string:
        params.emplace_back(value->get<std::string>());
        break;
      default:  // object, array, binary: their JSON text, for json/jsonb columns
        params.emplace_back(value->dump());
        break;
    }
  }
  if (!missing.empty()) {
    throw SkillError(fmt::format("skill '{}': no input for placeholder{} {}", skill_name,
                                 missing.size() > 1 ? "s" : "", fmt::join(missing, ", ")));
  }
  return params;
}

}  // namespace credentials::internal
