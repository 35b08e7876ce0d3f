// The audit trail under many processes, crashes, a damaged read journal and
// a storage that refuses writes (issue #5; docs/FORMAT.md "Read journal").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "credentials/credentials.h"
#include "reliability/reliability.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const UserContext kAdmin{"admin", "admin", {"admin"}};
UserContext user_of(int n) { return {"u" + std::to_string(n), "u" + std::to_string(n), {"user"}}; }

class AuditTrailTest : public ::testing::Test {
 public:
  Vault open_vault() { return Vault::open({.directory = vault_dir(), .master_key = key_.clone()}); }
  fs::path vault_dir() const { return dir_.path() / "vault"; }
  fs::path journal_dir() const { return vault_dir() / "journal"; }

  std::vector<fs::path> journals() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(journal_dir(), ec)) out.push_back(entry.path());
    return out;
  }

  // Runs `body` in a child process and returns its wait status.
  template <typename F>
  static pid_t spawn(F body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 0;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child failed: %s\n", e.what());
        code = 1;
      }
      std::_Exit(code);
    }
    return pid;
  }
  static int wait_status(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }

  // Stores one credential; then a process reads it three times and is
  // killed before it can close the vault: its journal, left behind with
  // three unfolded events (empty path if that did not happen).
  fs::path journal_of_a_killed_reader() {
    {
      auto vault = open_vault();
      vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    }
    const pid_t pid = spawn([&] {
      auto vault = open_vault();
      for (int i = 0; i < 3; ++i) (void)vault.get_credential(user_of(1), "db");
      ::kill(::getpid(), SIGKILL);
      return 0;
    });
    const int status = wait_status(pid);
    const auto files = journals();
    if (!WIFSIGNALED(status) || files.size() != 1) return {};
    return files[0];
  }

  // Where a journal's entries end: the file is grown ahead with zeros, and
  // a zero length ends it (docs/FORMAT.md, "Read journal").
  static std::size_t end_of_entries(const std::string& bytes) {
    std::size_t pos = 0;
    while (pos + 4 <= bytes.size()) {
      std::uint32_t length = 0;
      for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<std::uint8_t>(bytes[pos + i]);
      if (length == 0 || pos + 4 + length > bytes.size()) break;
      pos += 4 + length;
    }
    return pos;
  }
  // Where the last entry of a journal starts.
  static std::size_t last_entry(const std::string& bytes) {
    std::size_t pos = 0;
    std::size_t last = 0;
    while (pos < end_of_entries(bytes)) {
      last = pos;
      std::uint32_t length = 0;
      for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<std::uint8_t>(bytes[pos + i]);
      pos += 4 + length;
    }
    return last;
  }

  // The journal of a killed reader (see above), its bytes rewritten by
  // `edit`; false when there was no such journal.
  template <typename F>
  bool edit_journal_of_a_killed_reader(F edit) {
    const fs::path journal = journal_of_a_killed_reader();
    if (journal.empty()) return false;
    std::string bytes = testing::read_file(journal);
    edit(bytes);
    std::ofstream(journal, std::ios::binary | std::ios::trunc) << bytes;
    return true;
  }

  void expect_verified_chain_with_gets(int gets) {
    EXPECT_EQ(count_gets(), gets);
    const AuditVerification verification = open_vault().verify_audit();
    EXPECT_TRUE(verification.ok) << verification.problem;
  }

  int count_gets() {
    auto vault = open_vault();
    AuditQuery query;
    query.action = "get";
    query.limit = 1'000'000;
    return static_cast<int>(vault.audit_events(kAdmin, query).size());
  }

  TempDir dir_;
  SecretString key_{generate_master_key()};
};

