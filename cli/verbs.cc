// The table of verbs, in the order --help lists them.

#include <array>

#include "commands.h"

namespace credentials::cli {
namespace {

struct Verb {
  std::string_view name;
  Command (*add)(CLI::App& root, CommonOptions& common);
};

constexpr std::array kVerbs = {
    Verb{"add", add_add_command},
    Verb{"list", add_list_command},
    Verb{"show", add_show_command},
    Verb{"update", add_update_command},
    Verb{"delete", add_delete_command},
    Verb{"test", add_test_command},
    Verb{"run", add_run_command},
    Verb{"keygen", [](CLI::App& root, CommonOptions&) { return add_keygen_command(root); }},
    Verb{"history", add_history_command},
    Verb{"rollback", add_rollback_command},
    Verb{"audit", add_audit_command},
    Verb{"rotate-master-key", add_rotate_master_key_command},
    Verb{"rotate-data-key", add_rotate_data_key_command},
    Verb{"reencrypt", add_reencrypt_command},
    Verb{"keys", add_keys_command},
    Verb{"backup", add_backup_command},
    Verb{"restore", add_restore_command},
    Verb{"verify", add_verify_command},
    Verb{"import-legacy", add_import_legacy_command},
    Verb{"init", add_init_command},
    Verb{"migrate-store", add_migrate_store_command},
};

}  // namespace

std::vector<Command> add_commands(CLI::App& root, CommonOptions& common, std::string_view chosen) {
  std::vector<Command> commands;
  for (const Verb& verb : kVerbs) {
    if (verb.name == chosen) {
      commands.push_back(verb.add(root, common));
      return commands;
    }
  }
  commands.reserve(kVerbs.size());
  for (const Verb& verb : kVerbs) commands.push_back(verb.add(root, common));
  return commands;
}

}  // namespace credentials::cli
