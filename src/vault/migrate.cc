// init_vault and migrate_vault: creating a vault explicitly, and moving one
// between the embedded store and the shared PostgreSQL store (docs/POSTGRES.md).
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>

#include "credentials/errors.h"
#include "credentials/vault.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store_copy.h"
#include "store/store_factory.h"
#include "vault/vault_impl.h"

namespace credentials {
namespace {

VaultOptions copy_of(const VaultOptions& options, const SecretString& key, bool create) {
  VaultOptions out;
  out.directory = options.directory;
  out.url = options.url;
  out.master_key = key.clone();
  out.create_if_missing = create;
  out.history_depth = options.history_depth;
  return out;
}

// Location without secrets, for messages.
std::string where(const VaultOptions& options) {
  return internal::is_postgres_url(options.url) ? std::string("the PostgreSQL vault")
                                                : options.directory.string();
}

UserContext os_actor() {
  std::string login = "uid-" + std::to_string(::getuid());
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name) login = pw->pw_name;
  return {"os:" + login, login, {"vault-admin"}};
}

bool holds_sqlite_vault(const std::filesystem::path& directory) {
  std::error_code ec;
  return std::filesystem::exists(directory / internal::SqliteStore::kFileName, ec);
}

}  // namespace

bool init_vault(const VaultOptions& options) {
  bool existed = false;
  try {
    existed = internal::open_record_store(options.url, options.directory, false)->initialized();
  } catch (const CredentialNotFoundError&) {
  }
  // Opening creates the schema, the header and the keys under the write
  // lock, or checks the key and migrates an existing schema.
  (void)Vault::open(copy_of(options, options.master_key, /*create=*/true));
  return !existed;
}

void migrate_vault(const VaultOptions& from, const VaultOptions& to) {
  if (from.url == to.url && (!from.url.empty() || from.directory == to.directory)) {
    throw InvalidArgumentError("migrate: the source and the target are the same vault");
  }
  {
    Vault source = Vault::open(copy_of(from, from.master_key, /*create=*/false));
    const VerifyReport report = source.verify();
    if (!report.ok()) {
      throw DecryptionFailedError(fmt::format(
          "the source vault does not verify ({}): nothing was copied; run `credential_manager verify`",
          report.problems.empty() ? report.audit.problem : report.problems.front()));
    }
  }
  const bool target_is_directory = !internal::is_postgres_url(to.url);
  if (target_is_directory && holds_sqlite_vault(to.directory)) {
    throw AlreadyExistsError(fmt::format(
        "{} already holds a vault: migrate into an empty directory", to.directory.string()));
  }
  try {
    auto source = internal::open_record_store(from.url, from.directory, false);
    auto target = internal::open_record_store(to.url, to.directory, true);
    internal::copy_store(*source, *target);
  } catch (const AlreadyExistsError&) {
    throw AlreadyExistsError(fmt::format(
        "{} already holds a vault: migrate into an unused schema (do not run init on it first)",
        where(to)));
  } catch (...) {
    // The copy is one transaction; an embedded target file made for it is
    // removed so that the directory is as it was.
    if (target_is_directory) {
      std::error_code ignored;
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(to.directory / (std::string(internal::SqliteStore::kFileName) + suffix),
                                ignored);
      }
    }
    throw;
  }
  Vault target = Vault::open(copy_of(to, from.master_key, /*create=*/false));
  const VerifyReport report = target.verify();
  if (!report.ok()) {
    throw DatabaseError(fmt::format("the copy in {} does not verify ({}): do not use it",
                                    where(to),
                                    report.problems.empty() ? report.audit.problem : report.problems.front()));
  }
  target.impl().record_event(os_actor(), {"migrate_store", "", "", "ok", "", "", ""});
}

}  // namespace credentials
