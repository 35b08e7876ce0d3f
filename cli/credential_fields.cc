#include "credential_fields.h"

#include <vector>

#include "exit_codes.h"
#include "output.h"

namespace credentials::cli {
namespace {

std::vector<std::string> as_strings(const auto& values) {
  return {std::begin(values), std::end(values)};
}

}  // namespace

bool FieldOptions::any_given() const {
  return given(db_type_option) || given(host_option) || given(port_option) ||
         given(database_option) || given(username_option) || given(description_option) ||
         given(ssl_mode_option) || given(connection_timeout_option);
}

void add_field_options(CLI::App& command, FieldOptions& fields) {
  fields.db_type_option = command.add_option("--db-type", fields.db_type, "Database type")
                              ->check(CLI::IsMember(as_strings(kDbTypes)));
  fields.host_option = command.add_option("--host", fields.host, "Database host");
  fields.port_option =
      command.add_option("--port", fields.port, "Port (default: the db type's standard port)")
          ->check(CLI::Range(1, 65535));
  fields.database_option = command.add_option("--database", fields.database,
                                              "Database name (for sqlite: the database file)");
  fields.username_option = command.add_option("--username", fields.username, "Database user");
  fields.description_option =
      command.add_option("--description", fields.description, "Free-text description");
  fields.ssl_mode_option =
      command.add_option("--ssl-mode", fields.ssl_mode, "libpq sslmode (default: driver's)")
          ->check(CLI::IsMember(as_strings(kSslModes)));
  fields.connection_timeout_option =
      command
          .add_option("--connection-timeout", fields.connection_timeout,
                      "Seconds to wait for a connection (default 30)")
          ->check(CLI::Range(1, 3600));
}

void add_password_options(CLI::App& command, PasswordOptions& password) {
  password.stdin_option =
      command.add_flag("--password-stdin", password.from_stdin,
                       "Read the password from standard input (one line; the newline is dropped)");
  password.command_line_option =
      command
          .add_option("--password", password.on_command_line,
                      "The password itself. WARNING: visible to every user in the process "
                      "list and kept in shell history; prefer --password-stdin or the prompt")
          ->excludes(password.stdin_option);
}

std::optional<SecretString> password_from_options(PasswordOptions& password) {
  if (password.from_stdin) return read_password_line_from_stdin();
  if (password.command_line_option->count() > 0) {
    warn(
        "--password is visible to other users in the process list and stays in your shell "
        "history; use --password-stdin or let the tool prompt for it");
    SecretString secret(std::move(password.on_command_line));  // wipes the option's copy
    return secret;
  }
  return std::nullopt;
}

SecretString prompt_new_password(Terminal& terminal) {
  SecretString first = terminal.ask_secret("Password: ");
  require_non_empty(first);
  SecretString second = terminal.ask_secret("Repeat password: ");
  if (!first.equals(second)) {
    throw CommandError(ExitCode::kUsage, "the two passwords do not match; nothing was changed");
  }
  return first;
}

void require_non_empty(const SecretString& password) {
  if (password.empty()) {
    throw CommandError(ExitCode::kUsage, "the password is empty; nothing was changed");
  }
}

}  // namespace credentials::cli
