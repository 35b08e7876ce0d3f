// Each read journal's events in the audit chain continue one another
// (docs/FORMAT.md, "Audit"; docs/THREAT_MODEL.md): `audit verify` reports a
// fold position moved forward (reads skipped) or moved back or removed
// (reads folded twice), and an honest vault, also one upgraded from format
// 3 or 4 with a journal its older build left half folded, verifies.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include "audit/audit_event.h"
#include "audit/read_journal.h"
#include "credentials/credentials.h"
#include "store/sqlite_store.h"
#include "support/sqlite_rows.h"
#include "support/temp_dir.h"
#include "vault/keyring.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::sqlite_rows;
using testing::TempDir;

const UserContext kAdmin{"admin", "admin", {"admin"}};
const UserContext kAlice{"alice", "alice", {"user"}};
UserContext user_of(int n) { return {"u" + std::to_string(n), "u" + std::to_string(n), {"user"}}; }

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
std::uint64_t get_u64(const std::string& in, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[at + i]);
  return v;
}
std::string hex(const std::string& bytes) {
  std::string out;
  for (char c : bytes) out += fmt::format("{:02X}", static_cast<std::uint8_t>(c));
  return out;
}

// A journal's fold position as the meta row "journal/<id>" holds it:
// offset ‖ next index ‖ MAC of the entry before (docs/FORMAT.md).
struct FoldPosition {
  std::uint64_t offset = 0;
  std::uint64_t next_index = 0;
  std::string mac;
  [[nodiscard]] std::string value() const {
    std::string out;
    put_u64(out, offset);
    put_u64(out, next_index);
    return out + mac;
  }
};

// The position after each entry of a journal file (entry i at [i]).
std::vector<FoldPosition> positions_after_entries(const fs::path& journal) {
  const std::string bytes = testing::read_file(journal);
  std::vector<FoldPosition> out;
  std::size_t pos = 0;
  while (pos + 4 <= bytes.size()) {
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<std::uint8_t>(bytes[pos + i]);
    if (length == 0 || pos + 4 + length > bytes.size()) break;
    const std::uint64_t index = get_u64(bytes, pos + 4);
    pos += 4 + length;
    out.push_back({pos, index + 1, bytes.substr(pos - 32, 32)});
  }
  return out;
}

class JournalContinuityTest : public ::testing::Test {
 public:
  Vault open_vault() { return Vault::open({.directory = vault_dir(), .master_key = key_.clone()}); }
  fs::path vault_dir() const { return dir_.path() / "vault"; }
  fs::path db_file() const { return vault_dir() / "vault.db"; }
  std::vector<std::string> sql(const std::string& statement) {
    return sqlite_rows(db_file(), statement);
  }

  // The one journal file of the vault (the test's only open handle's).
  fs::path the_journal() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(vault_dir() / "journal", ec))
      out.push_back(entry.path());
    if (out.size() != 1) throw std::runtime_error(fmt::format("{} journals, not one", out.size()));
    return out[0];
  }
  static std::string meta_key(const fs::path& journal) {
    std::string id = journal.stem().string();
    for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "journal/" + id;
  }
  void set_fold_position(const fs::path& journal, const FoldPosition& position) {
    sql(fmt::format("INSERT OR REPLACE INTO meta(key, value) VALUES('{}', x'{}')",
                    meta_key(journal), hex(position.value())));
  }
  std::string fold_position_hex(const fs::path& journal) {
    const auto rows =
        sql(fmt::format("SELECT hex(value) FROM meta WHERE key = '{}'", meta_key(journal)));
    return rows.empty() ? "" : rows[0];
  }
  // The numbers of the first events of the runs of `journal` that start at
  // its entry `index`, in chain order.
  std::vector<std::int64_t> runs_starting_at(const fs::path& journal, std::uint64_t index) {
    std::string first_index;
    put_u64(first_index, index);
    std::vector<std::int64_t> out;
    for (const auto& row : sql(fmt::format("SELECT seq - journal_run + 1 FROM audit WHERE "
                                           "journal_run > 0 AND substr(sealed, 1, 16) = x'{}' AND "
                                           "substr(sealed, 17, 8) = x'{}' ORDER BY seq",
                                           journal.stem().string(), hex(first_index)))) {
      out.push_back(std::stoll(row));
    }
    return out;
  }

  // Reads `n` times through `vault` (each read appends a journal entry).
  static void read(Vault& vault, int n) {
    for (int i = 0; i < n; ++i) (void)vault.get_credential(kAlice, "db");
  }
  // A write: it folds the handle's journal first, in its own transaction.
  static void write(Vault& vault) {
    static int n = 0;
    vault.update_password(kAlice, "db", SecretString("pw-" + std::to_string(++n)));
  }

  TempDir dir_;
  SecretString key_{generate_master_key()};
};

