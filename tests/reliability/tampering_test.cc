// Tampering suite: someone with write access to vault.db (but not the master
// key) flips bytes, swaps, moves, deletes and replays rows, also from an
// older copy of the vault. Every read must then either fail with an
// integrity error (DecryptionFailedError; a CredentialNotFoundError where an
// index entry was removed) or return the true value: never a wrong value,
// never an older one, never a crash; verify() must notice every change to
// sealed bytes and to the version ledger (docs/RELIABILITY.md).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "credentials/credentials.h"
#include "reliability/reliability.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

using testing::TempDir;
using Blob = std::vector<unsigned char>;

const UserContext kAlice{"alice", "alice", {"user"}};
const UserContext kBob{"bob", "bob", {"user"}};
const UserContext kAdmin{"root", "root", {"admin"}};

// A raw connection to vault.db, as an attacker would have.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open vault.db");
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error("sql: " + message + " in " + sql);
    }
  }

  // Rows of blob/integer columns, each column as bytes (integers as text).
  std::vector<std::vector<Blob>> query(const std::string& sql, const std::vector<Blob>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(db_));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      // Integer columns come back as their digits (see below) and go back
      // as integers: a blob never equals an integer in SQLite.
      const std::string text(params[i].begin(), params[i].end());
      const bool integer = !text.empty() && text.size() < 19 &&
                           text.find_first_not_of("-0123456789") == std::string::npos;
      if (integer) {
        sqlite3_bind_int64(stmt, static_cast<int>(i + 1), std::stoll(text));
      } else {
        sqlite3_bind_blob(stmt, static_cast<int>(i + 1), params[i].data(),
                          static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
      }
    }
    std::vector<std::vector<Blob>> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::vector<Blob> row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_INTEGER) {
          const std::string text = std::to_string(sqlite3_column_int64(stmt, c));
          row.emplace_back(text.begin(), text.end());
        } else {
          const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, c));
          row.emplace_back(p, p + sqlite3_column_bytes(stmt, c));
        }
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string("step: ") + sqlite3_errmsg(db_));
    return rows;
  }
  void run(const std::string& sql, const std::vector<Blob>& params) { (void)query(sql, params); }

  // Copies the tables an attack changes, so that it can be committed (the
  // vault's own connection sees only committed changes) and then undone.
  void save() {
    for (const char* t : {"versions", "credentials", "credential_ids", "ledger", "audit",
                          "audit_segment", "meta"}) {
      exec(std::string("DROP TABLE IF EXISTS temp.saved_") + t + "; CREATE TEMP TABLE saved_" + t +
           " AS SELECT * FROM main." + t);
    }
  }
  void restore() {
    exec("BEGIN");
    for (const char* t : {"versions", "credentials", "credential_ids", "ledger", "audit",
                          "audit_segment", "meta"}) {
      exec(std::string("DELETE FROM main.") + t + "; INSERT INTO main." + t + " SELECT * FROM temp.saved_" + t);
    }
    exec("COMMIT");
  }

 private:
  sqlite3* db_ = nullptr;
};

std::int64_t as_int(const Blob& b) { return std::stoll(std::string(b.begin(), b.end())); }

// The node id of the version ledger leaf that holds a credential (docs/FORMAT.md,
// "Version ledger": the owner tag's first 4 bits, then the lookup tag's first
// byte), as the digits RawDb binds as an integer.
Blob ledger_leaf_of(const Blob& owner_tag, const Blob& lookup) {
  const std::string id = std::to_string(65 + (((owner_tag[0] >> 4) << 8) | lookup[0]));
  return Blob(id.begin(), id.end());
}

// What a read lambda returns besides true (1) and false (0, a wrong value).
constexpr int kIncomplete = 2;

struct Truth {
  std::string id, owner, name, password, host;
  std::uint64_t version;
};

struct Counts {
  long mutations = 0;
  long reads = 0;
  long true_values = 0;
  long integrity_errors = 0;  // DecryptionFailedError
  long not_found = 0;         // an index row was removed or changed
  long other_errors = 0;      // another credentials::Error
  long wrong_values = 0;      // must stay 0
  long crashes = 0;           // exceptions outside the hierarchy; must stay 0
  long verify_detected = 0;
  long verify_missed = 0;
  long stale_but_authentic = 0;  // an older, authentic version read back; must stay 0
};

class TamperingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Vault vault = open();
    truth_["a1"] = {vault.store_credential(kAlice, {.name = "db_a", .host = "a.example.com", .database = "d",
                                                    .username = "u", .password = "alice-v1-@:/?#%"}),
                    "alice", "db_a", "alice-v1-@:/?#%", "a.example.com", 1};
    {
      // db_a's version 1 as it was stored while current: what an older copy
      // of the vault (a backup) holds.
      RawDb raw(db_file());
      const auto row = raw.query("SELECT sealed, key_id FROM versions WHERE version = 1");
      ASSERT_EQ(row.size(), 1u);
      a_v1_when_current_ = row[0];
      // Its version ledger leaf (the only one not empty).
      const auto leaf = raw.query("SELECT node_id, body FROM ledger WHERE node_id >= 65 AND length(body) > 0");
      ASSERT_EQ(leaf.size(), 1u);
      a_leaf_when_v1_ = leaf[0];
    }
    (void)vault.update_password(kAlice, "db_a", "alice-v2-[]'\"\\");
    truth_["a1"].password = "alice-v2-[]'\"\\";
    truth_["a1"].version = 2;
    truth_["a2"] = {vault.store_credential(kAlice, {.name = "db_c", .host = "c.example.com", .database = "d",
                                                    .username = "u", .password = "alice-c"}),
                    "alice", "db_c", "alice-c", "c.example.com", 1};
    truth_["b1"] = {vault.store_credential(kBob, {.name = "db_b", .host = "b.example.com", .database = "d",
                                                  .username = "u", .password = "bob-v1"}),
                    "bob", "db_b", "bob-v1", "b.example.com", 1};
    (void)vault.update_password(kBob, "db_b", "bob-v2");
    truth_["b1"].password = "bob-v2";
    truth_["b1"].version = 2;
  }

  Vault open() {
    return Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone()});
  }
  std::filesystem::path db_file() const { return dir_.path() / "vault" / "vault.db"; }

  static bool matches(const Credential& c, const Truth& t) {
    return c.credential_id == t.id && c.owner == t.owner && c.name == t.name &&
           c.password.reveal() == t.password && c.host == t.host && c.version == t.version;
  }

  // One read: classified, and a wrong value or a foreign exception recorded.
  template <typename F>
  void read(Counts& counts, const std::string& what, F&& f) {
    ++counts.reads;
    try {
      const int result = f();
      if (result == kIncomplete) {
        ++counts.not_found;
      } else if (result) {
        ++counts.true_values;
      } else {
        ++counts.wrong_values;
        ADD_FAILURE() << what << " returned a WRONG value after " << current_mutation_;
      }
    } catch (const DecryptionFailedError&) {
      ++counts.integrity_errors;
    } catch (const CredentialNotFoundError&) {
      ++counts.not_found;
    } catch (const Error&) {
      ++counts.other_errors;
    } catch (const std::exception& e) {
      ++counts.crashes;
      ADD_FAILURE() << what << " threw a non-library exception after " << current_mutation_ << ": "
                    << e.what();
    }
  }

  // Every read path, for every credential.
  void read_everything(Vault& vault, Counts& counts) {
    for (const auto& [key, t] : truth_) {
      const UserContext owner{t.owner, t.owner, {"user"}};
      read(counts, "get by name", [&] { return matches(vault.get_credential(owner, t.name), t); });
      read(counts, "get by owner+name",
           [&] { return matches(vault.get_credential(kAdmin, t.owner, t.name), t); });
      read(counts, "get by id", [&] { return matches(vault.get_credential(owner, t.id), t); });
      read(counts, "history", [&] {
        const auto h = vault.history(owner, t.name);
        return !h.empty() && h.back().version == t.version && h.back().current;
      });
    }
    read(counts, "list", [&]() -> int {
      const auto list = vault.list_credentials(kAdmin);
      for (const auto& info : list) {
        bool found = false;
        for (const auto& [key, t] : truth_) {
          found |= info.credential_id == t.id && info.owner == t.owner && info.name == t.name &&
                   info.host == t.host && info.version == t.version;
        }
        if (!found) return 0;
      }
      // Every entry true, some missing: a deleted row, not a wrong value.
      return list.size() == truth_.size() ? 1 : kIncomplete;
    });
  }

  void check_verify(Vault& vault, Counts& counts) {
    bool detected = false;
    try {
      detected = !vault.verify().ok();
    } catch (const DecryptionFailedError&) {
      detected = true;
    } catch (const std::exception& e) {
      ++counts.crashes;
      ADD_FAILURE() << "verify threw after " << current_mutation_ << ": " << e.what();
      return;
    }
    if (detected) {
      ++counts.verify_detected;
    } else {
      ++counts.verify_missed;
    }
  }

  void print(std::string_view suite, const Counts& c) {
    testing::print_figures(
        suite, fmt::format("mutations {}, reads {}: true value {}, integrity error {}, not found "
                           "{}, other error {}, WRONG VALUE {}, crash {}; verify detected {} of {}{}",
                           c.mutations, c.reads, c.true_values, c.integrity_errors, c.not_found,
                           c.other_errors, c.wrong_values, c.crashes, c.verify_detected,
                           c.verify_detected + c.verify_missed,
                           c.stale_but_authentic
                               ? fmt::format(", stale-but-authentic reads {}", c.stale_but_authentic)
                               : ""));
    EXPECT_EQ(c.wrong_values, 0);
    EXPECT_EQ(c.crashes, 0);
    EXPECT_GT(c.mutations, 0);
  }

  TempDir dir_;
  SecretString key_ = generate_master_key();
  std::map<std::string, Truth> truth_;
  std::vector<Blob> a_v1_when_current_;  // sealed, key_id
  std::vector<Blob> a_leaf_when_v1_;     // node_id, body
  std::string current_mutation_;
};

