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

// The bucket of a credential: the first 12 bits of its lookup tag (an HMAC
// output, so credentials spread evenly over the leaves).
std::int64_t leaf_of(ByteView lookup) { return (std::int64_t{lookup[0]} << 4) | (lookup[1] >> 4); }

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

// A leaf body is well formed when it holds whole entries, sorted by lookup,
// each in this leaf's bucket. Only bytes that authenticated are parsed, so
// this fails only for a ledger written by a broken build.
bool well_formed_leaf(ByteView body, std::int64_t leaf) {
  if (body.size() % kEntrySize) return false;
  for (std::size_t at = 0; at < body.size(); at += kEntrySize) {
    if (leaf_of(body.subspan(at)) != leaf) return false;
    if (at && std::memcmp(body.data() + at - kEntrySize, body.data() + at, VersionLedger::kLookupSize) >= 0) {
      return false;
    }
  }
  return true;
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

}  // namespace

Bytes VersionLedger::node_mac(std::int64_t node_id, ByteView body) {
  {
    std::lock_guard lock(memo_mutex_);
    if (verified_.empty()) verified_.resize(static_cast<std::size_t>(kNodeCount));
    const Verified& memo = verified_[static_cast<std::size_t>(node_id)];
    if (!memo.mac.empty() && same_bytes(memo.body, body)) return memo.mac;
  }
  Bytes mac = keys_.ledger_mac().mac({as_bytes(is_leaf(node_id) ? "L" : "N"), be64(static_cast<std::uint64_t>(node_id)), body});
  std::lock_guard lock(memo_mutex_);
  Verified& memo = verified_[static_cast<std::size_t>(node_id)];
  memo.body.assign(body.begin(), body.end());
  memo.mac = mac;
  return mac;
}

void VersionLedger::remember_root(ByteView root) {
  std::lock_guard lock(memo_mutex_);
  verified_root_.assign(root.begin(), root.end());
}

