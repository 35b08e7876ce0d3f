// The version ledger (docs/FORMAT.md, "Version ledger"), on both record
// stores: rows of one credential put back from an older copy of the vault,
// with or without its ledger leaf, or the whole ledger put back, never read
// as current; the ledger survives key rotation, re-encryption, backup and
// restore; a vault of an earlier development format is refused and left
// as it was.
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
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000002") + " WHERE key = 'format'");
  EXPECT_THROW(vault.update_password(kAlice, "db_a", "a-v2"), DatabaseError);
  EXPECT_THROW(vault.store_credential(kAlice, {.name = "db_b", .host = "h", .password = "b-v1"}),
               DatabaseError);
  EXPECT_THROW(vault.rotate_data_key(), DatabaseError);
  EXPECT_THROW((void)open_vault(), DatabaseError);
  sql("UPDATE {v}meta SET value = " + bytes("0000000000000001") + " WHERE key = 'format'");
  EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v1");
  EXPECT_THROW((void)vault.get_credential(kAlice, "db_b"), CredentialNotFoundError);
  vault.update_password(kAlice, "db_a", "a-v2");
  EXPECT_TRUE(vault.verify().ok());
}

// Formats 2 to 7 were written only by development builds before format 1
// was declared, under the meta key `format_version` (docs/FORMAT.md): a
// vault that has one is refused at its open with what to do, and left as it
// was. A header without any format row is refused as altered (no build
// ever wrote one). Given its format 1 back, the vault opens.
TEST_P(VersionLedgerTest, AVaultOfAnEarlierFormatIsRefusedAndLeftAsItWas) {
  {
    Vault vault = open_vault();
    vault.store_credential(kAlice, {.name = "db_a", .host = "h", .password = "a-v1"});
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v1");
  }
  // Everything the store holds: the file's bytes (and its write-ahead
  // log's), or every table of the schema row by row.
  const auto contents = [&] {
    if (postgres()) {
      std::string out;
      for (const std::string& table :
           sql("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
               "WHERE n.nspname = 'credential_vault' AND c.relkind = 'r' ORDER BY relname")) {
        out += table + ": ";
        out +=
            sql(fmt::format("SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM "
                            "credential_vault.{} t",
                            table))
                .at(0);
        out += "\n";
      }
      return out;
    }
    const fs::path db = dir_.path() / "vault/vault.db";
    const fs::path wal = dir_.path() / "vault/vault.db-wal";
    return testing::read_file(db) + "|" +
           (fs::exists(wal) ? testing::read_file(wal) : std::string());
  };
  // The message of the error the open fails with ("" when it opens).
  const auto refusal = [&]() -> std::string {
    try {
      (void)open_vault();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  sql("DROP TABLE IF EXISTS {copy}format; CREATE TABLE {copy}format AS SELECT * FROM {v}meta WHERE "
      "key = 'format'; UPDATE {v}meta SET key = 'format_version' WHERE key = 'format'");
  for (int format = 2; format <= 7; ++format) {
    SCOPED_TRACE(fmt::format("format {}", format));
    sql("UPDATE {v}meta SET value = " + bytes(fmt::format("{:016x}", format)) +
        " WHERE key = 'format_version'");
    const std::string before = contents();
    EXPECT_THROW((void)open_vault(), DatabaseError);
    const std::string message = refusal();
    for (const std::string& part :
         {fmt::format("this vault has format {}: it was written by a pre-release development build",
                      format),
          std::string("reads only format 1 and has no upgrade from it"),
          std::string("Nothing was changed"),
          std::string("`credential_manager show --reveal` each one"),
          std::string("keep using that build")}) {
      EXPECT_NE(message.find(part), std::string::npos) << message;
    }
    EXPECT_EQ(contents(), before) << "the refused open wrote to the vault";
  }
  sql("DELETE FROM {v}meta WHERE key = 'format_version'");
  {
    SCOPED_TRACE("no format row");
    const std::string before = contents();
    EXPECT_THROW((void)open_vault(), DecryptionFailedError);
    const std::string message = refusal();
    EXPECT_NE(message.find("emptied or altered. Nothing was changed"), std::string::npos)
        << message;
    EXPECT_EQ(contents(), before) << "the refused open wrote to the vault";
  }
  sql("INSERT INTO {v}meta SELECT * FROM {copy}format");
  {
    Vault vault = open_vault();
    EXPECT_EQ(vault.get_credential(kAlice, "db_a").password.reveal(), "a-v1");
    EXPECT_TRUE(vault.verify().ok());
  }
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

INSTANTIATE_TEST_SUITE_P(BothStores, VersionLedgerTest,
                         ::testing::Values(Backend::kEmbedded, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kEmbedded ? std::string("Embedded")
                                                                   : std::string("Postgres");
                         });

}  // namespace
}  // namespace credentials
