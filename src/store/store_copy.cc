#include "store/store_copy.h"

#include <fmt/format.h>

#include <limits>
#include <map>

#include "credentials/errors.h"

namespace credentials::internal {

void copy_store(RecordStore& from, RecordStore& to) {
  auto read = from.begin_read();
  // The source must be a vault already (migrate-store --from): one is never
  // made in it, and an empty one is not copied as if it were a vault.
  if (!from.initialized()) {
    throw CredentialNotFoundError("the source holds no vault: nothing was copied");
  }
  auto write = to.begin_write();
  if (to.initialized()) {
    throw AlreadyExistsError(
        "the target already holds a vault: copy into an empty directory or an unused schema");
  }
  to.create_schema();
  for (const auto& [key, value] : from.all_meta()) to.put_meta(key, value);
  for (const auto& key : from.load_keys()) to.insert_key(key);

  std::map<Bytes, std::vector<Bytes>> ids;  // lookup -> id tags
  for (auto& [id_tag, lookup] : from.all_credential_ids()) ids[lookup].push_back(std::move(id_tag));
  std::map<Bytes, StoredRecord> current;  // lookup -> current version (with last_used)
  for (auto& record : from.all_current_records()) current.emplace(record.lookup, std::move(record));

  // Every version, in (lookup, version) order: the first of a credential
  // creates it, the later ones are added (keeping all of them); the newest
  // is then current, as it is in the source.
  constexpr std::int64_t kBatch = 1024;
  constexpr int kKeepAll = std::numeric_limits<int>::max();
  Bytes after_lookup;
  std::uint64_t after_version = 0;
  Bytes open_lookup;
  std::uint64_t open_newest = 0;
  auto close_credential = [&] {
    if (open_lookup.empty()) return;
    const auto it = current.find(open_lookup);
    if (it == current.end() || it->second.version != open_newest) {
      throw DatabaseError("cannot copy the vault: a credential's current version is not its newest; "
                          "run `credential_manager verify` on the source");
    }
    if (it->second.last_used) to.touch_last_used(open_lookup, it->second.last_used);
    const auto& tags = ids[open_lookup];
    for (std::size_t i = 1; i < tags.size(); ++i) to.insert_credential_id(tags[i], open_lookup);
  };
  for (;;) {
    const auto records = from.versions_after(after_lookup, after_version, kBatch);
    for (const auto& record : records) {
      after_lookup = record.lookup;
      after_version = record.version;
      if (record.owner_tag.empty()) {
        throw DatabaseError("cannot copy the vault: a stored version has no credential row; run "
                            "`credential_manager verify` on the source");
      }
      if (record.lookup != open_lookup) {
        close_credential();
        const auto it = ids.find(record.lookup);
        if (it == ids.end() || it->second.empty()) {
          throw DatabaseError("cannot copy the vault: a credential has no id index entry; run "
                              "`credential_manager verify` on the source");
        }
        to.insert_credential(it->second.front(), record);
        open_lookup = record.lookup;
      } else {
        to.add_version(record, kKeepAll);
      }
      open_newest = record.version;
    }
    if (static_cast<std::int64_t>(records.size()) < kBatch) break;
  }
  close_credential();
  if (to.credential_count() != from.credential_count() || to.version_count() != from.version_count()) {
    throw DatabaseError("cannot copy the vault: the source has credential rows without versions; run "
                        "`credential_manager verify` on the source");
  }

  // The version ledger verbatim: it authenticates the versions just copied.
  for (const auto& node : from.all_ledger_nodes()) to.put_ledger_node(node.node_id, node.body);

  constexpr std::int64_t kAuditBatch = 1024;
  std::int64_t after = 0;
  for (;;) {
    const auto rows = from.audit_rows(after, kAuditBatch);
    for (const auto& row : rows) {
      to.insert_audit_row(row);
      after = row.seq;
    }
    if (static_cast<std::int64_t>(rows.size()) < kAuditBatch) break;
  }
  // Chunks of up to 1,024 entries (a few hundred KiB) at a time.
  constexpr std::int64_t kChunkBatch = 16;
  Bytes after_segment;
  std::int64_t after_index = -1;
  for (;;) {
    const auto chunks = from.segment_chunks(after_segment, after_index, kChunkBatch);
    for (const SegmentChunk& chunk : chunks) to.insert_segment_chunk(chunk);
    if (static_cast<std::int64_t>(chunks.size()) < kChunkBatch) break;
    after_segment = chunks.back().segment_id;
    after_index = chunks.back().first_index;
  }
  write.commit();
}

}  // namespace credentials::internal
