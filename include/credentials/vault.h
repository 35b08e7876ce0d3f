// Vault: the encrypted, multi-user credential store.
//
// A Vault is opened with a factory (Vault::open) and owns its storage handle.
// It is thread-safe: one Vault may be shared by every thread of a process,
// and several processes may open the same vault at once; every write is one
// durable transaction, and every read sees the latest committed state (a
// password rotated by another process is seen at the next get_credential).
//
// Authorization: a user reaches only their own namespace; an administrator
// (UserContext::is_admin) reaches every namespace. Every operation, allowed
// or denied, is recorded in the tamper-evident audit trail.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "credentials/credential.h"
#include "credentials/secret.h"
#include "credentials/user_context.h"

namespace credentials {

namespace internal {
class VaultImpl;
}

struct VaultOptions {
  // The vault directory; created 0700 if missing.
  std::filesystem::path directory = ".credentials";
  // Master key material: a 44-character URL-safe base64 key (the Fernet key
  // format, as `credential_manager keygen` prints) or a passphrase.
  // Trailing whitespace is trimmed.
  SecretString master_key;
  // Create the vault if the directory holds none. When false, opening a
  // directory without a vault is a CredentialNotFoundError.
  bool create_if_missing = true;
  // Versions of each credential kept for history and rollback.
  int history_depth = 5;
  // Mirror every event into the tamper-evident audit trail. Only tests that
  // simulate an audit failure change the file layout; leave it on.
  bool audit = true;
};

// Reads the master key from CREDENTIAL_MASTER_KEY, or from the file named by
// CREDENTIAL_MASTER_KEY_FILE. Throws MissingKeyError (saying how to make one
// with `credential_manager keygen`) when neither is set.
[[nodiscard]] SecretString master_key_from_environment();

// VaultOptions from the environment: CREDENTIAL_VAULT_DIR (default
// ./.credentials) and the master key as master_key_from_environment().
[[nodiscard]] VaultOptions vault_options_from_environment();

// Prints nothing; returns a new random master key: 44 characters of URL-safe
// base64 (32 random bytes), the format Fernet.generate_key() also produces.
[[nodiscard]] SecretString generate_master_key();

class Vault {
 public:
  // Opens (or creates) the vault. Throws MissingKeyError without key material,
  // DecryptionFailedError for a wrong key (nothing on disk is changed),
  // DatabaseError when the storage cannot be opened.
  [[nodiscard]] static Vault open(VaultOptions options);

  Vault(Vault&&) noexcept;
  Vault& operator=(Vault&&) noexcept;
  ~Vault();

  // Stores a new credential in the caller's namespace; returns its id.
  // AlreadyExistsError if the caller already has one with that name.
  std::string store_credential(const UserContext& user, NewCredential credential);

  // `ref` is a name in the caller's namespace or a credential id.
  [[nodiscard]] Credential get_credential(const UserContext& user, std::string_view ref);
  // Any namespace: the owner's own, or any for an administrator.
  [[nodiscard]] Credential get_credential(const UserContext& user, std::string_view owner,
                                          std::string_view name);

  // Metadata only. The caller's own credentials; every user's for an
  // administrator. Sorted by owner, then name.
  [[nodiscard]] std::vector<CredentialInfo> list_credentials(const UserContext& user);

  // Rotates the password; returns the new version.
  std::uint64_t update_password(const UserContext& user, std::string_view ref,
                                SecretString new_password);
  // Check-and-set: fails with ConflictError unless the current version is
  // `expected_version`.
  std::uint64_t update_password(const UserContext& user, std::string_view ref,
                                SecretString new_password, std::uint64_t expected_version);
  // Changes any fields at once (one new version); returns the new version.
  std::uint64_t update_credential(const UserContext& user, std::string_view ref,
                                  CredentialChanges changes,
                                  std::optional<std::uint64_t> expected_version = std::nullopt);

  // Removes the credential and every version of it.
  void delete_credential(const UserContext& user, std::string_view ref);

  [[nodiscard]] const std::filesystem::path& directory() const;

  // For the library's own layers (skills, audit, CLI verbs); not for applications.
  [[nodiscard]] internal::VaultImpl& impl() { return *impl_; }

 private:
  explicit Vault(std::unique_ptr<internal::VaultImpl> impl);
  std::unique_ptr<internal::VaultImpl> impl_;
};

// The process-wide vault configured from the environment, opened on first use.
// Throws as Vault::open; a failed open is retried on the next call.
[[nodiscard]] Vault& get_vault();

}  // namespace credentials
