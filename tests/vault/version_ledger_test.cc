// The version ledger (docs/FORMAT.md, "Version ledger"), on both record
// stores: rows of one credential put back from an older copy of the vault,
// with or without its ledger leaf, or the whole ledger put back, never read
// as current; the ledger survives key rotation, re-encryption, backup and
// restore; a format-2 vault gets its ledger at its first open and cannot be
// made to look like one again.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "credentials/credentials.h"
#include "pgstore/pg_fixture.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store_copy.h"
#include "support/sqlite_rows.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::PgDatabase;
using testing::sqlite_rows;
using testing::TempDir;

const UserContext kAlice{"alice", "alice", {"user"}};
const UserContext kBob{"bob", "bob", {"user"}};
const UserContext kAdmin{"admin", "admin", {"admin"}};

// A vault written by the format-2 build (before the ledger), with its key:
// alice/db_a at version 2 ("a-v2"), alice/db_b at version 1 ("b-v1"), bob/db_c
// at version 3 ("c-v3"). Made with `credential_manager add/update` and `backup`.
const fs::path kFormat2Fixture = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures/format2-vault.db";
const fs::path kFormat2Key = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures/format2-vault.key";

// A vault written by the format-3 build (the ledger's buckets by lookup tag),
// with its key: the same credentials. Made with `credential_manager
// add/update`, then checkpointed and vacuumed with sqlite3.
const fs::path kFormat3Fixture = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures/format3-vault.db";
const fs::path kFormat3Key = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures/format3-vault.key";

// A vault written by the format-4 build (each read event folded into an
// audit row of its own), with its key: the same credentials, and reads of
// each (audit events 4, 6, 8, 10, 11 and 13 are gets). Made with
// `credential_manager add/update/show/list`, then checkpointed and
// vacuumed with sqlite3.
const fs::path kFormat4Fixture = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures/format4-vault.db";
const fs::path kFormat4Key = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures/format4-vault.key";

enum class Backend { kEmbedded, kPostgres };

class VersionLedgerTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (postgres()) {
      db_ = std::make_unique<PgDatabase>("ledger");
      db_->query("CREATE SCHEMA attacker");
    }
  }
  bool postgres() const { return GetParam() == Backend::kPostgres; }

  VaultOptions options(const SecretString& key) {
    VaultOptions o;
    o.directory = dir_.path() / "vault";
    if (postgres()) o.url = db_->url();
    o.master_key = key.clone();
    return o;
  }
  Vault open_vault() { return Vault::open(options(key_)); }

  // SQL as someone with write access to the store but not the key: `{v}`
  // names the vault's tables, `{copy}` the attacker's copies of them.
  std::vector<std::string> sql(const std::string& text) {
    std::string statement = text;
    auto replace = [&](const std::string& from, const std::string& to) {
      for (auto at = statement.find(from); at != std::string::npos; at = statement.find(from, at + to.size())) {
        statement.replace(at, from.size(), to);
      }
    };
    replace("{v}", postgres() ? "credential_vault." : "");
    replace("{copy}", postgres() ? "attacker.copy_" : "copy_");
    if (postgres()) return db_->query(statement);
    return sqlite_rows(dir_.path() / "vault/vault.db", statement);
  }

  static constexpr const char* kTables[] = {"versions", "credentials", "credential_ids", "ledger"};

  // What a backup made now holds: a copy of every table the attacks use,
  // under `tag`.
  void copy_tables(const std::string& tag) {
    for (const char* t : kTables) {
      sql(fmt::format("DROP TABLE IF EXISTS {{copy}}{1}_{0}; CREATE TABLE {{copy}}{1}_{0} AS SELECT * FROM {{v}}{0}",
                      t, tag));
    }
  }
  // Puts back the rows of `table` that `where` selects from the copy `tag`.
  void put_back(const std::string& tag, const std::string& table, const std::string& where) {
    sql(fmt::format("DELETE FROM {{v}}{0} WHERE {1}; INSERT INTO {{v}}{0} SELECT * FROM {{copy}}{2}_{0} WHERE {1}",
                    table, where, tag));
  }
  // Puts back every row of one credential (its versions, index and id rows).
  void put_back_credential(const std::string& tag, const std::string& lookup_hex) {
    for (const char* t : {"versions", "credentials", "credential_ids"}) {
      put_back(tag, t, "lookup = " + bytes(lookup_hex));
    }
  }
  // Every table as it was in the copy `tag`.
  void put_back_all(const std::string& tag) {
    for (const char* t : kTables) put_back(tag, t, "1 = 1");
  }

  // The lookup tag, as hex, of the one credential at `version`.
  std::string lookup_at_version(int version) {
    const auto rows = sql(fmt::format("SELECT {} FROM {{v}}credentials WHERE current_version = {}",
                                      postgres() ? "encode(lookup, 'hex')" : "lower(hex(lookup))", version));
    EXPECT_EQ(rows.size(), 1u) << "credentials at version " << version;
    return rows.empty() ? std::string() : rows.front();
  }
  std::string bytes(const std::string& hex) const {
    return postgres() ? "decode('" + hex + "', 'hex')" : "x'" + hex + "'";
  }
  // The node id of the ledger leaf, and of its inner node, that hold a
  // credential (its lookup tag given as hex): the owner tag's first 4 bits,
  // then the lookup tag's first byte (docs/FORMAT.md, "Version ledger").
  int leaf_node_of(const std::string& lookup_hex) {
    const auto owner = sql(fmt::format("SELECT {} FROM {{v}}credentials WHERE lookup = {}",
                                       postgres() ? "encode(owner_tag, 'hex')" : "lower(hex(owner_tag))",
                                       bytes(lookup_hex)));
    EXPECT_EQ(owner.size(), 1u);
    if (owner.empty()) return -1;
    return 65 + (std::stoi(owner.front().substr(0, 1), nullptr, 16) << 8) + std::stoi(lookup_hex.substr(0, 2), nullptr, 16);
  }
  int inner_node_of(const std::string& lookup_hex) { return 1 + (leaf_node_of(lookup_hex) - 65) / 64; }

  // The read fails with an integrity error (never returns a value).
  static void expect_integrity_error(Vault& vault, const UserContext& user, const std::string& name) {
    try {
      const Credential c = vault.get_credential(user, name);
      ADD_FAILURE() << name << " read as version " << c.version << " (" << c.password.reveal() << ")";
    } catch (const DecryptionFailedError& e) {
      EXPECT_EQ(std::string(e.what()).find("-v"), std::string::npos) << "names a secret: " << e.what();
    }
  }

  TempDir dir_;
  SecretString key_ = generate_master_key();
  std::unique_ptr<PgDatabase> db_;
};

