// JournalContinuity: `audit verify`'s check that each read journal's events
// in the chain continue one another (docs/FORMAT.md, "Audit").
//
// How far a journal is folded is kept in the meta row "journal/<id>", which
// holds nothing secret and no MAC: whoever can write the vault files can
// edit it. Moved forward, the next fold skips the journal's unfolded
// entries; removed or moved back, it folds entries again, each authentic.
// A run names its journal, first index and start MAC, so the chain itself
// shows both: a journal's first event must be its entry 0, chained to the
// journal's genesis MAC, and each later one the entry after the journal's
// last event before it, chained to that entry's MAC.
//
// One exception, for vaults upgraded from format 3 or older, whose folds
// sealed each read event again under its chain number without naming its
// journal: a journal written by such a build (its entries sealed as JSON,
// not in format 5's compact form) may first appear past its entry 0. A
// row of format 4 names its journal and index but keeps no MAC: the next
// event's start MAC is then taken as it is.
//
// Memory: one entry per journal the chain names (~100 bytes, measured; a journal is
// a vault handle that read, or each 4 MiB of one handle's reads), kept for
// the whole walk: a chain written by a million reading processes needs
// ~100 MB to verify. Not thread-safe; one per walk.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>

#include "audit/audit_chain.h"
#include "crypto/primitives.h"
#include "vault/keyring.h"

namespace credentials::internal {

class JournalContinuity {
 public:
  explicit JournalContinuity(const Keyring& keys) : keys_(keys) {}

  // The event numbered `seq`, in chain order, from `place`: a problem in
  // words a user can act on when it does not continue its journal's events
  // before it; nothing for an event that names no journal.
  [[nodiscard]] std::optional<std::string> check(std::int64_t seq, const JournalPlace& place);

 private:
  using Id = std::array<std::uint8_t, 16>;
  struct IdHash {
    // Journal ids are random (and only authentic runs reach the check).
    std::size_t operator()(const Id& id) const noexcept {
      std::size_t h = 0;
      std::memcpy(&h, id.data(), sizeof h);
      return h;
    }
  };
  struct Journal {
    std::uint64_t next_index = 0;        // of the entry its next event must be
    std::array<std::uint8_t, 32> mac{};  // the last entry's, when mac_known
    bool mac_known = false;              // false after a row of format 4
    std::int64_t first_seq = 0;          // its events so far: first_seq..last_seq
    std::int64_t last_seq = 0;
  };

  [[nodiscard]] std::optional<std::string> begin(std::int64_t seq, const JournalPlace& place) const;
  [[nodiscard]] static std::optional<std::string> follow(std::int64_t seq,
                                                         const JournalPlace& place,
                                                         const Journal& journal);

  const Keyring& keys_;
  std::unordered_map<Id, Journal, IdHash> journals_;
};

}  // namespace credentials::internal