// Two handles of this process and two child processes (one killed before it
// closes, its journal folded by the next opener) read and write, so each
// journal is folded several times, by its own handle and by others
// (`verify_audit` folds live journals of other handles too).
TEST_F(JournalContinuityTest, HonestVaultWithManyHandlesAndFoldsVerifies) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
  }
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 0;
      try {
        auto vault = open_vault();
        for (int round = 0; round < 5; ++round) {
          read(vault, 3);
          vault.store_credential(
              user_of(p), {.name = "c" + std::to_string(round), .host = "h", .password = "pw"});
        }
        read(vault, 2);
        if (p == 1) ::kill(::getpid(), SIGKILL);  // its journal is left for the next opener
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child failed: %s\n", e.what());
        code = 1;
      }
      std::_Exit(code);
    }
    children.push_back(pid);
  }
  {
    auto a = open_vault();
    auto b = open_vault();
    for (int round = 0; round < 4; ++round) {
      read(a, 2);
      read(b, 1);
      write(a);
      read(a, 1);
      const AuditVerification midway = b.verify_audit();  // folds a's journal as another handle's
      EXPECT_TRUE(midway.ok) << midway.problem;
      read(a, 1);
      write(b);
    }
  }
  for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
  auto vault = open_vault();  // folds the killed child's journal
  const AuditVerification verification = vault.verify_audit();
  EXPECT_TRUE(verification.ok) << verification.problem;
  // Several runs per journal, so continuity between runs was checked.
  EXPECT_GE(std::stoi(sql(
                "SELECT max(runs) FROM (SELECT count(*) AS runs FROM audit WHERE journal_run > 0 "
                "GROUP BY substr(sealed, 1, 16))")[0]),
            4);
  EXPECT_GE(
      std::stoi(
          sql("SELECT count(DISTINCT substr(sealed, 1, 16)) FROM audit WHERE journal_run > 0")[0]),
      4);
}

// The fold position moved forward past two unfolded entries: the next fold
// (a write's) skips them, and verify names the event after the gap.
TEST_F(JournalContinuityTest, FoldPositionMovedForwardIsReportedAsASkip) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
  read(vault, 3);
  write(vault);  // entries 0-2 folded
  read(vault, 3);
  const fs::path journal = the_journal();
  const auto after = positions_after_entries(journal);
  ASSERT_EQ(after.size(), 6u);
  set_fold_position(journal, after[4]);  // as if entries 3 and 4 were folded
  write(vault);
  const auto runs = runs_starting_at(journal, 5);
  ASSERT_EQ(runs.size(), 1u) << "the fold did not skip to entry 5";
  const std::int64_t gap = runs[0];
  const AuditVerification verification = vault.verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, gap);
  EXPECT_NE(verification.problem.find(fmt::format("event {} skips 2 read events of journal", gap)),
            std::string::npos)
      << verification.problem;
  EXPECT_NE(verification.problem.find("edited"), std::string::npos) << verification.problem;
}

// The same before the journal's first fold: its first run starts past
// entry 0.
TEST_F(JournalContinuityTest, FoldPositionSetForwardBeforeTheFirstFoldIsReportedAsASkip) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
  read(vault, 3);
  const fs::path journal = the_journal();
  const auto after = positions_after_entries(journal);
  ASSERT_EQ(after.size(), 3u);
  set_fold_position(journal, after[1]);
  write(vault);
  const auto runs = runs_starting_at(journal, 2);
  ASSERT_EQ(runs.size(), 1u) << "the fold did not skip to entry 2";
  const std::int64_t first = runs[0];
  const AuditVerification verification = vault.verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, first);
  EXPECT_NE(verification.problem.find(
                fmt::format("event {} skips 2 read events at the start of journal", first)),
            std::string::npos)
      << verification.problem;
}