// Flips every byte of every stored version (current and kept history), one
// at a time: the AEAD rejects each one. Each flip is read through a handle
// of its own, and the vault put back whole after it (its audit trail too):
// every read is audited, so one handle for all of them grew the chain that
// each verify() walks, quadratically.
TEST_F(TamperingTest, EveryFlippedRecordByteIsRejectedNeverMisread) {
  RawDb raw(db_file());
  raw.save();
  Counts c;
  const auto rows = raw.query("SELECT lookup, version, sealed FROM versions ORDER BY lookup, version");
  ASSERT_EQ(rows.size(), 5u);
  const std::vector<unsigned char> patterns =
      testing::long_mode() ? std::vector<unsigned char>{0x01, 0x80, 0xff} : std::vector<unsigned char>{0x01};
  long record_reads_failed = 0, record_reads_total = 0;
  for (const auto& row : rows) {
    const Blob& lookup = row[0];
    const Blob& sealed = row[2];
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      for (unsigned char pattern : patterns) {
        Blob bad = sealed;
        bad[i] ^= pattern;
        current_mutation_ = fmt::format("flipping byte {} of version {} with {:#x}", i,
                                        std::string(row[1].begin(), row[1].end()), pattern);
        raw.run("UPDATE versions SET sealed = ?1 WHERE lookup = ?2 AND version = ?3",
                {bad, lookup, row[1]});
        ++c.mutations;
        {
          Vault vault = open();
          const long before = c.integrity_errors;
          const long reads_before = c.reads;
          read_everything(vault, c);
          // Only the reads that touch the altered version may fail, but at
          // least one must: every read path covers every stored version.
          record_reads_failed += c.integrity_errors - before;
          record_reads_total += c.reads - reads_before;
          if (c.integrity_errors == before) {
            ADD_FAILURE() << "no read noticed " << current_mutation_;
          }
          check_verify(vault, c);
        }
        raw.restore();
      }
    }
  }
  // Restored: everything reads true again and verifies (the test's control).
  Vault vault = open();
  Counts after;
  read_everything(vault, after);
  EXPECT_EQ(after.true_values, after.reads);
  EXPECT_TRUE(vault.verify().ok());
  print("tampering-record-bytes", c);
  EXPECT_EQ(c.verify_missed, 0);
  EXPECT_GT(record_reads_failed, 0);
}

// Every byte of every wrapped key and of the vault header: the vault refuses
// to open (or reads fail); never a wrong value.
TEST_F(TamperingTest, EveryFlippedKeyOrHeaderByteIsRejected) {
  Counts c;
  long open_refused = 0;
  std::vector<std::tuple<std::string, std::string, Blob>> targets;  // table, where, bytes
  {
    RawDb raw(db_file());
    for (const auto& row : raw.query("SELECT key_id, wrapped FROM keys")) {
      targets.emplace_back("keys", std::string(row[0].begin(), row[0].end()), row[1]);
    }
    // The audit head is flipped by EveryFlippedAuditByteBreaksTheChain: here
    // each open appends read events and a new head, which putting the old
    // bytes back would break.
    for (const auto& row : raw.query("SELECT key, value FROM meta WHERE key <> 'audit_head'")) {
      targets.emplace_back("meta", std::string(row[0].begin(), row[0].end()), row[1]);
    }
  }
  long header_flips_harmless = 0;
  for (const auto& [table, where, original] : targets) {
    for (std::size_t i = 0; i < original.size(); ++i) {
      Blob bad = original;
      bad[i] ^= 0x01;
      current_mutation_ = fmt::format("flipping byte {} of {} {}", i, table, where);
      const std::string update = table == "keys" ? "UPDATE keys SET wrapped = ?1 WHERE key_id = " + where
                                                 : "UPDATE meta SET value = ?1 WHERE key = '" + where + "'";
      { RawDb raw(db_file()); raw.run(update, {bad}); }
      ++c.mutations;
      try {
        Vault vault = open();
        const long before = c.true_values;
        const long reads_before = c.reads;
        read_everything(vault, c);
        check_verify(vault, c);
        if (table == "keys" && c.verify_missed) {
          ADD_FAILURE() << "the vault opened and verified after " << current_mutation_;
        } else if (c.true_values - before == c.reads - reads_before) {
          ++header_flips_harmless;  // e.g. the Argon2 salt, unused with a raw key
        }
      } catch (const DecryptionFailedError&) {
        ++open_refused;
      } catch (const Error&) {
        ++open_refused;
      } catch (const std::exception& e) {
        ++c.crashes;
        ADD_FAILURE() << "open threw a non-library exception after " << current_mutation_ << ": " << e.what();
      }
      { RawDb raw(db_file()); raw.run(update, {original}); }
    }
  }
  print("tampering-keys-and-header", c);
  testing::print_figures("tampering-keys-and-header",
                         fmt::format("open refused {} of {}, header flips with no effect on any read {}",
                                     open_refused, c.mutations, header_flips_harmless));
  Vault vault = open();
  const VerifyReport report = vault.verify();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? report.audit.problem
                                                       : report.problems.front());
}

