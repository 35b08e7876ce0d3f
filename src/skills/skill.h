// Skill: one parsed skill.md, ready to execute. Immutable after parsing;
// safe to share between threads.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "credentials/skills.h"
#include "db/connection.h"
#include "skills/query_template.h"

namespace credentials::internal {

struct Skill {
  SkillInfo info;
  int name_line = 0;  // where `name:` is, for duplicate-name problems
  // Empty when the skill can be executed here; otherwise why not (another
  // executor or action type).
  std::string not_runnable;
  std::string query;  // as written
  std::string query_sha256;  // hex, for audit events (set by the runner)
  std::optional<QueryTemplate> compiled;
  std::optional<DbKind> source;  // nullopt: from the credential's db type
  std::string credential_ref;
  std::string db_config_file;  // relative to the skill's folder
  std::optional<std::chrono::milliseconds> timeout;
};

// Parses a skill.md. Throws SkillError "<file>:<line>: <what is wrong>".
[[nodiscard]] Skill parse_skill(const std::filesystem::path& skill_md);

// Same, reporting a malformed file through `problem` instead of throwing.
[[nodiscard]] std::optional<Skill> parse_skill(const std::filesystem::path& skill_md,
                                               SkillProblem& problem);

}  // namespace credentials::internal
