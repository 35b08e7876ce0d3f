#include "audit/audit_chain.h"

#include <fmt/format.h>

#include "audit/read_journal.h"
#include "credentials/errors.h"

namespace credentials::internal {
namespace {

constexpr std::string_view kSealLabel = "credentials/v1/audit";

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
  return append_sealed(owner_tag,
                       aead_encrypt(keys_.audit_seal_key(), as_bytes(event_json), seal_aad(keys_, seq_ + 1)));
}

std::int64_t AuditAppender::append_sealed(ByteView owner_tag, Bytes sealed) {
  AuditRow row;
  row.seq = seq_ + 1;
  row.owner_tag.assign(owner_tag.begin(), owner_tag.end());
  row.sealed = std::move(sealed);
  row.mac = chain_mac(keys_, mac_, row.seq, row.owner_tag, row.sealed);
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

ChainVerification verify_audit_chain(RecordStore& store, const Keyring& keys) {
  const std::string damage_mark = fmt::format(R"("action":"{}")", kJournalDamagedAction);
  return walk_audit_chain(store, keys, [&](std::int64_t seq, const std::string& text) -> std::optional<std::string> {
    if (text.find(damage_mark) == std::string::npos) return std::nullopt;
    return fmt::format("event {} records a read journal that was altered before its events reached the chain: "
                       "read events of one process are lost",
                       seq);
  });
}

ChainVerification walk_audit_chain(
    RecordStore& store, const Keyring& keys,
    const std::function<std::optional<std::string>(std::int64_t seq, const std::string& text)>& each) {
  ChainVerification result;
  Bytes previous = genesis_mac(keys);
  std::int64_t expected = 1;
  auto fail = [&](std::int64_t seq, std::string problem) {
    result.ok = false;
    result.first_bad_seq = seq;
    result.problem = std::move(problem);
    return result;
  };
  constexpr std::int64_t kBatch = 4096;
  for (;;) {
    const auto rows = store.audit_rows(expected - 1, kBatch);
    for (const auto& row : rows) {
      if (row.seq != expected) {
        return fail(expected, fmt::format("event {} is missing (next present is {})", expected, row.seq));
      }
      const Bytes mac = chain_mac(keys, previous, row.seq, row.owner_tag, row.sealed);
      if (!constant_time_equal(mac, row.mac)) {
        return fail(row.seq, fmt::format("event {} was altered, inserted or reordered", row.seq));
      }
      const auto text = open_audit_event(keys, row);
      if (!text) {
        return fail(row.seq, fmt::format("event {} does not decrypt", row.seq));
      }
      if (auto problem = each(row.seq, *text)) return fail(row.seq, std::move(*problem));
      previous = mac;
      ++expected;
      ++result.events;
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

bool row_follows(const Keyring& keys, ByteView previous_mac, const AuditRow& row) {
  return constant_time_equal(chain_mac(keys, previous_mac, row.seq, row.owner_tag, row.sealed), row.mac);
}

Bytes chain_genesis_mac(const Keyring& keys) { return genesis_mac(keys); }

// An event is sealed either under its chain sequence number (the events of
// writes), or, folded from a read journal, as the journal sealed it:
// `journal id (16) ‖ index (8, BE) ‖ sealed`, bound to that journal and index
// (docs/FORMAT.md, "Read journal"). AES-GCM tells which: only the right
// associated data authenticates.
std::optional<std::string> open_audit_event(const Keyring& keys, const AuditRow& row) {
  constexpr std::size_t kJournalRef = 16 + 8;
  const ByteView sealed(row.sealed);
  if (sealed.size() > kJournalRef) {
    std::uint64_t index = 0;
    for (std::size_t i = 16; i < kJournalRef; ++i) index = (index << 8) | sealed[i];
    if (auto plain = aead_decrypt(keys.audit_seal_key(), sealed.subspan(kJournalRef),
                                  journal_seal_aad(keys, sealed.first(16), index))) {
      return std::string(plain->as_chars());
    }
  }
  auto plain = aead_decrypt(keys.audit_seal_key(), sealed, seal_aad(keys, row.seq));
  if (!plain) return std::nullopt;
  return std::string(plain->as_chars());
}

}  // namespace credentials::internal