// With the right master key, an altered header or key table is reported as
// an altered vault, never as a wrong key (which would send the operator
// looking for another key); a wrong key is still reported as one.
TEST_F(TamperingTest, AlteredHeaderOrKeyTableWithTheRightKeySaysAlteredNotWrongKey) {
  const auto open_error = [&](const SecretString& key) -> std::string {
    try {
      (void)Vault::open({.directory = dir_.path() / "vault", .master_key = key.clone()});
    } catch (const DecryptionFailedError& e) {
      return e.what();
    }
    return "opened";
  };
  const auto expect_altered = [&](const std::string& what) {
    const std::string message = open_error(key_);
    EXPECT_NE(message.find("was altered"), std::string::npos) << what << ": " << message;
    EXPECT_EQ(message.find("restore the original key"), std::string::npos)
        << what << ": " << message;
  };
  std::map<std::string, Blob> meta;
  std::vector<std::pair<std::string, Blob>> keys;  // key_id, wrapped
  {
    RawDb raw(db_file());
    // The audit head is flipped by EveryFlippedAuditByteBreaksTheChain: here
    // each open appends read events and a new head, which putting the old
    // bytes back would break.
    for (const auto& row : raw.query("SELECT key, value FROM meta WHERE key <> 'audit_head'")) {
      meta[std::string(row[0].begin(), row[0].end())] = row[1];
    }
    for (const auto& row : raw.query("SELECT key_id, wrapped FROM keys ORDER BY key_id")) {
      keys.emplace_back(std::string(row[0].begin(), row[0].end()), row[1]);
    }
  }
  ASSERT_EQ(meta.count("key_check"), 1u);
  ASSERT_GE(keys.size(), 3u);
  const auto set_meta = [&](const std::string& key, const Blob& value) {
    RawDb(db_file()).run("UPDATE meta SET value = ?1 WHERE key = '" + key + "'", {value});
  };
  const auto set_wrapped = [&](const std::string& key_id, const Blob& value) {
    RawDb(db_file()).run("UPDATE keys SET wrapped = ?1 WHERE key_id = " + key_id, {value});
  };

  Blob other_id = meta["vault_id"];
  other_id[0] ^= 0x80;
  set_meta("vault_id", other_id);
  expect_altered("vault_id changed");
  set_meta("vault_id", meta["vault_id"]);

  set_wrapped(keys[0].first, keys[1].second);  // two key rows swapped
  set_wrapped(keys[1].first, keys[0].second);
  expect_altered("key rows swapped");
  set_wrapped(keys[0].first, keys[0].second);
  set_wrapped(keys[1].first, keys[1].second);

  Blob bad_wrap = keys[2].second;
  bad_wrap.back() ^= 0x01;
  set_wrapped(keys[2].first, bad_wrap);
  expect_altered("one wrapped key flipped");
  set_wrapped(keys[2].first, keys[2].second);

  Blob bad_check = meta["key_check"];
  bad_check[3] ^= 0x01;
  set_meta("key_check", bad_check);
  expect_altered("key check changed");
  // A wrong key with an altered check: still "wrong key" is not claimed as
  // proven, but the vault never opens.
  EXPECT_NE(open_error(generate_master_key()), "opened");
  set_meta("key_check", meta["key_check"]);

  // Control: the wrong key is reported as a wrong key, and the right one opens.
  const std::string wrong = open_error(generate_master_key());
  EXPECT_NE(wrong.find("restore the original key"), std::string::npos) << wrong;
  EXPECT_EQ(wrong.find("altered"), std::string::npos) << wrong;
  EXPECT_EQ(open_error(key_), "opened");
  Vault vault = open();
  EXPECT_TRUE(vault.verify().ok());
}

// Bytes of the version ledger on the credentials' paths: every byte of every
// leaf that lists one, and of the root's and the inner nodes' MAC slots one
// byte each (a flip anywhere in a slot changes the same comparison), and
// every byte of the root's tag. Reads through the node fail, others read
// true; verify() notices every flip.
TEST_F(TamperingTest, EveryFlippedLedgerByteIsRejectedNeverMisread) {
  Vault vault = open();
  RawDb raw(db_file());
  Counts c;
  std::vector<std::pair<std::int64_t, std::vector<std::size_t>>> targets;  // node id, byte offsets
  std::set<std::int64_t> inner_nodes;
  for (const auto& row : raw.query("SELECT node_id, length(body) FROM ledger WHERE node_id >= 65 AND length(body) > 0")) {
    std::vector<std::size_t> all(static_cast<std::size_t>(as_int(row[1])));
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    targets.emplace_back(as_int(row[0]), all);
    inner_nodes.insert(1 + (as_int(row[0]) - 65) / 64);
  }
  ASSERT_FALSE(targets.empty());
  std::vector<std::size_t> slot_starts;
  for (std::size_t i = 0; i < 64; ++i) slot_starts.push_back(i * 32);
  for (const std::int64_t inner : inner_nodes) targets.emplace_back(inner, slot_starts);
  std::vector<std::size_t> root_bytes = slot_starts;
  for (std::size_t i = 64 * 32; i < 65 * 32; ++i) root_bytes.push_back(i);
  targets.emplace_back(0, root_bytes);
  for (const auto& [node, offsets] : targets) {
    const auto row = raw.query("SELECT body FROM ledger WHERE node_id = " + std::to_string(node));
    ASSERT_EQ(row.size(), 1u);
    const Blob original = row[0][0];
    for (const std::size_t i : offsets) {
      Blob bad = original;
      bad[i] ^= 0x01;
      current_mutation_ = fmt::format("flipping byte {} of ledger node {}", i, node);
      raw.run("UPDATE ledger SET body = ?1 WHERE node_id = " + std::to_string(node), {bad});
      ++c.mutations;
      const long before = c.integrity_errors;
      read_everything(vault, c);
      if (c.integrity_errors == before) ADD_FAILURE() << "no read noticed " << current_mutation_;
      check_verify(vault, c);
    }
    raw.run("UPDATE ledger SET body = ?1 WHERE node_id = " + std::to_string(node), {original});
  }
  Counts after;
  read_everything(vault, after);
  EXPECT_EQ(after.true_values, after.reads);
  EXPECT_TRUE(vault.verify().ok());
  print("tampering-ledger-bytes", c);
  EXPECT_EQ(c.verify_missed, 0);
}

