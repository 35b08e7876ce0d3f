// The vault on the embedded SQLite store: authorization, the record model,
// versions and audit events. See docs/FORMAT.md for the bytes it writes.
#include <fmt/format.h>
#include <unistd.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "audit/audit_chain.h"
#include "credentials/errors.h"
#include "store/sqlite_store.h"
#include "vault/keyring.h"
#include "vault/record_codec.h"
#include "vault/validation.h"
#include "vault/vault_impl.h"

namespace credentials::internal {
namespace {

constexpr std::string_view kRecordLabel = "credentials/v1/record";
constexpr std::int64_t kFormatVersion = 1;

void append_u64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void append_field(Bytes& out, std::string_view field) {
  append_u64(out, field.size());
  out.insert(out.end(), field.begin(), field.end());
}

Bytes to_bytes(std::int64_t v) {
  Bytes out;
  append_u64(out, static_cast<std::uint64_t>(v));
  return out;
}
std::int64_t from_bytes(const Bytes& b) {
  std::uint64_t v = 0;
  for (std::uint8_t x : b) v = (v << 8) | x;
  return static_cast<std::int64_t>(v);
}

Timestamp now() { return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()); }

std::string error_kind(const std::exception& e) {
  if (dynamic_cast<const CredentialNotFoundError*>(&e)) return "CredentialNotFoundError";
  if (dynamic_cast<const UnauthorizedError*>(&e)) return "UnauthorizedError";
  if (dynamic_cast<const DecryptionFailedError*>(&e)) return "DecryptionFailedError";
  if (dynamic_cast<const AlreadyExistsError*>(&e)) return "AlreadyExistsError";
  if (dynamic_cast<const InvalidArgumentError*>(&e)) return "InvalidArgumentError";
  if (dynamic_cast<const ConflictError*>(&e)) return "ConflictError";
  if (dynamic_cast<const DatabaseError*>(&e)) return "DatabaseError";
  if (dynamic_cast<const SkillError*>(&e)) return "SkillError";
  return "Error";
}

std::string outcome_of(const std::exception& e) {
  if (dynamic_cast<const UnauthorizedError*>(&e)) return "denied";
  if (dynamic_cast<const CredentialNotFoundError*>(&e)) return "not_found";
  return "error";
}

[[noreturn]] void unauthorized(const UserContext& user) {
  throw UnauthorizedError(fmt::format(
      "unauthorized: user '{}' may not access that credential. Credentials are per user: use the "
      "owner's user id, or an administrator role",
      user.user_id));
}

[[noreturn]] void not_found(const UserContext& user, std::string_view ref) {
  throw CredentialNotFoundError(fmt::format(
      "credential '{}' not found for user '{}'. List the available credentials with: "
      "credential_manager list --user {}",
      ref, user.user_id, user.user_id));
}

class EmbeddedVault final : public VaultImpl {
 public:
  EmbeddedVault(std::unique_ptr<SqliteStore> store, std::unique_ptr<Keyring> keys, int history_depth,
                bool audit)
      : store_(std::move(store)), keys_(std::move(keys)), history_depth_(history_depth), audit_(audit) {}

 private:

  struct Located {
    StoredRecord record;
    std::string owner_hint;
  };

  Bytes lookup_tag(std::string_view owner, std::string_view name) const {
    Bytes message{'l'};
    append_field(message, owner);
    append_field(message, name);
    return hmac_sha256(keys_->index_key(), message);
  }
  Bytes owner_tag(std::string_view owner) const {
    Bytes message{'o'};
    append_field(message, owner);
    return hmac_sha256(keys_->index_key(), message);
  }
  Bytes id_tag(std::string_view id) const {
    Bytes message{'i'};
    append_field(message, id);
    return hmac_sha256(keys_->index_key(), message);
  }

  void authorize_namespace(const UserContext& user, std::string_view owner) const {
    validate_identifier(user.user_id, "user id");
    validate_identifier(owner, "user id");
    if (owner != user.user_id && !user.is_admin()) unauthorized(user);
  }

  // `ref` is a name in the caller's namespace, else a credential id.
  // REQUIRES: mutex_ held.
  Located locate(const UserContext& user, std::string_view ref) {
    validate_identifier(user.user_id, "user id");
    if (ref.empty() || ref.size() > 512) {
      throw InvalidArgumentError("invalid credential reference: give a credential name or id");
    }
    if (is_valid_identifier(ref)) {
      if (auto record = store_->current_record(lookup_tag(user.user_id, ref))) {
        return {std::move(*record), user.user_id};
      }
    }
    if (auto lookup = store_->lookup_by_id(id_tag(ref))) {
      if (auto record = store_->current_record(*lookup)) {
        if (!constant_time_equal(record->owner_tag, owner_tag(user.user_id)) && !user.is_admin()) {
          unauthorized(user);
        }
        return {std::move(*record), ""};
      }
    }
    not_found(user, ref);
  }

