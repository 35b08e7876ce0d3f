// `delete`: remove a credential and every version of it, after a typed
// confirmation (the credential's name) unless -y/--yes.

#include <memory>
#include <optional>

#include <fmt/format.h>

#include "commands.h"
#include "exit_codes.h"
#include "output.h"
#include "terminal.h"

namespace credentials::cli {
namespace {

struct DeleteOptions {
  bool yes = false;
};

void confirm_by_typed_name(const CredentialInfo& credential) {
  std::optional<Terminal> terminal = Terminal::open();
  if (!terminal) {
    throw CommandError(ExitCode::kUsage,
                       "refusing to delete without confirmation: there is no terminal to ask on",
                       "pass -y/--yes to delete without asking");
  }
  terminal->write(
      fmt::format("Delete credential {} ({}) and all its versions? This cannot be undone.\n",
                  display_name(credential), describe_target(credential)));
  const std::string answer =
      terminal->ask(fmt::format("Type the name '{}' to confirm: ", printable(credential.name)));
  if (answer != credential.name) {
    throw CommandError(ExitCode::kFailure, "not deleted: the name typed did not match");
  }
}

void run_delete(const CommonOptions& common, const DeleteOptions& options) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  // Resolved before asking, so that nobody confirms the deletion of a
  // credential that does not exist.
  const Credential credential = fetch_credential(vault, common);
  if (!options.yes) confirm_by_typed_name(credential);
  vault.delete_credential(user_context(common), credential.credential_id);
  if (common.json) {
    print_json({{"id", credential.credential_id},
                {"owner", credential.owner},
                {"name", credential.name},
                {"deleted", true}});
  } else {
    fmt::print("Deleted credential {}.\n", display_name(credential));
  }
}

}  // namespace

Command add_delete_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<DeleteOptions>();
  CLI::App* command = root.add_subcommand(
      "delete", "Delete a credential and all its versions (asks you to type its name)");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_name_option(*command, common, /*required=*/true);
  add_owner_option(*command, common);
  command->add_flag("-y,--yes", options->yes, "Delete without asking for confirmation");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_delete(common, *options); }};
}

}  // namespace credentials::cli
