// The records a vault handle keeps from its reads (src/vault/record_cache.h):
// each field kept as read, nothing kept across a change stamp, and never
// more memory than its budget (VaultOptions::record_cache_bytes).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crypto/primitives.h"
#include "vault/record_cache.h"

namespace credentials::internal {
namespace {

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
  const ChangeStamp later{7, 10};
  EXPECT_FALSE(cache.find(later, a.lookup));
  cache.put(later, b);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.find(later, a.lookup));
  EXPECT_FALSE(cache.find(kStamp, a.lookup));
  EXPECT_TRUE(cache.find(later, b.lookup));
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

}  // namespace
}  // namespace credentials::internal
