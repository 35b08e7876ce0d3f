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
//   leaf (65 + j)      (lookup, version) of the credentials in bucket j,
//                      sorted by lookup
//
// A credential's bucket is the first 4 bits of its owner tag, then the first
// byte of its lookup tag (format 4): one user's credentials sit under 4 of
// the 64 inner nodes, so that checking a user's list hashes a few inner
// nodes instead of nearly all of them.
//
// so putting back one credential's ledger leaf means putting back its path
// to the root, which is the whole ledger: every credential changed since
// then stops reading. Only a rollback of the whole vault remains consistent;
// that one needs the off-machine `audit head` checkpoints (THREAT_MODEL.md).
//
// Verified nodes are remembered per handle (node id -> bytes and MAC): a read
// fetches its path in one statement and recomputes a MAC only for bytes it
// has not verified before. The memo is a pure function of the bytes, so it
// stays right across processes and rolled-back transactions. On the
// embedded store the verified versions themselves are kept too, while the
// store's data_version holds (known_version).
//
// Owned by the vault and used under its lock, which readers on the
// PostgreSQL store hold shared: the memo of verified nodes has a mutex of
// its own.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/primitives.h"
#include "store/record_store.h"
#include "vault/keyring.h"

namespace credentials::internal {

// A hash of HMAC tags (lookup and owner tags): their first bytes are as
// good a hash as any.
struct TagPrefixHash {
  std::size_t operator()(ByteView tag) const noexcept {
    std::size_t h = 0;
    std::memcpy(&h, tag.data(), std::min(tag.size(), sizeof h));
    return h;
  }
};

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

// A credential as the ledger places it.
struct LedgerKey {
  ByteView owner_tag;
  ByteView lookup;
};

// A change to a credential's entry (nullopt: removed), for set_all.
struct LedgerChange {
  Bytes owner_tag;
  Bytes lookup;
  std::optional<std::uint64_t> version;
};

class VersionLedger {
 public:
  static constexpr std::size_t kLookupSize = 32;

  explicit VersionLedger(const Keyring& keys) : keys_(keys) {}

  // The ids of the nodes on the path from the root to a credential's leaf.
  [[nodiscard]] std::array<std::int64_t, 3> path_ids(LedgerKey key) const;

  // The version the ledger holds for `lookup` (nullopt: it lists no such
  // credential), its path verified up to the root. `path`: the nodes
  // path_ids names, read in one snapshot (RecordStore::current_record reads
  // them with the record). Throws DecryptionFailedError when the path does
  // not verify.
  [[nodiscard]] std::optional<std::uint64_t> version_in(LedgerKey key, std::vector<LedgerNode> path);
  [[nodiscard]] std::optional<std::uint64_t> version_of(RecordStore& store, LedgerKey key);
  // The same for many credentials: their paths read in one statement for a
  // few, the whole ledger (4,161 nodes at most) for many.
  [[nodiscard]] std::vector<std::optional<std::uint64_t>> versions_of(RecordStore& store,
                                                                      const std::vector<LedgerKey>& keys);

  // Versions this handle has verified, for reads while the ledger cannot
  // have changed: `data_version` is the store's (RecordStore::data_version:
  // it moves when another connection commits), and any write of the ledger
  // through this object forgets them all. A reader still compares the
  // record it reads with the version given here (a record put back beneath
  // SQLite does not match), and reads the path when there is none.
  [[nodiscard]] std::optional<std::uint64_t> known_version(std::uint64_t data_version, ByteView lookup);
  void remember_version(std::uint64_t data_version, ByteView lookup, std::uint64_t version);

  // Sets (nullopt: removes) a credential's entry and re-MACs its path. The
  // path is verified first, so that a write never re-authenticates a node
  // someone altered. REQUIRES: inside a write transaction.
  void set(RecordStore& store, LedgerKey key, std::optional<std::uint64_t> version);
  // The same for many credentials in one write (a batch store, an import):
  // each node on their paths verified, MACed and written once, in order of
  // `changes` for a credential changed twice.
  void set_all(RecordStore& store, const std::vector<LedgerChange>& changes);

  // Writes the whole ledger for `current` (each credential at its version)
  // into a store whose ledger table is empty (a new vault).
  // REQUIRES: inside a write transaction.
  void build(RecordStore& store, const std::vector<StoredRecord>& current);

  // Every stored node verified and the entries compared with `stored` (the
  // current records: what the credential rows say), each entry in its
  // credential's bucket: for verify().
  [[nodiscard]] LedgerComparison compare(RecordStore& store, const std::vector<StoredRecord>& stored);

 private:
  struct Path {
    std::int64_t inner_id = 0;
    std::int64_t leaf_id = 0;
    Bytes root;   // verified body (inner MACs ‖ tag)
    Bytes inner;  // verified body (leaf MACs)
    Bytes leaf;   // verified body (entries)
  };
  // Verifies the path to `lookup` among `nodes` (by id); missing leaf: empty.
  Path verified_path(LedgerKey key, std::vector<LedgerNode> nodes);
  // The bucket (0..4,095) of a credential.
  [[nodiscard]] std::int64_t leaf_of(LedgerKey key) const;
  [[nodiscard]] bool well_formed_leaf(ByteView body, std::int64_t leaf) const;
  [[nodiscard]] std::string_view label(char kind) const;
  // The MAC of a leaf or inner node, from the memo when these bytes were
  // seen before.
  Bytes node_mac(std::int64_t node_id, ByteView body);
  void remember_root(ByteView root);
  void check_root(ByteView root);
  [[nodiscard]] Bytes root_tag(ByteView macs) const;
  // Every stored node verified; the entries of the nodes that verify, in
  // lookup order, and what does not verify appended to `damage`.
  struct Entry {
    Bytes lookup;
    std::uint64_t version;
    std::int64_t leaf;
  };
  std::vector<Entry> walk(RecordStore& store, std::vector<std::string>& damage);

  const Keyring& keys_;
  struct Verified {
    Bytes body;
    Bytes mac;
  };
  // By node id (4,161 at most) in blocks of 64 made on first use: a hash map
  // cost a microsecond a read, and one flat vector made zeroes 200 KB that a
  // short process (a CLI `list`) paid for in ~50 page faults.
  static constexpr std::size_t kMemoBlock = 64;
  using MemoBlock = std::array<Verified, kMemoBlock>;
  Verified& memo_for(std::int64_t node_id);  // under memo_mutex_
  std::mutex memo_mutex_;  // guards verified_ and verified_root_
  std::vector<std::unique_ptr<MemoBlock>> verified_;
  Bytes verified_root_;
  // known_version's answers, valid at known_at_ (a data_version) while no
  // ledger write went through this object; also under memo_mutex_.
  // Keyed by the lookup tag itself, held inline: ~72 bytes an entry with
  // its bucket.
  using KnownKey = std::array<std::uint8_t, 32>;
  std::optional<std::uint64_t> known_at_;
  std::unordered_map<KnownKey, std::uint64_t, TagPrefixHash> known_;
  void drop_known();  // REQUIRES: memo_mutex_ held
  void forget_known();
};

}  // namespace credentials::internal
