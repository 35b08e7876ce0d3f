#include "audit/audit_chain.h"

#include <map>
#include <set>

#include <fmt/format.h>

#include "audit/audit_event.h"
#include "audit/audit_segment.h"
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

std::int64_t append_audit_event(RecordStore& store, const Keyring& keys, ByteView owner_tag,
                                std::string_view event_json) {
  const auto last = store.last_audit_row();
  AuditRow row;
  if (__builtin_add_overflow(last ? last->seq : 0, 1, &row.seq)) {
    throw DecryptionFailedError("the audit chain's last sequence number was altered");
  }
  row.owner_tag.assign(owner_tag.begin(), owner_tag.end());
  row.sealed = aead_encrypt(keys.audit_seal_key(), as_bytes(event_json), seal_aad(keys, row.seq));
  row.mac = chain_mac(keys, last ? ByteView(last->mac) : ByteView(genesis_mac(keys)), row.seq,
                      row.owner_tag, row.sealed);
  store.insert_audit_row(row);
  store.put_meta("audit_head", head_value(keys, row.seq, row.mac));
  return row.seq;
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

namespace {

struct AnchorSeen {
  std::int64_t entries = 0;
  Bytes last;
  std::int64_t seq = 0;  // of the anchor event
};

// Each segment's entries, in order, against the anchors the chain holds for
// it: every entry authentic and in its place, and each anchor's entry the one
// it names. `result` is the chain's verification, to which the entries are
// added; a problem is reported at the anchor that vouches for the entry.
void verify_segments(RecordStore& store, const Keyring& keys,
                     const std::map<Bytes, std::vector<AnchorSeen>>& anchors,
                     ChainVerification& result) {
  const auto fail = [&](std::int64_t seq, std::string problem) {
    result.ok = false;
    result.first_bad_seq = seq > 0 ? seq : result.head_seq + 1;
    result.problem = std::move(problem);
  };
  // The anchor vouching for entry `index` of the segment: its first with more entries.
  const auto vouching = [](const std::vector<AnchorSeen>* list,
                           std::int64_t index) -> std::int64_t {
    if (!list) return 0;
    for (const AnchorSeen& anchor : *list) {
      if (anchor.entries > index) return anchor.seq;
    }
    return 0;
  };
  Bytes segment;
  const std::vector<AnchorSeen>* list = nullptr;
  std::size_t next_anchor = 0;
  std::int64_t expected = 0;
  Bytes mac;
  std::set<Bytes> anchored_seen;  // anchored segments the walk met
  // The end of a segment: every anchor of it reached.
  const auto finish = [&]() -> bool {
    if (segment.empty() || !list || next_anchor == list->size()) return true;
    const AnchorSeen& missing = (*list)[next_anchor];
    fail(missing.seq,
         fmt::format("segment {} ends after {} of its entries, but event {} anchored {}: read "
                     "events were cut from it",
                     hex_encode(segment), expected, missing.seq, missing.entries));
    return false;
  };
  // Chunks hold up to a few hundred KiB each.
  constexpr std::int64_t kChunksPerRead = 16;
  Bytes after_segment;
  std::int64_t after_index = -1;
  for (;;) {
    const auto chunks = store.segment_chunks(after_segment, after_index, kChunksPerRead);
    for (const SegmentChunk& chunk : chunks) {
      if (chunk.segment_id != segment) {
        if (!finish()) return;
        segment = chunk.segment_id;
        const auto it = anchors.find(segment);
        list = it == anchors.end() ? nullptr : &it->second;
        if (list) anchored_seen.insert(segment);
        next_anchor = 0;
        expected = 0;
        mac = segment_genesis_mac(keys, segment);
      }
      bool whole = false;
      const auto entries = parse_segment_frames(chunk.entries, chunk.segment_id, &whole);
      if (chunk.first_index != expected || !whole ||
          chunk.count != static_cast<std::int64_t>(entries.size())) {
        return fail(
            vouching(list, expected),
            fmt::format(
                "the entries of segment {} from {} were altered, inserted, removed or reordered",
                hex_encode(segment), expected));
      }
      for (const SegmentEntry& entry : entries) {
        if (entry.index != expected ||
            !constant_time_equal(segment_entry_mac(keys, mac, entry), entry.mac)) {
          return fail(
              vouching(list, expected),
              fmt::format("entry {} of segment {} was altered, inserted, removed or reordered",
                          expected, hex_encode(segment)));
        }
        if (!open_segment_entry(keys, entry)) {
          return fail(vouching(list, expected),
                      fmt::format("entry {} of segment {} does not decrypt", expected,
                                  hex_encode(segment)));
        }
        mac = entry.mac;
        ++expected;
        ++result.events;
        while (list && next_anchor < list->size() && (*list)[next_anchor].entries == expected) {
          if (!constant_time_equal((*list)[next_anchor].last, mac)) {
            return fail((*list)[next_anchor].seq,
                        fmt::format("entry {} of segment {} is not the one event {} anchored",
                                    expected - 1, hex_encode(segment), (*list)[next_anchor].seq));
          }
          ++next_anchor;
        }
      }
    }
    if (static_cast<std::int64_t>(chunks.size()) < kChunksPerRead) break;
    after_segment = chunks.back().segment_id;
    after_index = chunks.back().first_index;
  }
  if (!finish()) return;
  for (const auto& [id, seen] : anchors) {
    if (anchored_seen.count(id)) continue;
    return fail(seen.front().seq,
                fmt::format("segment {}, anchored by event {}, is missing: its read events "
                            "were removed",
                            hex_encode(id), seen.front().seq));
  }
}

}  // namespace

ChainVerification verify_audit_chain(RecordStore& store, const Keyring& keys) {
  const std::string damage_mark = fmt::format(R"("action":"{}")", kSegmentDamagedAction);
  std::map<Bytes, std::vector<AnchorSeen>> anchors;
  std::optional<Bytes> committed;  // by the last write's event
  std::int64_t committed_seq = 0;
  ChainVerification result = walk_audit_chain(
      store, keys, [&](std::int64_t seq, const std::string& text) -> std::optional<std::string> {
        if (text.find(damage_mark) != std::string::npos) {
          return fmt::format(
              "event {} records a segment of read events that was altered before it was anchored: "
              "read "
              "events of one process are lost",
              seq);
        }
        if (auto anchor = event_anchor(text)) {
          auto& seen = anchors[anchor->segment];
          if (anchor->entries <= 0 || (!seen.empty() && anchor->entries <= seen.back().entries)) {
            return fmt::format("event {} anchors a segment at an entry it had passed", seq);
          }
          seen.push_back({anchor->entries, std::move(anchor->last), seq});
          return std::nullopt;
        }
        if (auto commitment = event_commitment(text)) {
          // Each write starts from the state the write before it left: a
          // write after records were rolled back, or after events were cut,
          // does not hide it.
          if (committed && !constant_time_equal(commitment->prior, *committed)) {
            return fmt::format(
                "event {} is a write that started from another state than the write before it "
                "(event {}) left: records were put back from an older copy, or events were cut, "
                "before it",
                seq, committed_seq);
          }
          committed = std::move(commitment->state);
          committed_seq = seq;
        }
        return std::nullopt;
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
  verify_segments(store, keys, anchors, result);
  return result;
}

ChainVerification walk_audit_chain(
    RecordStore& store, const Keyring& keys,
    const std::function<std::optional<std::string>(std::int64_t seq, const std::string& text)>&
        each) {
  ChainVerification result;
  Bytes previous = genesis_mac(keys);
  std::int64_t expected = 1;
  auto fail = [&](std::int64_t seq, std::string problem) {
    result.ok = false;
    result.first_bad_seq = seq;
    result.problem = std::move(problem);
    return result;
  };
  for (;;) {
    const auto rows = store.audit_rows(expected - 1, kAuditRowsPerRead);
    for (const auto& row : rows) {
      if (row.seq > expected) {
        return fail(expected,
                    fmt::format("event {} is missing (next present is {})", expected, row.seq));
      }
      if (row.seq < expected || !audit_row_chains(keys, previous, row)) {
        return fail(expected, fmt::format("event {} was altered, inserted or reordered", expected));
      }
      const auto text = open_audit_event(keys, row);
      if (!text) return fail(row.seq, fmt::format("event {} does not decrypt", row.seq));
      if (auto problem = each(row.seq, *text)) return fail(row.seq, std::move(*problem));
      previous = row.mac;
      expected = row.seq + 1;
    }
    if (static_cast<std::int64_t>(rows.size()) < kAuditRowsPerRead) break;
  }
  result.head_seq = expected - 1;
  result.events = result.head_seq;
  result.head_mac = result.head_seq ? previous : Bytes();
  const auto head = store.get_meta("audit_head");
  if (!head && result.head_seq == 0) return result;
  if (!head) return fail(1, "the audit head record is missing");
  if (!constant_time_equal(*head, head_value(keys, result.head_seq, previous))) {
    return fail(result.head_seq + 1,
                fmt::format("the chain ends at event {} but the head says otherwise: events were "
                            "removed from the tail or the head was altered",
                            result.head_seq));
  }
  return result;
}

Bytes chain_genesis_mac(const Keyring& keys) { return genesis_mac(keys); }

bool audit_row_chains(const Keyring& keys, ByteView previous_mac, const AuditRow& row) {
  return constant_time_equal(chain_mac(keys, previous_mac, row.seq, row.owner_tag, row.sealed),
                             row.mac);
}

std::optional<std::string> open_audit_event(const Keyring& keys, const AuditRow& row) {
  const auto plain = aead_decrypt(keys.audit_seal_key(), row.sealed, seal_aad(keys, row.seq));
  if (!plain) return std::nullopt;
  const ByteView text = plain->span();
  if (text.empty() || text[0] != '{') return std::nullopt;
  return std::string(reinterpret_cast<const char*>(text.data()), text.size());
}

}  // namespace credentials::internal
