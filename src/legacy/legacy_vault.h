// Reading the Python version's vault (.credentials/vault.enc), for
// `credential_manager import-legacy` (SPEC.md Part 2, "Its on-disk format").
//
// The file is one Fernet token (legacy/fernet.h) whose plaintext is a JSON
// object: credential id -> credential fields; each password is itself a
// Fernet token under the same key. The plaintext JSON is held in SecretBytes
// and wiped; passwords come out as SecretString. Nothing is written anywhere.
//
// Thread-safe (no shared state).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "credentials/credential.h"
#include "credentials/secret.h"
#include "legacy/fernet.h"

namespace credentials::internal {

// One credential of the Python vault, with the Python field names.
struct LegacyCredential {
  std::string credential_id;  // "<user_id>_<name>_<unix time float>": the Python reference
  std::string user_id;        // the owner
  std::string name;           // not unique per user in the Python version
  std::string db_type;
  std::string host;
  int port = 0;
  std::string database;
  std::string username;
  SecretString password;
  std::optional<std::string> description;  // null in the file: nullopt
  std::optional<std::string> ssl_mode;     // null in the file: nullopt
  int connection_timeout = 30;             // absent or null in the file: 30
  Timestamp created_at{};
  Timestamp updated_at{};
};

// A record of the file that does not read: its id (the key it is stored
// under) and why, naming the field, never a value.
struct UnreadableRecord {
  std::string credential_id;
  std::string reason;
};

// Reads the vault file at `path` with the Python version's
// CREDENTIAL_MASTER_KEY (legacy_fernet_key's rule). Credentials come back in
// the order the file stores them (the Python dict's insertion order, which is
// the order they were stored in), so for duplicate names the first one is the
// one the Python version returned.
//
// If the key does not verify and it has leading or trailing whitespace (a key
// file's newline), the trimmed key is tried too: the Python process may have
// seen either form, and the HMAC tells them apart safely.
//
// Throws:
//   InvalidArgumentError   the file cannot be read; a field is missing or has
//                          the wrong type (the message names the credential
//                          and the field, never a value)
//   DecryptionFailedError  wrong key, or the file is not an intact Fernet
//                          token (truncated, altered); also for a password
//                          token that does not decrypt
// With `unreadable`, a record that does not read (a field missing or of the
// wrong type, a password that does not decrypt) is left out and listed
// there, in file order, instead: whatever is wrong with the file as a whole
// still throws.
[[nodiscard]] std::vector<LegacyCredential> read_legacy_vault(
    const std::filesystem::path& path, const SecretString& legacy_key,
    std::vector<UnreadableRecord>* unreadable = nullptr);

// The same from the file's contents (the token text; surrounding whitespace
// is ignored) and a key: the fuzzing and testing entry point.
[[nodiscard]] std::vector<LegacyCredential> decode_legacy_vault(std::string_view token,
                                                                const FernetKey& key);

// Parses decrypted vault JSON; passwords are decrypted with `key`.
// Throws as read_legacy_vault.
[[nodiscard]] std::vector<LegacyCredential> parse_legacy_vault_json(
    std::string_view json, const FernetKey& key,
    std::vector<UnreadableRecord>* unreadable = nullptr);

}  // namespace credentials::internal
