// `add`: store a new credential. Every field not given as a flag is asked for
// on the terminal (the password twice, without echo); with no terminal, or
// with --no-prompt, missing required fields are a usage error instead.

#include <charconv>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "credential_fields.h"
#include "exit_codes.h"
#include "output.h"
#include "terminal.h"

namespace credentials::cli {
namespace {

struct AddOptions {
  FieldOptions fields;
  PasswordOptions password;
  CLI::Option* name_option = nullptr;
  bool no_prompt = false;
};

// A wrong answer is asked again this many times before giving up, so that a
// script feeding the terminal cannot loop forever.
constexpr int kAttempts = 3;

std::string ask_with_default(Terminal& terminal, std::string_view question,
                             std::string_view default_value) {
  const std::string prompt = default_value.empty()
                                 ? fmt::format("{}: ", question)
                                 : fmt::format("{} [{}]: ", question, default_value);
  std::string answer = terminal.ask(prompt);
  return answer.empty() ? std::string(default_value) : answer;
}

std::string ask_required(Terminal& terminal, std::string_view question) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::string answer = terminal.ask(fmt::format("{}: ", question));
    if (!answer.empty()) return answer;
    terminal.write("  an answer is required\n");
  }
  throw CommandError(ExitCode::kUsage, fmt::format("no answer for '{}'", question));
}

std::string ask_choice(Terminal& terminal, std::string_view question,
                       std::span<const std::string_view> choices, std::string_view default_value) {
  const std::string full_question = fmt::format("{} ({})", question, fmt::join(choices, ", "));
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::string answer = ask_with_default(terminal, full_question, default_value);
    if (answer.empty()) return answer;  // only reachable when the default is empty
    for (std::string_view choice : choices) {
      if (answer == choice) return answer;
    }
    terminal.write(fmt::format("  choose one of: {}\n", fmt::join(choices, ", ")));
  }
  throw CommandError(ExitCode::kUsage, fmt::format("no valid answer for '{}'", question));
}

int ask_number(Terminal& terminal, std::string_view question, int default_value, int min, int max) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const std::string answer = ask_with_default(terminal, question, std::to_string(default_value));
    int value = 0;
    const auto [end, error] = std::from_chars(answer.data(), answer.data() + answer.size(), value);
    if (error == std::errc() && end == answer.data() + answer.size() && value >= min &&
        value <= max) {
      return value;
    }
    terminal.write(fmt::format("  enter a number from {} to {}\n", min, max));
  }
  throw CommandError(ExitCode::kUsage, fmt::format("no valid answer for '{}'", question));
}

// Without a terminal nothing can be asked: name every missing flag at once,
// before the vault is touched.
void require_flags_for_non_interactive(const AddOptions& options) {
  std::vector<std::string_view> missing;
  if (!FieldOptions::given(options.name_option)) missing.push_back("--name");
  if (options.fields.db_type != "sqlite") {
    if (!FieldOptions::given(options.fields.host_option)) missing.push_back("--host");
    if (!FieldOptions::given(options.fields.username_option)) missing.push_back("--username");
  }
  if (!FieldOptions::given(options.fields.database_option)) missing.push_back("--database");
  if (options.fields.db_type != "sqlite" && !options.password.any_given()) {
    missing.push_back("--password-stdin");
  }
  if (missing.empty()) return;
  throw CommandError(
      ExitCode::kUsage,
      fmt::format("missing {} (there is no terminal to ask on{})", fmt::join(missing, ", "),
                  options.no_prompt ? ", and --no-prompt was given" : ""),
      "pass the missing fields as flags; see credential_manager add --help");
}

// Refuses an existing name before the user types anything more.
void refuse_existing_name(Vault& vault, const CommonOptions& common) {
  const UserContext user = user_context(common);
  try {
    (void)vault.get_credential(user, user.user_id, common.name);
  } catch (const CredentialNotFoundError&) {
    return;
  }
  throw AlreadyExistsError(
      fmt::format("credential '{}' already exists for user '{}'", common.name, common.user));
}

