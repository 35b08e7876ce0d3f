// The records a vault handle keeps from its reads (src/vault/record_cache.h):
// each field kept as read, nothing kept across a change stamp but the
// handle's own commit, and never more memory than its budget
// (VaultOptions::record_cache_bytes).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/primitives.h"
#include "store/sqlite_store.h"
#include "support/temp_dir.h"
#include "vault/record_cache.h"

namespace credentials::internal {
namespace {

using testing::TempDir;

constexpr ChangeStamp kStamp{7, 9};

// A record as the vault stores one: 32-byte tags, a sealed record of ~300 bytes.
StoredRecord record(std::uint64_t version = 1, std::size_t sealed_size = 283) {
  StoredRecord r;
  r.lookup = random_bytes(32);
  r.owner_tag = random_bytes(32);
  r.version = version;
  r.key_id = 3;
  r.sealed = random_bytes(sealed_size);
  r.last_used = 1'700'000'000'000'000;
  return r;
}

void expect_same(const StoredRecord& kept, const StoredRecord& read) {
  EXPECT_EQ(kept.lookup, read.lookup);
  EXPECT_EQ(kept.owner_tag, read.owner_tag);
  EXPECT_EQ(kept.version, read.version);
  EXPECT_EQ(kept.key_id, read.key_id);
  EXPECT_EQ(kept.sealed, read.sealed);
  EXPECT_EQ(kept.last_used, read.last_used);
}

TEST(RecordCacheTest, KeepsEveryFieldAsRead) {
  RecordCache cache;
  const StoredRecord r = record();
  cache.put(kStamp, r);
  const auto kept = cache.find(kStamp, r.lookup);
  ASSERT_TRUE(kept);
  expect_same(*kept, r);
  EXPECT_FALSE(cache.find(kStamp, random_bytes(32)));
}

TEST(RecordCacheTest, NothingIsFoundAtAnotherStampAndAPutThereDropsTheRest) {
  RecordCache cache;
  const StoredRecord a = record();
  const StoredRecord b = record();
  cache.put(kStamp, a);
  const std::size_t one = cache.used_bytes();
  const ChangeStamp later{7, 10};
  EXPECT_FALSE(cache.find(later, a.lookup));
  cache.put(later, b);
  EXPECT_FALSE(cache.find(later, a.lookup));
  EXPECT_FALSE(cache.find(kStamp, a.lookup));
  EXPECT_TRUE(cache.find(later, b.lookup));
  // Even at a stamp seen before: what was kept then is gone.
  cache.put(kStamp, b);
  EXPECT_FALSE(cache.find(kStamp, a.lookup));
  // Put again, the dropped record takes its own place: no memory twice.
  cache.put(kStamp, a);
  EXPECT_TRUE(cache.find(kStamp, a.lookup));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.used_bytes(), 2 * one);
}

TEST(RecordCacheTest, InvalidateDropsEveryRecordAtOnceAndTheirMemoryIsReused) {
  constexpr std::size_t kBudget = 64 << 10;
  RecordCache cache(kBudget);
  std::vector<StoredRecord> first;
  for (int i = 0; i < 100; ++i) {
    first.push_back(record());
    cache.put(kStamp, first.back());
  }
  const std::size_t held = cache.size();
  cache.invalidate();
  EXPECT_EQ(cache.size(), held) << "nothing freed at once";
  for (const auto& r : first) EXPECT_FALSE(cache.find(kStamp, r.lookup));
  // Kept again at the same stamp, after the invalidation: the new ones are
  // found, the old ones still not, and the budget holds.
  std::vector<StoredRecord> second;
  for (int i = 0; i < 1000; ++i) {
    second.push_back(record());
    cache.put(kStamp, second.back());
    ASSERT_LE(cache.used_bytes(), kBudget);
  }
  for (const auto& r : first) EXPECT_FALSE(cache.find(kStamp, r.lookup));
  EXPECT_TRUE(cache.find(kStamp, second.back().lookup));
}

TEST(RecordCacheTest, ARecordPutAgainReplacesTheOneKept) {
  RecordCache cache;
  StoredRecord r = record(1);
  cache.put(kStamp, r);
  const std::size_t used = cache.used_bytes();
  r.version = 2;
  r.sealed = random_bytes(r.sealed.size());
  cache.put(kStamp, r);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.used_bytes(), used);
  const auto kept = cache.find(kStamp, r.lookup);
  ASSERT_TRUE(kept);
  expect_same(*kept, r);
}

