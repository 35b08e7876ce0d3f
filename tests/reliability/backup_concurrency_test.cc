// Backup under concurrent writes (issue #6): writer processes, and a writer
// thread sharing the vault handle that takes the library backups, store and
// update credentials in a loop and log every write after the call returned.
// Meanwhile backups are taken, by the library (Vault::backup) and by the real
// binary (`credential_manager backup --out FILE`). Each backup restores (by
// restore_vault or `credential_manager restore`) into an empty directory to a
// vault that verifies, holds every write acknowledged before the backup
// began, holds nothing that was never written, and is one snapshot: of each
// writer's writes it holds a prefix, and of each batch all or none
// (docs/RELIABILITY.md).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "credentials/credentials.h"
#include "reliability/reliability.h"
#include "support/cli_runner.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const UserContext kAdmin{"auditor", "auditor", {"admin"}};
constexpr int kWriterProcesses = 3;
constexpr int kWriters = kWriterProcesses + 1;  // the last one is a thread of the test process
constexpr int kFiller = 1000;                   // credentials stored before the writers start
// New names stop there (updates go on): it bounds the work of checking a backup.
constexpr std::size_t kMaxNamesPerWriter = 250;

std::string writer_id(int w) { return fmt::format("writer{}", w); }
UserContext writer_user(int w) { return {writer_id(w), writer_id(w), {"user"}}; }
// The only password ever written for (writer, name, version).
std::string value_of(int w, const std::string& name, std::uint64_t version) {
  return fmt::format("w{}-{}-v{}-'\"@:/?#%", w, name, version);
}
std::string filler_password(int i) { return fmt::format("filler-{}", i); }

// One acknowledged write: a line "<name> <version> <group>" appended to the
// writer's log after the call returned; the writes of one store_credentials
// batch share a group (the index of the first of them), a lone write's group
// is its own index.
struct Ack {
  std::string name;
  std::uint64_t version = 0;
  std::size_t group = 0;
};

// One write() per line on an O_APPEND file: a reader sees whole lines, or a
// last line without its '\n' (which it ignores).
bool write_line(int fd, const std::string& line) {
  return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}
void append_line(int fd, const std::string& line) {
  if (!write_line(fd, line)) throw std::runtime_error("cannot append to the acknowledgement log");
}

// Writes until `stop_file` exists: new credentials (alone or in a batch of
// three) and password updates of the writer's earlier ones.
void run_writer(Vault& vault, int w, int ack_fd, const fs::path& stop_file, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const UserContext user = writer_user(w);
  std::vector<std::pair<std::string, std::uint64_t>> names;  // name, current version
  std::size_t index = 0;
  while (::access(stop_file.c_str(), F_OK) != 0) {
    // A pause of 0-2 ms: writers that never let go of the write lock starve
    // the backup's own transactions (SQLite's busy handler sleeps and
    // retries), which only makes the test slow.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    const int dice = static_cast<int>(rng() % 100);
    const std::size_t room = kMaxNamesPerWriter - names.size();
    if (names.size() < 3 || (dice < 15 && room >= 1)) {
      const std::string name = fmt::format("n{}", names.size());
      (void)vault.store_credential(
          user, {.name = name, .host = "h", .username = "u", .password = value_of(w, name, 1)});
      names.emplace_back(name, 1);
      append_line(ack_fd, fmt::format("{} 1 {}\n", name, index));
      ++index;
    } else if (dice < 20 && room >= 3) {
      std::vector<NewCredential> batch;
      for (std::size_t k = names.size(); k < names.size() + 3; ++k) {
        const std::string name = fmt::format("n{}", k);
        batch.push_back(
            {.name = name, .host = "h", .username = "u", .password = value_of(w, name, 1)});
      }
      (void)vault.store_credentials(user, std::move(batch));
      std::string lines;
      const std::size_t group = index;
      for (int k = 0; k < 3; ++k) {
        const std::string name = fmt::format("n{}", names.size());
        names.emplace_back(name, 1);
        lines += fmt::format("{} 1 {}\n", name, group);
        ++index;
      }
      append_line(ack_fd, lines);
    } else {
      auto& [name, version] = names[rng() % names.size()];
      version = vault.update_password(user, name, value_of(w, name, version + 1), version);
      append_line(ack_fd, fmt::format("{} {} {}\n", name, version, index));
      ++index;
    }
  }
}

