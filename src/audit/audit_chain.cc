#include "audit/audit_chain.h"

#include <fmt/format.h>

#include "audit/audit_event.h"
#include "audit/journal_continuity.h"
#include "audit/read_journal.h"
#include "credentials/errors.h"

namespace credentials::internal {
namespace {

constexpr std::string_view kSealLabel = "credentials/v1/audit";
constexpr std::string_view kStateLabel = "credentials/v1/state";

void append_u64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

Bytes seal_aad(const Keyring& keys, std::int64_t seq) {
  Bytes aad(kSealLabel.begin(), kSealLabel.end());
  aad.insert(aad.end(), keys.vault_id().begin(), keys.vault_id().end());
  append_u64(aad, static_cast<std::uint64_t>(seq));
  return aad;
}

Bytes genesis_mac(const Keyring& keys) {
  Bytes message{'g', 'e', 'n', 'e', 's', 'i', 's'};
  message.insert(message.end(), keys.vault_id().begin(), keys.vault_id().end());
  return keys.audit_mac().mac(message);
}

Bytes chain_mac(const Keyring& keys, ByteView previous, std::int64_t seq, ByteView owner_tag,
                ByteView sealed) {
  // MACed in parts: no copy of the sealed event per MAC (a fold makes one
  // per read event).
  Bytes numbers;
  numbers.reserve(16);
  append_u64(numbers, static_cast<std::uint64_t>(seq));
  append_u64(numbers, owner_tag.size());
  return keys.audit_mac().mac({previous, numbers, owner_tag, sealed});
}

// A run's chain MAC. The all-ones word where a single event has its owner
// tag's length (at most 32) keeps the two forms' messages apart.
Bytes run_mac(const Keyring& keys, ByteView previous, std::int64_t seq, std::int64_t count, ByteView journal_id,
              std::uint64_t first_index, ByteView start_mac, ByteView last_mac) {
  constexpr std::uint64_t kRunMark = ~std::uint64_t{0};
  Bytes numbers;
  numbers.reserve(32);
  append_u64(numbers, static_cast<std::uint64_t>(seq));
  append_u64(numbers, kRunMark);
  append_u64(numbers, static_cast<std::uint64_t>(count));
  append_u64(numbers, first_index);
  return keys.audit_mac().mac({previous, numbers, journal_id, start_mac, last_mac});
}

// A run's sealed column: journal_id(16) ‖ first_index(8, BE) ‖ start_mac(32) ‖ entries.
constexpr std::size_t kJournalIdSize = 16;
constexpr std::size_t kMacSize = 32;
constexpr std::size_t kRunHeader = kJournalIdSize + 8 + kMacSize;

Bytes head_value(const Keyring& keys, std::int64_t seq, ByteView mac) {
  Bytes body;
  append_u64(body, static_cast<std::uint64_t>(seq));
  body.insert(body.end(), mac.begin(), mac.end());
  Bytes message{'h', 'e', 'a', 'd'};
  message.insert(message.end(), body.begin(), body.end());
  Bytes tag = keys.audit_mac().mac(message);
  body.insert(body.end(), tag.begin(), tag.end());
  return body;
}

}  // namespace

AuditAppender::AuditAppender(RecordStore& store, const Keyring& keys) : store_(store), keys_(keys) {
  const auto last = store.last_audit_row();
  seq_ = last ? last->seq : 0;
  mac_ = last ? last->mac : genesis_mac(keys);
}

std::int64_t AuditAppender::append(ByteView owner_tag, std::string_view event_json) {
  AuditRow row;
  if (__builtin_add_overflow(seq_, 1, &row.seq)) throw DecryptionFailedError("the audit chain's last sequence number was altered");
  row.owner_tag.assign(owner_tag.begin(), owner_tag.end());
  row.sealed = aead_encrypt(keys_.audit_seal_key(), as_bytes(event_json), seal_aad(keys_, row.seq));
  row.mac = chain_mac(keys_, mac_, row.seq, row.owner_tag, row.sealed);
  store_.insert_audit_row(row);
  seq_ = row.seq;
  mac_ = std::move(row.mac);
  appended_ = true;
  return seq_;
}

std::int64_t AuditAppender::append_run(ByteView journal_id, std::uint64_t first_index, ByteView start_mac,
                                       ByteView entries, std::int64_t count, ByteView last_mac) {
  if (journal_id.size() != kJournalIdSize || start_mac.size() != kMacSize || count <= 0) {
    throw InvalidArgumentError("a run of journal entries is malformed");
  }
  AuditRow row;
  if (__builtin_add_overflow(seq_, count, &row.seq)) throw DecryptionFailedError("the audit chain's last sequence number was altered");
  row.journal_run = count;
  row.sealed.reserve(kRunHeader + entries.size());
  row.sealed.assign(journal_id.begin(), journal_id.end());
  append_u64(row.sealed, first_index);
  row.sealed.insert(row.sealed.end(), start_mac.begin(), start_mac.end());
  row.sealed.insert(row.sealed.end(), entries.begin(), entries.end());
  row.mac = run_mac(keys_, mac_, row.seq, count, journal_id, first_index, start_mac, last_mac);
  store_.insert_audit_row(row);
  seq_ = row.seq;
  mac_ = std::move(row.mac);
  appended_ = true;
  return seq_;
}

void AuditAppender::finish() {
  if (appended_) store_.put_meta("audit_head", head_value(keys_, seq_, mac_));
  appended_ = false;
}

std::int64_t append_audit_event(RecordStore& store, const Keyring& keys, ByteView owner_tag,
                                std::string_view event_json) {
  AuditAppender appender(store, keys);
  const std::int64_t seq = appender.append(owner_tag, event_json);
  appender.finish();
  return seq;
}

Bytes vault_state(RecordStore& store) {
  Bytes message(kStateLabel.begin(), kStateLabel.end());
  const auto add = [&](ByteView field) {
    append_u64(message, field.size());
    message.insert(message.end(), field.begin(), field.end());
  };
  const auto root = store.ledger_nodes({0});
  add(root.empty() ? ByteView() : ByteView(root.front().body));
  for (const StoredKey& key : store.load_keys()) {  // in key_id order
    append_u64(message, static_cast<std::uint64_t>(key.key_id));
    add(as_bytes(key.purpose));
    add(key.wrapped);
  }
  return sha256(message);
}

ChainVerification verify_audit_chain(RecordStore& store, const Keyring& keys) {
  const std::string damage_mark = fmt::format(R"("action":"{}")", kJournalDamagedAction);
  JournalContinuity continuity(keys);
  std::optional<Bytes> committed;  // by the last write's event
  std::int64_t committed_seq = 0;
  ChainVerification result =
      walk_audit_chain(store, keys, [&](const WalkedEvent& event) -> std::optional<std::string> {
        if (event.text.find(damage_mark) != std::string::npos) {
          return fmt::format(
              "event {} records a read journal that was altered before its events reached the "
              "chain: "
              "read events of one process are lost",
              event.seq);
        }
        if (auto commitment = event_commitment(event.text)) {
          // Each write starts from the state the write before it left: a
          // write after records were rolled back, or after events were cut,
          // does not hide it.
          if (committed && !constant_time_equal(commitment->prior, *committed)) {
            return fmt::format(
                "event {} is a write that started from another state than the write before it "
                "(event {}) "
                "left: records were put back from an older copy, or events were cut, before it",
                event.seq, committed_seq);
          }
          committed = std::move(commitment->state);
          committed_seq = event.seq;
        }
        return continuity.check(event.seq, event.journal);
      });
  if (!result.ok) return result;
  const auto fail = [&](std::int64_t seq, std::string problem) {
    result.ok = false;
    result.first_bad_seq = seq;
    result.problem = std::move(problem);
    return result;
  };
  if (!committed) {
    return fail(
        1,
        "no event of a write is left in the chain (every vault has one from its creation): the "
        "chain was cut or replaced");
  }
  if (!constant_time_equal(*committed, vault_state(store))) {
    return fail(
        committed_seq,
        fmt::format("the vault's credentials or keys are not those the last write (event {}) left: "
                    "records were put back from an older copy, or events after it were cut",
                    committed_seq));
  }
  return result;
}

ChainVerification walk_audit_chain(
    RecordStore& store, const Keyring& keys,
    const std::function<std::optional<std::string>(const WalkedEvent&)>& each) {
  ChainVerification result;
  Bytes previous = genesis_mac(keys);
  std::int64_t expected = 1;
  auto fail = [&](std::int64_t seq, std::string problem) {
    result.ok = false;
    result.first_bad_seq = seq;
    result.problem = std::move(problem);
    return result;
  };
  constexpr std::int64_t kBatch = kAuditRowsPerRead;
  for (;;) {
    const auto rows = store.audit_rows(expected - 1, kBatch);
    for (const auto& row : rows) {
      const auto problem = check_audit_row(keys, expected, previous, row, [&](const ChainedEvent& event) {
        JournalPlace place;
        const auto text = open_audit_event(keys, event, place);
        if (!text) return std::optional<std::string>(fmt::format("event {} does not decrypt", event.seq));
        if (auto problem = each({event.seq, *text, place})) return problem;
        ++result.events;
        return std::optional<std::string>();
      });
      if (problem) return fail(problem->seq, std::move(problem->what));
      previous = row.mac;
      expected = row.seq + 1;
    }
    if (static_cast<std::int64_t>(rows.size()) < kBatch) break;
  }
  result.head_seq = result.events;
  result.head_mac = result.events ? previous : Bytes();
  const auto head = store.get_meta("audit_head");
  if (!head && result.events == 0) return result;
  if (!head) return fail(1, "the audit head record is missing");
  Bytes expected_head = head_value(keys, result.events, previous);
  if (!constant_time_equal(*head, expected_head)) {
    return fail(result.events + 1,
                fmt::format("the chain ends at event {} but the head says otherwise: events were "
                            "removed from the tail or the head was altered",
                            result.events));
  }
  return result;
}

Bytes chain_genesis_mac(const Keyring& keys) { return genesis_mac(keys); }

std::optional<RowProblem> check_audit_row(
    const Keyring& keys, std::int64_t expected_seq, ByteView previous_mac, const AuditRow& row,
    const std::function<std::optional<std::string>(const ChainedEvent&)>& each) {
  const auto altered = [](std::int64_t seq) {
    return RowProblem{seq, fmt::format("event {} was altered, inserted or reordered", seq)};
  };
  const std::int64_t first = row.first_seq();
  if (row.journal_run < 0 || first < expected_seq) return altered(expected_seq);
  if (first > expected_seq) {
    return RowProblem{expected_seq, fmt::format("event {} is missing (next present is {})", expected_seq, first)};
  }
  if (row.journal_run == 0) {
    if (!constant_time_equal(chain_mac(keys, previous_mac, row.seq, row.owner_tag, row.sealed), row.mac)) {
      return altered(row.seq);
    }
    if (auto problem = each({.seq = row.seq, .owner_tag = row.owner_tag, .sealed = row.sealed})) {
      return RowProblem{row.seq, *problem};
    }
    return std::nullopt;
  }
  // A run: each entry checked against the one before it, then the run as a
  // whole against the chain; only then are its events handed on.
  const ByteView sealed(row.sealed);
  // The run's MAC does not cover the row's owner tag column: each entry
  // carries its own. So the column must be empty, or a byte written there
  // would go unnoticed.
  if (sealed.size() < kRunHeader || !row.owner_tag.empty()) return altered(first);
  const ByteView journal_id = sealed.first(kJournalIdSize);
  std::uint64_t first_index = 0;
  for (std::size_t i = kJournalIdSize; i < kJournalIdSize + 8; ++i) first_index = (first_index << 8) | sealed[i];
  const ByteView start_mac = sealed.subspan(kJournalIdSize + 8, kMacSize);
  const ByteView entries = sealed.subspan(kRunHeader);
  const auto for_each_entry = [&](const auto& visit) -> std::optional<RowProblem> {
    std::size_t at = 0;
    for (std::int64_t i = 0; i < row.journal_run; ++i) {
      bool malformed = false;
      const auto entry = parse_journal_entry(entries.subspan(at), malformed);
      if (!entry) {
        if (at == entries.size()) {
          return RowProblem{first + i, fmt::format("event {} is missing (its run of read events was cut short)",
                                                   first + i)};
        }
        return altered(first + i);
      }
      if (auto problem = visit(first + i, *entry)) return problem;
      at += entry->size;
    }
    if (at != entries.size()) return altered(row.seq);  // more than the run's count
    return std::nullopt;
  };
  ByteView mac = start_mac;
  std::uint64_t index = first_index;
  if (auto problem = for_each_entry([&](std::int64_t seq, const JournalEntry& entry) -> std::optional<RowProblem> {
        if (entry.index != index || !constant_time_equal(journal_entry_mac(keys, mac, entry.maced), entry.mac)) {
          return altered(seq);
        }
        mac = entry.mac;
        ++index;
        return std::nullopt;
      })) {
    return problem;
  }
  if (!constant_time_equal(
          run_mac(keys, previous_mac, row.seq, row.journal_run, journal_id, first_index, start_mac, mac), row.mac)) {
    return altered(first);
  }
  ByteView chained_to = start_mac;
  return for_each_entry([&](std::int64_t seq, const JournalEntry& entry) -> std::optional<RowProblem> {
    if (auto problem = each({seq, entry.owner, entry.sealed, journal_id, entry.index, chained_to, entry.mac})) {
      return RowProblem{seq, *problem};
    }
    chained_to = entry.mac;
    return std::nullopt;
  });
}

// An event of a write is sealed under its chain sequence number. A read
// event is sealed as its journal sealed it, bound to that journal and index:
// an entry of a run names them in the run; a single folded entry (format 4)
// carries them, `journal id (16) ‖ index (8, BE) ‖ sealed`, and AES-GCM
// tells which form a single row has: only the right associated data
// authenticates.
std::optional<std::string> open_audit_event(const Keyring& keys, const ChainedEvent& event, JournalPlace& place) {
  place = {};
  std::optional<SecretBytes> plain;
  if (!event.journal_id.empty()) {
    plain = aead_decrypt(keys.audit_seal_key(), event.sealed,
                         journal_seal_aad(keys, event.journal_id, event.journal_index));
    if (plain) {
      place = {.journal_id = event.journal_id, .index = event.journal_index, .chained_to = event.chained_to,
               .mac = event.mac};
    }
  } else {
    constexpr std::size_t kJournalRef = kJournalIdSize + 8;
    const ByteView sealed = event.sealed;
    if (sealed.size() > kJournalRef) {
      std::uint64_t index = 0;
      for (std::size_t i = kJournalIdSize; i < kJournalRef; ++i) index = (index << 8) | sealed[i];
      plain = aead_decrypt(keys.audit_seal_key(), sealed.subspan(kJournalRef),
                           journal_seal_aad(keys, sealed.first(kJournalIdSize), index));
      if (plain) place = {.journal_id = sealed.first(kJournalIdSize), .index = index};
    }
    if (!plain) plain = aead_decrypt(keys.audit_seal_key(), sealed, seal_aad(keys, event.seq));
  }
  if (!plain) return std::nullopt;
  const ByteView opened = plain->span();
  place.json_sealed = !place.journal_id.empty() && !opened.empty() && opened[0] == '{';
  return event_text(opened);
}

std::optional<std::string> open_audit_event(const Keyring& keys, const ChainedEvent& event) {
  JournalPlace unused;
  return open_audit_event(keys, event, unused);
}

}  // namespace credentials::internal
