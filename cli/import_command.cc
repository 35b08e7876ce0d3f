// `import-legacy`: bring the credentials of a Python vault
// (.credentials/vault.enc) into this vault, with their owners, fields and
// timestamps, and print what happened to each.

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "exit_codes.h"
#include "key_checks.h"
#include "output.h"
#include "terminal.h"

namespace credentials::cli {
namespace {

struct ImportOptions {
  std::string from;
  bool dry_run = false;
};

// CREDENTIAL_MASTER_KEY_LEGACY, else asked once on the terminal (a wrong key
// imports nothing, so there is no need to type it twice).
SecretString legacy_key() {
  if (const char* key = std::getenv("CREDENTIAL_MASTER_KEY_LEGACY"); key && *key) {
    SecretString legacy(key);
    warn_if_mistyped(legacy.reveal(), "CREDENTIAL_MASTER_KEY_LEGACY");
    return legacy;
  }
  std::optional<Terminal> terminal = Terminal::open();
  if (!terminal) {
    throw CommandError(ExitCode::kUsage,
                       "no legacy key: set CREDENTIAL_MASTER_KEY_LEGACY to the Python version's "
                       "CREDENTIAL_MASTER_KEY (there is no terminal to ask on)");
  }
  return terminal->ask_secret("The Python vault's CREDENTIAL_MASTER_KEY: ");
}

std::string status_text(const std::string& status) {
  if (status == "already_imported") return "already imported";
  return status;
}

void run_import(const CommonOptions& common, const ImportOptions& options) {
  const SecretString key = legacy_key();
  // A dry run writes nothing, not even a new vault.
  Vault vault = open_vault(common, options.dry_run ? IfNoVault::kFail : IfNoVault::kCreate);
  ImportReport report;
  try {
    report = vault.import_legacy(options.from, key, options.dry_run);
  } catch (const DecryptionFailedError& error) {
    // The generic hint would talk about this vault's key; the legacy one is meant.
    throw CommandError(ExitCode::kDecryptionFailed, error.what(),
                       "CREDENTIAL_MASTER_KEY_LEGACY must be the CREDENTIAL_MASTER_KEY the Python "
                       "version used for that file (its 44-character key or its passphrase); "
                       "nothing was imported");
  }
  if (common.json) {
    nlohmann::ordered_json items = nlohmann::ordered_json::array();
    for (const ImportedCredential& item : report.credentials) {
      items.push_back({{"legacy_id", item.legacy_id},
                       {"owner", item.owner},
                       {"legacy_name", item.legacy_name},
                       {"name", item.name},
                       {"status", item.status}});
    }
    print_json({{"dry_run", report.dry_run},
                {"imported", report.imported},
                {"renamed", report.renamed},
                {"already_imported", report.skipped},
                {"credentials", items}});
    return;
  }
  if (report.dry_run) fmt::print("Dry run: nothing was written.\n");
  std::vector<std::vector<std::string>> rows;
  for (const ImportedCredential& item : report.credentials) {
    std::string name = printable(item.owner) + "/" + printable(item.legacy_name);
    if (item.status == "renamed") name += " -> " + printable(item.owner) + "/" + printable(item.name);
    rows.push_back({status_text(item.status), name, printable(item.legacy_id)});
  }
  if (!rows.empty()) print_table({"STATUS", "CREDENTIAL", "LEGACY ID"}, rows);
  fmt::print("{} {} ({} renamed), {} already imported.\n", report.imported,
             report.dry_run ? "would be imported" : "imported", report.renamed, report.skipped);
}

}  // namespace

Command add_import_legacy_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<ImportOptions>();
  CLI::App* command = root.add_subcommand(
      "import-legacy",
      "Import the credentials of a Python vault (.credentials/vault.enc); the old key comes "
      "from CREDENTIAL_MASTER_KEY_LEGACY or is asked for");
  add_version_flag(*command);
  add_vault_location_options(*command, common);
  command->add_option("--from", options->from, "The Python vault file, PATH/.credentials/vault.enc")
      ->required();
  command->add_flag("--dry-run", options->dry_run, "Report what would be imported; write nothing");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_import(common, *options); }};
}

}  // namespace credentials::cli