TEST_P(VersionLedgerTest, RowsOfOneCredentialFromAnOlderCopyFailToRead) {
  Vault vault = open_vault();
  vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
  vault.store_credential(kAlice, {.name = "db_b", .host = "h", .password = "b-v1"});
  for (int v = 2; v <= 3; ++v) vault.update_password(kAlice, "db_b", fmt::format("b-v{}", v));
  copy_tables("old");  // the older copy: db_a at version 1
  vault.update_password(kAlice, "db_a", "a-v2");
  copy_tables("now");
  const std::string a = lookup_at_version(2);

  struct Attack {
    std::string name;
    std::vector<int> ledger_nodes;  // put back with the credential's rows
  };
  const std::vector<Attack> attacks = {
      {"the credential's rows", {}},
      {"its rows and its ledger leaf", {leaf_node_of(a)}},
      {"its rows, its leaf and the leaf's parent", {leaf_node_of(a), inner_node_of(a)}},
  };
  for (const auto& attack : attacks) {
    SCOPED_TRACE(attack.name);
    put_back_credential("old", a);
    for (const int node : attack.ledger_nodes) put_back("old", "ledger", fmt::format("node_id = {}", node));
    expect_integrity_error(vault, kAlice, "db_a");
    EXPECT_THROW((void)vault.get_credential(kAdmin, "alice", "db_a"), DecryptionFailedError);
    EXPECT_THROW((void)vault.list_credentials(kAlice), DecryptionFailedError);
    EXPECT_THROW((void)vault.history(kAlice, "db_a"), DecryptionFailedError);
    EXPECT_THROW((void)vault.update_password(kAlice, "db_a", "a-v3"), DecryptionFailedError);
    EXPECT_FALSE(vault.verify().ok());
    // A credential under another inner node is untouched (one in 64 shares it).
    if (inner_node_of(lookup_at_version(3)) != inner_node_of(a)) {
      EXPECT_EQ(vault.get_credential(kAlice, "db_b").password.reveal(), "b-v3");
    }
    put_back_all("now");
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
    EXPECT_TRUE(vault.verify().ok());
  }
  // Deleted, then put back from the older copy: it does not come back.
  vault.delete_credential(kAlice, "db_a");
  put_back_credential("old", a);
  expect_integrity_error(vault, kAlice, "db_a");
  EXPECT_FALSE(vault.verify().ok());
}