// The fold position removed: the next fold takes the journal from its
// start again, and its first entries appear twice, each authentic.
TEST_F(JournalContinuityTest, FoldPositionRemovedIsReportedAsARepeat) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
  read(vault, 3);
  write(vault);
  const fs::path journal = the_journal();
  read(vault, 2);
  sql(fmt::format("DELETE FROM meta WHERE key = '{}'", meta_key(journal)));
  write(vault);
  const auto runs = runs_starting_at(journal, 0);
  ASSERT_EQ(runs.size(), 2u) << "the fold did not take the journal from its start again";
  const std::int64_t first = runs[0];
  const std::int64_t again = runs[1];
  const AuditVerification verification = vault.verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, again);
  EXPECT_NE(
      verification.problem.find(fmt::format("event {} repeats read events of journal", again)),
      std::string::npos)
      << verification.problem;
  EXPECT_NE(
      verification.problem.find(fmt::format("already recorded at events {}-{}", first, first + 2)),
      std::string::npos)
      << verification.problem;
}

// The fold position put back as it was after an earlier fold: the next
// fold takes the entries folded since again.
TEST_F(JournalContinuityTest, FoldPositionMovedBackIsReportedAsARepeat) {
  auto vault = open_vault();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
  read(vault, 3);
  write(vault);  // entries 0-2
  const fs::path journal = the_journal();
  const std::string saved = fold_position_hex(journal);
  ASSERT_FALSE(saved.empty());
  read(vault, 2);
  write(vault);  // entries 3-4
  const auto earlier = runs_starting_at(journal, 3);
  ASSERT_EQ(earlier.size(), 1u);
  read(vault, 1);
  sql(fmt::format("UPDATE meta SET value = x'{}' WHERE key = '{}'", saved, meta_key(journal)));
  write(vault);  // entries 3-5 again
  const auto runs = runs_starting_at(journal, 3);
  ASSERT_EQ(runs.size(), 2u) << "the fold did not take entries 3-4 again";
  const AuditVerification verification = vault.verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, runs[1]);
  EXPECT_NE(
      verification.problem.find(fmt::format("event {} repeats read events of journal", runs[1])),
      std::string::npos)
      << verification.problem;
  // The journal's events so far: its first run's to its second's last.
  EXPECT_NE(verification.problem.find(fmt::format("already recorded at events {}-{}",
                                                  runs_starting_at(journal, 0)[0], earlier[0] + 1)),
            std::string::npos)
      << verification.problem;
  // The whole report names no secret: the message is the same for any key.
  EXPECT_EQ(verification.problem.find("pw"), std::string::npos);
}

// `verify` (the whole vault) reports the same problem.
TEST_F(JournalContinuityTest, VaultVerifyReportsTheSameProblem) {
  {
    auto vault = open_vault();
    vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw"});
    read(vault, 2);
    write(vault);
    sql(fmt::format("DELETE FROM meta WHERE key = '{}'", meta_key(the_journal())));
    read(vault, 1);
  }  // closing folds the journal from its start again
  const AuditVerification verification = open_vault().verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_NE(verification.problem.find("repeats read events"), std::string::npos)
      << verification.problem;
  const VerifyReport report = open_vault().verify();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.audit.first_bad_seq, verification.first_bad_seq);
}

// Vaults written by older builds, with their keys (see
// version_ledger_test.cc): the last process of each read once (entry 0 of
// its journal) and its fold position stayed in the meta row.
const fs::path kFixtures = fs::path(CREDENTIALS_SOURCE_DIR) / "tests/vault/fixtures";
struct Fixture {
  const char* name;
  const char* journal;  // the id of the journal whose fold position stayed
};
// Format 3 folded entry 0 sealed again under its chain number, naming no
// journal; format 4 folded it into a row of its own naming the journal.
constexpr Fixture kFormat3{"format3", "1d2f37bdf75f1355d06004202d875813"};
constexpr Fixture kFormat4{"format4", "fb54dc43369a91d5dcd5dd4256e9a625"};

