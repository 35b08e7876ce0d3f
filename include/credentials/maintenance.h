// Types for the vault-wide operations: key rotation, re-encryption, history,
// backup and restore, verification and the import of a Python vault.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "credentials/audit.h"
#include "credentials/credential.h"

namespace credentials {

struct KeyInfo {
  std::int64_t key_id = 0;
  std::string purpose;          // data, index or audit
  Timestamp created_at{};
  std::int64_t encryptions = 0;  // records sealed under this key so far (data keys)
  std::int64_t records = 0;      // stored versions currently under this key
  bool current = false;          // the data key new writes use
};

struct CredentialVersion {
  std::uint64_t version = 0;
  Timestamp updated_at{};
  std::int64_t key_id = 0;
  bool current = false;
};

struct ReencryptProgress {
  std::int64_t done = 0;
  std::int64_t total = 0;
  std::int64_t target_key_id = 0;
};

struct VerifyReport {
  std::int64_t credentials = 0;
  std::int64_t versions = 0;
  std::vector<std::string> problems;  // empty when everything checks out
  AuditVerification audit;
  [[nodiscard]] bool ok() const { return problems.empty() && audit.ok; }
};

struct ImportedCredential {
  std::string legacy_id;
  std::string owner;
  std::string legacy_name;
  std::string name;       // the name in this vault (differs when renamed)
  std::string status;     // imported, renamed, already_imported, invalid
  std::string reason;     // why it was not imported (status invalid)
};

struct ImportReport {
  std::vector<ImportedCredential> credentials;
  std::int64_t imported = 0;
  std::int64_t renamed = 0;
  std::int64_t skipped = 0;  // already imported earlier
  std::int64_t invalid = 0;  // not imported: the vault cannot hold them (skip_invalid)
  bool dry_run = false;
};

}  // namespace credentials