TEST(RecordCacheTest, StaysWithinItsBudgetAndKeepsTheLatest) {
  constexpr std::size_t kBudget = 64 << 10;  // ~150 records
  RecordCache cache(kBudget);
  std::vector<StoredRecord> put;
  for (int i = 0; i < 1000; ++i) {
    put.push_back(record());
    cache.put(kStamp, put.back());
    ASSERT_LE(cache.used_bytes(), kBudget);
    ASSERT_TRUE(cache.find(kStamp, put.back().lookup)) << "the record just put is kept";
  }
  EXPECT_GT(cache.size(), 100u);
  EXPECT_LT(cache.size(), 200u);
  // Each one kept is whole, and what it was.
  std::size_t found = 0;
  std::size_t found_early = 0;
  for (std::size_t i = 0; i < put.size(); ++i) {
    if (const auto kept = cache.find(kStamp, put[i].lookup)) {
      expect_same(*kept, put[i]);
      ++found;
      if (i < 500) ++found_early;
    }
  }
  EXPECT_EQ(found, cache.size());
  // Records go at random, not newest first or oldest first: some of the
  // first half are still there, and most of what is there is recent.
  EXPECT_GT(found_early, 0u);
  EXPECT_LT(found_early, found / 2);
}

TEST(RecordCacheTest, ARecordLargerThanTheBudgetIsNotKeptAndEvictsNothing) {
  RecordCache cache(4096);
  const StoredRecord small = record();
  cache.put(kStamp, small);
  const StoredRecord large = record(1, 8192);
  cache.put(kStamp, large);
  EXPECT_FALSE(cache.find(kStamp, large.lookup));
  EXPECT_TRUE(cache.find(kStamp, small.lookup));
  EXPECT_LE(cache.used_bytes(), 4096u);
}

TEST(RecordCacheTest, ABudgetOfZeroKeepsNothing) {
  RecordCache cache(0);
  const StoredRecord r = record();
  cache.put(kStamp, r);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.used_bytes(), 0u);
  EXPECT_FALSE(cache.find(kStamp, r.lookup));
}

TEST(RecordCacheTest, ClearForgetsEverything) {
  RecordCache cache;
  const StoredRecord r = record();
  cache.put(kStamp, r);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.used_bytes(), 0u);
  EXPECT_FALSE(cache.find(kStamp, r.lookup));
}

// carry_over, on a real SQLite store: the records stay across this
// connection's own commit, and go when anything else came in between.
class CarryOverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    own_ = SqliteStore::open(dir_.path() / "vault", /*create=*/true);
    own_->create_schema();
    own_->put_meta("format_version", Bytes{5});  // a header: a second connection opens it as a vault
    other_ = SqliteStore::open(dir_.path() / "vault", /*create=*/false);
    ASSERT_TRUE(other_);
  }
  static void write(SqliteStore& store, std::string_view value) {
    auto txn = store.begin_write(/*durable=*/false);
    const std::string text(value);
    store.put_meta("carry-over-test", Bytes(text.begin(), text.end()));
    txn.commit();
  }
  // The handle's fold: `before` read inside its write transaction.
  void own_commit(RecordCache& cache, std::string_view value, bool other_commits_after = false) {
    std::optional<ChangeStamp> before;
    {
      auto txn = own_->begin_write(/*durable=*/false);
      before = own_->change_stamp();
      const std::string text(value);
      own_->put_meta("carry-over-test", Bytes(text.begin(), text.end()));
      txn.commit();
    }
    if (other_commits_after) write(*other_, "other");
    cache.carry_over(*own_, before, own_->change_stamp());
  }
  TempDir dir_;
  std::unique_ptr<SqliteStore> own_;
  std::unique_ptr<SqliteStore> other_;
  const StoredRecord kept_ = record();
};

TEST_F(CarryOverTest, KeptAcrossTheHandlesOwnCommit) {
  RecordCache cache;
  cache.put(own_->change_stamp().value(), kept_);
  own_commit(cache, "1");
  EXPECT_TRUE(cache.find(own_->change_stamp().value(), kept_.lookup));
  own_commit(cache, "2");
  EXPECT_TRUE(cache.find(own_->change_stamp().value(), kept_.lookup));
}

TEST_F(CarryOverTest, DroppedWhenAnotherConnectionCommittedBeforeTheWrite) {
  RecordCache cache;
  cache.put(own_->change_stamp().value(), kept_);
  write(*other_, "other");
  own_commit(cache, "1");
  EXPECT_FALSE(cache.find(own_->change_stamp().value(), kept_.lookup));
}

TEST_F(CarryOverTest, DroppedWhenAnotherConnectionCommittedAfterIt) {
  RecordCache cache;
  cache.put(own_->change_stamp().value(), kept_);
  own_commit(cache, "1", /*other_commits_after=*/true);
  EXPECT_FALSE(cache.find(own_->change_stamp().value(), kept_.lookup));
}

TEST_F(CarryOverTest, DroppedWhenTheStoreCannotTell) {
  RecordCache cache;
  const ChangeStamp stamp = own_->change_stamp().value();
  cache.put(stamp, kept_);
  cache.carry_over(*own_, stamp, std::nullopt);
  EXPECT_FALSE(cache.find(stamp, kept_.lookup));
}

}  // namespace
}  // namespace credentials::internal