// A handle keeps the ledger's verified answers while nothing is committed
// (EmbeddedVault::current_record): another handle's update, and rows put
// back by another connection, must still be seen at the next read.
TEST_P(VersionLedgerTest, AHandleThatKeptTheLedgersAnswerSeesLaterChangesAndAttacks) {
  Vault vault = open_vault();
  vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
  copy_tables("old");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(vault.get_credential(kAlice, "db_a").version, 1u);
  {
    Vault other = open_vault();
    other.update_password(kAlice, "db_a", "a-v2");
  }
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  put_back_credential("old", lookup_at_version(2));
  expect_integrity_error(vault, kAlice, "db_a");
  expect_integrity_error(vault, kAlice, "db_a");
}

TEST_P(VersionLedgerTest, TheWholeLedgerFromAnOlderCopyFailsEveryCredentialChangedSince) {
  Vault vault = open_vault();
  vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
  vault.store_credential(kAlice, {.name = "db_b", .host = "h", .password = "b-v1"});
  for (int v = 2; v <= 3; ++v) vault.update_password(kAlice, "db_b", fmt::format("b-v{}", v));
  vault.store_credential(kBob, {.name = "db_c", .host = "h", .password = "c-v1"});
  for (int v = 2; v <= 4; ++v) vault.update_password(kBob, "db_c", fmt::format("c-v{}", v));
  const std::string c = lookup_at_version(4);
  copy_tables("old");
  vault.update_password(kAlice, "db_a", "a-v2");
  vault.delete_credential(kBob, "db_c");
  vault.store_credential(kBob, {.name = "db_d", .host = "h", .password = "d-v1"});
  copy_tables("now");

  // The ledger alone put back: what changed since fails, what did not reads.
  put_back("old", "ledger", "1 = 1");
  expect_integrity_error(vault, kAlice, "db_a");
  expect_integrity_error(vault, kBob, "db_d");
  EXPECT_EQ(vault.get_credential(kAlice, "db_b").password.reveal(), "b-v3");
  EXPECT_THROW((void)vault.list_credentials(kAdmin), DecryptionFailedError);
  {
    const VerifyReport report = vault.verify();
    EXPECT_FALSE(report.ok());
    EXPECT_GE(report.problems.size(), 2u);
  }
  // A write refuses to build on a ledger that is not the vault's current one.
  EXPECT_THROW(vault.update_password(kBob, "db_d", "d-v2"), DecryptionFailedError);

  // With a deleted credential's rows too: it does not come back.
  put_back_credential("old", c);
  EXPECT_EQ(vault.get_credential(kBob, "db_c").password.reveal(), "c-v4");  // as in the older copy
  expect_integrity_error(vault, kAlice, "db_a");
  expect_integrity_error(vault, kBob, "db_d");

  // The vault's own ledger, with db_c's rows still put back: db_c is not in it.
  put_back("now", "ledger", "1 = 1");
  expect_integrity_error(vault, kBob, "db_c");
  EXPECT_FALSE(vault.verify().ok());
  put_back_all("now");
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  EXPECT_EQ(vault.get_credential(kBob, "db_d").password.reveal(), "d-v1");
  EXPECT_THROW((void)vault.get_credential(kBob, "db_c"), CredentialNotFoundError);
  EXPECT_EQ(vault.list_credentials(kAdmin).size(), 3u);
  EXPECT_TRUE(vault.verify().ok());
}

TEST_P(VersionLedgerTest, EditedLedgerBytesFailTheReadsOfTheirCredentials) {
  Vault vault = open_vault();
  vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
  vault.update_password(kAlice, "db_a", "a-v2");
  const std::string a = lookup_at_version(2);
  copy_tables("now");
  // The first byte of each node on db_a's path changed.
  const std::string leaf = std::to_string(leaf_node_of(a));
  for (const std::string& node : {leaf, std::to_string(inner_node_of(a)), std::string("0")}) {
    SCOPED_TRACE("node " + node);
    sql(postgres() ? "UPDATE {v}ledger SET body = set_byte(body, 0, get_byte(body, 0) # 1) WHERE node_id = " + node
                   : "UPDATE {v}ledger SET body = CASE WHEN substr(body, 1, 1) = x'00' THEN x'01' ELSE x'00' END "
                     "|| substr(body, 2) WHERE node_id = " + node);
    expect_integrity_error(vault, kAlice, "db_a");
    EXPECT_FALSE(vault.verify().ok());
    put_back("now", "ledger", "node_id = " + node);
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  }
  sql("DELETE FROM {v}ledger WHERE node_id = 0");
  expect_integrity_error(vault, kAlice, "db_a");
  put_back("now", "ledger", "node_id = 0");
  EXPECT_TRUE(vault.verify().ok());
}

