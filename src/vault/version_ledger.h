// VersionLedger: the vault-wide, authenticated list of every credential's
// current version (docs/FORMAT.md, "Version ledger").
//
// A record's AEAD binds it to its place and standing, but a record (with its
// index rows) put back from an older copy of the vault is authentic as
// current. The ledger is state such a replay cannot match: every write that
// changes a current version updates it in the same transaction, and every
// read of a current record checks the record's version against it. Its
// nodes form a three-level tree of keyed MACs under one root,
//
//   root (node 0)      64 inner-node MACs ‖ tag
//   inner (1 + i)      64 leaf MACs
//   leaf (65 + j)      (lookup, version) of the credentials whose lookup tag
//                      starts with the 12 bits j, sorted by lookup
//
// so putting back one credential's ledger leaf means putting back its path
// to the root, which is the whole ledger: every credential changed since
// then stops reading. Only a rollback of the whole vault remains consistent;
// that one needs the off-machine `audit head` checkpoints (THREAT_MODEL.md).
//
// Verified nodes are remembered per handle (node id -> bytes and MAC): a read
// fetches its path in one statement and recomputes a MAC only for bytes it
// has not verified before. The memo is a pure function of the bytes, so it
// stays right across processes and rolled-back transactions.
//
// Owned by the vault and used under its lock, which readers on the
// PostgreSQL store hold shared: the memo of verified nodes has a mutex of
// its own.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "crypto/primitives.h"
#include "store/record_store.h"
#include "vault/keyring.h"

namespace credentials::internal {

// A credential whose current version differs from the ledger's (see
// VersionLedger::compare), or the ledger names a credential that has no
// rows (`stored` empty) or misses one that has (`listed` empty).
struct LedgerDifference {
  Bytes lookup;
  std::optional<std::uint64_t> listed;  // what the ledger holds
  std::optional<std::uint64_t> stored;  // what the credential rows say
};

struct LedgerComparison {
  std::vector<std::string> damage;  // nodes that do not verify
  std::vector<LedgerDifference> differences;
};

class VersionLedger {
 public:
  static constexpr std::size_t kLookupSize = 32;

  explicit VersionLedger(const Keyring& keys) : keys_(keys) {}

  // The ids of the nodes on the path from the root to `lookup`'s leaf.
  [[nodiscard]] static std::array<std::int64_t, 3> path_ids(ByteView lookup);

  // The version the ledger holds for `lookup` (nullopt: it lists no such
  // credential), its path verified up to the root. `path`: the nodes
  // path_ids names, read in one snapshot (RecordStore::current_record reads
  // them with the record). Throws DecryptionFailedError when the path does
  // not verify.
  [[nodiscard]] std::optional<std::uint64_t> version_in(ByteView lookup, std::vector<LedgerNode> path);
  [[nodiscard]] std::optional<std::uint64_t> version_of(RecordStore& store, ByteView lookup);
  // The same for many credentials, their paths read in one statement.
  [[nodiscard]] std::vector<std::optional<std::uint64_t>> versions_of(RecordStore& store,
                                                                      const std::vector<ByteView>& lookups);

  // Every entry, sorted by lookup, the whole tree verified (a long list).
  [[nodiscard]] std::vector<std::pair<Bytes, std::uint64_t>> all_versions(RecordStore& store);

  // Sets (nullopt: removes) a credential's entry and re-MACs its path. The
  // path is verified first, so that a write never re-authenticates a node
  // someone altered. REQUIRES: inside a write transaction.
  void set(RecordStore& store, ByteView lookup, std::optional<std::uint64_t> version);

  // Writes the whole ledger for `versions` into a store that holds none
  // (a new vault, the upgrade of a format-2 vault). REQUIRES: inside a
  // write transaction.
  void build(RecordStore& store, const std::map<Bytes, std::uint64_t>& versions);

  // Every stored node verified and the entries compared with `stored` (what
  // the credential rows say): for verify().
  [[nodiscard]] LedgerComparison compare(RecordStore& store,
                                         const std::map<Bytes, std::uint64_t>& stored);

 private:
  struct Path {
    std::int64_t inner_id = 0;
    std::int64_t leaf_id = 0;
    Bytes root;   // verified body (inner MACs ‖ tag)
    Bytes inner;  // verified body (leaf MACs)
    Bytes leaf;   // verified body (entries)
  };
  // Verifies the path to `lookup` among `nodes` (by id); missing leaf: empty.
  Path verified_path(ByteView lookup, std::vector<LedgerNode> nodes);
  // The MAC of a leaf or inner node, from the memo when these bytes were
  // seen before.
  Bytes node_mac(std::int64_t node_id, ByteView body);
  void remember_root(ByteView root);
  void check_root(ByteView root);
  [[nodiscard]] Bytes root_tag(ByteView macs) const;
  void write_path(RecordStore& store, Path& path);
  // Every stored node verified; the entries of the nodes that verify, in
  // lookup order, and what does not verify appended to `damage`.
  std::vector<std::pair<Bytes, std::uint64_t>> walk(RecordStore& store, std::vector<std::string>& damage);

  const Keyring& keys_;
  struct Verified {
    Bytes body;
    Bytes mac;
  };
  std::mutex memo_mutex_;  // guards verified_ and verified_root_
  std::vector<Verified> verified_;  // by node id (4,161 at most); a hash map cost a microsecond a read
  Bytes verified_root_;
};

}  // namespace credentials::internal
