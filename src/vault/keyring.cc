#include "vault/keyring.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

constexpr std::string_view kKekInfo = "credentials/v1/kek";
constexpr std::string_view kKeyCheckInfo = "credentials/v1/key-check";
// Format 3's label (format 2 wrapped under "credentials/v1/wrap").
constexpr std::string_view kWrapLabel = "credentials/v3/wrap";

void append_u64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

[[noreturn]] void wrong_key() {
  throw DecryptionFailedError(
      "decryption failed: the master key does not open this vault. The CREDENTIAL_MASTER_KEY may "
      "have changed: restore the original key");
}

}  // namespace

void throw_vault_altered(std::string_view what) {
  throw DecryptionFailedError(fmt::format(
      "the vault was altered: the master key is right, but {}. Nothing was changed; run "
      "`credential_manager verify` and restore the vault from a backup",
      what));
}

bool is_raw_key(std::string_view material) {
  if (material.size() != 44) return false;
  auto decoded = base64url_decode(material);
  return decoded && decoded->size() == kKeySize;
}

SecretString normalize_master_key(std::string_view material) {
  while (!material.empty() && std::isspace(static_cast<unsigned char>(material.back()))) {
    material.remove_suffix(1);
  }
  return SecretString(material);
}

DerivedKek derive_kek(const SecretString& material, const KeyDerivation& derivation) {
  SecretBytes root;
  if (is_raw_key(material.reveal())) {
    auto decoded = base64url_decode(material.reveal());
    root = SecretBytes(*decoded);
    std::fill(decoded->begin(), decoded->end(), 0);
  } else {
    root = argon2id(material.reveal(), derivation.argon2_salt, derivation.argon2, kKeySize);
  }
  DerivedKek derived{hkdf_sha256(root.span(), derivation.vault_id, kKekInfo, kKeySize), {}};
  const SecretBytes check =
      hkdf_sha256(root.span(), derivation.argon2_salt, kKeyCheckInfo, kKeySize);
  derived.key_check.assign(check.span().begin(), check.span().end());
  return derived;
}

Bytes Keyring::wrap_aad(std::int64_t key_id, std::string_view purpose) const {
  Bytes aad(kWrapLabel.begin(), kWrapLabel.end());
  aad.insert(aad.end(), vault_id_.begin(), vault_id_.end());
  append_u64(aad, static_cast<std::uint64_t>(key_id));
  aad.insert(aad.end(), purpose.begin(), purpose.end());
  return aad;
}

std::int64_t Keyring::create_key(RecordStore& store, std::string_view purpose,
                                 std::int64_t now_micros) {
  // Inside the caller's write transaction: the keys as they are now, so a
  // master-key rotation committed by another process since this keyring was
  // loaded is seen here, and nothing is wrapped under a KEK that is no
  // longer the vault's.
  const auto stored_keys = store.load_keys();
  std::int64_t key_id = 1;
  for (const auto& key : stored_keys) key_id = std::max(key_id, key.key_id + 1);
  SecretBytes key = random_secret(kKeySize);
  Bytes wrapped;
  {
    std::shared_lock lock(mutex_);
    require_all_unwrap(stored_keys);
    wrapped = aead_encrypt(kek_, key.span(), wrap_aad(key_id, purpose));
  }
  store.insert_key({key_id, std::string(purpose), std::move(wrapped), now_micros, 0});
  return key_id;
}

