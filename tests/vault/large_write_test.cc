// LargeWrite (RecordStore::begin_large_write): a transaction that adds
// thousands of credentials (an import) keeps its pages in memory until it
// commits, instead of spilling them to the write-ahead log and reading them
// back; afterwards the store returns to its usual cache bound.
//
// Seen from outside: pages spilled before the commit make the log file grow
// while the transaction is still open.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "crypto/primitives.h"
#include "store/sqlite_store.h"
#include "support/temp_dir.h"

namespace credentials::internal {
namespace {

using testing::TempDir;

constexpr int kRecords = 3000;  // ~2.5 MB of pages: past the usual 2,000 KiB cache
constexpr std::size_t kSealedBytes = 700;

class LargeWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = SqliteStore::open(dir_.path() / "vault", /*create=*/true);
    store_->create_schema();
  }

  std::uintmax_t log_size() const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir_.path() / "vault" / "vault.db-wal", ec);
    return ec ? 0 : size;
  }

  // Inserts kRecords credentials with random keys (as HMAC tags are) in one
  // transaction, announced as `announced` records by a LargeWrite or not
  // announced at all, and returns how much the log grew before the commit.
  // `commit` false: the transaction is rolled back instead.
  std::uintmax_t log_growth_before_commit(std::optional<std::size_t> announced, bool commit = true) {
    store_->compact_log();  // an empty log: any page written now grows it
    const std::uintmax_t before = log_size();
    std::optional<LargeWrite> scope;
    if (announced) scope.emplace(*store_, *announced);
    std::uintmax_t during = 0;
    {
      auto txn = store_->begin_write();
      for (int i = 0; i < kRecords; ++i) {
        StoredRecord record;
        record.lookup = random_bytes(32);
        record.owner_tag = random_bytes(32);
        record.version = 1;
        record.key_id = 1;
        record.sealed = random_bytes(kSealedBytes);
        store_->insert_credential(random_bytes(32), record);
      }
      during = log_size();
      if (commit) {
        txn.commit();
        stored_ += kRecords;
      }
    }
    EXPECT_EQ(store_->credential_count(), stored_);
    return during - before;
  }

  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  std::int64_t stored_ = 0;
};

TEST_F(LargeWriteTest, KeepsItsPagesInMemoryUntilTheCommit) {
  EXPECT_EQ(log_growth_before_commit(kRecords), 0u) << "pages were spilled to the log";
}

TEST_F(LargeWriteTest, TheUsualBoundReturnsAfterwards) {
  // Without the scope the same transaction spills (so the test above can
  // fail), and it does again after a large write has ended, committed or
  // rolled back. The large writes announce far more records than they
  // write: a cache left that large would hold the next write whole.
  constexpr std::size_t kPlenty = 200'000;
  EXPECT_GT(log_growth_before_commit(std::nullopt), 0u);
  EXPECT_EQ(log_growth_before_commit(kPlenty), 0u);
  EXPECT_GT(log_growth_before_commit(std::nullopt), 0u) << "the cache stayed large";
  EXPECT_EQ(log_growth_before_commit(kPlenty, /*commit=*/false), 0u);
  EXPECT_GT(log_growth_before_commit(std::nullopt), 0u) << "the cache stayed large after a rollback";
}

TEST_F(LargeWriteTest, AnInnerScopeLeavesTheOuterOneInForce) {
  const LargeWrite outer(*store_, 200'000);
  {
    const LargeWrite inner(*store_, 50'000);
  }
  EXPECT_EQ(log_growth_before_commit(std::nullopt), 0u) << "the inner scope's end lowered the cache";
}

TEST_F(LargeWriteTest, AFewHundredRecordsLeaveTheCacheAsItIs) {
  // Below the threshold the scope changes nothing: the same write announced
  // as 100 records spills as usual.
  EXPECT_GT(log_growth_before_commit(100), 0u);
}

}  // namespace
}  // namespace credentials::internal
