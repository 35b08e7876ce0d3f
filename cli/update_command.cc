// `update`: rotate a credential's password and/or change its other fields, as
// one new version (Vault::update_credential).

#include <memory>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "commands.h"
#include "credential_fields.h"
#include "exit_codes.h"
#include "output.h"
#include "terminal.h"

namespace credentials::cli {
namespace {

struct UpdateOptions {
  FieldOptions fields;
  PasswordOptions password;
  std::uint64_t if_version = 0;
  CLI::Option* if_version_option = nullptr;
};

CredentialChanges changes_from_flags(const FieldOptions& fields) {
  CredentialChanges changes;
  if (FieldOptions::given(fields.db_type_option)) changes.db_type = fields.db_type;
  if (FieldOptions::given(fields.host_option)) changes.host = fields.host;
  if (FieldOptions::given(fields.port_option)) changes.port = fields.port;
  if (FieldOptions::given(fields.database_option)) changes.database = fields.database;
  if (FieldOptions::given(fields.username_option)) changes.username = fields.username;
  if (FieldOptions::given(fields.description_option)) changes.description = fields.description;
  if (FieldOptions::given(fields.ssl_mode_option)) changes.ssl_mode = fields.ssl_mode;
  if (FieldOptions::given(fields.connection_timeout_option)) {
    changes.connection_timeout = fields.connection_timeout;
  }
  return changes;
}

void run_update(const CommonOptions& common, UpdateOptions& options) {
  // Like `passwd`: with nothing else to change, the new password is asked for.
  const bool prompt_for_password = !options.password.any_given() && !options.fields.any_given();
  std::optional<Terminal> terminal;
  if (prompt_for_password) {
    terminal = Terminal::open();
    if (!terminal) {
      throw CommandError(ExitCode::kUsage,
                         "nothing to change, and no terminal to ask for a new password on",
                         "pass --password-stdin, or the fields to change (--host, --port, ...)");
    }
  }

  const UserContext user = user_context(common);
  Vault vault = open_vault(common, IfNoVault::kFail);
  // Resolved first so that a wrong name fails before anyone types a password,
  // and so that --owner works: the update itself goes by credential id.
  const Credential current = fetch_credential(vault, common);

  CredentialChanges changes = changes_from_flags(options.fields);
  if (std::optional<SecretString> given = password_from_options(options.password)) {
    require_non_empty(*given);
    changes.password = std::move(*given);
  } else if (prompt_for_password) {
    terminal->write(fmt::format("New password for {}.\n", display_name(current)));
    changes.password = prompt_new_password(*terminal);
  }

  std::optional<std::uint64_t> expected_version;
  if (FieldOptions::given(options.if_version_option)) expected_version = options.if_version;
  const std::uint64_t version =
      vault.update_credential(user, current.credential_id, std::move(changes), expected_version);
  if (common.json) {
    print_json({{"id", current.credential_id},
                {"owner", current.owner},
                {"name", current.name},
                {"version", version}});
  } else {
    fmt::print("Updated credential {}: now version {}.\n", display_name(current), version);
  }
}

}  // namespace

Command add_update_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<UpdateOptions>();
  CLI::App* command = root.add_subcommand(
      "update",
      "Rotate a credential's password (asked twice, or --password-stdin) and/or change fields");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_name_option(*command, common, /*required=*/true);
  add_owner_option(*command, common);
  add_password_options(*command, options->password);
  add_field_options(*command, options->fields);
  options->if_version_option =
      command->add_option("--if-version", options->if_version,
                          "Only update if the credential is still at this version (else exit 10)");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_update(common, *options); }};
}

}  // namespace credentials::cli
