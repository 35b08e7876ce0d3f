#include "vault/version_ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

constexpr std::size_t kMacSize = 32;
constexpr std::int64_t kFanout = 64;
constexpr std::int64_t kLeaves = kFanout * kFanout;  // 4,096 buckets
constexpr std::int64_t kRootId = 0;
constexpr std::int64_t kFirstInnerId = 1;
constexpr std::int64_t kFirstLeafId = kFirstInnerId + kFanout;
constexpr std::int64_t kNodeCount = kFirstLeafId + kLeaves;
constexpr std::size_t kSlotsSize = kFanout * kMacSize;  // an inner node, the root without its tag
constexpr std::size_t kRootSize = kSlotsSize + kMacSize;
constexpr std::size_t kEntrySize = VersionLedger::kLookupSize + 8;

std::int64_t inner_id(std::int64_t leaf) { return kFirstInnerId + leaf / kFanout; }
std::int64_t leaf_id(std::int64_t leaf) { return kFirstLeafId + leaf; }
bool is_leaf(std::int64_t node_id) { return node_id >= kFirstLeafId; }

// The bucket of a credential. Both tags are HMAC outputs, so credentials
// spread evenly over the leaves: the first 4 bits of the owner tag, then the
// lookup tag's first byte, so that one user's credentials sit under 4 inner
// nodes (a namespace of 100,000 credentials still spreads over 256 leaves).
std::int64_t owner_leaf_of(LedgerKey key) {
  return (std::int64_t{key.owner_tag[0] >> 4} << 8) | key.lookup[0];
}

Bytes be64(std::uint64_t v) {
  Bytes out(8);
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
  return out;
}
std::uint64_t read_be64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

[[noreturn]] void damaged(std::string_view what) {
  throw DecryptionFailedError(fmt::format(
      "decryption failed: the version ledger does not verify ({}); run `credential_manager verify` "
      "and restore the vault from a backup",
      what));
}

// Plain memcmp: the bytes are no secret (they are stored as they are), and
// this runs on ~4 KiB per read.
bool same_bytes(ByteView a, ByteView b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

ByteView slot(ByteView slots, std::int64_t index) {
  return slots.subspan(static_cast<std::size_t>(index) * kMacSize, kMacSize);
}


// The entry of `lookup` in a leaf body: its offset, or where it would go.
std::pair<std::size_t, bool> find_entry(ByteView leaf, ByteView lookup) {
  std::size_t lo = 0, hi = leaf.size() / kEntrySize;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const int c = std::memcmp(leaf.data() + mid * kEntrySize, lookup.data(), VersionLedger::kLookupSize);
    if (c == 0) return {mid * kEntrySize, true};
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return {lo * kEntrySize, false};
}

void check_lookup(ByteView lookup) {
  if (lookup.size() != VersionLedger::kLookupSize) damaged("a lookup tag has the wrong size");
}
void check_key(LedgerKey key) {
  check_lookup(key.lookup);
  if (key.owner_tag.empty()) damaged("an owner tag is empty");
}

}  // namespace

std::int64_t VersionLedger::leaf_of(LedgerKey key) const { return owner_leaf_of(key); }

// A leaf body is well formed when it holds whole entries, sorted by lookup,
// each in this leaf's bucket as far as its lookup tag tells. Only bytes that
// authenticated are parsed, so this fails only for a ledger written by a
// broken build.
bool VersionLedger::well_formed_leaf(ByteView body, std::int64_t leaf) const {
  if (body.size() % kEntrySize) return false;
  for (std::size_t at = 0; at < body.size(); at += kEntrySize) {
    const ByteView lookup = body.subspan(at, kLookupSize);
    if (lookup[0] != (leaf & 0xff)) return false;
    if (at && std::memcmp(body.data() + at - kEntrySize, body.data() + at, kLookupSize) >= 0) return false;
  }
  return true;
}

