// Current records a vault handle has read and checked against the version
// ledger, kept while the store's change stamp holds (RecordStore::
// change_stamp): as long as nothing has been committed since, by any
// connection, a record read again is the one kept, and a get needs no read
// transaction (on the embedded store its two fcntl locks and the lookup were
// a third of a get). The records are sealed, as in the file; nothing is
// decrypted to keep them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
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
  // The record of `lookup` kept at `stamp`, if any.
  [[nodiscard]] std::optional<StoredRecord> find(const ChangeStamp& stamp, ByteView lookup) const {
    if (stamp != stamp_) return std::nullopt;
    const auto it = records_.find(key_of(lookup));
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }

  // Keeps `record`, read and checked in a snapshot that nothing had changed
  // since `stamp` was read (the same stamp read before and after it).
  void put(const ChangeStamp& stamp, const StoredRecord& record) {
    if (stamp != stamp_) {
      records_.clear();
      stamp_ = stamp;
    }
    // Bounded (~8 MB): an arbitrary entry goes when it is full.
    if (records_.size() >= kMaxRecords) records_.erase(records_.begin());
    records_.insert_or_assign(std::string(key_of(record.lookup)), record);
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
      clear();
    }
  }

  void clear() {
    records_.clear();
    stamp_.reset();
  }

 private:
  static constexpr std::size_t kMaxRecords = 16384;
  static std::string_view key_of(ByteView lookup) {
    return {reinterpret_cast<const char*>(lookup.data()), lookup.size()};
  }
  std::optional<ChangeStamp> stamp_;
  std::unordered_map<std::string, StoredRecord, ByteStringHash, std::equal_to<>> records_;
};

}  // namespace credentials::internal
