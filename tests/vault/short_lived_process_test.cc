// VaultOptions::short_lived_process: SQLite's page cache in one huge-page
// region and the file read without a memory map (credential_manager sets it).
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "credentials/credentials.h"
#include "store/sqlite_store.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

using testing::TempDir;

// True when this process has the vault's database file mapped.
bool vault_file_is_mapped() {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.ends_with("/vault.db")) return true;
  }
  return false;
}

// Opens a vault, stores and reads a credential; 0 when it read back right
// and the file was mapped exactly when `expect_mapped`.
int store_and_read(const TempDir& dir, bool short_lived, bool expect_mapped) {
  VaultOptions options;
  options.directory = dir.path() / "vault";
  options.master_key = SecretString("Lv0xkzAfpDwWn3ZFBqPDDPxl_7kTBRbb_yBBYvmeh1o=");
  options.short_lived_process = short_lived;
  const UserContext alice{"alice", "alice", {}};
  Vault vault = Vault::open(std::move(options));
  vault.store_credential(alice, {.name = "db", .host = "h", .password = "pw-short-lived"});
  if (vault.get_credential(alice, "db").password.reveal() != "pw-short-lived") return 1;
  if (vault_file_is_mapped() != expect_mapped) return 2;
  return 0;
}

// The death-test child is a fresh execution of this binary (threadsafe
// style), so SQLite is not yet initialised there, as in credential_manager.
TEST(ShortLivedProcessDeathTest, TheVaultIsReadThroughTheHugePageCacheNotAMap) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  EXPECT_EXIT(
      {
        const int status = store_and_read(dir, /*short_lived=*/true, /*expect_mapped=*/false);
        std::exit(status != 0 ? status : internal::SqliteStore::use_huge_page_cache() ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ShortLivedProcessDeathTest, AProcessThatOpensNormallyReadsThroughTheMap) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  EXPECT_EXIT(std::exit(store_and_read(dir, /*short_lived=*/false, /*expect_mapped=*/true)),
              ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace credentials