TEST_P(VersionLedgerTest, LedgerSurvivesKeyRotationReencryptionBackupAndRestore) {
  SecretString new_key = generate_master_key();
  {
    Vault vault = open_vault();
    vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
    vault.update_password(kAlice, "db_a", "a-v2");
    vault.store_credential(kBob, {.name = "db_b", .host = "h", .password = "b-v1"});
    vault.rotate_master_key(new_key.clone());
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  }
  Vault vault = Vault::open(options(new_key));
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  (void)vault.rotate_data_key();
  vault.update_password(kBob, "db_b", "b-v2");
  (void)vault.reencrypt();
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  EXPECT_EQ(vault.get_credential(kBob, "db_b").password.reveal(), "b-v2");
  EXPECT_TRUE(vault.verify().ok());

  const fs::path backup = dir_.path() / "vault.backup";
  vault.backup(backup);
  EXPECT_TRUE(verify_backup(backup, new_key).ok());
  const fs::path restored_dir = dir_.path() / "restored";
  restore_vault(backup, restored_dir, new_key);
  Vault restored = Vault::open({.directory = restored_dir, .master_key = new_key.clone()});
  EXPECT_EQ(restored.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
  restored.update_password(kAlice, "db_a", "a-v3");
  EXPECT_EQ(restored.get_credential(kAlice, "db_a").version, 3u);
  EXPECT_TRUE(restored.verify().ok());
  // The backup's ledger is the vault's, verbatim: a record from the restored
  // vault's future does not read in it.
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").version, 2u);
}

// More than 256 credentials in a list: the whole ledger is read and each
// entry is checked in its credential's bucket.
TEST_P(VersionLedgerTest, ALongListIsCheckedAgainstTheWholeLedger) {
  Vault vault = open_vault();
  std::vector<NewCredential> batch;
  for (int i = 0; i < 300; ++i) batch.push_back({.name = fmt::format("db_{:03d}", i), .host = "h", .password = "pw"});
  (void)vault.store_credentials(kAlice, std::move(batch));
  vault.update_password(kAlice, "db_007", "db_007-v2");
  copy_tables("old");
  vault.update_password(kAlice, "db_007", "db_007-v3");
  copy_tables("now");
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 300u);
  put_back_credential("old", lookup_at_version(3));
  EXPECT_THROW((void)vault.list_credentials(kAlice), DecryptionFailedError);
  put_back_all("now");
  EXPECT_EQ(vault.list_credentials(kAlice).size(), 300u);
  EXPECT_TRUE(vault.verify().ok());
}

// Every write's audit event commits to the state it leaves (the ledger's
// root and the key set), and verify compares: records rolled back without
// the trail, the trail without the records, and a trail cut after writes
// (with an older head put back) are each caught, by `verify` and by
// `audit verify`. Only a rollback of both together remains, for checkpoints.
// A handle opened before a newer build upgraded the vault writes nothing
// more: it would write without what the new format requires.
TEST_P(VersionLedgerTest, AHandleWritesNothingAfterANewerBuildUpgradedTheVault) {
  Vault vault = open_vault();
  vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000008") + " WHERE key = 'format_version'");
  EXPECT_THROW(vault.update_password(kAlice, "db_a", "a-v2"), DatabaseError);
  EXPECT_THROW(vault.store_credential(kAlice, {.name = "db_b", .host = "h", .password = "b-v1"}),
               DatabaseError);
  EXPECT_THROW(vault.rotate_data_key(), DatabaseError);
  EXPECT_THROW((void)open_vault(), DatabaseError);
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000007") + " WHERE key = 'format_version'");
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v1");
  EXPECT_THROW((void)vault.get_credential(kAlice, "db_b"), CredentialNotFoundError);
  vault.update_password(kAlice, "db_a", "a-v2");
  EXPECT_TRUE(vault.verify().ok());
}