// Every byte of audit rows (sealed event and MAC) and of the audit head:
// verify_audit reports each one.
TEST_F(TamperingTest, EveryFlippedAuditByteBreaksTheChain) {
  Vault vault = open();
  RawDb raw(db_file());
  const auto rows = raw.query("SELECT seq, sealed, mac FROM audit ORDER BY seq");
  ASSERT_GT(rows.size(), 3u);
  long flips = 0, detected = 0;
  // Quick mode: the first, a middle and the last event; long mode: all.
  std::vector<std::size_t> chosen;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (testing::long_mode() || r == 0 || r == rows.size() / 2 || r + 1 == rows.size()) chosen.push_back(r);
  }
  for (std::size_t r : chosen) {
    for (int column : {1, 2}) {
      const Blob& original = rows[r][column];
      const std::string name = column == 1 ? "sealed" : "mac";
      for (std::size_t i = 0; i < original.size(); ++i) {
        Blob bad = original;
        bad[i] ^= 0x01;
        raw.run("UPDATE audit SET " + name + " = ?1 WHERE seq = ?2", {bad, rows[r][0]});
        ++flips;
        const AuditVerification v = vault.verify_audit();
        if (!v.ok) {
          ++detected;
        } else {
          ADD_FAILURE() << "audit verify missed byte " << i << " of " << name << " of event "
                        << as_int(rows[r][0]);
        }
        raw.run("UPDATE audit SET " + name + " = ?1 WHERE seq = ?2", {original, rows[r][0]});
      }
    }
  }
  // Deleting, reordering and truncating events.
  long structural = 0, structural_detected = 0;
  raw.save();
  auto structural_case = [&](const std::string& apply, const std::string& undo_note) {
    raw.exec(apply);
    ++structural;
    if (!vault.verify_audit().ok) {
      ++structural_detected;
    } else {
      ADD_FAILURE() << "audit verify missed: " << undo_note;
    }
    raw.restore();
  };
  const std::string mid = std::to_string(as_int(rows[rows.size() / 2][0]));
  const std::string last = std::to_string(as_int(rows.back()[0]));
  structural_case("DELETE FROM audit WHERE seq = " + mid, "a deleted event");
  structural_case("DELETE FROM audit WHERE seq = " + last, "the last event deleted (truncation)");
  structural_case("UPDATE audit SET seq = -1 WHERE seq = " + mid + "; UPDATE audit SET seq = " + mid +
                      " WHERE seq = " + last + "; UPDATE audit SET seq = " + last + " WHERE seq = -1",
                  "two events swapped");
  EXPECT_TRUE(vault.verify_audit().ok);
  testing::print_figures("tampering-audit",
                         fmt::format("byte flips {} (events {} of {}), detected {}; deleted/truncated/"
                                     "swapped events {}, detected {}",
                                     flips, chosen.size(), rows.size(), detected, structural,
                                     structural_detected));
  EXPECT_EQ(detected, flips);
  EXPECT_EQ(structural_detected, structural);
}