class UpgradedVaultTest : public JournalContinuityTest {
 public:
  void load(const Fixture& fixture) {
    fs::create_directories(vault_dir());
    fs::copy_file(kFixtures / (std::string(fixture.name) + "-vault.db"), db_file());
    fs::permissions(db_file(), fs::perms::owner_read | fs::perms::owner_write);
    key_ = SecretString(testing::read_file(kFixtures / (std::string(fixture.name) + "-vault.key")));
  }

  // The vault's keys, as its build holds them (for journals made below).
  std::unique_ptr<internal::Keyring> vault_keys() {
    auto store = internal::SqliteStore::open(vault_dir(), /*create=*/false);
    const auto number = [](const internal::Bytes& be) {
      return get_u64(std::string(be.begin(), be.end()), 0);
    };
    const internal::Bytes vault_id = meta(*store, "vault_id");
    const internal::KeyDerivation derivation{
        vault_id,
        meta(*store, "argon2_salt"),
        {number(meta(*store, "argon2_ops")), number(meta(*store, "argon2_mem"))}};
    auto keys = std::make_unique<internal::Keyring>(
        vault_id,
        internal::derive_kek(internal::normalize_master_key(key_.reveal()), derivation).kek);
    keys->load(*store);
    return keys;
  }
  static internal::Bytes id_bytes(const char* journal_id) {
    internal::Bytes id;
    for (std::size_t i = 0; i < 32; i += 2) {
      id.push_back(
          static_cast<std::uint8_t>(std::stoi(std::string(journal_id).substr(i, 2), nullptr, 16)));
    }
    return id;
  }
  static internal::Bytes meta(internal::RecordStore& store, const std::string& key) {
    const auto value = store.get_meta(key);
    if (!value) throw std::runtime_error("no meta row " + key);
    return *value;
  }
  FoldPosition fold_position_of(const char* journal_id) {
    auto store = internal::SqliteStore::open(vault_dir(), /*create=*/false);
    const internal::Bytes value = meta(*store, std::string("journal/") + journal_id);
    const std::string raw(value.begin(), value.end());
    return {get_u64(raw, 0), get_u64(raw, 8), raw.substr(16)};
  }

  // Writes the journal file `journal_id` as a process that died after
  // `reads` reads from `from` on (their entries chained to from.mac) leaves
  // it: what is before from.offset was folded and is not read again. The
  // entries are sealed as JSON, as builds before format 5 did, or in this
  // build's compact form, with `keys`.
  fs::path leave_journal(const internal::Keyring& keys, const char* journal_id,
                         const FoldPosition& from, int reads, bool json) {
    namespace in = internal;
    const in::Bytes id = id_bytes(journal_id);
    in::Bytes file(from.offset, 0);
    in::Bytes previous(from.mac.begin(), from.mac.end());
    const std::vector<std::string> roles{"user"};
    for (int i = 0; i < reads; ++i) {
      const std::uint64_t index = from.next_index + static_cast<std::uint64_t>(i);
      in::EventFields fields;
      fields.time =
          std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
      fields.actor = "alice";
      fields.roles = roles;
      fields.action = "get";
      fields.owner = "alice";
      fields.name = "db_a";
      fields.outcome = "ok";
      fields.pid = kCraftedPid;
      in::Bytes event;
      if (json) {
        const std::string text = in::event_json(fields);
        event.assign(text.begin(), text.end());
      } else {
        in::compact_event(fields, event);
      }
      in::Bytes entry(4, 0);  // the length, filled in below
      std::string numbers;
      put_u64(numbers, index);
      put_u64(numbers, static_cast<std::uint64_t>(fields.time.time_since_epoch().count()));
      entry.insert(entry.end(), numbers.begin(), numbers.end());
      entry.push_back(0);  // no owner tag
      entry.push_back(0);  // no credential used
      const in::Bytes sealed =
          in::aead_encrypt(keys.audit_seal_key(), event, in::journal_seal_aad(keys, id, index));
      entry.insert(entry.end(), sealed.begin(), sealed.end());
      const in::Bytes mac = in::journal_entry_mac(keys, previous, in::ByteView(entry).subspan(4));
      entry.insert(entry.end(), mac.begin(), mac.end());
      const auto length = static_cast<std::uint32_t>(entry.size() - 4);
      for (int b = 0; b < 4; ++b) entry[b] = static_cast<std::uint8_t>(length >> (24 - 8 * b));
      file.insert(file.end(), entry.begin(), entry.end());
      previous = mac;
    }
    const fs::path directory = vault_dir() / "journal";
    fs::create_directories(directory);
    fs::permissions(directory, fs::perms::owner_all);
    const fs::path journal = directory / (std::string(journal_id) + ".log");
    std::ofstream(journal, std::ios::binary | std::ios::trunc)
        << std::string(file.begin(), file.end());
    fs::permissions(journal, fs::perms::owner_read | fs::perms::owner_write);
    return journal;
  }
  // The journal whose fold position the fixture kept, left by a process of
  // its build that died after reading `reads` more times.
  fs::path leave_half_folded_journal(const Fixture& fixture, int reads, bool json) {
    return leave_journal(*vault_keys(), fixture.journal, fold_position_of(fixture.journal), reads,
                         json);
  }
  std::size_t crafted_gets() {
    std::size_t n = 0;
    for (const AuditEvent& event :
         open_vault().audit_events(kAdmin, {.action = "get", .limit = 1000})) {
      n += event.pid == kCraftedPid;
    }
    return n;
  }
  static constexpr std::int64_t kCraftedPid = 4242;

