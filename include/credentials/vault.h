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

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "credentials/audit.h"
#include "credentials/credential.h"
#include "credentials/maintenance.h"
#include "credentials/secret.h"
#include "credentials/user_context.h"

namespace credentials {

namespace internal {
class VaultImpl;
}

struct VaultOptions {
  // The vault directory; created 0700 if missing.
  std::filesystem::path directory = ".credentials";
  // The shared vault on PostgreSQL, when set: postgresql://user:password@host:port/db
  // (or postgres://…; any libpq URL parameter), `?schema=name` for the
  // PostgreSQL schema holding it (default credential_vault). Then `directory`
  // is not used. Empty: the embedded vault in `directory`. See docs/POSTGRES.md.
  // WARNING: may hold a password; it is never logged or put in a message.
  std::string url{};
  // Master key material: a 44-character URL-safe base64 key (the Fernet key
  // format, as `credential_manager keygen` prints) or a passphrase.
  // Trailing whitespace is trimmed.
  SecretString master_key{};
  // Create the vault if the directory holds none. When false, opening a
  // directory without a vault is a CredentialNotFoundError.
  bool create_if_missing = true;
  // Versions of each credential kept for history and rollback.
  int history_depth = 5;
};

// Reads the master key from CREDENTIAL_MASTER_KEY, or from the file named by
// CREDENTIAL_MASTER_KEY_FILE (read_master_key_file). Throws MissingKeyError
// (saying how to make one with `credential_manager keygen`) when neither is
// set.
[[nodiscard]] SecretString master_key_from_environment();

// The longest master key file read_master_key_file accepts.
inline constexpr std::size_t kMaxKeyFileBytes = 4096;

// Reads a master key from a file (or a pipe such as /dev/fd/63): trailing
// whitespace is trimmed. Reads at most kMaxKeyFileBytes and one byte more, so
// that /dev/zero or a large file named by mistake is refused, not read into
// memory. Throws MissingKeyError naming `source` (the variable or option
// that named the file) when the file cannot be read, is a directory, is
// longer than kMaxKeyFileBytes or holds only whitespace.
[[nodiscard]] SecretString read_master_key_file(const std::filesystem::path& path,
                                                std::string_view source);

// VaultOptions from the environment: CREDENTIAL_VAULT_DIR (default
// ./.credentials), CREDENTIAL_VAULT_URL (a postgresql:// URL: the shared
// vault) and the master key as master_key_from_environment().
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

  // Stores many credentials for one user in one transaction (a bulk load):
  // all or nothing. Returns their ids in order.
  std::vector<std::string> store_credentials(const UserContext& user,
                                             std::vector<NewCredential> credentials);

  // --- versions ---------------------------------------------------------------
  // Versions kept for the credential (no passwords), oldest first.
  [[nodiscard]] std::vector<CredentialVersion> history(const UserContext& user, std::string_view ref);
  // Makes version `version` current again, as a new version; returns it.
  std::uint64_t rollback(const UserContext& user, std::string_view ref, std::uint64_t version);

  // --- audit ------------------------------------------------------------------
  // Events about the caller's own namespace; every event for an administrator.
  [[nodiscard]] std::vector<AuditEvent> audit_events(const UserContext& user, const AuditQuery& query);
  // Checks the whole chain; reveals no event content.
  [[nodiscard]] AuditVerification verify_audit();
  // verify_audit, and also that the chain holds each checkpoint (as
  // AuditHead::checkpoint printed it): not ok, with the problem, when it
  // does not. Throws InvalidArgumentError for text that is not a checkpoint.
  [[nodiscard]] AuditVerification verify_audit(const std::vector<std::string>& checkpoints);
  [[nodiscard]] AuditHead audit_head();

  // --- vault-wide operations (whoever holds the master key) -------------------
  // Re-wraps the vault's keys under a new master key: O(1) in the vault size,
  // one transaction (an interruption leaves the old key or the new one).
  void rotate_master_key(SecretString new_master_key);
  // Adds a data key for new writes; returns its id.
  std::int64_t rotate_data_key();
  // Moves every stored version to the newest data key, `batch` records per
  // transaction; resumable, and readers and writers keep working meanwhile.
  ReencryptProgress reencrypt(const std::function<void(const ReencryptProgress&)>& progress = {},
                              std::size_t batch = 500);
  [[nodiscard]] std::vector<KeyInfo> keys();
  // A consistent online snapshot in one file (created 0600 beside `out` and
  // renamed into place: a backup already there stays whole until then). An
  // existing `out` is replaced only when it is a backup of this vault, or
  // when `replace_any_file`; else AlreadyExistsError and nothing is written.
  void backup(const std::filesystem::path& out, bool replace_any_file = false);
  // Checks every record under its key and place, the indexes and the audit chain.
  [[nodiscard]] VerifyReport verify();
  // Imports a Python vault (.credentials/vault.enc) with its key. Nothing is
  // written when the file cannot be read whole, or when `dry_run`. A
  // credential this vault cannot hold (an invalid name, a field out of
  // range) fails the whole import with InvalidArgumentError naming every
  // such credential by its legacy id and reason; with `skip_invalid` the
  // others are imported and those are reported with status "invalid".
  ImportReport import_legacy(const std::filesystem::path& vault_enc, const SecretString& legacy_key,
                             bool dry_run = false, bool skip_invalid = false);

  [[nodiscard]] const std::filesystem::path& directory() const;

  // For the library's own layers (skills, audit, CLI verbs); not for applications.
  [[nodiscard]] internal::VaultImpl& impl() { return *impl_; }

 private:
  explicit Vault(std::unique_ptr<internal::VaultImpl> impl);
  std::unique_ptr<internal::VaultImpl> impl_;
};

// Creates the vault `options` names (directory or PostgreSQL URL) with its
// header and keys, or, when it exists, checks the master key against it and
// applies pending schema migrations. Returns true when it created the vault.
bool init_vault(const VaultOptions& options);

// Copies the vault at `from` (a directory or a PostgreSQL URL) into `to`,
// which must hold no vault, row by row and verbatim: the same vault id, keys
// and records, so it opens with `from.master_key` (to.master_key is not used).
// The source is verified first (a wrong key or a damaged vault copies
// nothing) and the copy after; the copy is one transaction on the target.
// Writes made to the source during the copy are not included: stop writers
// first. Throws AlreadyExistsError when `to` holds a vault.
void migrate_vault(const VaultOptions& from, const VaultOptions& to);

// Restores a backup into `directory`, which must hold no vault unless `force`.
// The backup is checked with `master_key` before anything is written.
void restore_vault(const std::filesystem::path& backup, const std::filesystem::path& directory,
                   const SecretString& master_key, bool force = false);

// Checks a backup file end to end without restoring it.
[[nodiscard]] VerifyReport verify_backup(const std::filesystem::path& backup,
                                         const SecretString& master_key);

// The process-wide vault configured from the environment, opened on first use.
// Throws as Vault::open; a failed open is retried on the next call.
[[nodiscard]] Vault& get_vault();

}  // namespace credentials
