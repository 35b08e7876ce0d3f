// Keyring: the vault's key hierarchy (docs/FORMAT.md, "Keys").
//
//   master key material --(Argon2id for a passphrase)--> 32 bytes
//     --HKDF-SHA256(salt = vault id)--> key-encryption key (KEK)
//   KEK wraps (AES-256-GCM) the random data keys, the index key and the
//   audit key, which are stored in the `keys` table.
//
// Rotating the master key re-wraps those few keys; records are untouched.
//
// A keyring holds the KEK its handle opened the vault with, and another
// process (or host, or handle) may rotate the master key after that. So
// every write that wraps or re-wraps under the KEK (create_key, rewrap)
// first unwraps the keys as they stand inside the caller's write
// transaction: when none unwraps, the KEK is no longer the vault's and the
// write fails with MasterKeyRotatedError before anything is wrapped. A load
// that finds a new key it cannot unwrap fails the same way. Keys that
// unwrap beside one that does not mean an altered key table, not a rotation.
//
// Thread-safety: the vault lets reads on a thread-safe store (PostgreSQL)
// run in parallel, and a read may find a data key added by another host and
// load it. So the data keys and the KEK are guarded by a mutex of the
// keyring's own, and a data key once loaded is never replaced or removed:
// the references data_key returns stay valid while the keyring lives. The
// index and audit keys are set by the first load() and never change after
// (a vault has one of each; a master-key rotation re-wraps them, same
// bytes), so readers use them without a lock. create_key and rewrap
// REQUIRE the vault's exclusive lock (they run in write transactions).
//
// The version ledger's MAC key is derived from the audit key, so it survives
// the rotation of the master key and of the data keys.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "credentials/secret.h"
#include "crypto/primitives.h"
#include "store/record_store.h"

namespace credentials::internal {

constexpr std::size_t kVaultIdSize = 16;

// How the master key material is turned into 32 bytes.
struct KeyDerivation {
  Bytes vault_id;
  Bytes argon2_salt;
  Argon2Params argon2;
};

// True when the material is a 44-character URL-safe base64 string decoding to
// 32 bytes (the Fernet key format): it is then used as the key itself.
[[nodiscard]] bool is_raw_key(std::string_view material);
// Trims trailing whitespace (a key file ends with a newline).
[[nodiscard]] SecretString normalize_master_key(std::string_view material);
// What the master key yields: the KEK, and the key check stored in the
// vault's `key_check` meta row. The check is HKDF of the key's 32 bytes
// (after Argon2id for a passphrase), salted with the Argon2 salt (random per
// vault and per rotation, so one key used for two vaults gives two checks)
// under a label of its own. It does not depend on the vault id or the key
// table: a check that matches while the keys do not unwrap means the vault
// was altered, not that the key is wrong.
struct DerivedKek {
  SecretBytes kek;
  Bytes key_check;
};
[[nodiscard]] DerivedKek derive_kek(const SecretString& material, const KeyDerivation& derivation);

// Throws DecryptionFailedError saying that the vault was altered (the master
// key itself was shown to be right) and `what` is wrong with it.
[[noreturn]] void throw_vault_altered(std::string_view what);

class Keyring {
 public:
  Keyring(Bytes vault_id, SecretBytes kek) : vault_id_(std::move(vault_id)), kek_(std::move(kek)) {
    kek_.lock();
  }

  // Makes a new random key of `purpose`, wraps it and stores it. REQUIRES:
  // the caller's write transaction. Throws MasterKeyRotatedError when the
  // stored keys are no longer wrapped under this keyring's KEK.
  std::int64_t create_key(RecordStore& store, std::string_view purpose, std::int64_t now_micros);
  // Unwraps every stored key this keyring does not hold yet. Throws
  // DecryptionFailedError if the KEK is wrong (or the key table altered), and
  // MasterKeyRotatedError when a keyring that loaded before meets keys its
  // KEK no longer unwraps.
  void load(RecordStore& store);
  // Reloads when the store holds a key this keyring has not seen (a data key
  // added by another process).
  const SecretBytes& data_key(RecordStore& store, std::int64_t key_id);
  [[nodiscard]] std::int64_t newest_data_key() const {
    std::shared_lock lock(mutex_);
    return newest_data_key_;
  }
  // Blind indexes: HMAC under the index key.
  [[nodiscard]] const HmacSha256& index_mac() const { return index_mac_; }
  // The audit chain: HMAC under the audit MAC key.
  [[nodiscard]] const HmacSha256& audit_mac() const { return audit_mac_; }
  [[nodiscard]] const SecretBytes& audit_seal_key() const { return audit_seal_key_; }
  // The version ledger's node MACs: HMAC under HKDF(audit key, "credentials/v1/ledger-mac").
  [[nodiscard]] const HmacSha256& ledger_mac() const { return ledger_mac_; }
  [[nodiscard]] const Bytes& vault_id() const { return vault_id_; }

  // Throws as load does unless every stored key unwraps under this
  // keyring's KEK. REQUIRES: the caller's write transaction, so that the
  // answer still holds when it commits.
  void require_current_kek(RecordStore& store) const;
  // Re-wraps every stored key under `new_kek` (inside the caller's write
  // transaction); this keyring keeps its KEK until set_kek after the commit.
  // Throws as load does when a stored key does not unwrap.
  void rewrap(RecordStore& store, const SecretBytes& new_kek) const;
  void set_kek(SecretBytes kek) {
    std::unique_lock lock(mutex_);
    kek_ = std::move(kek);
    kek_.lock();
  }

 private:
  [[nodiscard]] Bytes wrap_aad(std::int64_t key_id, std::string_view purpose) const;
  // REQUIRE mutex_ (shared or exclusive).
  [[nodiscard]] bool kek_unwraps_any(const std::vector<StoredKey>& stored_keys) const;
  void require_all_unwrap(const std::vector<StoredKey>& stored_keys) const;
  // A stored key did not unwrap: throws the error that says why.
  [[noreturn]] void fail_unwrap(const std::vector<StoredKey>& stored_keys) const;
  Bytes vault_id_;
  mutable std::shared_mutex mutex_;  // guards kek_, data_keys_, newest_data_key_
  SecretBytes kek_;
  std::map<std::int64_t, SecretBytes> data_keys_;
  std::int64_t newest_data_key_ = 0;
  HmacSha256 index_mac_;
  HmacSha256 audit_mac_;
  HmacSha256 ledger_mac_;
  SecretBytes audit_seal_key_;
  bool have_fixed_keys_ = false;  // index and audit keys loaded
};

}  // namespace credentials::internal