void ask_for_missing_fields(Terminal& terminal, Vault& vault, CommonOptions& common,
                            AddOptions& options) {
  FieldOptions& fields = options.fields;
  if (!FieldOptions::given(options.name_option)) {
    common.name = ask_required(terminal, "Credential name");
  }
  refuse_existing_name(vault, common);
  if (!FieldOptions::given(fields.db_type_option)) {
    fields.db_type = ask_choice(terminal, "Database type", kDbTypes, "postgres");
  }
  if (fields.db_type == "sqlite") {
    if (!FieldOptions::given(fields.database_option)) {
      fields.database = ask_required(terminal, "SQLite database file");
    }
  } else {
    if (!FieldOptions::given(fields.host_option)) {
      fields.host = ask_with_default(terminal, "Host", "localhost");
    }
    if (!FieldOptions::given(fields.port_option)) {
      fields.port = ask_number(terminal, "Port", default_port(fields.db_type), 1, 65535);
    }
    if (!FieldOptions::given(fields.database_option)) {
      fields.database = ask_required(terminal, "Database name");
    }
    if (!FieldOptions::given(fields.username_option)) {
      fields.username = ask_required(terminal, "Username");
    }
    if (fields.db_type == "postgres" && !FieldOptions::given(fields.ssl_mode_option)) {
      fields.ssl_mode =
          ask_choice(terminal, "SSL mode, Enter for the driver's default", kSslModes, "");
    }
  }
  if (!FieldOptions::given(fields.description_option)) {
    fields.description = ask_with_default(terminal, "Description (optional)", "");
  }
  if (!FieldOptions::given(fields.connection_timeout_option)) {
    fields.connection_timeout = ask_number(terminal, "Connection timeout in seconds", 30, 1, 3600);
  }
}

void run_add(CommonOptions& common, AddOptions& options) {
  std::optional<Terminal> terminal;
  if (!options.no_prompt) terminal = Terminal::open();
  if (!terminal) require_flags_for_non_interactive(options);

  Vault vault = open_vault(common, IfNoVault::kCreate);
  if (terminal) ask_for_missing_fields(*terminal, vault, common, options);

  FieldOptions& fields = options.fields;
  SecretString password;
  if (std::optional<SecretString> given = password_from_options(options.password)) {
    password = std::move(*given);
    if (fields.db_type != "sqlite") require_non_empty(password);
  } else if (fields.db_type != "sqlite") {
    password = prompt_new_password(*terminal);  // a terminal exists: checked above
  }

  const std::string id = vault.store_credential(user_context(common),
                                                NewCredential{
                                                    .name = common.name,
                                                    .db_type = fields.db_type,
                                                    .host = fields.host,
                                                    .port = fields.port,
                                                    .database = fields.database,
                                                    .username = fields.username,
                                                    .password = std::move(password),
                                                    .description = fields.description,
                                                    .ssl_mode = fields.ssl_mode,
                                                    .connection_timeout = fields.connection_timeout,
                                                });
  if (common.json) {
    print_json({{"id", id}, {"owner", common.user}, {"name", common.name}, {"version", 1}});
  } else {
    fmt::print("Stored credential {}/{} (id {}).\n", printable(common.user), printable(common.name),
               printable(id));
  }
}

}  // namespace

Command add_add_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<AddOptions>();
  CLI::App* command = root.add_subcommand(
      "add", "Store a new credential; asks on the terminal for every field not given");
  add_version_flag(*command);
  add_user_options(*command, common);
  options->name_option = add_name_option(*command, common, /*required=*/false);
  add_field_options(*command, options->fields);
  add_password_options(*command, options->password);
  command->add_flag("--no-prompt", options->no_prompt,
                    "Never ask on the terminal: a missing required field is a usage error");
  add_json_flag(*command, common);
  return {command, [options, &common] { run_add(common, *options); }};
}

}  // namespace credentials::cli
