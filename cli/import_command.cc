// `import-legacy`: bring the credentials of a Python vault
// (.credentials/vault.enc) into this vault, with their owners, fields and
// timestamps, and print what happened to each.

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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
  bool skip_invalid = false;
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

// The library's refusal names each credential that cannot be imported on a
// line of its own ("\n  <legacy id>: <reason>"): each is printed on its own
// line (escaped), and the error says how to go on.
[[noreturn]] void refuse_invalid(const InvalidArgumentError& error) {
  const std::string_view message = error.what();
  const std::size_t first_break = message.find('\n');
  constexpr std::string_view kRefusal = "cannot be imported, so none was:";
  if (first_break == std::string_view::npos ||
      message.substr(0, first_break).find(kRefusal) == std::string_view::npos) {
    throw;
  }
  std::string_view rest = message.substr(first_break + 1);
  while (!rest.empty()) {
    const std::size_t end = std::min(rest.find('\n'), rest.size());
    std::string_view line = rest.substr(0, end);
    while (line.starts_with(' ')) line.remove_prefix(1);
    fmt::print(stderr, "cannot import {}\n", printable(line));
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  std::string header(message.substr(0, first_break));
  header.pop_back();  // the colon
  throw CommandError(ExitCode::kUsage, header,
                     "correct those credentials in the Python version and import again, or "
                     "import the others with --skip-invalid");
}

void run_import(const CommonOptions& common, const ImportOptions& options) {
  const SecretString key = legacy_key();
  // A dry run writes nothing, not even a new vault.
  Vault vault = open_vault(common, options.dry_run ? IfNoVault::kFail : IfNoVault::kCreate);
  ImportReport report;
  try {
    report = vault.import_legacy(options.from, key, options.dry_run, options.skip_invalid);
  } catch (const InvalidArgumentError& error) {
    refuse_invalid(error);
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
      nlohmann::ordered_json entry = {{"legacy_id", item.legacy_id},
                                      {"owner", item.owner},
                                      {"legacy_name", item.legacy_name},
                                      {"name", item.name},
                                      {"status", item.status}};
      if (!item.reason.empty()) entry["reason"] = item.reason;
      items.push_back(std::move(entry));
    }
    print_json({{"dry_run", report.dry_run},
                {"imported", report.imported},
                {"renamed", report.renamed},
                {"already_imported", report.skipped},
                {"invalid", report.invalid},
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
  for (const ImportedCredential& item : report.credentials) {
    if (item.status == "invalid") {
      fmt::print("not imported {}: {}\n", printable(item.legacy_id), printable(item.reason));
    }
  }
  fmt::print("{} {} ({} renamed), {} already imported", report.imported,
             report.dry_run ? "would be imported" : "imported", report.renamed, report.skipped);
  if (report.invalid > 0) fmt::print(", {} invalid and skipped", report.invalid);
  fmt::print(".\n");
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
  command->add_flag("--skip-invalid", options->skip_invalid,
                    "Import the credentials this vault can hold and report the others (by "
                    "legacy id and reason); without it one such credential imports nothing");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_import(common, *options); }};
}

}  // namespace credentials::cli
