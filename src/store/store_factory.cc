#include "store/store_factory.h"

#include <fmt/format.h>

#include "credentials/errors.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace credentials::internal {

std::unique_ptr<RecordStore> open_record_store(std::string_view url,
                                               const std::filesystem::path& directory, bool create) {
  if (is_postgres_url(url)) {
    auto store = PostgresStore::open(url, create);
    if (!store) {
      throw CredentialNotFoundError(
          "no vault in that PostgreSQL schema: create one with `credential_manager init`, or check "
          "--vault-url (the schema is named by ?schema=, default credential_vault)");
    }
    return store;
  }
  if (!url.empty()) {
    throw InvalidArgumentError("a vault URL starts with postgresql:// or postgres://");
  }
  auto store = SqliteStore::open(directory, create);
  if (!store) {
    throw CredentialNotFoundError(
        fmt::format("no vault in {}: create one by storing a credential, or check --vault-dir",
                    directory.string()));
  }
  return store;
}

}  // namespace credentials::internal
