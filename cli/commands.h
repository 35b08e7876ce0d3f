// The verbs of credential_manager. Each add_*_command registers a CLI11
// subcommand on `root` and returns what to run when that verb was chosen.
// Verbs are thin: parse, call the public API, print. They report failure by
// throwing (credentials::Error or CommandError); main.cc turns that into the
// exit code and message.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "common_options.h"

namespace credentials::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

// Registers the verbs on `root` and returns them. When `chosen` (argv[1]) names
// a verb, only that one is registered: a process runs one verb, and CLI11's
// options for all of them cost ~2 million instructions and ~130 KB of fresh
// heap pages, a sixth of a whole `list`. Otherwise (--help, --version, a typo)
// every verb is, so help and errors list them all. `common` as below.
std::vector<Command> add_commands(CLI::App& root, CommonOptions& common, std::string_view chosen);

// `common` outlives parsing and running; only one verb runs per process, so
// every verb binds its shared options to the same object.
Command add_add_command(CLI::App& root, CommonOptions& common);
Command add_list_command(CLI::App& root, CommonOptions& common);
Command add_show_command(CLI::App& root, CommonOptions& common);
Command add_update_command(CLI::App& root, CommonOptions& common);
Command add_delete_command(CLI::App& root, CommonOptions& common);
Command add_test_command(CLI::App& root, CommonOptions& common);
Command add_run_command(CLI::App& root, CommonOptions& common);
Command add_keygen_command(CLI::App& root);

// Versions of one credential (history_commands.cc).
Command add_history_command(CLI::App& root, CommonOptions& common);
Command add_rollback_command(CLI::App& root, CommonOptions& common);
// The audit trail: `audit`, `audit verify`, `audit head` (audit_commands.cc).
Command add_audit_command(CLI::App& root, CommonOptions& common);

// Vault-wide verbs: whoever holds the master key runs them; no --user.
Command add_rotate_master_key_command(CLI::App& root, CommonOptions& common);  // key_commands.cc
Command add_rotate_data_key_command(CLI::App& root, CommonOptions& common);
Command add_reencrypt_command(CLI::App& root, CommonOptions& common);
Command add_keys_command(CLI::App& root, CommonOptions& common);
Command add_backup_command(CLI::App& root, CommonOptions& common);  // backup_commands.cc
Command add_restore_command(CLI::App& root, CommonOptions& common);
Command add_verify_command(CLI::App& root, CommonOptions& common);
Command add_import_legacy_command(CLI::App& root, CommonOptions& common);  // import_command.cc
Command add_init_command(CLI::App& root, CommonOptions& common);           // store_commands.cc
Command add_migrate_store_command(CLI::App& root, CommonOptions& common);

}  // namespace credentials::cli
