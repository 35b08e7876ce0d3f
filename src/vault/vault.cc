// The public Vault handle, the environment configuration and get_vault().
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include "credentials/errors.h"
#include "credentials/vault.h"
#include "crypto/primitives.h"
#include "store/sqlite_store.h"
#include "vault/keyring.h"
#include "vault/vault_impl.h"

namespace credentials {

SecretString read_master_key_file(const std::filesystem::path& path, std::string_view source) {
  const auto cannot_read = [&](int error) {
    return MissingKeyError(fmt::format(
        "cannot read the master key file named by {} ({}): {}; check the path and its permissions",
        source, path.string(), std::strerror(error)));
  };
  // Not O_NOFOLLOW: a key file mounted as a secret is often a symbolic link.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw cannot_read(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw MissingKeyError(fmt::format(
        "{} names a directory ({}), not a file: name the file that holds the master key", source,
        path.string()));
  }
  // Read no more than the limit and one byte: /dev/zero or a log file named
  // by mistake is refused, not read into memory. A pipe (<(pass show key))
  // is read like a file.
  SecretString text;
  char chunk[512];
  while (text.size() <= kMaxKeyFileBytes) {
    const ssize_t count = ::read(fd, chunk, sizeof chunk);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      const int error = errno;
      ::close(fd);
      throw cannot_read(error);
    }
    if (count == 0) break;
    text.append(std::string_view(chunk, static_cast<std::size_t>(count)));
  }
  sodium_memzero(chunk, sizeof chunk);
  ::close(fd);
  if (text.size() > kMaxKeyFileBytes) {
    throw MissingKeyError(fmt::format(
        "the file named by {} ({}) is longer than {} KiB: it is not a master key file (a key from "
        "`credential_manager keygen` is one line of 44 characters)",
        source, path.string(), kMaxKeyFileBytes / 1024));
  }
  SecretString key = internal::normalize_master_key(text.reveal());
  if (key.empty()) {
    throw MissingKeyError(
        fmt::format("the master key file {} (named by {}) is empty: put a key "
                    "made with `credential_manager keygen` in it",
                    path.string(), source));
  }
  return key;
}

SecretString master_key_from_environment() {
  if (const char* key = std::getenv("CREDENTIAL_MASTER_KEY"); key && *key) {
    return internal::normalize_master_key(key);
  }
  if (const char* path = std::getenv("CREDENTIAL_MASTER_KEY_FILE"); path && *path) {
    return read_master_key_file(path, "CREDENTIAL_MASTER_KEY_FILE");
  }
  throw MissingKeyError(
      "no master key: set CREDENTIAL_MASTER_KEY or CREDENTIAL_MASTER_KEY_FILE. Make a key with: "
      "credential_manager keygen");
}