// Read events are the entries of their handle's segment, stored in chunks
// and anchored by the chain (docs/FORMAT.md, "Audit segments"). Every byte
// of a chunk, its numbers, and each way of cutting, reordering or repeating
// its entries is detected; an entry out of place is not listed. Each check
// opens a handle of its own, whose own events go to a segment of their own.
TEST_F(TamperingTest, EveryFlippedByteAndEveryCutOfASegmentBreaksTheTrail) {
  {
    Vault vault = open();
    for (const auto& [user, name] : {std::pair{kAlice, "db_a"},
                                     {kBob, "db_b"},
                                     {kAlice, "db_c"},
                                     {kBob, "db_b"},
                                     {kAlice, "db_a"}}) {
      (void)vault.get_credential(user, name);
    }
  }  // closed: its segment anchored, as one chunk
  {
    Vault vault = open();
    EXPECT_EQ(vault.audit_events(kAlice, {.action = "get"}).size(), 3u);
    EXPECT_EQ(vault.audit_events(kBob, {.action = "get"}).size(), 2u);
    for (const AuditEvent& event : vault.audit_events(kBob, {})) EXPECT_EQ(event.owner, "bob");
    ASSERT_TRUE(vault.verify_audit().ok);
  }
  RawDb raw(db_file());
  const auto chunks = raw.query("SELECT segment_id, entries FROM audit_segment WHERE count = 5");
  ASSERT_EQ(chunks.size(), 1u) << "one chunk holds the five reads";
  const Blob segment = chunks[0][0];
  const Blob entries = chunks[0][1];
  raw.save();

  long cases = 0, detected = 0;
  const auto expect_detected = [&](const std::string& what) {
    ++cases;
    const AuditVerification v = open().verify_audit();
    if (v.ok) {
      ADD_FAILURE() << "audit verify missed " << what;
    } else {
      ++detected;
      EXPECT_NE(v.problem.find("segment"), std::string::npos) << what << ": " << v.problem;
    }
  };
  const auto gets_listed = [&] { return open().audit_events(kAdmin, {.action = "get"}).size(); };
  const auto set_entries = [&](const Blob& changed, std::size_t count) {
    raw.run(fmt::format("UPDATE audit_segment SET entries = ?1, count = {} WHERE segment_id = ?2",
                        count),
            {changed, segment});
  };
  // Every byte of the entries (quick mode: every third).
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!testing::long_mode() && i % 3 != 0) continue;
    Blob bad = entries;
    bad[i] ^= 0x01;
    set_entries(bad, 5);
    expect_detected(fmt::format("byte {} of the chunk's entries", i));
    raw.restore();
  }
  for (const char* change : {"count = 4", "count = 6", "count = 0", "first_idx = 1",
                             "first_idx = -1", "segment_id = randomblob(16)"}) {
    raw.run(fmt::format("UPDATE audit_segment SET {} WHERE segment_id = ?1", change), {segment});
    expect_detected(fmt::format("the chunk's {}", change));
    raw.restore();
  }
  // The chunk rewritten with its entries cut, swapped or repeated, as
  // someone editing the file would (each frame: u32 length, then that many).
  std::vector<Blob> frames;
  for (std::size_t at = 0; at < entries.size();) {
    const std::size_t size = 4 + ((std::size_t{entries[at]} << 24) | (entries[at + 1] << 16) |
                                  (entries[at + 2] << 8) | entries[at + 3]);
    frames.emplace_back(entries.begin() + static_cast<std::ptrdiff_t>(at),
                        entries.begin() + static_cast<std::ptrdiff_t>(at + size));
    at += size;
  }
  ASSERT_EQ(frames.size(), 5u);
  const auto rewrite = [&](const std::vector<Blob>& changed, const std::string& what,
                           std::size_t listed_at_most) {
    Blob body;
    for (const Blob& frame : changed) body.insert(body.end(), frame.begin(), frame.end());
    set_entries(body, changed.size());
    expect_detected(what);
    EXPECT_LE(gets_listed(), listed_at_most) << what << ": entries out of place were listed";
    raw.restore();
  };
  std::vector<Blob> cut = frames;
  cut.erase(cut.begin() + 2);
  rewrite(cut, "an entry cut from the middle", 2);
  std::vector<Blob> swapped = frames;
  std::swap(swapped[1], swapped[2]);
  rewrite(swapped, "two entries swapped", 1);
  std::vector<Blob> repeated = frames;
  repeated.insert(repeated.begin() + 2, frames[1]);
  rewrite(repeated, "an entry repeated", 5);
  rewrite({frames.begin(), frames.end() - 1}, "the last anchored entry cut", 4);
  rewrite({frames.begin() + 1, frames.end()}, "the first entry cut", 0);
  std::vector<Blob> appended = frames;
  appended.push_back(frames[4]);
  rewrite(appended, "an entry repeated after the last", 5);
  raw.run("DELETE FROM audit_segment WHERE segment_id = ?1", {segment});
  expect_detected("the whole segment removed");
  raw.restore();

  EXPECT_TRUE(open().verify_audit().ok);
  EXPECT_EQ(gets_listed(), 5u);
  testing::print_figures(
      "tampering-audit-segment",
      fmt::format("chunk of 5 read events, {} bytes: flips, changes and cuts {}, detected {}",
                  entries.size(), cases, detected));
  EXPECT_EQ(detected, cases);
}

