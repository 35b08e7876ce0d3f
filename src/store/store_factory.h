// open_record_store: the record store a vault location names (DESIGN.md,
// Storage): a postgresql:// (or postgres://) URL is the shared PostgreSQL
// store, anything else the embedded SQLite store in the directory.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "store/record_store.h"

namespace credentials::internal {

// Opens the store at `url` when it is a PostgreSQL URL, else in `directory`.
// Throws CredentialNotFoundError when there is no vault there and `create`
// is false; DatabaseError when the storage cannot be opened.
[[nodiscard]] std::unique_ptr<RecordStore> open_record_store(std::string_view url,
                                                             const std::filesystem::path& directory,
                                                             bool create);

}  // namespace credentials::internal