// Format 4's nodes are MACed under labels of their own (format 3's were
// "L", "N" and "R").
std::string_view VersionLedger::label(char kind) const {
  return kind == 'L' ? "ledger/4/leaf" : kind == 'N' ? "ledger/4/inner" : "ledger/4/root";
}

VersionLedger::Verified& VersionLedger::memo_for(std::int64_t node_id) {
  const auto index = static_cast<std::size_t>(node_id);
  if (verified_.empty()) verified_.resize((static_cast<std::size_t>(kNodeCount) + kMemoBlock - 1) / kMemoBlock);
  std::unique_ptr<MemoBlock>& block = verified_.at(index / kMemoBlock);
  if (!block) block = std::make_unique<MemoBlock>();
  return (*block)[index % kMemoBlock];
}

Bytes VersionLedger::node_mac(std::int64_t node_id, ByteView body) {
  {
    std::lock_guard lock(memo_mutex_);
    const Verified& memo = memo_for(node_id);
    if (!memo.mac.empty() && same_bytes(memo.body, body)) return memo.mac;
  }
  Bytes mac = keys_.ledger_mac().mac({as_bytes(label(is_leaf(node_id) ? 'L' : 'N')), be64(static_cast<std::uint64_t>(node_id)), body});
  std::lock_guard lock(memo_mutex_);
  Verified& memo = memo_for(node_id);
  memo.body.assign(body.begin(), body.end());
  memo.mac = mac;
  return mac;
}

void VersionLedger::remember_root(ByteView root) {
  std::lock_guard lock(memo_mutex_);
  verified_root_.assign(root.begin(), root.end());
}

Bytes VersionLedger::root_tag(ByteView macs) const {
  return keys_.ledger_mac().mac({as_bytes(label('R')), be64(kRootId), macs});
}

void VersionLedger::check_root(ByteView root) {
  if (root.size() != kRootSize) damaged("the root has the wrong size");
  {
    std::lock_guard lock(memo_mutex_);
    if (same_bytes(root, verified_root_)) return;
  }
  if (!constant_time_equal(root_tag(root.first(kSlotsSize)), root.subspan(kSlotsSize))) {
    damaged("the root's tag");
  }
  remember_root(root);
}

std::array<std::int64_t, 3> VersionLedger::path_ids(LedgerKey key) const {
  check_key(key);
  const std::int64_t leaf = leaf_of(key);
  return {kRootId, inner_id(leaf), leaf_id(leaf)};
}

VersionLedger::Path VersionLedger::verified_path(LedgerKey key, std::vector<LedgerNode> nodes) {
  check_key(key);
  const std::int64_t leaf = leaf_of(key);
  Path path;
  path.inner_id = inner_id(leaf);
  path.leaf_id = leaf_id(leaf);
  bool have_root = false, have_inner = false;
  for (auto& node : nodes) {
    if (node.node_id == kRootId) {
      path.root = std::move(node.body);
      have_root = true;
    } else if (node.node_id == path.inner_id) {
      path.inner = std::move(node.body);
      have_inner = true;
    } else if (node.node_id == path.leaf_id) {
      path.leaf = std::move(node.body);  // absent: an empty bucket
    }
  }
  if (!have_root || !have_inner) damaged("a node is missing");
  check_root(path.root);
  if (path.inner.size() != kSlotsSize) damaged("an inner node has the wrong size");
  if (!constant_time_equal(node_mac(path.inner_id, path.inner), slot(path.root, leaf / kFanout))) {
    damaged("an inner node does not match the root");
  }
  if (!constant_time_equal(node_mac(path.leaf_id, path.leaf), slot(path.inner, leaf % kFanout))) {
    damaged("a leaf does not match its parent");
  }
  if (!well_formed_leaf(path.leaf, leaf)) damaged("a leaf is malformed");
  return path;
}

