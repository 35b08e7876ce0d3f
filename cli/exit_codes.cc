#include "exit_codes.h"

#include <fmt/format.h>

namespace credentials::cli {

ExitCode exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return ExitCode::kUsage;
    case ErrorCode::kNotFound:
      return ExitCode::kNotFound;
    case ErrorCode::kUnauthorized:
      return ExitCode::kUnauthorized;
    case ErrorCode::kDecryptionFailed:
      return ExitCode::kDecryptionFailed;
    case ErrorCode::kAlreadyExists:
      return ExitCode::kAlreadyExists;
    case ErrorCode::kMissingKey:
      return ExitCode::kMissingKey;
    case ErrorCode::kSkill:
      return ExitCode::kSkillFailed;
    case ErrorCode::kConflict:
      return ExitCode::kConflict;
    case ErrorCode::kMasterKeyRotated:
      return ExitCode::kMasterKeyRotated;
    // A DatabaseError outside `test` is the vault's own storage failing, not
    // a connection the user asked for: `test` maps its own (test_command.cc).
    case ErrorCode::kDatabase:
    case ErrorCode::kInternal:
      return ExitCode::kFailure;
  }
  return ExitCode::kFailure;
}

std::optional<std::string> hint_for(ErrorCode code, std::string_view message,
                                    const HintContext& context) {
  const std::string user = context.user.empty() ? "<your_user>" : context.user;
  const auto says = [&](std::string_view text) { return message.find(text) != std::string::npos; };
  switch (code) {
    case ErrorCode::kNotFound: {
      const std::string list_command =
          fmt::format("credential_manager list --user {}{}", user, context.vault_dir_flag);
      if (says(list_command)) return std::nullopt;
      return "list the credentials you can reach: " + list_command;
    }
    case ErrorCode::kUnauthorized:
      if (says("per user")) return std::nullopt;
      return std::string("credentials are per user: pass the --user that stored the credential");
    case ErrorCode::kDecryptionFailed:
      if (says("was altered")) {
        return std::string(
            "check it with `credential_manager verify`; restore the vault from a backup "
            "(credential_manager restore --from FILE)");
      }
      // A damaged or emptied file (a vault's or a backup's) says so itself.
      if (says("restore the vault from a backup")) return std::nullopt;
      if (says("restore the original key")) {
        return std::string(
            "the key comes from CREDENTIAL_MASTER_KEY, else the file named by "
            "CREDENTIAL_MASTER_KEY_FILE; nothing on disk was changed");
      }
      return std::string(
          "the master key (CREDENTIAL_MASTER_KEY or CREDENTIAL_MASTER_KEY_FILE) is not the "
          "one this vault was created with, or the vault files were altered: restore the "
          "original key; nothing on disk was changed");
    case ErrorCode::kMissingKey:
      if (says("credential_manager keygen")) return std::nullopt;
      return std::string(
          "set CREDENTIAL_MASTER_KEY (or CREDENTIAL_MASTER_KEY_FILE) to the vault's key; for a "
          "new vault make one with: credential_manager keygen");
    case ErrorCode::kAlreadyExists:
      return fmt::format(
          "change it with: credential_manager update --user {} --name {}{}  (or delete it first)",
          user, context.name.empty() ? "<name>" : context.name, context.vault_dir_flag);
    case ErrorCode::kConflict:
      return std::string(
          "another process changed the credential first: look at it with `show` and retry");
    case ErrorCode::kMasterKeyRotated:
      return std::string(
          "nothing was written; run the command again with the new key in CREDENTIAL_MASTER_KEY "
          "(or CREDENTIAL_MASTER_KEY_FILE)");
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kDatabase:
    case ErrorCode::kSkill:
    case ErrorCode::kInternal:
      break;
  }
  return std::nullopt;
}

}  // namespace credentials::cli