  Bytes record_aad(ByteView lookup, std::uint64_t version, std::int64_t key_id) const {
    Bytes aad(kRecordLabel.begin(), kRecordLabel.end());
    aad.insert(aad.end(), keys_->vault_id().begin(), keys_->vault_id().end());
    aad.insert(aad.end(), lookup.begin(), lookup.end());
    append_u64(aad, version);
    append_u64(aad, static_cast<std::uint64_t>(key_id));
    return aad;
  }

  StoredRecord seal(const Credential& c, ByteView lookup, ByteView owner) {
    const std::int64_t key_id = keys_->newest_data_key();
    StoredRecord record;
    record.lookup.assign(lookup.begin(), lookup.end());
    record.owner_tag.assign(owner.begin(), owner.end());
    record.version = c.version;
    record.key_id = key_id;
    SecretBytes plain = encode_record(c);
    record.sealed = aead_encrypt(keys_->data_key(*store_, key_id), plain.span(),
                                 record_aad(lookup, c.version, key_id));
    store_->add_encryptions(key_id, 1);
    return record;
  }

  // Decrypts a record and checks that it belongs where it is stored: a record
  // copied to another row fails the AEAD (its lookup is in the associated
  // data), and an owner tag edited in the index is caught here.
  Credential open_record(const StoredRecord& record) {
    const SecretBytes& key = keys_->data_key(*store_, record.key_id);
    auto plain = aead_decrypt(key, record.sealed, record_aad(record.lookup, record.version, record.key_id));
    if (!plain) {
      throw DecryptionFailedError(
          "decryption failed: a credential record was altered or moved; restore the vault from a "
          "backup");
    }
    Credential c = decode_record(plain->span());
    if (c.version != record.version || !constant_time_equal(lookup_tag(c.owner, c.name), record.lookup) ||
        !constant_time_equal(owner_tag(c.owner), record.owner_tag)) {
      throw DecryptionFailedError("decryption failed: a credential record is not where it belongs");
    }
    return c;
  }

  // REQUIRES: inside a write transaction.
  void insert_new(const Credential& c, const std::vector<std::string>& extra_ids) {
    const Bytes lookup = lookup_tag(c.owner, c.name);
    if (store_->current_version(lookup)) {
      throw AlreadyExistsError(fmt::format(
          "credential '{}' already exists for user '{}': choose another name, or use update",
          c.name, c.owner));
    }
    StoredRecord record = seal(c, lookup, owner_tag(c.owner));
    store_->insert_credential(id_tag(c.credential_id), record);
    for (const auto& id : extra_ids) store_->insert_credential_id(id_tag(id), lookup);
  }

