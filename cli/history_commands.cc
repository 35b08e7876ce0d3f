// `history` and `rollback`: the kept versions of a credential (never their
// passwords), and making an earlier one current again.

#include <cstdint>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "output.h"

namespace credentials::cli {
namespace {

void run_history(const CommonOptions& common) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  const std::vector<CredentialVersion> versions = vault.history(user_context(common), common.name);
  if (common.json) {
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const CredentialVersion& version : versions) {
      array.push_back({{"version", version.version},
                       {"updated_at", format_timestamp(version.updated_at)},
                       {"key_id", version.key_id},
                       {"current", version.current}});
    }
    print_json({{"name", common.name}, {"versions", array}});
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const CredentialVersion& version : versions) {
    rows.push_back({std::to_string(version.version), short_timestamp(version.updated_at),
                    std::to_string(version.key_id), version.current ? "current" : ""});
  }
  print_table({"VERSION", "UPDATED (UTC)", "DATA KEY", ""}, rows);
}

struct RollbackOptions {
  std::uint64_t to = 0;
};

void run_rollback(const CommonOptions& common, const RollbackOptions& options) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  const std::uint64_t version = vault.rollback(user_context(common), common.name, options.to);
  if (common.json) {
    print_json({{"name", common.name}, {"rolled_back_to", options.to}, {"version", version}});
    return;
  }
  fmt::print("Rolled back {} to version {}: it is now current again as version {}.\n",
             printable(common.name), options.to, version);
}

}  // namespace

Command add_history_command(CLI::App& root, CommonOptions& common) {
  CLI::App* command = root.add_subcommand(
      "history", "List the kept versions of a credential with their times (no passwords)");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_name_option(*command, common, /*required=*/true);
  add_json_flag(*command, common);
  return {command, [&common] { run_history(common); }};
}

Command add_rollback_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<RollbackOptions>();
  CLI::App* command = root.add_subcommand(
      "rollback", "Make an earlier version of a credential current again (as a new version)");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_name_option(*command, common, /*required=*/true);
  command->add_option("--to", options->to, "The version to go back to (see `history`)")
      ->required()
      ->check(CLI::PositiveNumber);
  add_json_flag(*command, common);
  return {command, [options, &common] { run_rollback(common, *options); }};
}

}  // namespace credentials::cli
