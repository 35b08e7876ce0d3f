// `keygen`: print a new master key. The only way keys should come into being
// (STYLE.md: users never invent keys).

#include <unistd.h>

#include <cstdio>

#include "commands.h"
#include "output.h"

namespace credentials::cli {
namespace {

void run_keygen() {
  const SecretString key = generate_master_key();
  std::fwrite(key.reveal().data(), 1, key.size(), stdout);
  std::fputc('\n', stdout);
  if (::isatty(STDERR_FILENO) == 1) {
    note(
        "Keep this key in a secret manager and give it to credential_manager as\n"
        "CREDENTIAL_MASTER_KEY (or in a 0600 file named by CREDENTIAL_MASTER_KEY_FILE).\n"
        "A vault cannot be read without the key it was created with.");
  }
}

}  // namespace

Command add_keygen_command(CLI::App& root) {
  CLI::App* command = root.add_subcommand(
      "keygen", "Print a new random master key (44 characters of URL-safe base64)");
  add_version_flag(*command);
  return {command, [] { run_keygen(); }};
}

}  // namespace credentials::cli
