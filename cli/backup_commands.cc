// `backup`, `restore` and `verify`: a consistent snapshot of the vault in one
// file, putting one back into an empty vault directory, and checking a vault
// or a backup end to end. Vault-wide: no --user.

#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "exit_codes.h"
#include "output.h"

namespace credentials::cli {
namespace {

struct BackupOptions {
  std::string out;
  bool force = false;
};

void run_backup(const CommonOptions& common, const BackupOptions& options) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  try {
    vault.backup(options.out, options.force);
  } catch (const AlreadyExistsError& e) {
    throw CommandError(ExitCode::kAlreadyExists, e.what(),
                       "write the backup to a new file, or pass --force to replace that one");
  }
  if (common.json) {
    print_json({{"backup", options.out}});
    return;
  }
  fmt::print("Backup written to {}.\n", printable(options.out));
  note("It is encrypted and safe to copy anywhere; restoring it needs this vault's master key.");
}

struct RestoreOptions {
  std::string from;
  bool force = false;
};

void run_restore(const CommonOptions& common, const RestoreOptions& options) {
  // --vault-url or CREDENTIAL_VAULT_URL alike (an explicit --vault-dir wins
  // over the variable, as for every verb).
  const VaultOptions target = vault_options(common);
  if (!target.url.empty()) {
    throw CommandError(ExitCode::kUsage,
                       "restore writes an embedded vault directory, not a PostgreSQL vault "
                       "(--vault-url / CREDENTIAL_VAULT_URL): nothing was restored",
                       "restore into --vault-dir DIR, then copy it with: credential_manager "
                       "migrate-store --from DIR --to URL");
  }
  try {
    restore_vault(options.from, target.directory, target.master_key, options.force);
  } catch (const AlreadyExistsError&) {
    throw CommandError(ExitCode::kAlreadyExists,
                       fmt::format("'{}' already holds a vault: nothing was restored",
                                   printable(target.directory.string())),
                       "restore into an empty directory (--vault-dir DIR), or pass --force to "
                       "replace the vault there");
  }
  if (common.json) {
    print_json({{"restored", true}, {"vault_dir", target.directory.string()}});
    return;
  }
  fmt::print("Restored {} into '{}' (checked with the master key first).\n",
             printable(options.from), printable(target.directory.string()));
}

struct VerifyOptions {
  std::string backup;
};

void run_verify(const CommonOptions& common, const VerifyOptions& options) {
  VerifyReport report;
  std::string what;
  if (!options.backup.empty()) {
    report = verify_backup(options.backup, master_key_from_environment());
    what = fmt::format("the backup {}", printable(options.backup));
  } else {
    Vault vault = open_vault(common, IfNoVault::kFail);
    report = vault.verify();
    what = "the vault";
  }
  if (common.json) {
    print_json({{"ok", report.ok()},
                {"credentials", report.credentials},
                {"versions", report.versions},
                {"problems", report.problems},
                {"audit",
                 {{"ok", report.audit.ok},
                  {"events", report.audit.events},
                  {"first_bad_seq", report.audit.first_bad_seq},
                  {"problem", report.audit.problem}}}});
  } else {
    fmt::print("{} credentials, {} stored versions, {} audit events checked.\n",
               report.credentials, report.versions, report.audit.events);
    for (const std::string& problem : report.problems) {
      fmt::print("problem: {}\n", printable(problem));
    }
    if (!report.audit.ok) {
      fmt::print("problem: the audit chain is broken at event {}: {}\n", report.audit.first_bad_seq,
                 printable(report.audit.problem));
    }
    if (report.ok()) fmt::print("OK: {} verifies.\n", what);
  }
  if (!report.ok()) {
    const std::size_t count = report.problems.size() + (report.audit.ok ? 0 : 1);
    throw CommandError(ExitCode::kDecryptionFailed,
                       fmt::format("{} does not verify: {} problem{}", what, count,
                                   count == 1 ? "" : "s"),
                       "restore the vault from a backup that verifies");
  }
}

}  // namespace

Command add_backup_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<BackupOptions>();
  CLI::App* command = root.add_subcommand(
      "backup", "Write a consistent snapshot of the vault to one file (still encrypted)");
  add_version_flag(*command);
  add_vault_location_options(*command, common);
  command
      ->add_option("-o,--out", options->out,
                   "The backup file to write (created 0600 beside it, then renamed into place); an "
                   "existing file is replaced only if it is a backup of this vault")
      ->required();
  command->add_flag("--force", options->force,
                    "Replace FILE even if it is not a backup of this vault");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_backup(common, *options); }};
}

Command add_restore_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<RestoreOptions>();
  CLI::App* command = root.add_subcommand(
      "restore",
      "Restore a backup into an empty vault directory (--vault-dir). The backup must be a vault "
      "that this master key opens and that verifies, or nothing is written. With --force a vault "
      "there is replaced in one transaction under its write lock: a write by another process "
      "finishes before the restore (and is replaced), or waits and goes into the restored vault");
  add_version_flag(*command);
  add_vault_location_options(*command, common);
  command->add_option("--from", options->from, "The backup file")->required();
  command->add_flag("--force", options->force, "Replace the vault the directory already holds");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_restore(common, *options); }};
}

Command add_verify_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<VerifyOptions>();
  CLI::App* command = root.add_subcommand(
      "verify",
      "Check every record under its key and place, the indexes and the audit chain "
      "(exit 5 with the problems listed)");
  add_version_flag(*command);
  add_vault_location_options(*command, common);
  command->add_option("--backup", options->backup, "Check this backup file instead of the vault");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_verify(common, *options); }};
}

}  // namespace credentials::cli
