// `run`: execute a skill as a user and print its result JSON on stdout.

#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "credentials/skills.h"
#include "exit_codes.h"
#include "output.h"

namespace credentials::cli {
namespace {

struct RunOptions {
  std::string skill;
  std::string skills_dir;
  std::vector<std::string> inputs;  // key=value
  std::string inputs_json;
};

// "user.id=5" sets inputs["user"]["id"] = 5. A value that is a JSON number,
// true, false or null gets that type (ids are numbers in most skills);
// anything else is a string. --inputs gives exact types when that guess is
// wrong.
void set_input(nlohmann::json& inputs, const std::string& assignment) {
  const std::size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw CommandError(ExitCode::kUsage,
                       fmt::format("--input '{}' is not KEY=VALUE", printable(assignment)));
  }
  const std::string key = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || value.is_object() || value.is_array() || value.is_string()) {
    value = text;
  }
  nlohmann::json* target = &inputs;
  std::size_t start = 0;
  for (std::size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', start)) {
    target = &(*target)[key.substr(start, dot - start)];
    if (!target->is_object()) *target = nlohmann::json::object();
    start = dot + 1;
  }
  (*target)[key.substr(start)] = std::move(value);
}

nlohmann::json inputs_from(const RunOptions& options) {
  nlohmann::json inputs = nlohmann::json::object();
  if (!options.inputs_json.empty()) {
    inputs = nlohmann::json::parse(options.inputs_json, nullptr, /*allow_exceptions=*/false);
    if (!inputs.is_object()) {
      throw CommandError(ExitCode::kUsage,
                         "--inputs must be a JSON object, e.g. '{\"user_id\": 1}'");
    }
  }
  for (const std::string& assignment : options.inputs) set_input(inputs, assignment);
  return inputs;
}

void run_skill(const CommonOptions& common, const RunOptions& options) {
  const nlohmann::json inputs = inputs_from(options);
  Vault vault = open_vault(common, IfNoVault::kFail);
  SkillRunnerOptions runner_options;
  runner_options.skills_dir = options.skills_dir.empty()
                                  ? skills_dir_from_environment()
                                  : std::filesystem::path(options.skills_dir);
  SkillRunner runner = SkillRunner::open(vault, runner_options);
  nlohmann::json result;
  try {
    result = runner.execute(options.skill, inputs, user_context(common));
  } catch (const DatabaseError& error) {
    // The skill's own query failed (the message is scrubbed by the library).
    throw CommandError(ExitCode::kSkillFailed, fmt::format("skill '{}' failed: {}",
                                                           printable(options.skill), error.what()));
  }
  print_json(nlohmann::ordered_json(result));
}

}  // namespace

Command add_run_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* command =
      root.add_subcommand("run", "Run a skill as the user and print its result as JSON");
  add_version_flag(*command);
  add_user_options(*command, common);
  command->add_option("-s,--skill", options->skill, "The skill's name")->required();
  command->add_option(
      "--skills-dir", options->skills_dir,
      "Directory of skill folders (default: $CREDENTIAL_SKILLS_DIR, else ./skills)");
  command->add_option("-i,--input", options->inputs,
                      "An input as KEY=VALUE (repeatable; KEY may be dotted, e.g. user.id=5)");
  command->add_option("--inputs", options->inputs_json,
                      "All inputs as one JSON object; --input values are applied on top");
  return {command, [options, &common] { run_skill(common, *options); }};
}

}  // namespace credentials::cli
