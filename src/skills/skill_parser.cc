// skill.md parsing: `---` YAML front matter `---`, then Markdown.
//
// Line numbers in problems are the file's (1-based): yaml-cpp marks are
// 0-based and relative to the front matter, which starts on line 2.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "credentials/errors.h"
#include "skills/skill.h"

namespace credentials {

std::string SkillProblem::to_string() const {
  if (line > 0) return fmt::format("{}:{}: {}", file.string(), line, message);
  return fmt::format("{}: {}", file.string(), message);
}

namespace internal {
namespace {

constexpr std::size_t kMaxSkillFileSize = 1 << 20;

struct Malformed {
  int line;
  std::string message;
};

// The file line of a node of the front matter.
int line_of(const YAML::Node& node, int fallback) {
  const YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? mark.line + 2 : fallback;
}

// The file line of `key:` in a mapping (where a missing field belongs).
int key_line(const YAML::Node& map, const char* key, int fallback) {
  for (const auto& entry : map) {
    if (entry.first.IsScalar() && entry.first.Scalar() == key)
      return line_of(entry.first, fallback);
  }
  return fallback;
}

bool is_separator(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  return line == "---";
}

std::string scalar(const YAML::Node& map, const char* key, int parent_line, bool required,
                   std::string_view where = "") {
  const YAML::Node node = map[key];
  const std::string field = where.empty() ? key : fmt::format("{}.{}", where, key);
  if (!node || node.IsNull()) {
    if (required) throw Malformed{parent_line, fmt::format("{}: missing (required)", field)};
    return {};
  }
  if (!node.IsScalar()) {
    throw Malformed{line_of(node, parent_line), fmt::format("{}: must be a string", field)};
  }
  return node.Scalar();
}

std::vector<std::string> string_list(const YAML::Node& map, const char* key, int parent_line) {
  const YAML::Node node = map[key];
  if (!node || node.IsNull()) return {};
  if (!node.IsSequence()) {
    throw Malformed{line_of(node, parent_line),
                    fmt::format("{}: must be a list of names (- name)", key)};
  }
  std::vector<std::string> out;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      throw Malformed{line_of(item, line_of(node, parent_line)),
                      fmt::format("{}: every entry must be a name", key)};
    }
    out.push_back(item.Scalar());
  }
  return out;
}

bool valid_skill_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

Skill parse_front_matter(const std::filesystem::path& file, const YAML::Node& root) {
  if (!root.IsMap()) {
    throw Malformed{line_of(root, 2), "the front matter must be a YAML mapping (key: value)"};
  }
  Skill skill;
  skill.info.file = file;
  skill.info.name = scalar(root, "name", 2, true);
  if (!valid_skill_name(skill.info.name)) {
    throw Malformed{line_of(root["name"], 2),
                    "name: 1-128 characters of letters, digits, '_', '-' and '.'"};
  }
  skill.name_line = line_of(root["name"], 2);
  skill.info.description = scalar(root, "description", 2, false);
  skill.info.requires_inputs = string_list(root, "requires", 2);
  skill.info.produces = string_list(root, "produces", 2);
  skill.info.optional_produces = string_list(root, "optional_produces", 2);
  skill.info.executor = scalar(root, "executor", 2, false);
  if (skill.info.executor.empty()) skill.info.executor = root["action"] ? "action" : "";
  if (skill.info.executor.empty()) {
    skill.not_runnable = "it has neither an executor nor an action";
    return skill;
  }
  if (skill.info.executor != "action") {
    skill.not_runnable =
        fmt::format("its executor is '{}'; this runner executes only `executor: action` skills",
                    skill.info.executor);
    return skill;
  }

  const YAML::Node action = root["action"];
  if (!action || !action.IsMap()) {
    throw Malformed{key_line(root, "action", 2),
                    "action: missing or not a mapping (an `executor: action` skill needs one)"};
  }
  const int action_line = key_line(root, "action", line_of(action, 2));
  const std::string type = scalar(action, "type", action_line, true, "action");
  if (type != "data_query") {
    skill.not_runnable = fmt::format(
        "its action type is '{}'; this runner executes only `type: data_query` actions", type);
    return skill;
  }

  const std::string source = scalar(action, "source", action_line, false, "action");
  if (source == "postgres" || source == "postgresql") {
    skill.source = DbKind::kPostgres;
    skill.info.source = "postgres";
  } else if (source == "sqlite" || source == "sqlite3") {
    skill.source = DbKind::kSqlite;
    skill.info.source = "sqlite";
  } else if (!source.empty()) {
    throw Malformed{
        line_of(action["source"], action_line),
        fmt::format("action.source: unknown source '{}' (supported: sqlite, postgres)", source)};
  }

  skill.query = scalar(action, "query", action_line, true, "action");
  try {
    skill.compiled = QueryTemplate::compile(skill.query);
  } catch (const SkillError& e) {
    throw Malformed{line_of(action["query"], action_line),
                    fmt::format("action.query: {}", e.what())};
  }

  skill.credential_ref = scalar(action, "credential_ref", action_line, false, "action");
  skill.db_config_file = scalar(action, "db_config_file", action_line, false, "action");
  if (!skill.db_config_file.empty()) {
    const std::filesystem::path p(skill.db_config_file);
    bool escapes = p.is_absolute() || p.has_root_name();
    for (const auto& part : p) escapes = escapes || part == "..";
    if (escapes) {
      throw Malformed{line_of(action["db_config_file"], action_line),
                      "action.db_config_file: must be a relative path inside the skill's folder "
                      "(no '..', not absolute)"};
    }
  }

  if (const YAML::Node timeout = action["timeout"]; timeout && !timeout.IsNull()) {
    double seconds = 0;
    try {
      seconds = timeout.as<double>();
    } catch (const YAML::Exception&) {
      seconds = -1;
    }
    if (!(seconds > 0) || seconds > 86400) {
      throw Malformed{line_of(timeout, action_line),
                      "action.timeout: must be a number of seconds greater than 0 (at most 86400)"};
    }
    skill.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 + 0.5));
  }
  return skill;
}

