// credential_manager: the command-line tool over the credentials library.
//
// main() hardens the process, parses the command line with CLI11, runs the
// chosen verb, and turns whatever the verb threw into the one exit code and
// message that docs/cli_reference.md documents.

#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "common_options.h"
#include "dotenv.h"
#include "exit_codes.h"
#include "hardening.h"
#include "output.h"

namespace credentials::cli {
namespace {

// CLI11 has copied the arguments; overwriting the --password value in argv
// also removes it from /proc/PID/cmdline for the rest of this process's life.
// (It was visible until now: that is why --password warns.) PostgreSQL URLs
// (--vault-url, migrate-store's --from/--to) may hold a password too.
bool is_url_argument(std::string_view argument) {
  return argument.starts_with("postgresql://") || argument.starts_with("postgres://");
}

void wipe_secret_arguments(int argc, char** argv) {
  constexpr std::string_view kFlag = "--password";
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--") break;
    if (argument == kFlag && i + 1 < argc) {
      std::memset(argv[i + 1], '*', std::strlen(argv[i + 1]));
    } else if (argument.starts_with("--password=")) {
      std::memset(argv[i] + kFlag.size() + 1, '*', argument.size() - kFlag.size() - 1);
    } else if (is_url_argument(argument)) {
      std::memset(argv[i], '*', argument.size());
    } else if (const std::size_t equals = argument.find('=');
               argument.starts_with("--") && equals != std::string_view::npos &&
               is_url_argument(argument.substr(equals + 1))) {
      std::memset(argv[i] + equals + 1, '*', argument.size() - equals - 1);
    }
  }
}

// Messages can quote stored values or a server's words: escaped like every
// other human-readable output, newlines too (a server must not forge lines).
void print_error(std::string_view message, std::string_view hint) {
  fmt::print(stderr, "credential_manager: error: {}\n", printable(message));
  if (!hint.empty()) fmt::print(stderr, "  hint: {}\n", printable(hint));
}

int run(int argc, char** argv) {
  CommonOptions common;
  CLI::App app{"Keeps database credentials encrypted at rest, per user.", "credential_manager"};
  app.set_version_flag("--version", "credential_manager " CREDENTIALS_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Environment: CREDENTIAL_MASTER_KEY or CREDENTIAL_MASTER_KEY_FILE (the master key),\n"
      "CREDENTIAL_VAULT_DIR (default ./.credentials), CREDENTIAL_VAULT_URL (a shared vault on\n"
      "PostgreSQL), CREDENTIAL_MASTER_KEY_NEW (rotate-master-key), CREDENTIAL_MASTER_KEY_LEGACY\n"
      "(import-legacy). Those the environment does not set are read from ./.env (KEY=VALUE\n"
      "lines, as the Python framework keeps them there); nothing is ever written to it.\n"
      "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 unauthorized, 5 decryption\n"
      "failed (wrong key) or the vault/audit chain does not verify, 6 already exists,\n"
      "7 could not connect, 8 no master key, 9 skill failed, 10 conflict.");

  const std::vector<Command> commands =
      add_commands(app, common, argc > 1 ? std::string_view(argv[1]) : std::string_view());

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version are "errors" with exit code 0; every real parse
    // error is a usage error, whatever number CLI11 gives it.
    return app.exit(error) == 0 ? to_int(ExitCode::kSuccess) : to_int(ExitCode::kUsage);
  }
  wipe_secret_arguments(argc, argv);

  try {
    for (const Command& command : commands) {
      if (command.app->parsed()) command.run();
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
      print_error("could not write the output", "");
      return to_int(ExitCode::kFailure);
    }
    return to_int(ExitCode::kSuccess);
  } catch (const CommandError& error) {
    print_error(error.what(), error.hint());
    return to_int(error.code());
  } catch (const ConnectionFailedError& error) {
    print_error(
        error.what(),
        "check that the vault's PostgreSQL server is running and that the URL's host, port, "
        "user and password are right (CREDENTIAL_VAULT_URL or --vault-url)");
    return to_int(ExitCode::kCouldNotConnect);
  } catch (const Error& error) {
    // Built now, not before the verb ran: `add` may have asked for the name.
    const HintContext context{common.user, common.name, vault_dir_flag(common)};
    print_error(error.what(), hint_for(error.code(), error.what(), context).value_or(""));
    return to_int(exit_code_for(error.code()));
  } catch (const std::exception& error) {
    print_error(error.what(), "");
    return to_int(ExitCode::kFailure);
  }
}

}  // namespace
}  // namespace credentials::cli

int main(int argc, char** argv) {
  credentials::cli::harden_process();
  credentials::cli::load_dotenv(".env");
  return credentials::cli::run(argc, argv);
}