// An entry's seal binds it to its segment and index, and its MAC to the
// entry before it: a chunk copied into another segment or after its own,
// or an entry over a write's event in the chain, is not listed and
// verification fails.
TEST_F(TamperingTest, ACopiedSegmentChunkIsNeitherListedNorVerified) {
  {
    Vault vault = open();
    (void)vault.get_credential(kAlice, "db_a");
    (void)vault.get_credential(kAlice, "db_a");
  }
  const auto gets = [&] { return open().audit_events(kAdmin, {.action = "get"}).size(); };
  const std::size_t listed = gets();
  ASSERT_EQ(listed, 2u);
  RawDb raw(db_file());
  raw.save();
  const std::string reads = "(SELECT segment_id FROM audit_segment WHERE count = 2)";
  raw.exec(
      "INSERT INTO audit_segment SELECT randomblob(16), first_idx, count, entries FROM "
      "audit_segment "
      "WHERE segment_id = " +
      reads);
  EXPECT_EQ(gets(), listed) << "a copy in another segment was listed";
  EXPECT_FALSE(open().verify_audit().ok);
  raw.restore();
  raw.exec(
      "INSERT INTO audit_segment SELECT segment_id, 2, count, entries FROM audit_segment "
      "WHERE segment_id = " +
      reads);
  EXPECT_EQ(gets(), listed) << "a copy after the segment's last entry was listed";
  EXPECT_FALSE(open().verify_audit().ok);
  raw.restore();
  // A copy whose id is stored as text (SQLite keeps a value's type): a key
  // of its own that no walk of the segments meets, so neither may `audit`.
  raw.exec(
      "INSERT INTO audit_segment SELECT CAST(segment_id AS TEXT), first_idx, count, entries FROM "
      "audit_segment WHERE segment_id = " +
      reads);
  EXPECT_EQ(gets(), listed) << "a copy under a text id was listed";
  raw.restore();
  // An entry's sealed event over a write's event in the chain.
  raw.exec(
      "UPDATE audit SET sealed = (SELECT substr(entries, 4 + 1 + 8 + 8 + 1 + 32 + 32 + 1, "
      "length(entries)) "
      "FROM audit_segment WHERE segment_id = " +
      reads + ") WHERE seq = 2");
  EXPECT_FALSE(open().verify_audit().ok);
  raw.restore();
  EXPECT_EQ(gets(), listed);
  EXPECT_TRUE(open().verify_audit().ok);
}