TEST_P(VersionLedgerTest, RecordsOrTrailRolledBackAloneFailVerification) {
  // The trail and its head as they are, under `tag`; and put back.
  const auto copy_trail = [&](const std::string& tag) {
    for (const char* t : {"audit", "meta"}) {
      sql(
          fmt::format("DROP TABLE IF EXISTS {{copy}}{1}_{0}; CREATE TABLE {{copy}}{1}_{0} AS "
                      "SELECT * FROM {{v}}{0}",
                      t, tag));
    }
  };
  const auto put_back_trail = [&](const std::string& tag) {
    put_back(tag, "audit", "1 = 1");
    put_back(tag, "meta", "key = 'audit_head'");
  };
  const auto expect_verified = [&](bool ok, const std::string& what) {
    Vault vault = open_vault();
    const VerifyReport report = vault.verify();
    EXPECT_EQ(report.ok(), ok) << what << ": "
                               << (report.problems.empty() ? report.audit.problem
                                                           : report.problems.front());
    const AuditVerification audit = vault.verify_audit();
    EXPECT_EQ(audit.ok, ok) << what << ": " << audit.problem;
    if (!ok)
      EXPECT_NE(audit.problem.find("left"), std::string::npos) << what << ": " << audit.problem;
  };
  {
    Vault vault = open_vault();
    vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
    vault.store_credential(kAlice, {.name = "db_b", .host = "h", .password = "b-v1"});
    (void)vault.get_credential(kAlice, "db_a");
  }
  copy_tables("old");
  copy_trail("old");
  sql("DROP TABLE IF EXISTS {copy}old_keys; CREATE TABLE {copy}old_keys AS SELECT * FROM {v}keys");
  {
    Vault vault = open_vault();
    vault.update_password(kAlice, "db_a", "a-v2");
    vault.delete_credential(kAlice, "db_b");
    vault.store_credential(kAlice, {.name = "db_c", .host = "h", .password = "c-v1"});
    (void)vault.get_credential(kAlice, "db_c");
  }
  copy_tables("now");
  copy_trail("now");
  expect_verified(true, "control");

  // Every record table put back from the older copy, the trail left: the
  // rows agree with each other, but not with the state the last write's
  // event committed to.
  put_back_all("old");
  expect_verified(false, "records rolled back");
  // A write since (any user's) does not hide it: it started from a state
  // the write before it did not leave.
  open_vault().store_credential(kBob, {.name = "db_z", .host = "h", .password = "z-v1"});
  expect_verified(false, "records rolled back, then a write");
  put_back_all("now");
  put_back_trail("now");
  expect_verified(true, "records back");

  // The same, with the format set back to before the commitments, to have
  // the upgrade commit to the rolled-back rows afresh: refused.
  put_back_all("old");
  for (const char* format : {"0000000000000006", "0000000000000005"}) {
    sql("UPDATE {v}meta SET value = " + bytes(format) + " WHERE key = 'format_version'");
    EXPECT_THROW((void)open_vault(), DecryptionFailedError) << format;
  }
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000007") + " WHERE key = 'format_version'");
  expect_verified(false, "records rolled back, the format set back");
  put_back_all("now");
  expect_verified(true, "records back again");

  // The trail and its head put back from the older copy, the records left.
  put_back_trail("old");
  expect_verified(false, "trail rolled back");
  put_back_trail("now");

  // The tail cut after the writes (the delete and the store), with the
  // head of the older copy: every remaining event checks out.
  sql("DELETE FROM {v}audit WHERE seq > (SELECT max(seq) FROM {copy}old_audit)");
  put_back("old", "meta", "key = 'audit_head'");
  expect_verified(false, "tail cut");
  open_vault().update_password(kAlice, "db_a", "a-v3");
  expect_verified(false, "tail cut, then a write");
  put_back_all("now");
  put_back_trail("now");
  expect_verified(true, "trail back");

  // A new data key; then the key table without it.
  open_vault().rotate_data_key();
  copy_trail("rotated");
  sql("DELETE FROM {v}keys WHERE key_id NOT IN (SELECT key_id FROM {copy}old_keys)");
  expect_verified(false, "a key removed");
  sql("DROP TABLE IF EXISTS {copy}rotated_keys");
  // The trail as it was before the rotation too: the keys and the trail
  // agree again, a whole rollback of what the rotation changed.
  put_back_trail("now");
  expect_verified(true, "key and trail rolled back together");
}

TEST_P(VersionLedgerTest, AVaultWithALedgerCannotBePassedOffAsOneWithout) {
  {
    Vault vault = open_vault();
    vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
    vault.update_password(kAlice, "db_a", "a-v2");
  }
  copy_tables("now");
  // Format 2 (no ledger) claimed, the ledger gone: the keys, wrapped for
  // format 3, do not unwrap as format 2's, so nothing is rebuilt.
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000002") + " WHERE key = 'format_version'");
  sql("DELETE FROM {v}ledger");
  EXPECT_THROW((void)open_vault(), DecryptionFailedError);
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000005") + " WHERE key = 'format_version'");
  EXPECT_THROW((void)open_vault().get_credential(kAlice, "db_a"), DecryptionFailedError);
  put_back("now", "ledger", "1 = 1");
  // Format 3 claimed with the format-4 ledger in place: its nodes do not
  // verify as format 3's, so the upgrade refuses and changes nothing.
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000003") + " WHERE key = 'format_version'");
  EXPECT_THROW((void)open_vault(), DecryptionFailedError);
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000007") + " WHERE key = 'format_version'");
  EXPECT_EQ(open_vault().get_credential(kAlice, "db_a").password.reveal(), "a-v2");
}

INSTANTIATE_TEST_SUITE_P(BothStores, VersionLedgerTest,
                         ::testing::Values(Backend::kEmbedded, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kEmbedded ? std::string("Embedded")
                                                                   : std::string("Postgres");
                         });