  // Opens the fixture with a journal of its build left half folded: the
  // upgrade, then the fold of that journal as a run from its entry 1. The
  // chain verifies, and goes on verifying as the vault is used.
  void expect_the_chain_to_go_on(const Fixture& fixture) {
    load(fixture);
    const fs::path journal = leave_half_folded_journal(fixture, 2, /*json=*/true);
    {
      auto vault = open_vault();
      EXPECT_FALSE(fs::exists(journal)) << "the dead process's journal was not folded";
      const AuditVerification verification = vault.verify_audit();
      EXPECT_TRUE(verification.ok) << verification.problem;
      (void)vault.get_credential(kAlice, "db_a");
      vault.update_password(kAlice, "db_a", SecretString("a-v3"));
      (void)vault.get_credential(kAlice, "db_a");
    }
    EXPECT_EQ(runs_starting_at(journal, 1).size(), 1u);
    const AuditVerification verification = open_vault().verify_audit();
    EXPECT_TRUE(verification.ok) << verification.problem;
    EXPECT_EQ(crafted_gets(), 2u);
  }
};

TEST_F(UpgradedVaultTest, AFormatFourJournalLeftHalfFoldedGoesOnAfterTheUpgrade) {
  expect_the_chain_to_go_on(kFormat4);
}

TEST_F(UpgradedVaultTest, AFormatThreeJournalLeftHalfFoldedGoesOnAfterTheUpgrade) {
  expect_the_chain_to_go_on(kFormat3);
}

// Only a journal written by an older build (entries sealed as JSON) may
// first appear past its entry 0: one of this build's must start there.
TEST_F(UpgradedVaultTest, AJournalOfThisBuildStartingPastItsFirstEntryIsASkip) {
  load(kFormat3);
  const fs::path journal = leave_half_folded_journal(kFormat3, 2, /*json=*/false);
  const AuditVerification verification = open_vault().verify_audit();
  EXPECT_FALSE(verification.ok);
  const auto runs = runs_starting_at(journal, 1);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(verification.first_bad_seq, runs[0]);
  EXPECT_NE(verification.problem.find("skips 1 read event at the start of journal 1d2f37bd"),
            std::string::npos)
      << verification.problem;
}

// A format-4 row names its journal and index: a run that folds that entry
// again (its fold position removed, the journal from its start) repeats it.
TEST_F(UpgradedVaultTest, AReadFoldedByFormatFourFoldedAgainIsARepeat) {
  load(kFormat4);
  const auto keys = vault_keys();
  sql(fmt::format("DELETE FROM meta WHERE key = 'journal/{}'", kFormat4.journal));
  const internal::Bytes genesis = internal::journal_genesis_mac(*keys, id_bytes(kFormat4.journal));
  const fs::path journal =
      leave_journal(*keys, kFormat4.journal, {0, 0, std::string(genesis.begin(), genesis.end())}, 2,
                    /*json=*/true);
  const AuditVerification verification = open_vault().verify_audit();
  const auto runs = runs_starting_at(journal, 0);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, runs[0]);
  EXPECT_NE(verification.problem.find(
                "repeats read events of journal fb54dc43 already recorded at event 14"),
            std::string::npos)
      << verification.problem;
}