// 16 processes × 100 operations (stores, gets, lists, updates) give 1,600
// events and one chain that verifies. Half of the processes are killed
// with SIGKILL after their last operation, before they can close the vault:
// the read events they journaled are folded by the next process to open it.
TEST_F(AuditTrailTest, SixteenProcessesTimesAHundredOperationsGiveSixteenHundredEvents) {
  { (void)open_vault(); }
  constexpr int kProcesses = 16;
  constexpr int kOperations = 100;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(spawn([&, p] {
      auto vault = open_vault();
      const UserContext user = user_of(p);
      for (int i = 0; i < kOperations; ++i) {
        const std::string name = "db" + std::to_string(i / 4);
        switch (i % 4) {
          case 0: vault.store_credential(user, {.name = name, .host = "h", .password = "canary-pw-1"}); break;
          case 1: (void)vault.get_credential(user, name); break;
          case 2: (void)vault.list_credentials(user); break;
          case 3: (void)vault.update_password(user, name, SecretString("canary-pw-2")); break;
        }
      }
      if (p % 2 == 1) ::kill(::getpid(), SIGKILL);  // no close: the journal stays behind
      return 0;
    }));
  }
  int killed = 0;
  for (pid_t pid : children) {
    const int status = wait_status(pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++killed;
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    }
  }
  EXPECT_EQ(killed, kProcesses / 2);
  // The killed processes' journals; those that died before a sibling
  // opened the vault were folded by that sibling already.
  const std::size_t orphans = journals().size();
  EXPECT_GE(orphans, 1u);
  EXPECT_LE(orphans, static_cast<std::size_t>(kProcesses / 2));

  auto vault = open_vault();  // folds the orphaned journals
  EXPECT_TRUE(journals().empty());
  AuditQuery query;
  query.limit = 100'000;
  std::map<std::string, int> per_user;
  std::map<std::string, int> per_action;
  for (const AuditEvent& event : vault.audit_events(kAdmin, query)) {
    if (event.actor.rfind('u', 0) != 0) continue;
    EXPECT_EQ(event.outcome, "ok") << event.actor << " " << event.action;
    ++per_user[event.actor];
    ++per_action[event.action];
  }
  int total = 0;
  for (const auto& [user, count] : per_user) {
    EXPECT_EQ(count, kOperations) << user;
    total += count;
  }
  EXPECT_EQ(total, kProcesses * kOperations);
  EXPECT_EQ(per_action["get"], kProcesses * kOperations / 4);
  EXPECT_EQ(per_action["list"], kProcesses * kOperations / 4);
  const AuditVerification verification = vault.verify_audit();
  EXPECT_TRUE(verification.ok) << verification.problem;
  EXPECT_GE(verification.events, kProcesses * kOperations);
  testing::print_figures("audit-processes",
                         fmt::format("{} processes x {} operations = {} events, {} processes killed ({} "
                                     "journals left for the next opener), chain of {} events verifies",
                                     kProcesses, kOperations, total, killed, orphans, verification.events));
}

// A journal altered after its process died is reported by `audit verify`,
// naming the event that records it; the reads before the damage are kept.
// (An altered *last* entry reads as one torn by a power failure and is
// dropped, as cutting the journal short would drop it: see the next test.)
TEST_F(AuditTrailTest, AlteredJournalOfADeadProcessIsReported) {
  ASSERT_TRUE(edit_journal_of_a_killed_reader([](std::string& bytes) {
    ASSERT_GT(last_entry(bytes), 100u);
    bytes[last_entry(bytes) - 40] ^= 0x01;  // inside the middle one of the three entries
  }));
  const AuditVerification verification = open_vault().verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_NE(verification.problem.find("journal"), std::string::npos) << verification.problem;
  EXPECT_EQ(count_gets(), 1);
}

// A power failure can leave the page holding an entry's length on disk
// without the page holding the rest of it (zeros, as the file was grown).
// Such a last entry is the torn end of the journal, not damage.
TEST_F(AuditTrailTest, LastEntryTornByAPowerFailureIsDroppedQuietly) {
  ASSERT_TRUE(edit_journal_of_a_killed_reader([](std::string& bytes) {
    ASSERT_GT(end_of_entries(bytes), 100u);
    bytes.replace(end_of_entries(bytes) - 20, 20, std::string(20, '\0'));
  }));
  expect_verified_chain_with_gets(2);
}

// A journal cut at a torn entry (a crash in the middle of its append) loses
// only that entry's read, which never returned; the chain verifies.
TEST_F(AuditTrailTest, TornLastJournalEntryIsDroppedQuietly) {
  ASSERT_TRUE(edit_journal_of_a_killed_reader(
      [](std::string& bytes) { bytes.resize(end_of_entries(bytes) - 10); }));
  expect_verified_chain_with_gets(2);
}

// An append stores its entry's length last: a process killed before that
// store leaves the entry's bytes behind a zero length, the end of the
// journal. That read never returned, and the chain verifies.
TEST_F(AuditTrailTest, EntryWhoseLengthWasNotYetStoredEndsTheJournal) {
  ASSERT_TRUE(edit_journal_of_a_killed_reader([](std::string& bytes) {
    ASSERT_GT(last_entry(bytes), 0u);
    bytes.replace(last_entry(bytes), 4, std::string(4, '\0'));
  }));
  expect_verified_chain_with_gets(2);
}

// A long-lived handle does not grow one journal without end: once 4 MiB of
// it are folded it moves to a new journal and removes the old one. Every
// read's event reaches the chain, in order. `reads_between_writes` 0: a
// handle that only reads (its reads fold the journal); else one that also
// writes that often (each write folds it in the write's transaction).
void reads_move_to_a_new_journal(AuditTrailTest& test, int reads_between_writes) {
  int reads = 0;
  {
    auto vault = test.open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    (void)vault.get_credential(user_of(1), "db");
    ++reads;
    ASSERT_EQ(test.journals().size(), 1u);
    const fs::path first = test.journals()[0];
    const int batch = reads_between_writes > 0 ? reads_between_writes : 500;
    for (int updates = 0; fs::exists(first) && reads < 40'000; ++updates) {
      for (int i = 0; i < batch; ++i) (void)vault.get_credential(user_of(1), "db");
      reads += batch;
      if (reads_between_writes > 0) {
        vault.update_password(user_of(1), "db", SecretString("pw-" + std::to_string(updates)));
      }
    }
    EXPECT_FALSE(fs::exists(first)) << "no new journal after " << reads << " reads";
    const auto now = test.journals();
    ASSERT_EQ(now.size(), 1u);
    EXPECT_LT(fs::file_size(now[0]), std::uintmax_t{5} << 20);
  }
  EXPECT_TRUE(test.journals().empty());
  test.expect_verified_chain_with_gets(reads);
}