// --- the upgrades of format-2 and format-3 vaults (the fixtures are vault files) ---

class LedgerUpgradeTest : public ::testing::Test {
 protected:
  void load(const fs::path& fixture, const fs::path& key) {
    fs::create_directories(dir_.path() / "vault");
    fs::copy_file(fixture, db_file());
    fs::permissions(db_file(), fs::perms::owner_read | fs::perms::owner_write);
    key_ = SecretString(testing::read_file(key));
  }
  // The fixture's rows copied verbatim into a PostgreSQL schema (as
  // `migrate-store` of the build that wrote it would have).
  void copy_to(PgDatabase& db) {
    auto source = internal::SqliteStore::open(dir_.path() / "vault", /*create=*/false);
    source->create_schema();  // an empty ledger table if it has none, so that the copy finds one
    auto target = internal::PostgresStore::open(db.url(), /*create=*/true);
    internal::copy_store(*source, *target);
  }
  static Vault open_url(const std::string& url, const SecretString& key) {
    VaultOptions options;
    options.url = url;
    options.master_key = key.clone();
    return Vault::open(std::move(options));
  }
  fs::path db_file() const { return dir_.path() / "vault" / "vault.db"; }
  Vault open_vault() { return Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone()}); }
  std::vector<std::string> sql(const std::string& statement) {
    return sqlite_rows(db_file(), statement);
  }

  TempDir dir_;
  SecretString key_;
};

TEST_F(LedgerUpgradeTest, AFormatTwoVaultGetsItsLedgerAtItsFirstOpen) {
  load(kFormat2Fixture, kFormat2Key);
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000002"});
  EXPECT_EQ(sql("SELECT count(*) FROM sqlite_schema WHERE name = 'ledger'"), std::vector<std::string>{"0"});
  sql("CREATE TABLE copy_versions AS SELECT * FROM versions; CREATE TABLE copy_keys AS SELECT * FROM keys");
  {
    Vault vault = open_vault();
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
    EXPECT_EQ(vault.get_credential(kAlice, "db_b").password.reveal(), "b-v1");
    EXPECT_EQ(vault.get_credential(kBob, "db_c").password.reveal(), "c-v3");
    EXPECT_TRUE(vault.verify().ok());
    EXPECT_TRUE(vault.verify_audit().ok);
    const auto events = vault.audit_events(kAdmin, {.action = "version_ledger_created"});
    EXPECT_EQ(events.size(), 1u);
  }
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000007"});
  EXPECT_EQ(sql("SELECT count(*) FROM ledger WHERE node_id = 0"), std::vector<std::string>{"1"});
  {
    Vault vault = open_vault();  // the second open changes nothing
    vault.update_password(kAlice, "db_a", "a-v3");
  }
  // Passed off as format 2 again with the format-2 build's keys put back
  // and the ledger gone, to have it rebuilt around db_a's older rows: the
  // upgrade is in the audit chain, so it is refused.
  sql("DELETE FROM versions WHERE version = 3; INSERT INTO versions SELECT * FROM copy_versions WHERE version = 2 "
      "AND lookup NOT IN (SELECT lookup FROM versions WHERE version = 2); UPDATE credentials SET current_version = 2 "
      "WHERE current_version = 3 AND lookup IN (SELECT lookup FROM copy_versions WHERE version = 2)");
  sql("DELETE FROM keys; INSERT INTO keys SELECT * FROM copy_keys; DELETE FROM ledger;"
      "UPDATE meta SET value = x'0000000000000002' WHERE key = 'format_version'");
  EXPECT_THROW((void)open_vault(), DecryptionFailedError);
}

// The same on the shared store.
TEST_F(LedgerUpgradeTest, AFormatTwoVaultOnPostgresGetsItsLedgerAtItsFirstOpen) {
  load(kFormat2Fixture, kFormat2Key);
  PgDatabase db("upgrade");
  copy_to(db);
  EXPECT_EQ(db.query("SELECT count(*) FROM credential_vault.ledger"), std::vector<std::string>{"0"});
  auto open = [&] { return open_url(db.url(), key_); };
  {
    Vault vault = open();
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
    EXPECT_EQ(vault.get_credential(kBob, "db_c").password.reveal(), "c-v3");
    EXPECT_TRUE(vault.verify().ok());
    EXPECT_EQ(vault.audit_events(kAdmin, {.action = "version_ledger_created"}).size(), 1u);
    vault.update_password(kAlice, "db_b", "b-v2");
  }
  EXPECT_EQ(
      db.query(
          "SELECT encode(value, 'hex') FROM credential_vault.meta WHERE key = 'format_version'"),
      std::vector<std::string>{"0000000000000007"});
  EXPECT_EQ(db.query("SELECT count(*) FROM credential_vault.ledger WHERE node_id = 0"), std::vector<std::string>{"1"});
  // Passed off as format 2 again, without its ledger: refused.
  db.query("UPDATE credential_vault.meta SET value = decode('0000000000000002', 'hex') WHERE key = 'format_version'; "
           "DELETE FROM credential_vault.ledger");
  EXPECT_THROW((void)open(), DecryptionFailedError);
}

