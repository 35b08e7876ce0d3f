// The audit trail under many processes, crashes, a damaged segment of read
// events and a storage that refuses writes (docs/FORMAT.md, "Audit segments").
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

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
  fs::path segment_dir() const { return vault_dir() / "segments"; }

  // The segment files waiting for their anchors.
  std::vector<fs::path> segment_files() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(segment_dir(), ec)) out.push_back(entry.path());
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
  // killed before it can close the vault: its segment file, left behind
  // with three unanchored entries (empty path if that did not happen).
  fs::path segment_of_a_killed_reader() {
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
    const auto files = segment_files();
    if (!WIFSIGNALED(status) || files.size() != 1) return {};
    return files[0];
  }

  // Where each entry of a segment file starts (a length of 4 bytes, then
  // that many; docs/FORMAT.md, "Audit segments").
  static std::vector<std::size_t> entry_starts(const std::string& bytes) {
    std::vector<std::size_t> starts;
    std::size_t pos = 0;
    while (pos + 4 <= bytes.size()) {
      std::uint32_t length = 0;
      for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<std::uint8_t>(bytes[pos + i]);
      if (length == 0 || pos + 4 + length > bytes.size()) break;
      starts.push_back(pos);
      pos += 4 + length;
    }
    return starts;
  }

  // The segment file of a killed reader (see above), its bytes rewritten by
  // `edit`; false when there was no such file.
  template <typename F>
  bool edit_segment_of_a_killed_reader(F edit) {
    const fs::path segment = segment_of_a_killed_reader();
    if (segment.empty()) return false;
    std::string bytes = testing::read_file(segment);
    edit(bytes);
    std::ofstream(segment, std::ios::binary | std::ios::trunc) << bytes;
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
// the read events left in their segment files are anchored by the next
// process to open it.
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
      if (p % 2 == 1) ::kill(::getpid(), SIGKILL);  // no close: the segment file stays behind
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
  // The killed processes' segment files; those that died before a sibling
  // opened the vault were anchored by that sibling already.
  const std::size_t orphans = segment_files().size();
  EXPECT_LE(orphans, static_cast<std::size_t>(kProcesses / 2));

  auto vault = open_vault();  // anchors the dead processes' segments
  EXPECT_TRUE(segment_files().empty());
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
  testing::print_figures(
      "audit-processes",
      fmt::format("{} processes x {} operations = {} events, {} processes killed ({} "
                  "segments left for the next opener), trail of {} events verifies",
                  kProcesses, kOperations, total, killed, orphans, verification.events));
}

// A segment file altered after its process died is reported by `audit
// verify`, naming the event that records it; the reads before the damage
// are kept. (An altered *last* entry reads as one torn by a power failure
// and is dropped, as cutting the file short would drop it: see the next
// test.)
TEST_F(AuditTrailTest, AlteredSegmentOfADeadProcessIsReported) {
  ASSERT_TRUE(edit_segment_of_a_killed_reader([](std::string& bytes) {
    const auto starts = entry_starts(bytes);
    ASSERT_EQ(starts.size(), 3u);
    bytes[starts[2] - 10] ^= 0x01;  // inside the middle one of the three entries
  }));
  const AuditVerification verification = open_vault().verify_audit();
  EXPECT_FALSE(verification.ok);
  EXPECT_NE(verification.problem.find("segment"), std::string::npos) << verification.problem;
  EXPECT_EQ(count_gets(), 1);
}

// Whatever else lies in the segments directory under a segment's name (a
// FIFO, a directory, a huge sparse file: put there by someone with write
// access to the vault directory) is no segment of a dead process: opening
// the vault neither hangs on it nor reads it whole into memory, and the
// trail still verifies.
TEST_F(AuditTrailTest, NoSegmentFileUnderASegmentsNameHangsOrExhaustsTheOpen) {
  {
    auto vault = open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    (void)vault.get_credential(user_of(1), "db");
  }
  fs::create_directories(segment_dir());
  const auto named = [&](char c) { return segment_dir() / (std::string(32, c) + ".segment"); };
  ASSERT_EQ(::mkfifo(named('a').c_str(), 0600), 0);
  fs::create_directory(named('b'));
  std::ofstream(named('c')).close();
  fs::resize_file(named('c'), std::uintmax_t{1} << 40);  // 1 TiB, sparse: no disk space
  const pid_t pid = spawn([&] {
    ::alarm(30);  // a hang kills the child
    auto vault = open_vault();
    (void)vault.get_credential(user_of(1), "db");
    if (!vault.verify_audit().ok) return 2;
    return count_gets() == 2 ? 0 : 3;
  });
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status)));
}