Skill parse_or_throw_malformed(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Malformed{0, "cannot be read"};
  std::string content;
  {
    std::ostringstream buffer;
    buffer << in.rdbuf();
    content = buffer.str();
  }
  if (content.size() > kMaxSkillFileSize) throw Malformed{0, "is larger than 1 MiB"};
  if (content.starts_with("\xEF\xBB\xBF")) content.erase(0, 3);  // UTF-8 BOM

  // Split off the front matter: line 1 is `---`, it ends at the next `---`.
  std::istringstream lines(content);
  std::string line;
  if (!std::getline(lines, line) || !is_separator(line)) {
    throw Malformed{1, "the file must start with a '---' line opening the YAML front matter"};
  }
  std::string front_matter;
  int number = 1;
  bool closed = false;
  while (std::getline(lines, line)) {
    ++number;
    if (is_separator(line)) {
      closed = true;
      break;
    }
    front_matter += line;
    front_matter += '\n';
  }
  if (!closed) {
    throw Malformed{1, "the front matter opened on line 1 is never closed by a '---' line"};
  }

  YAML::Node root;
  try {
    root = YAML::Load(front_matter);
  } catch (const YAML::ParserException& e) {
    // An error noticed at the end of the input (an unclosed bracket) is
    // reported on the last line of the front matter, not on the `---`.
    const int last = number - 1;
    const int line = e.mark.line >= 0 ? std::min(e.mark.line + 2, std::max(last, 2)) : 0;
    throw Malformed{line, fmt::format("YAML: {}", e.msg)};
  }
  try {
    return parse_front_matter(file, root);
  } catch (const YAML::Exception& e) {
    throw Malformed{e.mark.line >= 0 ? e.mark.line + 2 : 0, fmt::format("YAML: {}", e.msg)};
  }
}

}  // namespace

std::optional<Skill> parse_skill(const std::filesystem::path& skill_md, SkillProblem& problem) {
  try {
    return parse_or_throw_malformed(skill_md);
  } catch (const Malformed& m) {
    problem = SkillProblem{skill_md, m.line, m.message};
    return std::nullopt;
  }
}

Skill parse_skill(const std::filesystem::path& skill_md) {
  SkillProblem problem;
  std::optional<Skill> skill = parse_skill(skill_md, problem);
  if (!skill) throw SkillError(problem.to_string());
  return std::move(*skill);
}

}  // namespace internal

SkillInfo load_skill(const std::filesystem::path& skill_md) {
  return internal::parse_skill(skill_md).info;
}

}  // namespace credentials