VaultOptions vault_options_from_environment() {
  VaultOptions options;
  if (const char* dir = std::getenv("CREDENTIAL_VAULT_DIR"); dir && *dir) options.directory = dir;
  if (const char* url = std::getenv("CREDENTIAL_VAULT_URL"); url && *url) options.url = url;
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

std::vector<std::string> Vault::store_credentials(const UserContext& user,
                                                 std::vector<NewCredential> credentials) {
  return impl_->store_credentials(user, std::move(credentials));
}
std::vector<CredentialVersion> Vault::history(const UserContext& user, std::string_view ref) {
  return impl_->history(user, ref);
}
std::uint64_t Vault::rollback(const UserContext& user, std::string_view ref, std::uint64_t version) {
  return impl_->rollback(user, ref, version);
}
std::vector<AuditEvent> Vault::audit_events(const UserContext& user, const AuditQuery& query) {
  return impl_->audit_events(user, query);
}
AuditVerification Vault::verify_audit() { return impl_->verify_audit({}); }
AuditVerification Vault::verify_audit(const std::vector<std::string>& checkpoints) {
  return impl_->verify_audit(checkpoints);
}

std::string AuditHead::checkpoint() const {
  return fmt::format("credentials-checkpoint:1:{}:{}:{}", vault_id_hex, seq, mac_hex);
}
AuditHead Vault::audit_head() { return impl_->audit_head(); }
void Vault::rotate_master_key(SecretString new_master_key) {
  impl_->rotate_master_key(std::move(new_master_key));
}
std::int64_t Vault::rotate_data_key() { return impl_->rotate_data_key(); }
ReencryptProgress Vault::reencrypt(const std::function<void(const ReencryptProgress&)>& progress,
                                   std::size_t batch) {
  return impl_->reencrypt(progress, batch);
}
std::vector<KeyInfo> Vault::keys() { return impl_->keys(); }
void Vault::backup(const std::filesystem::path& out, bool replace_any_file) {
  impl_->backup(out, replace_any_file);
}
VerifyReport Vault::verify() { return impl_->verify(); }
ImportReport Vault::import_legacy(const std::filesystem::path& vault_enc,
                                  const SecretString& legacy_key, bool dry_run, bool skip_invalid) {
  return impl_->import_legacy(vault_enc, legacy_key, dry_run, skip_invalid);
}

const std::filesystem::path& Vault::directory() const { return impl_->directory(); }

namespace {

// Removes a scratch directory when the operation ends, also by exception.
struct RemoveOnExit {
  std::filesystem::path path;
  ~RemoveOnExit() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

bool holds_vault(const std::filesystem::path& directory) {
  std::error_code ec;
  return std::filesystem::exists(directory / "vault.db", ec);
}

// Opens a backup file as a vault without writing to it: it is first copied
// into a private scratch directory inside `scratch_parent`.
std::filesystem::path copy_backup(const std::filesystem::path& backup,
                                  const std::filesystem::path& scratch_dir) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(backup, ec)) {
    throw InvalidArgumentError(fmt::format("no backup file at {}", backup.string()));
  }
  // A backup is an SQLite database: anything else is not one at all.
  char magic[16] = {};
  std::ifstream in(backup, std::ios::binary);
  in.read(magic, sizeof magic);
  if (in.gcount() == 0) {
    throw InvalidArgumentError(
        fmt::format("{} is not a vault backup: it is empty. Nothing was changed", backup.string()));
  }
  if (in.gcount() != sizeof magic || std::memcmp(magic, "SQLite format 3", sizeof magic) != 0) {
    throw InvalidArgumentError(fmt::format(
        "{} is not a vault backup: it is not even an SQLite database. Nothing was changed",
        backup.string()));
  }
  std::filesystem::create_directories(scratch_dir, ec);
  ::chmod(scratch_dir.c_str(), 0700);
  const auto target = scratch_dir / "vault.db";
  std::filesystem::copy_file(backup, target, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) throw DatabaseError(fmt::format("cannot read the backup {}: {}", backup.string(), ec.message()));
  ::chmod(target.c_str(), 0600);
  return target;
}

// Opens the scratch copy of `backup` (copy_backup) as a vault: one is never
// created in it. A file that is no vault at all is InvalidArgumentError; a
// vault that was emptied or damaged, or that this key does not open, is
// DecryptionFailedError. Messages name the backup, not its copy.
Vault open_backup(const std::filesystem::path& backup, const std::filesystem::path& scratch_dir,
                  const SecretString& master_key) {
  const auto named = [&](std::string message) {
    const std::string copy = (scratch_dir / "vault.db").string();
    for (auto at = message.find(copy); at != std::string::npos;
         at = message.find(copy, at + backup.string().size())) {
      message.replace(at, copy.size(), backup.string());
    }
    return message;
  };
  try {
    return Vault::open(
        {.directory = scratch_dir, .master_key = master_key.clone(), .create_if_missing = false});
  } catch (const CredentialNotFoundError&) {
    throw InvalidArgumentError(
        fmt::format("{} is not a vault backup: it is an empty SQLite database. Nothing was changed",
                    backup.string()));
  } catch (const InvalidArgumentError&) {
    throw InvalidArgumentError(fmt::format(
        "{} is not a vault backup: it is an SQLite database of another program. Nothing was "
        "changed",
        backup.string()));
  } catch (const DecryptionFailedError& e) {
    throw DecryptionFailedError(named(fmt::format("the backup {}: {}", backup.string(), e.what())));
  } catch (const DatabaseError& e) {
    throw DatabaseError(named(fmt::format("the backup {}: {}", backup.string(), e.what())));
  }
}

// The whole check of a backup before it is used: it is a vault, this key
// opens it, and every record, index, the version ledger and the audit chain
// verify.
void require_verified(const std::filesystem::path& backup, const std::filesystem::path& scratch_dir,
                      const SecretString& master_key) {
  Vault vault = open_backup(backup, scratch_dir, master_key);
  const VerifyReport report = vault.verify();
  if (!report.ok()) {
    throw DecryptionFailedError(
        fmt::format("the backup does not verify ({}): nothing was restored",
                    report.problems.empty() ? report.audit.problem : report.problems.front()));
  }
}

}  // namespace

VerifyReport verify_backup(const std::filesystem::path& backup, const SecretString& master_key) {
  char pattern[] = "/tmp/credentials-verify-XXXXXX";
  if (!::mkdtemp(pattern)) throw DatabaseError("cannot create a scratch directory to verify the backup");
  const std::filesystem::path scratch = pattern;
  const RemoveOnExit cleanup{scratch};
  copy_backup(backup, scratch);
  Vault vault = open_backup(backup, scratch, master_key);
  return vault.verify();
}

void restore_vault(const std::filesystem::path& backup, const std::filesystem::path& directory,
                   const SecretString& master_key, bool force) {
  internal::SqliteStore::refuse_symbolic_links(directory);
  if (holds_vault(directory) && !force) {
    throw AlreadyExistsError(fmt::format(
        "{} already holds a vault: restore into an empty directory, or pass --force to replace it",
        directory.string()));
  }
  // Check the backup with the key in a scratch copy beside the target first.
  const std::filesystem::path scratch = directory.string() + ".restore-" + std::to_string(::getpid());
  const RemoveOnExit cleanup{scratch};
  copy_backup(backup, scratch);
  require_verified(backup, scratch, master_key);
  // A vault there is replaced in place, in one transaction under its write
  // lock: processes that have it open see the restored vault at their next
  // transaction, and a write waits for the restore and then goes into it
  // (none goes to a file no longer in use).
  if (holds_vault(directory) && internal::SqliteStore::replace_contents(
                                    directory, scratch / internal::SqliteStore::kFileName)) {
    return;
  }
  // An empty directory (or one whose vault file SQLite cannot read as a
  // database, which nobody can be using): the checked file is moved into
  // place with one rename.
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  ::chmod(directory.c_str(), 0700);
  for (const char* stale : {"vault.db-wal", "vault.db-shm"}) std::filesystem::remove(directory / stale, ec);
  std::filesystem::rename(scratch / "vault.db", directory / "vault.db", ec);
  if (ec) throw DatabaseError(fmt::format("cannot move the restored vault into {}: {}", directory.string(), ec.message()));
  if (int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

Vault& get_vault() {
  static std::mutex mutex;
  static std::unique_ptr<Vault> vault;
  std::lock_guard lock(mutex);
  if (!vault) vault = std::make_unique<Vault>(Vault::open(vault_options_from_environment()));
  return *vault;
}

}  // namespace credentials