Bytes VersionLedger::root_tag(ByteView macs) const {
  return keys_.ledger_mac().mac({as_bytes("R"), be64(kRootId), macs});
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

std::array<std::int64_t, 3> VersionLedger::path_ids(ByteView lookup) {
  check_lookup(lookup);
  const std::int64_t leaf = leaf_of(lookup);
  return {kRootId, inner_id(leaf), leaf_id(leaf)};
}

VersionLedger::Path VersionLedger::verified_path(ByteView lookup, std::vector<LedgerNode> nodes) {
  check_lookup(lookup);
  const std::int64_t leaf = leaf_of(lookup);
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

std::optional<std::uint64_t> VersionLedger::version_in(ByteView lookup, std::vector<LedgerNode> nodes) {
  const Path path = verified_path(lookup, std::move(nodes));
  const auto [at, found] = find_entry(path.leaf, lookup);
  if (!found) return std::nullopt;
  return read_be64(path.leaf.data() + at + kLookupSize);
}

std::optional<std::uint64_t> VersionLedger::version_of(RecordStore& store, ByteView lookup) {
  const auto ids = path_ids(lookup);
  return version_in(lookup, store.ledger_nodes({ids.begin(), ids.end()}));
}

std::vector<std::optional<std::uint64_t>> VersionLedger::versions_of(RecordStore& store,
                                                                     const std::vector<ByteView>& lookups) {
  if (lookups.empty()) return {};
  std::vector<std::int64_t> ids;
  for (const ByteView lookup : lookups) {
    const auto path = path_ids(lookup);
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
  std::vector<std::optional<std::uint64_t>> out;
  out.reserve(lookups.size());
  static const Bytes kEmptyLeaf;
  for (const ByteView lookup : lookups) {
    const std::int64_t leaf = leaf_of(lookup);
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
    const auto [at, found] = find_entry(body, lookup);
    out.push_back(found ? std::optional(read_be64(body.data() + at + kLookupSize)) : std::nullopt);
  }
  return out;
}

void VersionLedger::write_path(RecordStore& store, Path& path) {
  const std::int64_t leaf = path.leaf_id - kFirstLeafId;
  const Bytes& leaf_mac = node_mac(path.leaf_id, path.leaf);
  std::ranges::copy(leaf_mac, path.inner.begin() + (leaf % kFanout) * static_cast<std::int64_t>(kMacSize));
  const Bytes& inner_mac = node_mac(path.inner_id, path.inner);
  std::ranges::copy(inner_mac, path.root.begin() + (leaf / kFanout) * static_cast<std::int64_t>(kMacSize));
  const Bytes tag = root_tag(ByteView(path.root).first(kSlotsSize));
  std::ranges::copy(tag, path.root.begin() + static_cast<std::int64_t>(kSlotsSize));
  store.put_ledger_node(path.leaf_id, path.leaf);
  store.put_ledger_node(path.inner_id, path.inner);
  store.put_ledger_node(kRootId, path.root);
  remember_root(path.root);
}

void VersionLedger::set(RecordStore& store, ByteView lookup, std::optional<std::uint64_t> version) {
  const auto ids = path_ids(lookup);
  Path path = verified_path(lookup, store.ledger_nodes({ids.begin(), ids.end()}));
  const auto [at, found] = find_entry(path.leaf, lookup);
  const auto offset = static_cast<std::ptrdiff_t>(at);
  if (!version) {
    if (!found) return;
    path.leaf.erase(path.leaf.begin() + offset, path.leaf.begin() + offset + static_cast<std::ptrdiff_t>(kEntrySize));
  } else {
    Bytes entry(lookup.begin(), lookup.end());
    const Bytes v = be64(*version);
    entry.insert(entry.end(), v.begin(), v.end());
    if (found) {
      std::ranges::copy(entry, path.leaf.begin() + offset);
    } else {
      path.leaf.insert(path.leaf.begin() + offset, entry.begin(), entry.end());
    }
  }
  write_path(store, path);
}

void VersionLedger::build(RecordStore& store, const std::map<Bytes, std::uint64_t>& versions) {
  std::vector<Bytes> leaves(static_cast<std::size_t>(kLeaves));
  for (const auto& [lookup, version] : versions) {  // sorted by lookup, so each leaf is too
    check_lookup(lookup);
    Bytes& leaf = leaves[static_cast<std::size_t>(leaf_of(lookup))];
    leaf.insert(leaf.end(), lookup.begin(), lookup.end());
    const Bytes v = be64(version);
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

std::vector<std::pair<Bytes, std::uint64_t>> VersionLedger::walk(RecordStore& store,
                                                                 std::vector<std::string>& damage) {
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
  std::vector<std::pair<Bytes, std::uint64_t>> entries;
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
        entries.emplace_back(Bytes(body.begin() + static_cast<std::ptrdiff_t>(at),
                                   body.begin() + static_cast<std::ptrdiff_t>(at + kLookupSize)),
                             read_be64(body.data() + at + kLookupSize));
      }
    }
  }
  remember_root(root);
  return entries;
}

std::vector<std::pair<Bytes, std::uint64_t>> VersionLedger::all_versions(RecordStore& store) {
  std::vector<std::string> damage;
  auto entries = walk(store, damage);
  if (!damage.empty()) damaged(damage.front());
  return entries;
}

LedgerComparison VersionLedger::compare(RecordStore& store, const std::map<Bytes, std::uint64_t>& stored) {
  LedgerComparison out;
  const auto listed = walk(store, out.damage);
  if (!out.damage.empty() && listed.empty()) return out;  // nothing to compare with
  auto l = listed.begin();
  auto s = stored.begin();
  while (l != listed.end() || s != stored.end()) {
    if (s == stored.end() || (l != listed.end() && l->first < s->first)) {
      out.differences.push_back({l->first, l->second, std::nullopt});
      ++l;
    } else if (l == listed.end() || s->first < l->first) {
      out.differences.push_back({s->first, std::nullopt, s->second});
      ++s;
    } else {
      if (l->second != s->second) out.differences.push_back({l->first, l->second, s->second});
      ++l;
      ++s;
    }
  }
  return out;
}

}  // namespace credentials::internal
