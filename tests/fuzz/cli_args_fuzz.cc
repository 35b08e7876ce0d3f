// Fuzzes the command-line parsing of credential_manager: the same CLI11 app
// main() builds (every verb registered by cli/commands.h), parsed from the
// fuzzed bytes split at NUL into arguments. Verbs are never run: this is
// the parser and the options' validators only.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "common_options.h"
#include "fuzz/fuzz_support.h"

using namespace credentials;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args;
  std::string current;
  for (char c : credentials::fuzz::as_text(data, size)) {
    if (c == '\0') {
      args.push_back(current);
      current.clear();
      if (args.size() > 64) return 0;
    } else {
      current.push_back(c);
    }
  }
  args.push_back(current);
  cli::CommonOptions common;
  CLI::App app{"fuzz", "credential_manager"};
  app.require_subcommand(1);
  // Every verb, or only the one the first argument names, as main() does.
  const std::vector<cli::Command> commands =
      cli::add_commands(app, common, args.empty() ? std::string_view() : std::string_view(args[0]));
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::Error&) {
  }
  return 0;
}
