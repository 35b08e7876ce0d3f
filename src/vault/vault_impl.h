// VaultImpl: the vault behind the public Vault handle. Private to the library;
// the skills runner and the CLI's vault-level verbs reach it via Vault::impl().
// Thread-safe (an internal mutex serialises use of the storage connection).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "credentials/credential.h"
#include "credentials/vault.h"
#include "store/record_store.h"  // ChangeStamp

namespace credentials::internal {

// One audit event as the library's layers describe it. Never a secret, an
// input value or a connection string in any field.
struct AuditRecord {
  std::string action{};       // store, get, list, update, delete, test, skill, ...
  std::string owner{};        // namespace acted on ("" for vault-wide actions)
  std::string name{};         // credential name or id ("" when none)
  std::string outcome{};      // "ok", "denied", "not_found", "error"
  std::string error_kind{};   // e.g. "UnauthorizedError", "" on success
  std::string skill{};        // skill name, for skill executions
  std::string query_sha256{}; // hex SHA-256 of the skill's query text

  bool operator==(const AuditRecord&) const = default;
};

class VaultImpl {
 public:
  virtual ~VaultImpl() = default;

  virtual std::string store_credential(const UserContext& user, NewCredential credential) = 0;
  virtual Credential get_credential(const UserContext& user, std::string_view ref) = 0;
  virtual Credential get_credential(const UserContext& user, std::string_view owner,
                                    std::string_view name) = 0;
  virtual std::vector<CredentialInfo> list_credentials(const UserContext& user) = 0;
  virtual std::uint64_t update_credential(const UserContext& user, std::string_view ref,
                                          CredentialChanges changes,
                                          std::optional<std::uint64_t> expected_version) = 0;
  virtual void delete_credential(const UserContext& user, std::string_view ref) = 0;

  // The credential's current version without decrypting it (cheap: one index
  // lookup). Used by the skills connection pool to notice a rotation.
  // Authorization as get_credential.
  virtual std::uint64_t current_version(const UserContext& user, std::string_view ref) = 0;

  // A stamp that stays the same as long as no credential can have changed
  // (see RecordStore::change_stamp); nullopt when the store cannot tell.
  // A current_version answer taken after a stamp stays right while the
  // stamp does.
  [[nodiscard]] virtual std::optional<ChangeStamp> change_stamp() = 0;

  // Appends one event to the audit trail as `actor`. Throws DatabaseError
  // when it cannot be written: callers then refuse the operation (fail closed).
  virtual void record_event(const UserContext& actor, const AuditRecord& event) = 0;

  virtual std::vector<std::string> store_credentials(const UserContext& user,
                                                     std::vector<NewCredential> credentials) = 0;
  virtual std::vector<CredentialVersion> history(const UserContext& user, std::string_view ref) = 0;
  virtual std::uint64_t rollback(const UserContext& user, std::string_view ref,
                                 std::uint64_t version) = 0;

  virtual std::vector<AuditEvent> audit_events(const UserContext& user, const AuditQuery& query) = 0;
  virtual AuditVerification verify_audit(const std::vector<std::string>& checkpoints) = 0;
  virtual AuditHead audit_head() = 0;

  virtual void rotate_master_key(SecretString new_master_key) = 0;
  virtual std::int64_t rotate_data_key() = 0;
  virtual ReencryptProgress reencrypt(const std::function<void(const ReencryptProgress&)>& progress,
                                      std::size_t batch) = 0;
  virtual std::vector<KeyInfo> keys() = 0;
  virtual void backup(const std::filesystem::path& out, bool replace_any) = 0;
  virtual VerifyReport verify() = 0;
  virtual ImportReport import_legacy(const std::filesystem::path& vault_enc,
                                     const SecretString& legacy_key, bool dry_run,
                                     bool skip_invalid) = 0;

  [[nodiscard]] virtual const std::filesystem::path& directory() const = 0;
  // Credentials whose last-used times wait for the handle's next batch of
  // writes, for tests.
  [[nodiscard]] virtual std::size_t pending_last_used_count() { return 0; }
};

[[nodiscard]] std::unique_ptr<VaultImpl> open_vault(VaultOptions options);

}  // namespace credentials::internal
