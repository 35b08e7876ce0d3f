// The error hierarchy of the public API (DESIGN.md, Errors).
//
// Every error the library throws derives from credentials::Error and carries an
// ErrorCode that the command-line tool maps to its documented exit code.
// Messages are fixed text plus names: they never contain a password, a
// connection string, a query parameter or any other secret.
#pragma once

#include <stdexcept>
#include <string>

namespace credentials {

enum class ErrorCode {
  kInternal = 1,
  kInvalidArgument = 2,
  kNotFound = 3,
  kUnauthorized = 4,
  kDecryptionFailed = 5,
  kAlreadyExists = 6,
  kDatabase = 7,
  kSkill = 8,
  kConflict = 9,
  kMissingKey = 10,
  kMasterKeyRotated = 11,
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

#define CREDENTIALS_DEFINE_ERROR(Name, Code)                                 \
  class Name : public Error {                                              \
   public:                                                                 \
    explicit Name(const std::string& message) : Error(Code, message) {}   \
  }

// The credential does not exist in the caller's reach.
CREDENTIALS_DEFINE_ERROR(CredentialNotFoundError, ErrorCode::kNotFound);
// The caller may not reach that namespace. Never says whether the credential exists.
CREDENTIALS_DEFINE_ERROR(UnauthorizedError, ErrorCode::kUnauthorized);
// Wrong master key, or vault bytes that were altered or moved.
CREDENTIALS_DEFINE_ERROR(DecryptionFailedError, ErrorCode::kDecryptionFailed);
// A credential with that name already exists for that user.
CREDENTIALS_DEFINE_ERROR(AlreadyExistsError, ErrorCode::kAlreadyExists);
// Bad input from the caller; the message states the rule.
CREDENTIALS_DEFINE_ERROR(InvalidArgumentError, ErrorCode::kInvalidArgument);
// A check-and-set lost against another writer.
CREDENTIALS_DEFINE_ERROR(ConflictError, ErrorCode::kConflict);
// The vault's own storage, or a user's database, failed.
CREDENTIALS_DEFINE_ERROR(DatabaseError, ErrorCode::kDatabase);
// A skill is malformed, or its execution failed.
CREDENTIALS_DEFINE_ERROR(SkillError, ErrorCode::kSkill);
// No master key was configured; the message says how to make one.
CREDENTIALS_DEFINE_ERROR(MissingKeyError, ErrorCode::kMissingKey);
// Another process or handle rotated the master key after this handle opened
// the vault. Nothing was written: open the vault again with the new key.
CREDENTIALS_DEFINE_ERROR(MasterKeyRotatedError, ErrorCode::kMasterKeyRotated);

#undef CREDENTIALS_DEFINE_ERROR

// The vault's own PostgreSQL server could not be reached, refused the login,
// or dropped the connection: nothing was written. A DatabaseError, so code
// that handles storage failures handles it too; the CLI exits 7 for it.
class ConnectionFailedError : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// The Python system's name for UnauthorizedError.
using UnauthorizedAccessError = UnauthorizedError;

}  // namespace credentials