std::optional<std::uint64_t> VersionLedger::version_in(LedgerKey key, std::vector<LedgerNode> nodes) {
  const Path path = verified_path(key, std::move(nodes));
  const auto [at, found] = find_entry(path.leaf, key.lookup);
  if (!found) return std::nullopt;
  return read_be64(path.leaf.data() + at + kLookupSize);
}

std::optional<std::uint64_t> VersionLedger::version_of(RecordStore& store, LedgerKey key) {
  const auto ids = path_ids(key);
  return version_in(key, store.ledger_nodes({ids.begin(), ids.end()}));
}

std::vector<std::optional<std::uint64_t>> VersionLedger::versions_of(RecordStore& store,
                                                                     const std::vector<LedgerKey>& keys) {
  if (keys.empty()) return {};
  constexpr std::size_t kPathReads = 256;
  std::vector<std::optional<std::uint64_t>> out;
  out.reserve(keys.size());
  if (keys.size() > kPathReads) {
    std::vector<std::string> damage;
    const auto entries = walk(store, damage);
    if (!damage.empty()) damaged(damage.front());
    for (const LedgerKey key : keys) {
      check_key(key);
      const auto it = std::lower_bound(entries.begin(), entries.end(), key.lookup, [](const Entry& entry, ByteView lookup) {
        return std::lexicographical_compare(entry.lookup.begin(), entry.lookup.end(), lookup.begin(), lookup.end());
      });
      const bool found = it != entries.end() && same_bytes(it->lookup, key.lookup) && it->leaf == leaf_of(key);
      out.push_back(found ? std::optional(it->version) : std::nullopt);
    }
    return out;
  }
  std::vector<std::int64_t> ids;
  for (const LedgerKey key : keys) {
    const auto path = path_ids(key);
    ids.insert(ids.end(), path.begin(), path.end());
  }
  std::ranges::sort(ids);
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::map<std::int64_t, Bytes> nodes;
  for (auto& node : store.ledger_nodes(ids)) nodes.emplace(node.node_id, std::move(node.body));
  // Each node verified once, not once per credential under it: the root and
  // the inner nodes are 2 KiB each.
  const auto root = nodes.find(kRootId);
  if (root == nodes.end()) damaged("a node is missing");
  check_root(root->second);
  std::map<std::int64_t, const Bytes*> inners;  // verified
  static const Bytes kEmptyLeaf;
  for (const LedgerKey key : keys) {
    const std::int64_t leaf = leaf_of(key);
    auto [inner, first] = inners.try_emplace(inner_id(leaf), nullptr);
    if (first) {
      const auto it = nodes.find(inner->first);
      if (it == nodes.end()) damaged("a node is missing");
      if (it->second.size() != kSlotsSize) damaged("an inner node has the wrong size");
      if (!constant_time_equal(node_mac(inner->first, it->second), slot(root->second, leaf / kFanout))) {
        damaged("an inner node does not match the root");
      }
      inner->second = &it->second;
    }
    const auto it = nodes.find(leaf_id(leaf));
    const Bytes& body = it == nodes.end() ? kEmptyLeaf : it->second;
    if (!constant_time_equal(node_mac(leaf_id(leaf), body), slot(*inner->second, leaf % kFanout))) {
      damaged("a leaf does not match its parent");
    }
    if (!well_formed_leaf(body, leaf)) damaged("a leaf is malformed");
    const auto [at, found] = find_entry(body, key.lookup);
    out.push_back(found ? std::optional(read_be64(body.data() + at + kLookupSize)) : std::nullopt);
  }
  return out;
}

void VersionLedger::set(RecordStore& store, LedgerKey key, std::optional<std::uint64_t> version) {
  set_all(store, {{Bytes(key.owner_tag.begin(), key.owner_tag.end()), Bytes(key.lookup.begin(), key.lookup.end()),
                   version}});
}

