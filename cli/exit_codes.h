// The exit codes of credential_manager, the same for every verb, and the one
// place where a library error becomes an exit code and a hint on what to do.
// docs/cli_reference.md documents them; scripts rely on them, so never
// renumber one.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "credentials/errors.h"

namespace credentials::cli {

enum class ExitCode : int {
  kSuccess = 0,
  kFailure = 1,            // anything not listed below
  kUsage = 2,              // bad command line or invalid input (CLI11 parse errors too)
  kNotFound = 3,           // no such credential, or no vault in the directory
  kUnauthorized = 4,       // the credential is in another user's namespace
  kDecryptionFailed = 5,   // wrong master key, or vault bytes altered
  kAlreadyExists = 6,      // `add` of a name the user already has
  kCouldNotConnect = 7,    // `test`, or the vault's PostgreSQL: refused or unreachable
  kMissingKey = 8,         // no CREDENTIAL_MASTER_KEY / CREDENTIAL_MASTER_KEY_FILE
  kSkillFailed = 9,        // `run`: the skill is malformed or its query failed
  kConflict = 10,          // `update --if-version`: someone else changed it first
  kMasterKeyRotated = 11,  // another process rotated the master key while this one ran
};

[[nodiscard]] constexpr int to_int(ExitCode code) { return static_cast<int>(code); }

// A failure decided by the CLI itself (a refused confirmation, a missing
// field without a terminal to ask on, a connection that failed in `test`).
// The message is fixed text plus names: never a secret.
class CommandError : public std::runtime_error {
 public:
  CommandError(ExitCode code, const std::string& message, std::string hint = {})
      : std::runtime_error(message), code_(code), hint_(std::move(hint)) {}
  [[nodiscard]] ExitCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& hint() const noexcept { return hint_; }

 private:
  ExitCode code_;
  std::string hint_;
};

// What the hints may mention about the command that failed.
struct HintContext {
  std::string user;
  std::string name;
  std::string vault_dir_flag;  // " --vault-dir DIR" when given, else ""
};

// The exit code for a library error.
[[nodiscard]] ExitCode exit_code_for(ErrorCode code);

// What the user should do next, for errors where `message` (the library's)
// does not already say it; nullopt when it does.
[[nodiscard]] std::optional<std::string> hint_for(ErrorCode code, std::string_view message,
                                                  const HintContext& context);

}  // namespace credentials::cli
