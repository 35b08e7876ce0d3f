// The public Vault handle, the environment configuration and get_vault().
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "credentials/errors.h"
#include "credentials/vault.h"
#include "crypto/primitives.h"
#include "vault/keyring.h"
#include "vault/vault_impl.h"

namespace credentials {

SecretString master_key_from_environment() {
  if (const char* key = std::getenv("CREDENTIAL_MASTER_KEY"); key && *key) {
    return internal::normalize_master_key(key);
  }
  if (const char* path = std::getenv("CREDENTIAL_MASTER_KEY_FILE"); path && *path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw MissingKeyError(fmt::format(
          "cannot read the master key file named by CREDENTIAL_MASTER_KEY_FILE ({}): check the "
          "path and its permissions",
          path));
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SecretString key = internal::normalize_master_key(text);
    SecretString wipe(std::move(text));  // wipes `text`
    if (key.empty()) {
      throw MissingKeyError(fmt::format("the master key file {} is empty: put a key made with "
                                        "`credential_manager keygen` in it",
                                        path));
    }
    return key;
  }
  throw MissingKeyError(
      "no master key: set CREDENTIAL_MASTER_KEY or CREDENTIAL_MASTER_KEY_FILE. Make a key with: "
      "credential_manager keygen");
}

VaultOptions vault_options_from_environment() {
  VaultOptions options;
  if (const char* dir = std::getenv("CREDENTIAL_VAULT_DIR"); dir && *dir) options.directory = dir;
  options.master_key = master_key_from_environment();
  return options;
}

SecretString generate_master_key() {
  internal::SecretBytes key = internal::random_secret(internal::kKeySize);
  std::string encoded = internal::base64url_encode(key.span());
  return SecretString(std::move(encoded));
}

Vault Vault::open(VaultOptions options) { return Vault(internal::open_vault(std::move(options))); }

Vault::Vault(std::unique_ptr<internal::VaultImpl> impl) : impl_(std::move(impl)) {}
Vault::Vault(Vault&&) noexcept = default;
Vault& Vault::operator=(Vault&&) noexcept = default;
Vault::~Vault() = default;

std::string Vault::store_credential(const UserContext& user, NewCredential credential) {
  return impl_->store_credential(user, std::move(credential));
}

Credential Vault::get_credential(const UserContext& user, std::string_view ref) {
  return impl_->get_credential(user, ref);
}

Credential Vault::get_credential(const UserContext& user, std::string_view owner,
                                 std::string_view name) {
  return impl_->get_credential(user, owner, name);
}

std::vector<CredentialInfo> Vault::list_credentials(const UserContext& user) {
  return impl_->list_credentials(user);
}

std::uint64_t Vault::update_password(const UserContext& user, std::string_view ref,
                                     SecretString new_password) {
  CredentialChanges changes;
  changes.password = std::move(new_password);
  return impl_->update_credential(user, ref, std::move(changes), std::nullopt);
}

std::uint64_t Vault::update_password(const UserContext& user, std::string_view ref,
                                     SecretString new_password, std::uint64_t expected_version) {
  CredentialChanges changes;
  changes.password = std::move(new_password);
  return impl_->update_credential(user, ref, std::move(changes), expected_version);
}

std::uint64_t Vault::update_credential(const UserContext& user, std::string_view ref,
                                       CredentialChanges changes,
                                       std::optional<std::uint64_t> expected_version) {
  return impl_->update_credential(user, ref, std::move(changes), expected_version);
}

void Vault::delete_credential(const UserContext& user, std::string_view ref) {
  impl_->delete_credential(user, ref);
}

const std::filesystem::path& Vault::directory() const { return impl_->directory(); }

Vault& get_vault() {
  static std::mutex mutex;
  static std::unique_ptr<Vault> vault;
  std::lock_guard lock(mutex);
  if (!vault) vault = std::make_unique<Vault>(Vault::open(vault_options_from_environment()));
  return *vault;
}

}  // namespace credentials