std::optional<std::uint64_t> VersionLedger::known_version(std::uint64_t data_version, ByteView lookup) {
  KnownKey key;
  if (lookup.size() != key.size()) return std::nullopt;
  std::memcpy(key.data(), lookup.data(), key.size());
  std::lock_guard lock(memo_mutex_);
  if (known_at_ != data_version) return std::nullopt;
  const auto it = known_.find(key);
  if (it == known_.end()) return std::nullopt;
  return it->second;
}

void VersionLedger::remember_version(std::uint64_t data_version, ByteView lookup, std::uint64_t version) {
  // Enough for every credential of a 100,000-credential vault (~10 MB at
  // most, with the buckets): at 65,536 a process reading all of them forgot
  // everything every 65,536 reads, and two reads in three paid for their
  // ledger path. A larger vault read evenly still does that past 131,072.
  constexpr std::size_t kMaxKnown = 1 << 17;
  KnownKey key;
  if (lookup.size() != key.size()) return;
  std::memcpy(key.data(), lookup.data(), key.size());
  std::lock_guard lock(memo_mutex_);
  if (known_at_ != data_version || known_.size() >= kMaxKnown) {
    drop_known();
    known_at_ = data_version;
  }
  known_.insert_or_assign(key, version);
}

void VersionLedger::forget_known() {
  std::lock_guard lock(memo_mutex_);
  drop_known();
  known_at_.reset();
}

void VersionLedger::drop_known() {
  // Not clear(): it walks the whole bucket array, 1 MiB once the map has
  // held 131,072 answers, and every write forgets them: ~20 µs of each
  // update_password at 100,000 credentials (6% of it under perf) even with
  // one answer kept since the last write.
  decltype(known_)().swap(known_);
}

void VersionLedger::set_all(RecordStore& store, const std::vector<LedgerChange>& changes) {
  if (changes.empty()) return;
  // Before the write, which may fail half way: a rolled-back write forgets
  // versions that were still right, which only costs a path read.
  forget_known();
  std::vector<std::int64_t> ids{kRootId};
  for (const auto& change : changes) {
    const auto path = path_ids({change.owner_tag, change.lookup});
    ids.insert(ids.end(), path.begin() + 1, path.end());
  }
  std::ranges::sort(ids);
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::map<std::int64_t, Bytes> stored;
  for (auto& node : store.ledger_nodes(ids)) stored.emplace(node.node_id, std::move(node.body));
  // Every node on the changed paths verified first, so that a write never
  // re-authenticates a node someone altered.
  auto root = stored.find(kRootId);
  if (root == stored.end()) damaged("a node is missing");
  check_root(root->second);
  std::map<std::int64_t, Bytes> inners;  // by node id, verified
  std::map<std::int64_t, Bytes> leaves;  // by bucket, verified
  bool changed = false;
  for (const auto& change : changes) {
    const std::int64_t leaf = leaf_of({change.owner_tag, change.lookup});
    const std::int64_t inner = inner_id(leaf);
    if (!inners.contains(inner)) {
      auto it = stored.find(inner);
      if (it == stored.end()) damaged("a node is missing");
      if (it->second.size() != kSlotsSize) damaged("an inner node has the wrong size");
      if (!constant_time_equal(node_mac(inner, it->second), slot(root->second, leaf / kFanout))) {
        damaged("an inner node does not match the root");
      }
      inners.emplace(inner, std::move(it->second));
    }
    auto body = leaves.find(leaf);
    if (body == leaves.end()) {
      auto it = stored.find(leaf_id(leaf));
      Bytes verified = it == stored.end() ? Bytes() : std::move(it->second);
      if (!constant_time_equal(node_mac(leaf_id(leaf), verified), slot(inners.at(inner), leaf % kFanout))) {
        damaged("a leaf does not match its parent");
      }
      if (!well_formed_leaf(verified, leaf)) damaged("a leaf is malformed");
      body = leaves.emplace(leaf, std::move(verified)).first;
    }
    const auto [at, found] = find_entry(body->second, change.lookup);
    const auto offset = static_cast<std::ptrdiff_t>(at);
    if (!change.version) {
      if (!found) continue;
      body->second.erase(body->second.begin() + offset,
                         body->second.begin() + offset + static_cast<std::ptrdiff_t>(kEntrySize));
    } else {
      Bytes entry(change.lookup.begin(), change.lookup.end());
      const Bytes v = be64(*change.version);
      entry.insert(entry.end(), v.begin(), v.end());
      if (found) {
        std::ranges::copy(entry, body->second.begin() + offset);
      } else {
        body->second.insert(body->second.begin() + offset, entry.begin(), entry.end());
      }
    }
    changed = true;
  }
  if (!changed) return;
  // Each changed node MACed and written once, bottom up: a batch of
  // credentials (an import) pays for the root and its inner nodes once, not
  // once per credential.
  Bytes new_root = root->second;
  for (const auto& [leaf, body] : leaves) {
    std::ranges::copy(node_mac(leaf_id(leaf), body),
                      inners.at(inner_id(leaf)).begin() + (leaf % kFanout) * static_cast<std::int64_t>(kMacSize));
    store.put_ledger_node(leaf_id(leaf), body);
  }
  for (const auto& [inner, body] : inners) {
    std::ranges::copy(node_mac(inner, body),
                      new_root.begin() + (inner - kFirstInnerId) * static_cast<std::int64_t>(kMacSize));
    store.put_ledger_node(inner, body);
  }
  const Bytes tag = root_tag(ByteView(new_root).first(kSlotsSize));
  std::ranges::copy(tag, new_root.begin() + static_cast<std::int64_t>(kSlotsSize));
  store.put_ledger_node(kRootId, new_root);
  remember_root(new_root);
}

