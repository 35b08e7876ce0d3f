// `init` and `migrate-store`: creating a vault explicitly (the schema, for a
// PostgreSQL vault), and copying a vault between a directory and PostgreSQL.
// URLs are never printed: they may hold a password.

#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "exit_codes.h"
#include "key_checks.h"
#include "output.h"

namespace credentials::cli {
namespace {

void run_init(const CommonOptions& common) {
  const VaultOptions options = vault_options(common);
  const bool created = init_vault(options);
  if (common.json) {
    print_json({{"created", created}, {"shared", !options.url.empty()}});
    return;
  }
  if (created) {
    fmt::print("Created a new vault {}.\n", describe_location(options));
    note("Keep the master key safe: the vault cannot be read without it.");
  } else {
    fmt::print("The vault {} already exists; the master key opens it and its schema is up to "
               "date.\n",
               describe_location(options));
  }
}

struct MigrateOptions {
  std::string from;
  std::string to;
};

// A --from/--to value: a PostgreSQL URL, or a directory.
VaultOptions location(const std::string& value, const SecretString& key) {
  VaultOptions options;
  if (is_vault_url(value)) {
    options.url = value;
  } else {
    options.directory = value;
  }
  options.master_key = key.clone();
  return options;
}

std::string describe(const std::string& value) {
  return is_vault_url(value) ? std::string("the PostgreSQL vault")
                             : fmt::format("'{}'", printable(value));
}

void run_migrate(const CommonOptions& common, const MigrateOptions& options) {
  const SecretString key = master_key();
  migrate_vault(location(options.from, key), location(options.to, key));
  if (common.json) {
    print_json({{"migrated", true}, {"verified", true}});
    return;
  }
  fmt::print("Copied the vault from {} to {} and verified the copy.\n", describe(options.from),
             describe(options.to));
  note("Point CREDENTIAL_VAULT_DIR / CREDENTIAL_VAULT_URL (or --vault-dir / --vault-url) at the "
       "new location; the source was left as it was.");
}

}  // namespace

Command add_init_command(CLI::App& root, CommonOptions& common) {
  CLI::App* command = root.add_subcommand(
      "init",
      "Create the vault (for --vault-url: the PostgreSQL schema), or check an existing one "
      "and apply pending schema migrations");
  add_version_flag(*command);
  add_vault_location_options(*command, common);
  add_json_flag(*command, common);
  return {command, [&common] { run_init(common); }};
}

Command add_migrate_store_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<MigrateOptions>();
  CLI::App* command = root.add_subcommand(
      "migrate-store",
      "Copy the vault between a directory and a PostgreSQL vault, verified (the target must "
      "hold no vault)");
  add_version_flag(*command);
  command->add_option("--from", options->from, "The source: a vault directory or postgresql://URL")
      ->required();
  command->add_option("--to", options->to, "The target: a vault directory or postgresql://URL")
      ->required();
  add_json_flag(*command, common);
  return {command, [options, &common] { run_migrate(common, *options); }};
}

}  // namespace credentials::cli
