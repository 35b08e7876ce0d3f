// The options every credential verb shares (--user, --roles, --vault-dir,
// --vault-url, --name, --owner, --json) and the two things built from them:
// the caller's UserContext and the opened Vault.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "credentials/credentials.h"

namespace credentials::cli {

struct CommonOptions {
  std::string user;
  std::vector<std::string> roles{"user"};
  std::string vault_dir;  // empty: CREDENTIAL_VAULT_DIR, else ./.credentials
  // A shared vault on PostgreSQL; empty: CREDENTIAL_VAULT_URL, else the directory.
  // WARNING: may hold a password: never print it, never put it in a message.
  std::string vault_url;
  std::string name;       // a credential name, or a credential id
  std::string owner;      // another user's namespace (administrators); empty: --user
  bool json = false;
};

// --version on a verb, as on the program itself.
void add_version_flag(CLI::App& command);
// --user (required), --roles and the vault location options.
void add_user_options(CLI::App& command, CommonOptions& options);
// --vault-dir and --vault-url (at most one of them): where the vault is.
void add_vault_location_options(CLI::App& command, CommonOptions& options);
// --name NAME_OR_ID; `required` is false only for `add`, which can prompt.
CLI::Option* add_name_option(CLI::App& command, CommonOptions& options, bool required);
// --owner OWNER: reach another user's credential (administrators only).
void add_owner_option(CLI::App& command, CommonOptions& options);
void add_json_flag(CLI::App& command, CommonOptions& options);

[[nodiscard]] UserContext user_context(const CommonOptions& options);

// Where the vault named by the options and the environment is, and the
// master key (vault_options_from_environment, then --vault-dir / --vault-url).
[[nodiscard]] VaultOptions vault_options(const CommonOptions& options);

// "in 'DIR'" or "at the PostgreSQL vault": the vault's location for messages,
// never the URL itself (it may hold a password).
[[nodiscard]] std::string describe_location(const VaultOptions& options);

// True for a postgresql:// or postgres:// URL (a shared vault), false for a
// directory.
[[nodiscard]] bool is_vault_url(std::string_view location);

enum class IfNoVault { kCreate, kFail };
// Opens the vault from the environment (vault_options_from_environment), in
// --vault-dir or at --vault-url when given. Only `add` creates a vault: the other verbs fail
// with ExitCode::kNotFound rather than leave an empty vault behind a typo.
[[nodiscard]] Vault open_vault(const CommonOptions& options, IfNoVault if_no_vault);

// The credential named by --name (and --owner when given).
[[nodiscard]] Credential fetch_credential(Vault& vault, const CommonOptions& options);

// " --vault-dir DIR" when --vault-dir was given (for hints that show a
// command to run), else "".
[[nodiscard]] std::string vault_dir_flag(const CommonOptions& options);

}  // namespace credentials::cli