[[noreturn]] void writer_process(const fs::path& dir, const std::string& key, int w,
                                 const fs::path& ack_file, const fs::path& stop_file,
                                 std::uint64_t seed) {
  const int fd = ::open(ack_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) ::_exit(5);
  try {
    Vault vault = Vault::open({.directory = dir, .master_key = key, .create_if_missing = false});
    run_writer(vault, w, fd, stop_file, seed);
  } catch (const std::exception& e) {
    std::string what = e.what();
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    (void)write_line(fd, fmt::format("F {}\n", what));
    ::_exit(3);
  }
  ::_exit(0);
}

// The complete lines of a writer's log; a line starting "F " is a failure.
std::vector<Ack> read_acks(const fs::path& file, std::vector<std::string>* failures = nullptr) {
  std::string text = testing::read_file(file);
  text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  std::vector<Ack> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("F ")) {
      if (failures) failures->push_back(line);
      continue;
    }
    std::istringstream in(line);
    Ack ack;
    in >> ack.name >> ack.version >> ack.group;
    out.push_back(ack);
  }
  return out;
}

struct Backup {
  fs::path file;
  bool by_cli = false;
  std::vector<std::size_t> acked_before;  // per writer: acks logged before the backup began
  std::vector<std::size_t> acked_after;   // per writer: acks logged when it returned
};

struct Figures {
  long acked_before = 0;          // writes acknowledged before a backup began (all found in it)
  long acked_during = 0;          // writes acknowledged while a backup ran
  long captured_after_start = 0;  // writes found in a backup but acknowledged after it began
  long failures = 0;
};