TEST_F(LedgerUpgradeTest, AFormatThreeVaultGetsItsLedgerRelaidAtItsFirstOpen) {
  load(kFormat3Fixture, kFormat3Key);
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000003"});
  sql("CREATE TABLE copy_versions AS SELECT * FROM versions; CREATE TABLE copy_credentials AS SELECT * FROM "
      "credentials; CREATE TABLE copy_ledger AS SELECT * FROM ledger");
  {
    Vault vault = open_vault();
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
    EXPECT_EQ(vault.get_credential(kAlice, "db_b").password.reveal(), "b-v1");
    EXPECT_EQ(vault.get_credential(kBob, "db_c").password.reveal(), "c-v3");
    EXPECT_EQ(vault.list_credentials(kAlice).size(), 2u);
    EXPECT_TRUE(vault.verify().ok());
    EXPECT_TRUE(vault.verify_audit().ok);
    EXPECT_EQ(vault.audit_events(kAdmin, {.action = "version_ledger_relaid"}).size(), 1u);
  }
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000007"});
  // Each credential's entry is in its format-4 leaf: the owner tag's first
  // 4 bits, then the lookup tag's first byte.
  EXPECT_EQ(sql("SELECT count(*) FROM credentials c WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE "
                "l.node_id = 65 + (instr('0123456789ABCDEF', substr(hex(c.owner_tag), 1, 1)) - 1) * 256 + "
                "(instr('0123456789ABCDEF', substr(hex(c.lookup), 1, 1)) - 1) * 16 + "
                "instr('0123456789ABCDEF', substr(hex(c.lookup), 2, 1)) - 1 AND instr(l.body, c.lookup) > 0)"),
            std::vector<std::string>{"0"});
  {
    Vault vault = open_vault();  // the second open changes nothing
    EXPECT_EQ(vault.audit_events(kAdmin, {.action = "version_ledger_relaid"}).size(), 1u);
    vault.update_password(kAlice, "db_a", "a-v3");
  }
  // Passed off as format 3 again, with the format-3 ledger and db_a's rows
  // put back as they were (consistent with each other), to have the ledger
  // rebuilt around db_a's older rows: the upgrade is in the audit chain, so
  // it is refused.
  sql("DELETE FROM versions; INSERT INTO versions SELECT * FROM copy_versions; DELETE FROM credentials; "
      "INSERT INTO credentials SELECT * FROM copy_credentials; DELETE FROM ledger; INSERT INTO ledger SELECT * "
      "FROM copy_ledger; UPDATE meta SET value = x'0000000000000003' WHERE key = 'format_version'");
  EXPECT_THROW((void)open_vault(), DecryptionFailedError);
  // The same with the upgrade's mark (event 11, the first after the
  // fixture's 10) spoilt, or removed with what followed: the chain does not
  // verify, so the upgrade still refuses.
  sql("CREATE TABLE copy_audit AS SELECT * FROM audit");
  for (const std::string& spoil :
       {std::string("UPDATE audit SET sealed = CASE WHEN substr(sealed, 1, 1) = x'00' THEN x'01' ELSE x'00' END "
                    "|| substr(sealed, 2) WHERE seq = 11"),
        std::string("DELETE FROM audit WHERE seq > 10")}) {
    SCOPED_TRACE(spoil);
    sql(spoil);
    EXPECT_THROW((void)open_vault(), DecryptionFailedError);
    sql("DELETE FROM audit; INSERT INTO audit SELECT * FROM copy_audit");
  }
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000003"});
}