void Keyring::load(RecordStore& store) {
  const auto stored_keys = store.load_keys();  // a round trip: not under the lock
  std::unique_lock lock(mutex_);
  bool have_index = have_fixed_keys_, have_audit = have_fixed_keys_;
  for (const auto& stored : stored_keys) {
    // A key already held is kept as it is: readers may hold references to it.
    if (stored.purpose == "data" ? data_keys_.count(stored.key_id) != 0
                                 : have_fixed_keys_ && (stored.purpose == "index" || stored.purpose == "audit")) {
      continue;
    }
    auto key = aead_decrypt(kek_, stored.wrapped, wrap_aad(stored.key_id, stored.purpose));
    if (!key) fail_unwrap(stored_keys);
    key->lock();
    if (stored.purpose == "data") {
      newest_data_key_ = std::max(newest_data_key_, stored.key_id);
      data_keys_.emplace(stored.key_id, std::move(*key));
    } else if (stored.purpose == "index") {
      index_mac_ = HmacSha256(key->span());
      have_index = true;
    } else if (stored.purpose == "audit") {
      audit_mac_ = HmacSha256(
          hkdf_sha256(key->span(), vault_id_, "credentials/v1/audit-mac", kKeySize).span());
      audit_seal_key_ = hkdf_sha256(key->span(), vault_id_, "credentials/v1/audit-seal", kKeySize);
      ledger_mac_ = HmacSha256(
          hkdf_sha256(key->span(), vault_id_, "credentials/v1/ledger-mac", kKeySize).span());
      audit_seal_key_.lock();
      have_audit = true;
    }
  }
  if (!have_index || !have_audit || data_keys_.empty()) {
    throw DecryptionFailedError(
        "the vault was altered: its key table is incomplete. Nothing was changed; run "
        "`credential_manager "
        "verify` and restore the vault from a backup");
  }
  have_fixed_keys_ = true;
}

const SecretBytes& Keyring::data_key(RecordStore& store, std::int64_t key_id) {
  {
    std::shared_lock lock(mutex_);
    if (const auto it = data_keys_.find(key_id); it != data_keys_.end()) return it->second;
  }
  load(store);
  std::shared_lock lock(mutex_);
  const auto it = data_keys_.find(key_id);
  if (it == data_keys_.end()) {
    throw DecryptionFailedError("a record names a data key the vault does not have");
  }
  return it->second;
}

void Keyring::rewrap(RecordStore& store, const SecretBytes& new_kek) const {
  std::vector<std::pair<std::int64_t, Bytes>> rewrapped;
  const auto stored_keys = store.load_keys();
  std::shared_lock lock(mutex_);
  for (const auto& stored : stored_keys) {
    const Bytes aad = wrap_aad(stored.key_id, stored.purpose);
    auto key = aead_decrypt(kek_, stored.wrapped, aad);
    if (!key) fail_unwrap(stored_keys);
    rewrapped.emplace_back(stored.key_id, aead_encrypt(new_kek, key->span(), aad));
  }
  lock.unlock();
  for (const auto& [key_id, wrapped] : rewrapped) store.update_wrapped_key(key_id, wrapped);
}

void Keyring::require_current_kek(RecordStore& store) const {
  const auto stored_keys = store.load_keys();
  std::shared_lock lock(mutex_);
  require_all_unwrap(stored_keys);
}

void Keyring::require_all_unwrap(const std::vector<StoredKey>& stored_keys) const {
  // Every stored key, not just one: a table already holding a key wrapped
  // under another KEK gets no more of them.
  for (const auto& stored : stored_keys) {
    if (!aead_decrypt(kek_, stored.wrapped, wrap_aad(stored.key_id, stored.purpose)))
      fail_unwrap(stored_keys);
  }
}

bool Keyring::kek_unwraps_any(const std::vector<StoredKey>& stored_keys) const {
  return std::any_of(stored_keys.begin(), stored_keys.end(), [&](const StoredKey& stored) {
    return aead_decrypt(kek_, stored.wrapped, wrap_aad(stored.key_id, stored.purpose)).has_value();
  });
}

void Keyring::fail_unwrap(const std::vector<StoredKey>& stored_keys) const {
  if (kek_unwraps_any(stored_keys))
    throw_vault_altered("a key in its key table does not unwrap under it");
  if (have_fixed_keys_) {
    throw MasterKeyRotatedError(
        "the master key was rotated by another process after this one opened the vault; nothing "
        "was written. Open the vault again with the new master key");
  }
  wrong_key();
}

}  // namespace credentials::internal