  void append_event(const UserContext& actor, const AuditRecord& event) {
    if (!audit_) return;
    nlohmann::json roles = nlohmann::json::array();
    for (const auto& role : actor.roles) roles.push_back(role);
    nlohmann::json body = {
        {"time", format_timestamp(now())}, {"actor", actor.user_id}, {"roles", roles},
        {"action", event.action},          {"owner", event.owner},   {"name", event.name},
        {"outcome", event.outcome},        {"error", event.error_kind}, {"pid", ::getpid()}};
    if (!event.skill.empty()) body["skill"] = event.skill;
    if (!event.query_sha256.empty()) body["query_sha256"] = event.query_sha256;
    const Bytes tag = is_valid_identifier(event.owner) ? owner_tag(event.owner) : Bytes();
    append_audit_event(*store_, *keys_, tag,
                       body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // Runs a read and records its audit event (fail closed: when the event
  // cannot be written the result is not returned).
  template <typename F>
  auto audited_read(const UserContext& user, std::string_view action, std::string_view name, F&& body) {
    std::lock_guard lock(mutex_);
    std::string owner;
    try {
      auto result = body(owner);
      record_locked(user, {std::string(action), owner, std::string(name), "ok", "", "", ""});
      return result;
    } catch (const Error& e) {
      record_failure(user, action, owner, name, e);
      throw;
    }
  }

  // Runs a write in one durable transaction with its audit event; a failure
  // is rolled back and then recorded in a transaction of its own.
  template <typename F>
  auto audited_write(const UserContext& user, std::string_view action, std::string_view owner,
                     std::string_view name, F&& body, std::string* owner_out = nullptr) {
    std::lock_guard lock(mutex_);
    try {
      auto txn = store_->begin_write(/*durable=*/true);
      auto result = body();
      append_event(user, {std::string(action), owner_out ? *owner_out : std::string(owner),
                          std::string(name), "ok", "", "", ""});
      txn.commit();
      return result;
    } catch (const Error& e) {
      record_failure(user, action, owner_out ? *owner_out : std::string(owner), name, e);
      throw;
    }
  }

  void record_locked(const UserContext& actor, const AuditRecord& event) {
    auto txn = store_->begin_write(/*durable=*/false);
    append_event(actor, event);
    txn.commit();
  }

  void record_failure(const UserContext& user, std::string_view action, std::string_view owner,
                      std::string_view name, const Error& e) {
    // A failure to audit a failure must not hide the original error.
    try {
      record_locked(user, {std::string(action), std::string(owner), std::string(name), outcome_of(e),
                           error_kind(e), "", ""});
    } catch (const Error&) {
    }
  }

 public:
  std::string store_credential(const UserContext& user, NewCredential input) override {
    Credential c;
    c.owner = user.user_id;
    c.name = input.name;
    c.db_type = input.db_type;
    c.host = input.host;
    c.port = input.port;
    c.database = input.database;
    c.username = input.username;
    c.password = std::move(input.password);
    c.description = input.description;
    c.ssl_mode = input.ssl_mode;
    c.connection_timeout = input.connection_timeout;
    return audited_write(user, "store", user.user_id, input.name, [&] {
      validate_fields(c, c.password);
      c.credential_id = fmt::format("{}_{}_{}", c.owner, c.name, hex_encode(random_bytes(8)));
      c.created_at = c.updated_at = now();
      c.version = 1;
      insert_new(c, {});
      return c.credential_id;
    });
  }

  Credential get_credential(const UserContext& user, std::string_view ref) override {
    return audited_read(user, "get", ref, [&](std::string& owner) {
      auto located = locate(user, ref);
      owner = located.owner_hint;
      Credential c = open_record(located.record);
      owner = c.owner;
      return c;
    });
  }

  Credential get_credential(const UserContext& user, std::string_view owner,
                            std::string_view name) override {
    return audited_read(user, "get", name, [&](std::string& event_owner) {
      event_owner = owner;
      authorize_namespace(user, owner);
      auto record = store_->current_record(lookup_tag(owner, name));
      if (!record) not_found(user, name);
      return open_record(*record);
    });
  }

  std::vector<CredentialInfo> list_credentials(const UserContext& user) override {
    return audited_read(user, "list", "", [&](std::string& owner) {
      validate_identifier(user.user_id, "user id");
      owner = user.is_admin() ? "" : user.user_id;
      auto records = user.is_admin() ? store_->all_current_records()
                                     : store_->current_records_of_owner(owner_tag(user.user_id));
      std::vector<CredentialInfo> out;
      out.reserve(records.size());
      for (const auto& record : records) out.push_back(open_record(record));
      std::sort(out.begin(), out.end(), [](const CredentialInfo& a, const CredentialInfo& b) {
        return std::tie(a.owner, a.name) < std::tie(b.owner, b.name);
      });
      return out;
    });
  }

  std::uint64_t update_credential(const UserContext& user, std::string_view ref,
                                  CredentialChanges changes,
                                  std::optional<std::uint64_t> expected_version) override {
    const std::string action = changes.password && !changes.host && !changes.port &&
                                       !changes.database && !changes.username &&
                                       !changes.db_type && !changes.description &&
                                       !changes.ssl_mode && !changes.connection_timeout
                                   ? "update_password"
                                   : "update";
    std::string owner;
    return audited_write(user, action, "", ref, [&] {
      auto located = locate(user, ref);
      Credential c = open_record(located.record);
      owner = c.owner;
      if (expected_version && *expected_version != c.version) {
        throw ConflictError(fmt::format(
            "conflict: credential '{}' is at version {}, not {}: another writer updated it; "
            "read it again and retry",
            c.name, c.version, *expected_version));
      }
      if (changes.db_type) c.db_type = *changes.db_type;
      if (changes.host) c.host = *changes.host;
      if (changes.port) c.port = *changes.port;
      if (changes.database) c.database = *changes.database;
      if (changes.username) c.username = *changes.username;
      if (changes.description) c.description = *changes.description;
      if (changes.ssl_mode) c.ssl_mode = *changes.ssl_mode;
      if (changes.connection_timeout) c.connection_timeout = *changes.connection_timeout;
      if (changes.password) c.password = std::move(*changes.password);
      validate_fields(c, c.password);
      c.version += 1;
      c.updated_at = now();
      StoredRecord record = seal(c, located.record.lookup, located.record.owner_tag);
      store_->add_version(record, history_depth_);
      return c.version;
    }, &owner);
  }

  void delete_credential(const UserContext& user, std::string_view ref) override {
    std::string owner;
    audited_write(user, "delete", "", ref, [&] {
      auto located = locate(user, ref);
      owner = open_record(located.record).owner;
      store_->delete_credential(located.record.lookup);
      return 0;
    }, &owner);
  }

  std::uint64_t current_version(const UserContext& user, std::string_view ref) override {
    std::lock_guard lock(mutex_);
    return locate(user, ref).record.version;
  }

  void record_event(const UserContext& actor, const AuditRecord& event) override {
    std::lock_guard lock(mutex_);
    auto txn = store_->begin_write(/*durable=*/false);
    append_event(actor, event);
    txn.commit();
  }

  const std::filesystem::path& directory() const override { return store_->directory(); }

 private:
  std::mutex mutex_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Keyring> keys_;
  int history_depth_;
  bool audit_;
};

KeyDerivation read_derivation(SqliteStore& store) {
  auto vault_id = store.get_meta("vault_id");
  auto salt = store.get_meta("argon2_salt");
  auto ops = store.get_meta("argon2_ops");
  auto mem = store.get_meta("argon2_mem");
  if (!vault_id || !salt || !ops || !mem) {
    throw DecryptionFailedError("the vault header is incomplete: restore the vault from a backup");
  }
  return {*vault_id, *salt,
          {static_cast<std::uint64_t>(from_bytes(*ops)), static_cast<std::size_t>(from_bytes(*mem))}};
}

}  // namespace

std::unique_ptr<VaultImpl> open_vault(VaultOptions options) {
  SecretString material = normalize_master_key(options.master_key.reveal());
  if (material.empty()) {
    throw MissingKeyError(
        "no master key: set CREDENTIAL_MASTER_KEY (or CREDENTIAL_MASTER_KEY_FILE). Make one with: "
        "credential_manager keygen");
  }
  if (options.history_depth < 1 || options.history_depth > 1000) {
    throw InvalidArgumentError("history depth must be between 1 and 1000");
  }
  auto store = SqliteStore::open(options.directory, options.create_if_missing);
  if (!store) {
    throw CredentialNotFoundError(
        fmt::format("no vault in {}: create one by storing a credential, or check --vault-dir",
                    options.directory.string()));
  }
  if (!store->initialized()) {
    // Created under the write lock so two processes creating the same vault
    // at once end with one header and one set of keys.
    auto txn = store->begin_write();
    if (!store->initialized()) {
      store->create_schema();
      const Bytes vault_id = random_bytes(kVaultIdSize);
      const Bytes salt = random_bytes(kArgon2SaltSize);
      const Argon2Params params = default_argon2_params();
      store->put_meta("vault_id", vault_id);
      store->put_meta("argon2_salt", salt);
      store->put_meta("argon2_ops", to_bytes(static_cast<std::int64_t>(params.ops_limit)));
      store->put_meta("argon2_mem", to_bytes(static_cast<std::int64_t>(params.mem_limit)));
      Keyring keys(vault_id, derive_kek(material, {vault_id, salt, params}));
      const std::int64_t created = now().time_since_epoch().count();
      keys.create_key(*store, "index", created);
      keys.create_key(*store, "audit", created);
      keys.create_key(*store, "data", created);
      store->put_meta("format_version", to_bytes(kFormatVersion));
      txn.commit();
    }
  }
  auto version = store->get_meta("format_version");
  if (!version || from_bytes(*version) != kFormatVersion) {
    throw DatabaseError("this vault was written by a newer version of credentials: upgrade");
  }
  KeyDerivation derivation = read_derivation(*store);
  auto keys = std::make_unique<Keyring>(derivation.vault_id, derive_kek(material, derivation));
  keys->load(*store);
  return std::make_unique<EmbeddedVault>(std::move(store), std::move(keys), options.history_depth,
                                         options.audit);
}

}  // namespace credentials::internal