// Restores `backup` into an empty directory and checks it against the logs.
void check_backup(const Backup& backup, int round, const fs::path& restore_dir,
                  const std::string& key, const std::vector<std::vector<Ack>>& logs, Figures& f) {
  const auto fail = [&](const std::string& what) {
    ADD_FAILURE() << "backup " << round << (backup.by_cli ? " (CLI)" : " (library)") << ": "
                  << what;
    ++f.failures;
  };
  const VerifyReport checked = verify_backup(backup.file, key);
  if (!checked.ok()) {
    fail("verify_backup: " +
         (checked.problems.empty() ? checked.audit.problem : checked.problems.front()));
  }

  // Library and CLI backups each restored both ways, into an empty directory
  // as a user would prepare it.
  fs::create_directory(restore_dir);
  if (round / 2 % 2 == 0) {
    restore_vault(backup.file, restore_dir, key);
  } else {
    const testing::CliResult restored = testing::run_cli(
        {"restore", "--from", backup.file.string(), "--vault-dir", restore_dir.string()},
        {{"CREDENTIAL_MASTER_KEY", key}});
    if (restored.exit_code != 0) {
      std::ostringstream text;
      text << restored;
      fail("credential_manager restore failed: " + text.str());
      return;
    }
  }
  Vault vault =
      Vault::open({.directory = restore_dir, .master_key = key, .create_if_missing = false});
  const VerifyReport report = vault.verify();
  if (!report.ok()) {
    fail("verify: " + (report.problems.empty() ? report.audit.problem : report.problems.front()));
  }

  std::vector<std::set<std::pair<std::string, std::uint64_t>>> acknowledged(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    for (const Ack& ack : logs[w]) acknowledged[w].emplace(ack.name, ack.version);
  }
  // What the restored vault holds, checked password by password.
  std::vector<std::map<std::string, std::uint64_t>> held(kWriters);
  int filler = 0;
  for (const CredentialInfo& info : vault.list_credentials(kAdmin)) {
    const Credential c = vault.get_credential(kAdmin, info.owner, info.name);
    if (info.owner == "filler") {
      if (c.password.reveal() != filler_password(std::stoi(info.name.substr(1)))) {
        fail("filler " + info.name + " reads garbage");
      }
      ++filler;
      continue;
    }
    int w = -1;
    for (int i = 0; i < kWriters; ++i) {
      if (info.owner == writer_id(i)) w = i;
    }
    if (w < 0) {
      fail("a credential of an unknown owner: " + info.owner);
      continue;
    }
    if (c.password.reveal() != value_of(w, info.name, c.version)) {
      fail(fmt::format("{}/{} version {} does not read the password written for that version",
                       info.owner, info.name, c.version));
    }
    if (!acknowledged[w].contains({info.name, c.version})) {
      fail(
          fmt::format("{}/{} version {} was never acknowledged", info.owner, info.name, c.version));
    }
    held[w][info.name] = c.version;
  }
  if (filler != kFiller) fail(fmt::format("{} filler credentials, expected {}", filler, kFiller));

  for (int w = 0; w < kWriters; ++w) {
    const std::vector<Ack>& log = logs[w];
    const auto included = [&](const Ack& ack) {
      const auto it = held[w].find(ack.name);
      return it != held[w].end() && it->second >= ack.version;
    };
    std::size_t prefix = 0;
    while (prefix < log.size() && included(log[prefix])) ++prefix;
    if (prefix < backup.acked_before[w]) {
      fail(fmt::format(
          "writer {}: write {} ({} version {}) was acknowledged before the backup began but is "
          "not in it",
          w, prefix, log[prefix].name, log[prefix].version));
    }
    for (std::size_t i = prefix; i < log.size(); ++i) {
      if (included(log[i])) {
        fail(fmt::format("writer {}: the backup holds write {} but not write {}: not one snapshot",
                         w, i, prefix));
        break;
      }
    }
    // A batch is all or nothing: the prefix never ends inside one.
    if (prefix > 0 && prefix < log.size() && log[prefix].group == log[prefix - 1].group) {
      fail(fmt::format("writer {}: the backup holds part of the batch starting at write {}", w,
                       log[prefix].group));
    }
    f.acked_before += static_cast<long>(std::min(prefix, backup.acked_before[w]));
    f.acked_during += static_cast<long>(backup.acked_after[w] - backup.acked_before[w]);
    if (prefix > backup.acked_before[w]) {
      f.captured_after_start += static_cast<long>(prefix - backup.acked_before[w]);
    }
  }
}