// A live handle's segment file copied, by someone with write access to the
// vault directory, where an opener takes it for a dead process's (the live
// file stays locked): under the same id in capitals, or under its own name
// once the live file is renamed away. The next opener anchors the copy's
// entries (or ignores a name the vault never writes); the live handle
// still anchors, writes and closes, and no event is lost or counted twice.
void live_segment_copied(AuditTrailTest& test, bool rename_live) {
  auto vault = test.open_vault();
  vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
  for (int i = 0; i < 3; ++i) (void)vault.get_credential(user_of(1), "db");
  const auto files = test.segment_files();
  ASSERT_EQ(files.size(), 1u);
  fs::path copy = files[0];
  if (rename_live) {
    fs::rename(files[0], fs::path(files[0]).concat(".moved"));
  } else {
    std::string name = files[0].filename().string();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](char c) { return static_cast<char>(std::toupper(c)); });
    copy.replace_filename(name.substr(0, name.size() - 8) + ".segment");
  }
  fs::copy_file(rename_live ? fs::path(files[0]).concat(".moved") : files[0], copy);
  (void)test.open_vault().audit_events(kAdmin, {});
  (void)vault.get_credential(user_of(1), "db");
  EXPECT_NO_THROW(vault.update_password(user_of(1), "db", SecretString("pw2")));
  vault = test.open_vault();
  test.expect_verified_chain_with_gets(4);
}

TEST_F(AuditTrailTest, LiveSegmentFileCopiedUnderAnotherSpellingStopsNoWriter) {
  live_segment_copied(*this, false);
}

TEST_F(AuditTrailTest, LiveSegmentFileRenamedAndCopiedBackStopsNoWriter) {
  live_segment_copied(*this, true);
}

// A power failure can leave a file's last entry with its length but not
// all of its bytes (zeros), or cut short: the torn end of the segment, not
// damage. That read's event was written, but lost with the machine.
TEST_F(AuditTrailTest, TornLastSegmentEntryIsDroppedQuietly) {
  ASSERT_TRUE(
      edit_segment_of_a_killed_reader([](std::string& bytes) { bytes.resize(bytes.size() - 10); }));
  expect_verified_chain_with_gets(2);
}

TEST_F(AuditTrailTest, LastEntryZeroedByAPowerFailureIsDroppedQuietly) {
  ASSERT_TRUE(edit_segment_of_a_killed_reader(
      [](std::string& bytes) { bytes.replace(bytes.size() - 20, 20, std::string(20, '\0')); }));
  expect_verified_chain_with_gets(2);
}

// A long-lived handle's segment file does not grow without end: once it
// holds 4 MiB, the next anchor is made durable and the file emptied (its
// entries are in the vault by then). Every read's event is in the trail.
// `reads_between_writes` 0: a handle that only reads (its reads anchor
// every 1,024 entries or second); else one that also writes that often
// (each write anchors, durably, in its transaction).
void segment_file_stays_small(AuditTrailTest& test, int reads_between_writes) {
  int reads = 0;
  std::uintmax_t largest = 0;
  bool emptied = false;
  {
    auto vault = test.open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    const int batch = reads_between_writes > 0 ? reads_between_writes : 500;
    for (int updates = 0; reads < 20'000; ++updates) {
      for (int i = 0; i < batch; ++i) (void)vault.get_credential(user_of(1), "db");
      reads += batch;
      if (reads_between_writes > 0) {
        vault.update_password(user_of(1), "db", SecretString("pw-" + std::to_string(updates)));
      }
      const auto files = test.segment_files();
      ASSERT_EQ(files.size(), 1u);
      const std::uintmax_t size = fs::file_size(files[0]);
      emptied = emptied || size < largest;
      largest = std::max(largest, size);
    }
  }
  EXPECT_LT(largest, std::uintmax_t{5} << 20);
  if (reads_between_writes > 0) {
    EXPECT_LT(largest, std::uintmax_t{64} << 10) << "each write empties the file";
  } else {
    EXPECT_TRUE(emptied) << "the file was never emptied";
  }
  EXPECT_TRUE(test.segment_files().empty());
  test.expect_verified_chain_with_gets(reads);
}

TEST_F(AuditTrailTest, LongLivedReadersSegmentFileStaysSmall) {
  segment_file_stays_small(*this, 0);
}

TEST_F(AuditTrailTest, SegmentFileOfAHandleThatAlsoWritesStaysSmall) {
  segment_file_stays_small(*this, 20);
}

TEST_F(AuditTrailTest, SegmentFileIsPrivateAndHoldsNoSecret) {
  auto vault = open_vault();
  vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "canary-segment-pw"});
  (void)vault.get_credential(user_of(1), "db");
  struct stat st {};
  ASSERT_EQ(::stat(segment_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const auto files = segment_files();
  ASSERT_EQ(files.size(), 1u);
  ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string bytes = testing::read_file(files[0]);
  EXPECT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.find("canary-segment-pw"), std::string::npos);
  EXPECT_EQ(bytes.find("\"get\""), std::string::npos) << "events are sealed";
}

// A handle anchors its segment when it closes and removes the file.
TEST_F(AuditTrailTest, ClosingAnchorsAndRemovesTheSegmentFile) {
  {
    auto vault = open_vault();
    vault.store_credential(user_of(1), {.name = "db", .host = "h", .password = "pw"});
    (void)vault.get_credential(user_of(1), "db");
    EXPECT_EQ(segment_files().size(), 1u);
  }
  EXPECT_TRUE(segment_files().empty());
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