TEST_F(LedgerUpgradeTest, AFormatThreeVaultWhoseLedgerDoesNotMatchIsNotUpgraded) {
  load(kFormat3Fixture, kFormat3Key);
  // bob/db_c's current version pointed back at its kept version 2: the
  // format-3 ledger (which says 3) no longer matches. The upgrade must not
  // build a ledger that vouches for version 2.
  sql("UPDATE credentials SET current_version = 2 WHERE current_version = 3");
  try {
    (void)open_vault();
    ADD_FAILURE() << "a vault whose ledger does not match its rows was upgraded";
  } catch (const DecryptionFailedError& e) {
    EXPECT_NE(std::string(e.what()).find("nothing was changed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000003"});
  sql("UPDATE credentials SET current_version = 3 WHERE current_version = 2 AND lookup IN "
      "(SELECT lookup FROM versions WHERE version = 3)");
  // alice/db_a's owner tag changed to bob's: the format-3 ledger cannot tell
  // (its buckets ignore owners), but the upgrade would place db_a's entry
  // by that tag. Opening each record catches it.
  sql("CREATE TABLE copy_credentials AS SELECT * FROM credentials");
  sql("UPDATE credentials SET owner_tag = (SELECT owner_tag FROM credentials WHERE current_version = 3) "
      "WHERE current_version = 2");
  EXPECT_THROW((void)open_vault(), DecryptionFailedError);
  EXPECT_EQ(sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"),
            std::vector<std::string>{"0000000000000003"});
  sql("DELETE FROM credentials; INSERT INTO credentials SELECT * FROM copy_credentials");
  EXPECT_EQ(open_vault().get_credential(kBob, "db_c").password.reveal(), "c-v3");
  EXPECT_EQ(open_vault().get_credential(kAlice, "db_a").password.reveal(), "a-v2");
}

TEST_F(LedgerUpgradeTest, AFormatThreeVaultOnPostgresGetsItsLedgerRelaidAtItsFirstOpen) {
  load(kFormat3Fixture, kFormat3Key);
  PgDatabase db("upgrade3");
  copy_to(db);
  {
    Vault vault = open_url(db.url(), key_);
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
    EXPECT_EQ(vault.get_credential(kBob, "db_c").password.reveal(), "c-v3");
    EXPECT_EQ(vault.list_credentials(kAlice).size(), 2u);
    EXPECT_TRUE(vault.verify().ok());
    EXPECT_EQ(vault.audit_events(kAdmin, {.action = "version_ledger_relaid"}).size(), 1u);
    vault.update_password(kAlice, "db_b", "b-v2");
  }
  EXPECT_EQ(
      db.query(
          "SELECT encode(value, 'hex') FROM credential_vault.meta WHERE key = 'format_version'"),
      std::vector<std::string>{"0000000000000007"});
  EXPECT_EQ(open_url(db.url(), key_).get_credential(kAlice, "db_b").password.reveal(), "b-v2");
}

}  // namespace
// Format 5 folds read events into runs (docs/FORMAT.md, "Audit"). A
// format-4 vault's audit rows stay as they are, and its chain goes on.
TEST_F(LedgerUpgradeTest, AFormatFourVaultKeepsItsEventsAndFoldsNewReadsIntoRuns) {
  load(kFormat4Fixture, kFormat4Key);
  const auto format = [&] { return sql("SELECT hex(value) FROM meta WHERE key = 'format_version'"); };
  const auto gets_of = [](Vault& vault, const UserContext& user) {
    return vault.audit_events(user, {.action = "get"}).size();
  };
  ASSERT_EQ(format(), std::vector<std::string>{"0000000000000004"});
  EXPECT_EQ(sql("SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'journal_run'"),
            std::vector<std::string>{"0"});
  {
    Vault vault = open_vault();
    const AuditVerification before = vault.verify_audit();
    EXPECT_TRUE(before.ok) << before.problem;
    EXPECT_EQ(gets_of(vault, kAlice), 3u);
    EXPECT_EQ(gets_of(vault, kBob), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v2");
    EXPECT_EQ(vault.get_credential(kBob, "db_c").password.reveal(), "c-v3");
  }
  EXPECT_EQ(format(), std::vector<std::string>{
                          "0000000000000007"});  // through 5 and 6, with its key check and state
  EXPECT_EQ(sql("SELECT length(value) FROM meta WHERE key = 'key_check'"),
            std::vector<std::string>{"32"});
  // The format-4 rows as they were, then the upgrade to format 7's event;
  // the reads and the audit queries' events (reads too) went in as runs
  // after them.
  EXPECT_EQ(sql("SELECT count(*) FROM audit WHERE journal_run = 0 AND seq <= 14"), std::vector<std::string>{"14"});
  EXPECT_EQ(sql("SELECT count(*) FROM audit WHERE journal_run = 0 AND seq > 14"),
            std::vector<std::string>{"1"});
  EXPECT_NE(sql("SELECT count(*) FROM audit WHERE journal_run > 0"), std::vector<std::string>{"0"});
  Vault vault = open_vault();
  const AuditVerification after = vault.verify_audit();
  EXPECT_TRUE(after.ok) << after.problem;
  EXPECT_EQ(gets_of(vault, kAlice), 6u);
  EXPECT_EQ(gets_of(vault, kBob), 4u);
  std::int64_t expected = 1;
  for (const AuditEvent& event : vault.audit_events(kAdmin, {})) EXPECT_EQ(event.seq, expected++);
  EXPECT_GE(expected - 1, after.events);
}

}  // namespace credentials
