// Current records a vault handle has read and checked against the version
// ledger, kept while the store's change stamp holds (RecordStore::
// change_stamp): as long as nothing has been committed since, by any
// connection, a record read again is the one kept, and a get needs no read
// transaction (on the embedded store its two fcntl locks and the lookup were
// a third of a get). The records are sealed, as in the file; nothing is
// decrypted to keep them.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/record_store.h"

namespace credentials::internal {

// A hash of byte strings that finds std::string keys by a std::string_view:
// a lookup makes no key of its own.
struct ByteStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>{}(key); }
};

// A hash of HMAC tags (lookup and owner tags): their first bytes are as
// good a hash as any.
struct TagPrefixHash {
  std::size_t operator()(ByteView tag) const noexcept {
    std::size_t h = 0;
    std::memcpy(&h, tag.data(), std::min(tag.size(), sizeof h));
    return h;
  }
};

class RecordCache {
 public:
  // At most about `budget_bytes` of records kept (their bytes and the
  // cache's own per-record overhead, estimated: within ~2% of the heap).
  explicit RecordCache(std::size_t budget_bytes = kDefaultBudgetBytes) : budget_bytes_(budget_bytes) {}

  // The record of `lookup` kept at `stamp`, if any.
  [[nodiscard]] std::optional<StoredRecord> find(const ChangeStamp& stamp, ByteView lookup) const {
    if (stamp != stamp_ || lookup.size() != kTagSize) return std::nullopt;
    const auto it = records_.find(key_of(lookup));
    if (it == records_.end() || it->second.epoch != epoch_) return std::nullopt;
    const Kept& kept = it->second;
    const std::uint8_t* bytes = kept.bytes.get();
    StoredRecord record;
    record.lookup.assign(lookup.begin(), lookup.end());
    record.owner_tag.assign(bytes, bytes + kept.owner_tag_size);
    record.version = kept.version;
    record.key_id = kept.key_id;
    record.sealed.assign(bytes + kept.owner_tag_size, bytes + kept.owner_tag_size + kept.sealed_size);
    record.last_used = kept.last_used;
    return record;
  }

  // Keeps `record`, read and checked in a snapshot that nothing had changed
  // since `stamp` was read (the same stamp read before and after it).
  void put(const ChangeStamp& stamp, const StoredRecord& record) {
    if (stamp != stamp_) {
      invalidate();
      stamp_ = stamp;
    }
    if (record.lookup.size() != kTagSize) return;  // the index's tags are HMAC-SHA256: always
    const std::size_t cost = cost_of(record.owner_tag.size() + record.sealed.size());
    if (cost > budget_bytes_) return;
    const Key key = key_of(record.lookup);
    if (const auto it = records_.find(key); it != records_.end()) erase(it);
    while (used_bytes_ + cost > budget_bytes_ && !records_.empty()) evict_one();
    Kept kept;
    kept.bytes = std::make_unique_for_overwrite<std::uint8_t[]>(record.owner_tag.size() + record.sealed.size());
    std::copy(record.owner_tag.begin(), record.owner_tag.end(), kept.bytes.get());
    std::copy(record.sealed.begin(), record.sealed.end(), kept.bytes.get() + record.owner_tag.size());
    kept.owner_tag_size = static_cast<std::uint32_t>(record.owner_tag.size());
    kept.sealed_size = static_cast<std::uint32_t>(record.sealed.size());
    kept.version = record.version;
    kept.key_id = record.key_id;
    kept.last_used = record.last_used;
    kept.epoch = epoch_;
    records_.emplace(key, std::move(kept));
    used_bytes_ += cost;
  }

  // The handle has noted a read of `lookup` at `time` for its next batch of
  // last-used writes: the kept record says so, so that reads of it in the
  // next minute do not note it again (see EmbeddedVault::stale_last_used).
  // Without it a record kept across the handle's own folds kept its old
  // time, and every read of it was noted and written once more.
  void note_used(ByteView lookup, std::int64_t time) {
    if (lookup.size() != kTagSize) return;
    const auto it = records_.find(key_of(lookup));
    if (it != records_.end() && it->second.epoch == epoch_) it->second.last_used = std::max(it->second.last_used, time);
  }