// A run at the right index must also chain to the MAC its journal's last
// event ended with. Only someone with the audit key can make one that does
// not (entries chained to another MAC, and the fold position edited to
// match): made here with the vault's keys.
TEST_F(UpgradedVaultTest, ARunChainedToAnotherMacThanItsJournalsLastIsReported) {
  load(kFormat3);
  (void)leave_half_folded_journal(kFormat3, 2, /*json=*/true);
  { (void)open_vault(); }  // folds entries 1-2
  const auto keys = vault_keys();
  const FoldPosition forged{1000, 3, std::string(32, '\x5a')};
  sql(fmt::format("INSERT OR REPLACE INTO meta(key, value) VALUES('journal/{}', x'{}')",
                  kFormat3.journal, hex(forged.value())));
  const fs::path journal = leave_journal(*keys, kFormat3.journal, forged, 1, /*json=*/true);
  const AuditVerification verification = open_vault().verify_audit();
  const auto runs = runs_starting_at(journal, 3);
  ASSERT_EQ(runs.size(), 1u) << "the forged entry was not folded";
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, runs[0]);
  EXPECT_NE(verification.problem.find("does not continue journal 1d2f37bd"), std::string::npos)
      << verification.problem;
}

// Likewise a journal's first run must chain to that journal's genesis MAC.
TEST_F(UpgradedVaultTest, AJournalsFirstRunNotChainedToItsGenesisIsReported) {
  load(kFormat4);
  constexpr const char* kNewJournal = "00112233445566778899aabbccddeeff";
  const FoldPosition forged{0, 0, std::string(32, '\x5a')};
  sql(fmt::format("INSERT INTO meta(key, value) VALUES('journal/{}', x'{}')", kNewJournal,
                  hex(forged.value())));
  const fs::path journal = leave_journal(*vault_keys(), kNewJournal, forged, 1, /*json=*/false);
  const AuditVerification verification = open_vault().verify_audit();
  const auto runs = runs_starting_at(journal, 0);
  ASSERT_EQ(runs.size(), 1u) << "the forged entry was not folded";
  EXPECT_FALSE(verification.ok);
  EXPECT_EQ(verification.first_bad_seq, runs[0]);
  EXPECT_NE(verification.problem.find("does not chain to that journal's start"), std::string::npos)
      << verification.problem;
}

// A dead process's journal longer than one run may hold (1 MiB of entries,
// ~7,500 reads) is folded by the next opener as several runs, each taking
// up where the one before ended: every read in the chain once, verified.
TEST_F(UpgradedVaultTest, AJournalLongerThanARunIsFoldedAsSeveralRunsThatVerify) {
  load(kFormat4);
  constexpr const char* kLongJournal = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  constexpr int kReads = 12000;
  const auto keys = vault_keys();
  const internal::Bytes genesis = internal::journal_genesis_mac(*keys, id_bytes(kLongJournal));
  const fs::path journal = leave_journal(
      *keys, kLongJournal, {0, 0, std::string(genesis.begin(), genesis.end())}, kReads, /*json=*/false);
  ASSERT_GT(fs::file_size(journal), std::uintmax_t{1} << 20);

  Vault vault = open_vault();
  EXPECT_FALSE(fs::exists(journal)) << "the dead process's journal was not folded";
  const auto runs = sql(fmt::format(
      "SELECT journal_run FROM audit WHERE journal_run > 0 AND substr(sealed, 1, 16) = x'{}' "
      "ORDER BY seq",
      kLongJournal));
  ASSERT_GE(runs.size(), 2u) << "folded as one run";
  int folded = 0;
  for (const std::string& run : runs) folded += std::stoi(run);
  EXPECT_EQ(folded, kReads);
  std::size_t crafted = 0;
  for (const AuditEvent& event : vault.audit_events(kAdmin, {.action = "get", .limit = 2 * kReads})) {
    crafted += event.pid == kCraftedPid;
  }
  EXPECT_EQ(crafted, static_cast<std::size_t>(kReads));
  const AuditVerification verification = vault.verify_audit();
  EXPECT_TRUE(verification.ok) << verification.problem;
}

}  // namespace
}  // namespace credentials
