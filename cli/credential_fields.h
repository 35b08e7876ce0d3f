// The credential fields that `add` and `update` take as flags, and the three
// ways a password arrives: --password-stdin, --password (visible in the
// process list, so it warns), or a no-echo prompt asked twice.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "credentials/credentials.h"
#include "terminal.h"

namespace credentials::cli {

inline constexpr std::string_view kDbTypes[] = {"postgres", "mysql", "mongodb", "redis", "sqlite"};
inline constexpr std::string_view kSslModes[] = {"disable", "allow",     "prefer",
                                                 "require", "verify-ca", "verify-full"};

// --db-type, --host, --port, --database, --username, --description,
// --ssl-mode, --connection-timeout. given() tells which were on the command line.
struct FieldOptions {
  std::string db_type = "postgres";
  std::string host;
  int port = 0;
  std::string database;
  std::string username;
  std::string description;
  std::string ssl_mode;
  int connection_timeout = 30;

  CLI::Option* db_type_option = nullptr;
  CLI::Option* host_option = nullptr;
  CLI::Option* port_option = nullptr;
  CLI::Option* database_option = nullptr;
  CLI::Option* username_option = nullptr;
  CLI::Option* description_option = nullptr;
  CLI::Option* ssl_mode_option = nullptr;
  CLI::Option* connection_timeout_option = nullptr;

  [[nodiscard]] static bool given(const CLI::Option* option) {
    return option != nullptr && option->count() > 0;
  }
  [[nodiscard]] bool any_given() const;
};

void add_field_options(CLI::App& command, FieldOptions& fields);

struct PasswordOptions {
  bool from_stdin = false;
  std::string on_command_line;
  CLI::Option* stdin_option = nullptr;
  CLI::Option* command_line_option = nullptr;

  [[nodiscard]] bool any_given() const {
    return from_stdin || (command_line_option != nullptr && command_line_option->count() > 0);
  }
};

// --password-stdin and --password (mutually exclusive).
void add_password_options(CLI::App& command, PasswordOptions& password);

// The password from --password-stdin or --password (warning about the latter);
// nullopt when neither was given.
[[nodiscard]] std::optional<SecretString> password_from_options(PasswordOptions& password);

// Asks twice without echo; throws CommandError(kUsage) when the answers differ
// or the password is empty.
[[nodiscard]] SecretString prompt_new_password(Terminal& terminal);

// Throws CommandError(kUsage) for an empty password: a database credential
// without one is almost always a mistake (an empty line piped in).
void require_non_empty(const SecretString& password);

}  // namespace credentials::cli
