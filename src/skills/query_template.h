// QueryTemplate: a skill's SQL with `{name}` placeholders, compiled once into
// text plus bound-parameter slots. Input values never become SQL text.
//
// Recognised placeholders, outside string literals, quoted identifiers and
// comments: `{name}`, dotted paths `{user.id}` (a numeric segment indexes an
// array: `{ids.0}`), and the quoted form `'{name}'` written for the Python
// version's string formatting, which is one parameter too (the quotes go).
// A placeholder inside a longer string literal ('%{x}%') is an error: its
// value would have to be spliced into the literal.
//
// Immutable after compile(); safe to share between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/connection.h"

namespace credentials::internal {

class QueryTemplate {
 public:
  // Throws SkillError (without a line: the caller adds the query's) when the
  // query is empty, has an unterminated literal, or a placeholder in a literal.
  [[nodiscard]] static QueryTemplate compile(std::string_view query);

  // The SQL for a driver: $1, $2, ... for PostgreSQL, ? for SQLite.
  [[nodiscard]] std::string render(DbKind kind) const;

  // The parameter values, in placeholder order, typed from the JSON inputs
  // (integer, float, boolean, null, text; objects and arrays as JSON text).
  // Throws SkillError naming every placeholder without an input (never a value).
  [[nodiscard]] std::vector<Param> bind(const nlohmann::json& inputs,
                                        std::string_view skill_name) const;

  // The placeholder paths, in order of appearance (with repeats).
  [[nodiscard]] const std::vector<std::string>& placeholders() const { return paths_; }

 private:
  std::vector<std::string> texts_;  // texts_.size() == paths_.size() + 1
  std::vector<std::string> paths_;
};

// The value at a dotted path in `inputs`, or nullptr when absent.
[[nodiscard]] const nlohmann::json* find_input(const nlohmann::json& inputs, std::string_view path);

}  // namespace credentials::internal