TEST(BackupConcurrencyTest, BackupsDuringWritesRestoreEveryAcknowledgedWrite) {
  const int rounds = testing::count_for_mode(16, 100);
  const std::uint64_t seed = testing::test_seed();
  std::mt19937_64 rng(seed);
  TempDir tmp;
  const fs::path dir = tmp.path() / "vault";
  const std::string key(generate_master_key().reveal());
  const fs::path stop_file = tmp.path() / "stop";
  const auto ack_file = [&](int w) { return tmp.path() / fmt::format("acks-{}.txt", w); };

  {
    Vault vault = Vault::open({.directory = dir, .master_key = key});
    std::vector<NewCredential> batch;
    for (int i = 0; i < kFiller; ++i) {
      batch.push_back({.name = fmt::format("f{}", i), .host = "h", .password = filler_password(i)});
    }
    (void)vault.store_credentials({"filler", "filler", {"user"}}, std::move(batch));
  }

  // The writer processes are forked before the test process starts a thread.
  std::vector<pid_t> children;
  for (int w = 0; w < kWriterProcesses; ++w) {
    const std::uint64_t writer_seed = rng();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) writer_process(dir, key, w, ack_file(w), stop_file, writer_seed);
    children.push_back(pid);
  }
  Vault vault = Vault::open({.directory = dir, .master_key = key, .create_if_missing = false});
  std::string thread_failure;
  std::thread writer_thread([&, writer_seed = rng()] {
    const int fd =
        ::open(ack_file(kWriters - 1).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    try {
      run_writer(vault, kWriters - 1, fd, stop_file, writer_seed);
    } catch (const std::exception& e) {
      thread_failure = e.what();
    }
    ::close(fd);
  });
  const auto ack_counts = [&] {
    std::vector<std::size_t> counts;
    for (int w = 0; w < kWriters; ++w) counts.push_back(read_acks(ack_file(w)).size());
    return counts;
  };
  // Every writer is under way before the first backup.
  for (int wait = 0; wait < 3000; ++wait) {
    const auto counts = ack_counts();
    if (*std::min_element(counts.begin(), counts.end()) >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::vector<Backup> backups;
  for (int round = 0; round < rounds; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 80));
    Backup backup{
        tmp.path() / fmt::format("backup-{}.db", round), round % 2 == 1, ack_counts(), {}};
    if (backup.by_cli) {
      const testing::CliResult result = testing::run_cli(
          {"backup", "--out", backup.file.string()},
          {{"CREDENTIAL_MASTER_KEY", key}, {"CREDENTIAL_VAULT_DIR", dir.string()}});
      EXPECT_EQ(result.exit_code, 0) << result;
    } else {
      vault.backup(backup.file);
    }
    backup.acked_after = ack_counts();
    backups.push_back(std::move(backup));
  }

  {
    const int fd = ::open(stop_file.c_str(), O_WRONLY | O_CREAT, 0600);
    ::close(fd);
  }
  writer_thread.join();
  EXPECT_EQ(thread_failure, "") << "the writer thread failed";
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "a writer process failed: " << status;
  }
  std::vector<std::vector<Ack>> logs;
  long writes = 0;
  for (int w = 0; w < kWriters; ++w) {
    std::vector<std::string> failures;
    logs.push_back(read_acks(ack_file(w), &failures));
    writes += static_cast<long>(logs.back().size());
    for (const auto& failure : failures) ADD_FAILURE() << "writer " << w << ": " << failure;
  }

  Figures f;
  for (std::size_t round = 0; round < backups.size(); ++round) {
    check_backup(backups[round], static_cast<int>(round),
                 tmp.path() / fmt::format("restored-{}", round), key, logs, f);
  }
  // The live vault verifies too, and holds the last write of every name.
  EXPECT_TRUE(vault.verify().ok());
  for (int w = 0; w < kWriters; ++w) {
    std::map<std::string, std::uint64_t> last;
    for (const Ack& ack : logs[w]) last[ack.name] = std::max(last[ack.name], ack.version);
    for (const auto& [name, version] : last) {
      const Credential c = vault.get_credential(kAdmin, writer_id(w), name);
      EXPECT_EQ(c.version, version) << writer_id(w) << "/" << name;
      EXPECT_EQ(c.password.reveal(), value_of(w, name, version)) << writer_id(w) << "/" << name;
    }
  }

  testing::print_figures(
      "backup-concurrency",
      fmt::format(
          "backups {} (library {}, CLI {}), writers {} ({} processes, 1 thread), writes {}, writes "
          "acknowledged before a backup began and found in it {}, writes acknowledged while a "
          "backup ran {}, writes found in a backup though acknowledged after it began {}, "
          "failures {}, seed {}",
          rounds, (rounds + 1) / 2, rounds / 2, kWriters, kWriterProcesses, writes, f.acked_before,
          f.acked_during, f.captured_after_start, f.failures, seed));
  EXPECT_EQ(f.failures, 0);
  // The writers really wrote while backups were taken, or the test proved nothing.
  EXPECT_GT(f.acked_during, 0);
  EXPECT_GT(f.acked_before, 0);
}

}  // namespace
}  // namespace credentials