void VersionLedger::build(RecordStore& store, const std::vector<StoredRecord>& current) {
  forget_known();
  std::vector<const StoredRecord*> sorted;
  for (const auto& record : current) sorted.push_back(&record);
  std::ranges::sort(sorted, [](const StoredRecord* a, const StoredRecord* b) { return a->lookup < b->lookup; });
  std::vector<Bytes> leaves(static_cast<std::size_t>(kLeaves));
  for (const StoredRecord* record : sorted) {  // sorted by lookup, so each leaf is too
    check_key({record->owner_tag, record->lookup});
    Bytes& leaf = leaves[static_cast<std::size_t>(leaf_of({record->owner_tag, record->lookup}))];
    leaf.insert(leaf.end(), record->lookup.begin(), record->lookup.end());
    const Bytes v = be64(record->version);
    leaf.insert(leaf.end(), v.begin(), v.end());
  }
  Bytes root(kSlotsSize);
  for (std::int64_t i = 0; i < kFanout; ++i) {
    Bytes inner(kSlotsSize);
    for (std::int64_t s = 0; s < kFanout; ++s) {
      const std::int64_t leaf = i * kFanout + s;
      const Bytes& body = leaves[static_cast<std::size_t>(leaf)];
      std::ranges::copy(node_mac(leaf_id(leaf), body), inner.begin() + s * static_cast<std::int64_t>(kMacSize));
      if (!body.empty()) store.put_ledger_node(leaf_id(leaf), body);
    }
    std::ranges::copy(node_mac(kFirstInnerId + i, inner), root.begin() + i * static_cast<std::int64_t>(kMacSize));
    store.put_ledger_node(kFirstInnerId + i, inner);
  }
  const Bytes tag = root_tag(root);
  root.insert(root.end(), tag.begin(), tag.end());
  store.put_ledger_node(kRootId, root);
  remember_root(root);
}

