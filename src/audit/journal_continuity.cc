#include "audit/journal_continuity.h"

#include <algorithm>

#include <fmt/format.h>

#include "audit/read_journal.h"

namespace credentials::internal {
namespace {

// Enough of the id to find the journal's file (journal/<32 hex digits>.log)
// and its meta row; ids are not secret.
std::string short_id(ByteView journal_id) { return hex_encode(journal_id.first(4)); }

std::string events_between(std::int64_t first, std::int64_t last) {
  return first == last ? fmt::format("event {}", first) : fmt::format("events {}-{}", first, last);
}

std::string read_events(std::uint64_t n) {
  return n == 1 ? std::string("1 read event") : fmt::format("{} read events", n);
}

// What happened, in words a user can act on: `moved` says which way.
std::string position_edited(std::string_view moved) {
  return fmt::format(
      "the vault's record of how far that journal was folded was {} (someone who can write the "
      "vault files edited it)",
      moved);
}

}  // namespace

std::optional<std::string> JournalContinuity::check(std::int64_t seq, const JournalPlace& place) {
  if (place.journal_id.size() != std::tuple_size_v<Id>) return std::nullopt;
  Id id;
  std::copy(place.journal_id.begin(), place.journal_id.end(), id.begin());
  const auto [at, first] = journals_.try_emplace(id);
  Journal& journal = at->second;
  if (auto problem = first ? begin(seq, place) : follow(seq, place, journal)) return problem;
  if (first) journal.first_seq = seq;
  journal.last_seq = seq;
  journal.next_index = place.index + 1;
  journal.mac_known = place.mac.size() == journal.mac.size();
  if (journal.mac_known) std::copy(place.mac.begin(), place.mac.end(), journal.mac.begin());
  return std::nullopt;
}

// A journal's first event in the chain.
std::optional<std::string> JournalContinuity::begin(std::int64_t seq,
                                                    const JournalPlace& place) const {
  if (place.index == 0) {
    if (place.chained_to.empty() ||
        constant_time_equal(place.chained_to, journal_genesis_mac(keys_, place.journal_id))) {
      return std::nullopt;
    }
    return fmt::format(
        "event {} is the first of journal {} in the chain but does not chain to that journal's "
        "start: its read events were altered",
        seq, short_id(place.journal_id));
  }
  // Builds before format 4 folded a journal's entries without naming it:
  // such a journal's earlier entries can be in the chain unnamed.
  if (place.json_sealed) return std::nullopt;
  return fmt::format(
      "event {} skips {} at the start of journal {} (it is that journal's first event in the chain "
      "but records its read {}): {}, and the events of those reads are lost",
      seq, read_events(place.index), short_id(place.journal_id), place.index + 1,
      position_edited("moved forward"));
}

// A journal's event after its events before it in the chain.
std::optional<std::string> JournalContinuity::follow(std::int64_t seq, const JournalPlace& place,
                                                     const Journal& journal) {
  const std::string id = short_id(place.journal_id);
  if (place.index < journal.next_index) {
    return fmt::format(
        "event {} repeats read events of journal {} already recorded at {}: {}. The repeated "
        "events "
        "are authentic copies; restore the vault from a backup made before event {}",
        seq, id, events_between(journal.first_seq, journal.last_seq),
        position_edited("moved back or removed"), seq);
  }
  if (place.index > journal.next_index) {
    return fmt::format(
        "event {} skips {} of journal {} after event {}: {}, and the events of those reads are "
        "lost",
        seq, read_events(place.index - journal.next_index), id, journal.last_seq,
        position_edited("moved forward"));
  }
  if (journal.mac_known && !place.chained_to.empty() &&
      !constant_time_equal(place.chained_to, journal.mac)) {
    return fmt::format(
        "event {} does not continue journal {} where event {} left it: its read events were "
        "altered",
        seq, id, journal.last_seq);
  }
  return std::nullopt;
}

}  // namespace credentials::internal
