#include "common_options.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "exit_codes.h"
#include "key_checks.h"

#ifndef CREDENTIALS_VERSION
#define CREDENTIALS_VERSION "unknown"
#endif

namespace credentials::cli {
namespace {

// Quotes a value for a shell command shown in a hint, only when it needs it.
std::string shell_quoted(const std::string& value) {
  const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '.' || c == '_' || c == '-' || c == '@' || c == ':';
  });
  if (plain) return value;
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

}  // namespace

void add_version_flag(CLI::App& command) {
  command.add_flag_callback(
      "--version", [] { throw CLI::CallForVersion("credential_manager " CREDENTIALS_VERSION, 0); },
      "Print the version and exit");
}

void add_user_options(CLI::App& command, CommonOptions& options) {
  command.add_option("-u,--user", options.user, "The user whose credentials to use (required)")
      ->required();
  command
      .add_option("--roles", options.roles,
                  "Comma-separated roles; admin or superuser reach every user's credentials")
      ->delimiter(',')
      ->default_str("user");
  add_vault_location_options(command, options);
}

void add_vault_location_options(CLI::App& command, CommonOptions& options) {
  CLI::Option* dir =
      command.add_option("--vault-dir", options.vault_dir,
                         "Vault directory (default: $CREDENTIAL_VAULT_DIR, else ./.credentials)");
  CLI::Option* url = command.add_option(
      "--vault-url", options.vault_url,
      "Shared vault on PostgreSQL, postgresql://... (default: $CREDENTIAL_VAULT_URL); "
      "prefer the variable: a URL with a password is visible in the process list");
  dir->excludes(url);
}

CLI::Option* add_name_option(CLI::App& command, CommonOptions& options, bool required) {
  CLI::Option* option =
      command.add_option("-n,--name", options.name, "Credential name (or credential id)");
  if (required) option->required();
  return option;
}

void add_owner_option(CLI::App& command, CommonOptions& options) {
  command.add_option("--owner", options.owner,
                     "The user who owns the credential, when it is not --user "
                     "(needs --roles admin)");
}

void add_json_flag(CLI::App& command, CommonOptions& options) {
  command.add_flag("--json", options.json,
                   "Print one JSON document on stdout and nothing else there");
}

UserContext user_context(const CommonOptions& options) {
  UserContext context;
  context.user_id = options.user;
  context.username = options.user;
  for (const std::string& role : options.roles) {
    if (!role.empty()) context.roles.push_back(role);
  }
  return context;
}

bool is_vault_url(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

VaultOptions vault_options(const CommonOptions& options) {
  VaultOptions vault_options = vault_options_from_environment();
  check_master_key(vault_options.master_key);
  if (!options.vault_dir.empty()) {
    // The flag names the vault explicitly: it wins over a shared vault
    // configured by CREDENTIAL_VAULT_URL too.
    vault_options.directory = options.vault_dir;
    vault_options.url.clear();
  }
  if (!options.vault_url.empty()) {
    if (!is_vault_url(options.vault_url)) {
      // Not quoted: a mistyped URL may still hold a password.
      throw CommandError(ExitCode::kUsage,
                         "--vault-url must start with postgresql:// or postgres://",
                         "for a vault directory use --vault-dir DIR");
    }
    vault_options.url = options.vault_url;
  }
  check_vault_permissions(vault_options);
  return vault_options;
}

std::string describe_location(const VaultOptions& options) {
  if (!options.url.empty()) return "at the PostgreSQL vault (--vault-url / CREDENTIAL_VAULT_URL)";
  return fmt::format("in '{}'", options.directory.string());
}

Vault open_vault(const CommonOptions& options, IfNoVault if_no_vault) {
  VaultOptions opened = vault_options(options);
  opened.create_if_missing = if_no_vault == IfNoVault::kCreate;
  const std::string where = describe_location(opened);
  const bool shared = !opened.url.empty();
  // The Python version's vault file: a Python project directory.
  const std::filesystem::path legacy = opened.directory / "vault.enc";
  try {
    return Vault::open(std::move(opened));
  } catch (const CredentialNotFoundError&) {
    std::error_code ec;
    if (!shared && std::filesystem::exists(legacy, ec)) {
      throw CommandError(
          ExitCode::kNotFound,
          fmt::format("there is no vault {}, only the Python version's {}", where, legacy.string()),
          fmt::format("import it once with: credential_manager import-legacy --from {}{}",
                      shell_quoted(legacy.string()), vault_dir_flag(options)));
    }
    throw CommandError(
        ExitCode::kNotFound, fmt::format("there is no vault {}", where),
        shared ? "create it with `credential_manager init --vault-url URL`, or check the URL's "
                 "database and ?schema="
               : "store a credential first with `credential_manager add` (or create the vault "
                 "with `credential_manager init`), or point --vault-dir (or "
                 "CREDENTIAL_VAULT_DIR) at your vault");
  }
}

Credential fetch_credential(Vault& vault, const CommonOptions& options) {
  const UserContext user = user_context(options);
  if (options.owner.empty()) return vault.get_credential(user, options.name);
  return vault.get_credential(user, options.owner, options.name);
}

std::string vault_dir_flag(const CommonOptions& options) {
  if (options.vault_dir.empty()) return {};
  return " --vault-dir " + shell_quoted(options.vault_dir);
}

}  // namespace credentials::cli