std::vector<VersionLedger::Entry> VersionLedger::walk(RecordStore& store, std::vector<std::string>& damage) {
  std::vector<Bytes> bodies(static_cast<std::size_t>(kNodeCount));
  std::vector<bool> present(static_cast<std::size_t>(kNodeCount));
  for (auto& node : store.all_ledger_nodes()) {
    if (node.node_id < 0 || node.node_id >= kNodeCount) {
      damage.push_back(fmt::format("the version ledger holds a node with an unknown id ({})", node.node_id));
      continue;
    }
    bodies[static_cast<std::size_t>(node.node_id)] = std::move(node.body);
    present[static_cast<std::size_t>(node.node_id)] = true;
  }
  const Bytes& root = bodies[kRootId];
  if (!present[kRootId] || root.size() != kRootSize ||
      !constant_time_equal(root_tag(ByteView(root).first(kSlotsSize)), ByteView(root).subspan(kSlotsSize))) {
    damage.push_back("the version ledger's root is missing or does not verify");
    return {};
  }
  std::vector<Entry> entries;
  for (std::int64_t i = 0; i < kFanout; ++i) {
    const std::int64_t id = kFirstInnerId + i;
    const Bytes& inner = bodies[static_cast<std::size_t>(id)];
    if (!present[static_cast<std::size_t>(id)] || inner.size() != kSlotsSize ||
        !constant_time_equal(node_mac(id, inner), slot(root, i))) {
      damage.push_back(fmt::format("version ledger node {} is missing or does not match the root", id));
      continue;
    }
    for (std::int64_t s = 0; s < kFanout; ++s) {
      const std::int64_t leaf = i * kFanout + s;
      const Bytes& body = bodies[static_cast<std::size_t>(leaf_id(leaf))];
      if (!constant_time_equal(node_mac(leaf_id(leaf), body), slot(inner, s)) || !well_formed_leaf(body, leaf)) {
        damage.push_back(fmt::format(
            "version ledger leaf {} does not match its parent (altered, or put back from an older copy)",
            leaf_id(leaf)));
        continue;
      }
      for (std::size_t at = 0; at < body.size(); at += kEntrySize) {
        entries.push_back({Bytes(body.begin() + static_cast<std::ptrdiff_t>(at),
                                 body.begin() + static_cast<std::ptrdiff_t>(at + kLookupSize)),
                           read_be64(body.data() + at + kLookupSize), leaf});
      }
    }
  }
  remember_root(root);
  // In format 4 the leaves are not in lookup order.
  std::ranges::sort(entries, [](const Entry& a, const Entry& b) { return a.lookup < b.lookup; });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i - 1].lookup == entries[i].lookup) {
      damage.push_back("the version ledger lists a credential twice");
      break;
    }
  }
  return entries;
}

LedgerComparison VersionLedger::compare(RecordStore& store, const std::vector<StoredRecord>& current) {
  LedgerComparison out;
  const auto listed = walk(store, out.damage);
  if (!out.damage.empty() && listed.empty()) return out;  // nothing to compare with
  std::vector<const StoredRecord*> stored;
  for (const auto& record : current) stored.push_back(&record);
  std::ranges::sort(stored, [](const StoredRecord* a, const StoredRecord* b) { return a->lookup < b->lookup; });
  auto l = listed.begin();
  auto s = stored.begin();
  while (l != listed.end() || s != stored.end()) {
    if (s == stored.end() || (l != listed.end() && l->lookup < (*s)->lookup)) {
      out.differences.push_back({l->lookup, l->version, std::nullopt});
      ++l;
    } else if (l == listed.end() || (*s)->lookup < l->lookup) {
      out.differences.push_back({(*s)->lookup, std::nullopt, (*s)->version});
      ++s;
    } else {
      // An entry outside its credential's bucket is one no read finds.
      const bool placed = !(*s)->owner_tag.empty() && l->leaf == leaf_of({(*s)->owner_tag, (*s)->lookup});
      if (l->version != (*s)->version || !placed) {
        out.differences.push_back({l->lookup, placed ? std::optional(l->version) : std::nullopt, (*s)->version});
      }
      ++l;
      ++s;
    }
  }
  return out;
}

}  // namespace credentials::internal