  // After a commit of this handle's own that changed no current record or
  // version (a fold of its read journal: audit rows, meta rows and last-used
  // times): the kept records stay valid at the stamp after it, when `store`
  // tells that exactly that one commit lies between `before` (read inside the
  // write transaction) and `after`. Otherwise they are dropped.
  void carry_over(RecordStore& store, const std::optional<ChangeStamp>& before,
                  const std::optional<ChangeStamp>& after) {
    if (before && after && stamp_ == *before && store.one_commit_apart(*before, *after)) {
      stamp_ = *after;
    } else {
      invalidate();
    }
  }

  // Drops every record kept, at once: they are no longer found, and their
  // memory is reused by the records put next or goes as they are evicted.
  // (Freeing ~110,000 of them took ~25 ms, with the vault's lock held, at
  // every commit of another connection.)
  void invalidate() {
    ++epoch_;
    stamp_.reset();
  }

  // Frees every record kept.
  void clear() {
    records_.clear();
    used_bytes_ = 0;
    stamp_.reset();
  }

  // Records held, those dropped by invalidate() but not yet reused included.
  [[nodiscard]] std::size_t size() const { return records_.size(); }
  [[nodiscard]] std::size_t used_bytes() const { return used_bytes_; }

  // 48 MiB: every record of a vault of 100,000 (~450 bytes each with the
  // cache's overhead), for a process that serves them all. A get that finds
  // its record here takes no read transaction; one that does not costs
  // ~7 µs more at that size (the SQLite lookup, two locks, the ledger's
  // check). Filled as records are read: nothing is loaded up front.
  static constexpr std::size_t kDefaultBudgetBytes = std::size_t{48} << 20;

 private:
  static constexpr std::size_t kTagSize = 32;
  using Key = std::array<std::uint8_t, kTagSize>;
  // One record in two allocations: the map's node and its bytes (owner tag,
  // then the sealed record), ~450 bytes for a typical one, where a
  // StoredRecord's three vectors made ~570.
  struct Kept {
    std::unique_ptr<std::uint8_t[]> bytes;
    std::uint32_t owner_tag_size = 0;
    std::uint32_t sealed_size = 0;
    std::uint64_t version = 0;
    std::int64_t key_id = 0;
    std::int64_t last_used = 0;
    std::uint64_t epoch = 0;  // kept in this epoch: valid only while it is the cache's
  };
  using Map = std::unordered_map<Key, Kept, TagPrefixHash>;

  // The node (key, value, next pointer and allocator header), a bucket, and
  // the bytes' allocator header.
  static constexpr std::size_t cost_of(std::size_t bytes) {
    return sizeof(Key) + sizeof(Kept) + 3 * sizeof(void*) + bytes + 2 * sizeof(void*);
  }
  static Key key_of(ByteView lookup) {
    Key key;
    std::memcpy(key.data(), lookup.data(), kTagSize);
    return key;
  }
  void erase(Map::const_iterator it) {
    used_bytes_ -= cost_of(std::size_t{it->second.owner_tag_size} + it->second.sealed_size);
    records_.erase(it);
  }
  // A record at a random place goes: a random bucket (the next non-empty
  // one from there), a random record in it. No order to keep up on every
  // hit, and unlike evicting the first in iteration order (the last
  // inserted) it does not keep the oldest records forever.
  void evict_one() {
    const std::size_t buckets = records_.bucket_count();
    for (std::size_t b = next_random() % buckets;; b = (b + 1) % buckets) {
      if (const std::size_t n = records_.bucket_size(b); n != 0) {
        auto in_bucket = records_.begin(b);
        std::advance(in_bucket, static_cast<std::ptrdiff_t>(next_random() % n));
        erase(records_.find(in_bucket->first));
        return;
      }
    }
  }
  std::uint64_t next_random() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  std::size_t budget_bytes_;
  std::size_t used_bytes_ = 0;
  std::uint64_t rng_ = 0x9e3779b97f4a7c15;
  std::uint64_t epoch_ = 0;
  std::optional<ChangeStamp> stamp_;
  Map records_;
};

}  // namespace credentials::internal