TEST_F(AuditTrailTest, LongLivedHandleMovesToANewJournal) { reads_move_to_a_new_journal(*this, 0); }

TEST_F(AuditTrailTest, HandleThatAlsoWritesMovesToANewJournal) { reads_move_to_a_new_journal(*this, 20); }

TEST_F(AuditTrailTest, JournalIsPrivateAndHoldsNoSecret) {
  auto vault = open_vault();
  vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "canary-journal-pw"});
  (void)vault.get_credential(user_of(1), "db");
  struct stat st {};
  ASSERT_EQ(::stat(journal_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const auto files = journals();
  ASSERT_EQ(files.size(), 1u);
  ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string bytes = testing::read_file(files[0]);
  EXPECT_EQ(bytes.find("canary-journal-pw"), std::string::npos);
  EXPECT_EQ(bytes.find("\"get\""), std::string::npos) << "events are sealed";
}

// A handle folds its journal when it closes and removes it.
TEST_F(AuditTrailTest, ClosingFoldsAndRemovesTheJournal) {
  {
    auto vault = open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    (void)vault.get_credential(user_of(1), "db");
    EXPECT_EQ(journals().size(), 1u);
  }
  EXPECT_TRUE(journals().empty());
  auto vault = open_vault();
  int gets = 0;
  for (const AuditEvent& event : vault.audit_events(kAdmin, {})) gets += event.action == "get";
  EXPECT_EQ(gets, 1);
}

// Fail closed: when the storage refuses writes (here RLIMIT_FSIZE, a real
// EFBIG from write(2), as a full disk gives ENOSPC), a read whose event
// cannot be recorded returns nothing, and a write does not happen.
TEST_F(AuditTrailTest, SimulatedWriteFailureRefusesTheOperation) {
  {
    auto vault = open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "before"});
  }
  const pid_t pid = spawn([&] {
    auto vault = open_vault();
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{1, 1};  // no file may grow beyond one byte
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    int refused = 0;
    try {
      (void)vault.get_credential(user_of(1), "db");
    } catch (const DatabaseError& e) {
      if (std::string(e.what()).find("audit event") != std::string::npos) refused |= 1;
    }
    try {
      (void)vault.update_password(user_of(1), "db", SecretString("after"));
    } catch (const Error&) {
      refused |= 2;
    }
    try {
      (void)vault.list_credentials(user_of(1));
    } catch (const DatabaseError&) {
      refused |= 4;
    }
    return refused == 7 ? 0 : 20 + refused;
  });
  const int status = wait_status(pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "20 + bits of the operations that were refused (1 get, 2 update, 4 list)";

  auto vault = open_vault();
  const Credential c = vault.get_credential(user_of(1), "db");
  EXPECT_EQ(c.password.reveal(), "before");
  EXPECT_EQ(c.version, 1u);
  EXPECT_TRUE(vault.verify_audit().ok);
  for (const AuditEvent& event : vault.audit_events(kAdmin, {})) {
    EXPECT_FALSE(event.action == "update_password" && event.outcome == "ok");
  }
}

// Events carry the pid of the process that acted, also in the child of a
// fork made after the parent recorded events of its own (the library
// remembers its pid: getpid is a system call on every read).
TEST_F(AuditTrailTest, EventsOfAForkedChildCarryTheChildsPid) {
  {
    auto vault = open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    (void)vault.get_credential(user_of(1), "db");
  }
  pid_t child_pid = 0;
  child_pid = spawn([&] {
    auto vault = open_vault();
    try {
      (void)vault.get_credential(user_of(2), "db");  // not found: an event of its own
    } catch (const CredentialNotFoundError&) {
      return 0;
    }
    return 1;
  });
  ASSERT_EQ(wait_status(child_pid), 0);
  auto vault = open_vault();
  std::map<std::string, std::int64_t> pid_of;  // actor -> pid
  for (const AuditEvent& event : vault.audit_events(kAdmin, {.action = "get"})) pid_of[event.actor] = event.pid;
  EXPECT_EQ(pid_of["u1"], ::getpid());
  EXPECT_EQ(pid_of["u2"], child_pid);
}

// A refused read records the reference it was given, whatever its
// characters: the event text stays valid JSON and reads back as given.
TEST_F(AuditTrailTest, EventsKeepReferencesThatNeedEscaping) {
  auto vault = open_vault();
  const std::vector<std::string> refs = {"quote\"d", "back\\slash", "new\nline", "tab\there",
                                         std::string("ctl\x01\x1f") + "end", "plain-name", "caf\xc3\xa9"};
  for (const auto& ref : refs) {
    EXPECT_THROW((void)vault.get_credential(user_of(1), ref), Error) << ref;
  }
  AuditQuery query;
  query.action = "get";
  std::vector<std::string> names;
  for (const AuditEvent& event : vault.audit_events(kAdmin, query)) names.push_back(event.name);
  EXPECT_EQ(names, refs);
}

}  // namespace
}  // namespace credentials
