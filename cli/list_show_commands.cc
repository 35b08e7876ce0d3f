// `list` and `show`: the read-only verbs.

#include <memory>
#include <optional>

#include <fmt/format.h>

#include "commands.h"
#include "output.h"

namespace credentials::cli {
namespace {

void run_list(const CommonOptions& common) {
  const UserContext user = user_context(common);
  Vault vault = open_vault(common, IfNoVault::kFail);
  const std::vector<CredentialInfo> credentials = vault.list_credentials(user);
  if (common.json) {
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const CredentialInfo& info : credentials) array.push_back(to_json(info));
    print_json(array);
    return;
  }
  if (credentials.empty()) {
    fmt::print("No credentials for user {}.\n", printable(common.user));
    return;
  }
  print_credential_table(credentials, user.is_admin());
}

struct ShowOptions {
  bool reveal = false;
};

void run_show(const CommonOptions& common, const ShowOptions& options) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  const Credential credential = fetch_credential(vault, common);
  if (common.json) {
    nlohmann::ordered_json document = to_json(credential);
    if (options.reveal) document["password"] = credential.password.reveal();
    print_json(document);
    return;
  }
  std::optional<std::string_view> revealed;
  if (options.reveal) revealed = credential.password.reveal();
  print_credential_fields(credential, revealed);
}

}  // namespace

Command add_list_command(CLI::App& root, CommonOptions& common) {
  CLI::App* command = root.add_subcommand(
      "list", "List credentials (yours; every user's for --roles admin), without passwords");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_json_flag(*command, common);
  return {command, [&common] { run_list(common); }};
}

Command add_show_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<ShowOptions>();
  CLI::App* command =
      root.add_subcommand("show", "Show every field of a credential, the password masked");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_name_option(*command, common, /*required=*/true);
  add_owner_option(*command, common);
  command->add_flag("--reveal", options->reveal, "Print the password itself");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_show(common, *options); }};
}

}  // namespace credentials::cli