// Whole rows moved between owners and names, deleted, or replayed from an
// older version.
TEST_F(TamperingTest, SwappedMovedDeletedAndReplayedRecordsAreNeverMisread) {
  Vault vault = open();
  RawDb raw(db_file());
  Counts c;
  // Find each credential's lookup: break one row at a time and see which
  // credential stops reading.
  std::map<std::string, Blob> lookup;  // truth key -> lookup
  {
    for (const auto& row : raw.query("SELECT lookup, current_version FROM credentials")) {
      raw.run("UPDATE credentials SET current_version = 99 WHERE lookup = ?1", {row[0]});
      for (const auto& [key, t] : truth_) {
        try {
          (void)vault.get_credential(kAdmin, t.owner, t.name);
        } catch (const Error&) {
          lookup[key] = row[0];
        }
      }
      raw.run("UPDATE credentials SET current_version = ?2 WHERE lookup = ?1", {row[0], row[1]});
    }
  }
  ASSERT_EQ(lookup.size(), 3u);
  const Blob& a = lookup["a1"];
  const Blob& a2 = lookup["a2"];
  const Blob& b = lookup["b1"];
  const auto owner_of = [&](const Blob& of) { return raw.query("SELECT owner_tag FROM credentials WHERE lookup = ?1", {of}).at(0).at(0); };
  const Blob a_leaf = ledger_leaf_of(owner_of(a), a);
  const Blob b_leaf = ledger_leaf_of(owner_of(b), b);

  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::vector<Blob>>> statements;
    // The replay of a record from an older copy of the vault: authentic as
    // current, so only the version ledger tells it from the true value.
    bool older_copy = false;
  };
  const std::vector<Case> cases = {
      {"alice's current record sealed bytes copied over bob's (same version)",
       {{"UPDATE versions SET sealed = (SELECT sealed FROM versions WHERE lookup = ?1 AND version = 2), "
         "key_id = (SELECT key_id FROM versions WHERE lookup = ?1 AND version = 2) WHERE lookup = ?2 AND version = 2",
         {a, b}}}},
      {"records of alice/db_a and bob/db_b swapped wholesale (lookup keys exchanged)",
       {{"UPDATE versions SET lookup = x'00' WHERE lookup = ?1", {a}},
        {"UPDATE versions SET lookup = ?1 WHERE lookup = ?2", {a, b}},
        {"UPDATE versions SET lookup = ?1 WHERE lookup = x'00'", {b}}}},
      {"two names of one owner swapped (db_a's version 1 record moved under db_c)",
       {{"UPDATE versions SET sealed = (SELECT sealed FROM versions WHERE lookup = ?1 AND version = 1), "
         "key_id = (SELECT key_id FROM versions WHERE lookup = ?1 AND version = 1) WHERE lookup = ?2 AND version = 1",
         {a, a2}}}},
      {"owner tags of alice/db_a and bob/db_b exchanged in the index",
       {{"UPDATE credentials SET owner_tag = (SELECT owner_tag FROM credentials WHERE lookup = ?2) WHERE lookup = ?1",
         {a, b}}}},
      {"id index: db_a's id pointed at db_c",
       {{"UPDATE credential_ids SET lookup = ?2 WHERE lookup = ?1", {a, a2}}}},
      {"id index: bob's id pointed at alice's db_a",
       {{"UPDATE credential_ids SET lookup = ?2 WHERE lookup = ?1", {b, a}}}},
      {"current version row of db_a deleted", {{"DELETE FROM versions WHERE lookup = ?1 AND version = 2", {a}}}},
      {"credential row of db_a deleted (versions left)", {{"DELETE FROM credentials WHERE lookup = ?1", {a}}}},
      {"id index row of db_a deleted", {{"DELETE FROM credential_ids WHERE lookup = ?1", {a}}}},
      {"replay: db_a's version 1 sealed bytes put back as version 2 (current)",
       {{"UPDATE versions SET sealed = (SELECT sealed FROM versions WHERE lookup = ?1 AND version = 1), "
         "key_id = (SELECT key_id FROM versions WHERE lookup = ?1 AND version = 1) WHERE lookup = ?1 AND version = 2",
         {a}}}},
      {"replay: db_a's version 1 row renumbered as version 2",
       {{"DELETE FROM versions WHERE lookup = ?1 AND version = 2", {a}},
        {"UPDATE versions SET version = 2 WHERE lookup = ?1 AND version = 1", {a}}}},
      {"rollback: db_a's current version pointed back at the kept version 1",
       {{"UPDATE credentials SET current_version = 1 WHERE lookup = ?1", {a}}}},
      {"rollback: db_a's version 2 deleted and version 1 made current",
       {{"DELETE FROM versions WHERE lookup = ?1 AND version = 2", {a}},
        {"UPDATE credentials SET current_version = 1 WHERE lookup = ?1", {a}}}},
      {"older copy: db_a's version 1, as stored while it was current, put back as current",
       {{"DELETE FROM versions WHERE lookup = ?1 AND version = 2", {a}},
        {"UPDATE versions SET sealed = ?2, key_id = CAST(?3 AS INTEGER) WHERE lookup = ?1 AND version = 1",
         {a, a_v1_when_current_[0], a_v1_when_current_[1]}},
        {"UPDATE credentials SET current_version = 1 WHERE lookup = ?1", {a}}},
       true},
      {"older copy: db_a's version 1 put back, and its ledger leaf as it was then",
       {{"DELETE FROM versions WHERE lookup = ?1 AND version = 2", {a}},
        {"UPDATE versions SET sealed = ?2, key_id = CAST(?3 AS INTEGER) WHERE lookup = ?1 AND version = 1",
         {a, a_v1_when_current_[0], a_v1_when_current_[1]}},
        {"UPDATE credentials SET current_version = 1 WHERE lookup = ?1", {a}},
        {"UPDATE ledger SET body = ?2 WHERE node_id = CAST(?1 AS INTEGER)", {a_leaf_when_v1_[0], a_leaf_when_v1_[1]}}},
       true},
  };
  const Truth a_v1{truth_["a1"].id, "alice", "db_a", "alice-v1-@:/?#%", "a.example.com", 1};
  std::vector<std::string> undetected;
  const std::vector<Case> ledger_cases = {
      {"ledger: the root row deleted", {{"DELETE FROM ledger WHERE node_id = 0", {}}}},
      {"ledger: db_a's leaf row deleted", {{"DELETE FROM ledger WHERE node_id = CAST(?1 AS INTEGER)", {a_leaf}}}},
      {"ledger: db_a's leaf row emptied", {{"UPDATE ledger SET body = x'' WHERE node_id = CAST(?1 AS INTEGER)", {a_leaf}}}},
      {"ledger: every row deleted", {{"DELETE FROM ledger", {}}}},
  };
  std::vector<Case> all_cases = cases;
  all_cases.insert(all_cases.end(), ledger_cases.begin(), ledger_cases.end());
  if (a_leaf != b_leaf) {  // one in 4,096 vaults puts both in one bucket
    all_cases.push_back({"ledger: db_a's leaf replaced by bob's",
                         {{"UPDATE ledger SET body = (SELECT body FROM ledger WHERE node_id = CAST(?2 AS INTEGER)) "
                           "WHERE node_id = CAST(?1 AS INTEGER)",
                           {a_leaf, b_leaf}}}});
  }
  for (const Case& k : all_cases) {
    current_mutation_ = k.name;
    raw.save();
    for (const auto& [sql, params] : k.statements) raw.run(sql, params);
    ++c.mutations;
    if (k.older_copy) {
      // An authentic older version read back would be a rollback: counted
      // on its own (and as a wrong value by read_everything below).
      try {
        if (matches(vault.get_credential(kAlice, "db_a"), a_v1)) {
          ++c.stale_but_authentic;
          ADD_FAILURE() << k.name << ": db_a read as its older version";
        }
      } catch (const Error&) {
      }
    }
    read_everything(vault, c);
    const long missed_before = c.verify_missed;
    check_verify(vault, c);
    if (c.verify_missed != missed_before) undetected.push_back(k.name);
    raw.restore();
  }
  Counts after;
  read_everything(vault, after);
  EXPECT_EQ(after.true_values, after.reads);
  print("tampering-rows", c);
  std::string list;
  for (const auto& u : undetected) list += "\n  - " + u;
  testing::print_figures("tampering-rows", fmt::format("cases {}, verify missed {}:{}", all_cases.size(),
                                                       undetected.size(), list));
  // Every case, the replays from an older copy of the vault too.
  for (const auto& u : undetected) ADD_FAILURE() << "verify did not notice: " << u;
  EXPECT_EQ(c.stale_but_authentic, 0);
}

}  // namespace
}  // namespace credentials
