// Skills: running `data_query` skills with the caller's vault credentials.
//
// A skill is a folder `skills/<Name>/` holding `skill.md`: YAML front matter
// between two `---` lines, then Markdown documentation. Its `action` names a
// query and where its credential comes from, resolved in this order
// (DESIGN.md, Skills):
//   1. `credential_ref`: a credential name (in the caller's namespace) or id;
//   2. `db_config_file`: a JSON file inside the skill's folder holding
//      `credential_ref` and optional `host`/`port`/`database` overrides;
//   3. the `DATABASE_URL` environment variable.
// WARNING: a db_config.json `host` override sends the caller's credential to
// that host. The skill itself never sees the password, but a hostile server
// may ask the client for it in clear text (libpq 15 cannot refuse that), so
// run only skills whose db_config.json you trust.
//
// `{name}` placeholders in the query (also dotted paths like `{user.id}` and
// the quoted form `'{x}'`) become bound parameters: input values are never
// spliced into SQL text.
//
// Example:
//   auto runner = credentials::SkillRunner::open(vault, {.skills_dir = "skills"});
//   nlohmann::json result = runner.execute("DatabaseUserFetcher",
//                                          {{"user_id", 123}}, alice);
//   // {"query_result": [{"id": 123, ...}], "row_count": 1}
#pragma once

#include <cstddef>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "credentials/user_context.h"

namespace credentials {

class Vault;

namespace internal {
class SkillRunnerImpl;
}

// A skill that loaded without errors: its front matter, minus the query.
struct SkillInfo {
  std::string name;
  std::string description;
  // "action" for the skills this runner executes; skills with another
  // executor (written for other runners) load but cannot be executed here.
  std::string executor;
  std::vector<std::string> requires_inputs;  // `requires`
  std::vector<std::string> produces;
  std::vector<std::string> optional_produces;
  // `action.source`: "sqlite", "postgres" (also written "postgresql") or "".
  // It says which dialect the query is written in; the credential's db type
  // decides the driver, so a portable skill runs on either.
  std::string source;
  std::filesystem::path file;  // the skill.md it came from
};

// A skill.md that could not be loaded: where, and what is wrong.
struct SkillProblem {
  std::filesystem::path file;
  int line = 0;  // 1-based; 0 when the problem is not tied to a line
  std::string message;

  // "skills/X/skill.md:7: action.source: unknown source 'oracle' ..."
  [[nodiscard]] std::string to_string() const;
};

struct SkillRunnerOptions {
  // The directory whose `*/skill.md` files are loaded.
  std::filesystem::path skills_dir = "skills";
  // Use DATABASE_URL (read at each execution) for skills that name neither a
  // credential_ref nor a db_config_file. The Python version did; turn it off
  // when every skill must run on a per-user credential.
  bool database_url_fallback = true;
  // Idle connections kept per (owner, credential, version).
  std::size_t max_idle_per_credential = 4;
};

// Loads the skills of a directory and executes them for users.
//
// Thread-safe: one SkillRunner may execute skills from any number of threads
// at once. Database connections are pooled per (owner, credential id,
// credential version): after update_password (by this process or another),
// the next execution connects with the new password and connections made with
// the old one are closed.
//
// REQUIRES: the Vault outlives the SkillRunner, and the SkillRunner outlives
// every future returned by execute_async.
class SkillRunner {
 public:
  // Loads every `<skills_dir>/*/skill.md`. A malformed skill does not stop
  // the others from loading: it is listed in problems(), and executing it
  // throws SkillError with its file, line and what is wrong. Throws SkillError
  // when skills_dir is not a readable directory.
  [[nodiscard]] static SkillRunner open(Vault& vault, SkillRunnerOptions options = {});

  SkillRunner(SkillRunner&&) noexcept;
  SkillRunner& operator=(SkillRunner&&) noexcept;
  ~SkillRunner();

  // Runs the skill as `user`. `inputs` is a JSON object; every `requires`
  // entry and every placeholder of the query must be present in it.
  // Returns {"query_result": [rows as objects], "row_count": n} for a statement
  // that returns rows, {"affected_rows": n} otherwise.
  // Throws SkillError (unknown or malformed skill, missing inputs, bad
  // db_config_file), the vault's errors (CredentialNotFoundError,
  // UnauthorizedError, ...), InvalidArgumentError (a db type this build cannot
  // connect to), DatabaseError (the database's message, scrubbed of input
  // values; it never depends on the password). Every execution is one audit
  // event.
  [[nodiscard]] nlohmann::json execute(std::string_view skill_name, const nlohmann::json& inputs,
                                       const UserContext& user);

  // execute() on another thread; the future rethrows its errors.
  [[nodiscard]] std::future<nlohmann::json> execute_async(std::string skill_name,
                                                          nlohmann::json inputs, UserContext user);

  // The skills that loaded, sorted by name.
  [[nodiscard]] std::vector<SkillInfo> skills() const;
  // The skill.md files that did not load.
  [[nodiscard]] const std::vector<SkillProblem>& problems() const;

 private:
  explicit SkillRunner(std::unique_ptr<internal::SkillRunnerImpl> impl);
  std::unique_ptr<internal::SkillRunnerImpl> impl_;
};

// Parses one skill.md without executing anything. Throws SkillError with
// "file:line: what is wrong" when it is malformed.
[[nodiscard]] SkillInfo load_skill(const std::filesystem::path& skill_md);

// The skills directory from the environment: CREDENTIAL_SKILLS_DIR, default
// ./skills.
[[nodiscard]] std::filesystem::path skills_dir_from_environment();

// The Python API: runs a skill of skills_dir_from_environment() with
// get_vault(), through one process-wide SkillRunner made on first use.
[[nodiscard]] nlohmann::json execute_skill(std::string_view skill_name,
                                           const nlohmann::json& inputs,
                                           const UserContext& user_context);
[[nodiscard]] std::future<nlohmann::json> execute_skill_async(std::string skill_name,
                                                              nlohmann::json inputs,
                                                              UserContext user_context);

}  // namespace credentials
