// test_credential: test_connection with a credential from the vault, recorded
// in the audit trail as one `test` event.
#include "credentials/database.h"
#include "credentials/errors.h"
#include "credentials/vault.h"
#include "vault/vault_impl.h"

namespace credentials {
namespace {

std::string error_kind(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "InvalidArgumentError";
    case ErrorCode::kNotFound:
      return "CredentialNotFoundError";
    case ErrorCode::kUnauthorized:
      return "UnauthorizedError";
    case ErrorCode::kDecryptionFailed:
      return "DecryptionFailedError";
    case ErrorCode::kAlreadyExists:
      return "AlreadyExistsError";
    case ErrorCode::kDatabase:
      return "DatabaseError";
    case ErrorCode::kSkill:
      return "SkillError";
    case ErrorCode::kConflict:
      return "ConflictError";
    case ErrorCode::kMissingKey:
      return "MissingKeyError";
    case ErrorCode::kMasterKeyRotated:
      return "MasterKeyRotatedError";
    case ErrorCode::kInternal:
      break;
  }
  return "Error";
}

}  // namespace

ConnectionTestResult test_credential(Vault& vault, const UserContext& user, std::string_view ref,
                                     const ConnectionOverrides& overrides) {
  // Reading it records its own event (and any denial or not-found).
  const Credential credential = vault.get_credential(user, ref);
  internal::AuditRecord event{.action = "test",
                              .owner = credential.owner,
                              .name = credential.name,
                              .outcome = "ok",
                              .error_kind = "",
                              .skill = "",
                              .query_sha256 = ""};
  ConnectionTestResult result;
  try {
    result = test_connection(credential, overrides);
  } catch (const Error& error) {
    event.outcome = "error";
    event.error_kind = error_kind(error.code());
    vault.impl().record_event(user, event);
    throw;
  } catch (const std::exception&) {
    event.outcome = "error";
    event.error_kind = "Error";
    vault.impl().record_event(user, event);
    throw;
  }
  vault.impl().record_event(user, event);
  return result;
}

}  // namespace credentials
