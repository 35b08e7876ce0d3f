// Key crash suite (issue #6): the real `credential_manager rotate-master-key`
// and `credential_manager reencrypt`, spawned as child processes on a vault of
// a few thousand credentials, are killed with SIGKILL at random moments.
// After every kill the vault opens with the old master key or the new one
// (exactly one of them), verifies, and every credential reads its password;
// an interrupted reencrypt resumes, and a final one moves every record to the
// newest data key (docs/RELIABILITY.md).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
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
using Clock = std::chrono::steady_clock;

const UserContext kAdmin{"auditor", "auditor", {"admin"}};
constexpr int kOwners = 3;
constexpr int kPerOwner = 1000;   // 3,000 credentials
constexpr int kUpdateEvery = 10;  // and 300 second versions: 3,300 stored versions

UserContext owner(int o) {
  const std::string id = fmt::format("owner{}", o);
  return {id, id, {"user"}};
}
std::string name_of(int i) { return fmt::format("db{:04}", i); }
std::string password_of(int o, int i, int version) {
  return fmt::format("pw-{}-{}-v{}-'\"@:/?#%", o, i, version);
}

// The vault every test of this suite starts from, and what it must hold.
struct TestVault {
  fs::path dir;
  std::string key;
  std::map<std::pair<int, int>, int> versions;  // (owner, index) -> current version
  std::int64_t stored_versions = 0;
};

TestVault make_vault(const fs::path& dir) {
  TestVault v{dir, std::string(generate_master_key().reveal()), {}, 0};
  Vault vault = Vault::open({.directory = dir, .master_key = v.key});
  for (int o = 0; o < kOwners; ++o) {
    std::vector<NewCredential> batch;
    for (int i = 0; i < kPerOwner; ++i) {
      batch.push_back({.name = name_of(i),
                       .host = "db.example.com",
                       .database = "prod",
                       .username = "svc",
                       .password = password_of(o, i, 1)});
      v.versions[{o, i}] = 1;
    }
    (void)vault.store_credentials(owner(o), std::move(batch));
  }
  for (int o = 0; o < kOwners; ++o) {
    for (int i = 0; i < kPerOwner; i += kUpdateEvery) {
      v.versions[{o, i}] =
          static_cast<int>(vault.update_password(owner(o), name_of(i), password_of(o, i, 2)));
    }
  }
  v.stored_versions = kOwners * kPerOwner + kOwners * (kPerOwner / kUpdateEvery);
  return v;
}

std::optional<Vault> try_open(const fs::path& dir, const std::string& key) {
  try {
    return Vault::open({.directory = dir, .master_key = key, .create_if_missing = false});
  } catch (const DecryptionFailedError&) {
    return std::nullopt;
  }
}

// Verifies the vault and reads every credential; returns the number of
// problems found (each reported as a test failure).
int check_contents(Vault& vault, const TestVault& expected, int iteration) {
  int problems = 0;
  const VerifyReport report = vault.verify();
  if (!report.ok()) {
    ADD_FAILURE() << "iteration " << iteration << ": verify failed: "
                  << (report.problems.empty() ? report.audit.problem : report.problems.front());
    ++problems;
  }
  if (report.versions != expected.stored_versions) {
    ADD_FAILURE() << "iteration " << iteration << ": verify saw " << report.versions
                  << " stored versions, expected " << expected.stored_versions;
    ++problems;
  }
  const auto listed = vault.list_credentials(kAdmin);
  if (listed.size() != expected.versions.size()) {
    ADD_FAILURE() << "iteration " << iteration << ": " << listed.size()
                  << " credentials listed, expected " << expected.versions.size();
    ++problems;
  }
  int wrong = 0;
  for (const auto& [where, version] : expected.versions) {
    const auto [o, i] = where;
    try {
      const Credential c = vault.get_credential(kAdmin, owner(o).user_id, name_of(i));
      if (c.password.reveal() != password_of(o, i, version) ||
          c.version != static_cast<std::uint64_t>(version)) {
        ++wrong;
      }
    } catch (const Error& e) {
      if (++wrong <= 3)
        ADD_FAILURE() << "iteration " << iteration << ": " << name_of(i) << ": " << e.what();
    }
  }
  if (wrong > 0) {
    ADD_FAILURE() << "iteration " << iteration << ": " << wrong
                  << " credentials read a wrong password or version";
    ++problems;
  }
  return problems;
}

// Records per data key, and the newest (current) data key.
struct DataKeys {
  std::map<std::int64_t, std::int64_t> records;
  std::int64_t current = 0;
  [[nodiscard]] std::int64_t total() const {
    std::int64_t sum = 0;
    for (const auto& [id, n] : records) sum += n;
    return sum;
  }
  [[nodiscard]] std::int64_t not_current() const { return total() - on_current(); }
  [[nodiscard]] std::int64_t on_current() const {
    const auto it = records.find(current);
    return it == records.end() ? 0 : it->second;
  }
};

DataKeys data_keys(Vault& vault) {
  DataKeys out;
  for (const KeyInfo& key : vault.keys()) {
    if (key.purpose != "data") continue;
    out.records[key.key_id] = key.records;
    if (key.current) out.current = key.key_id;
  }
  return out;
}

// The real binary, started without waiting for it: argv and envp are built
// before fork, stdin and stdout are /dev/null, stderr goes to a file.
class CliProcess {
 public:
  CliProcess(const std::vector<std::string>& args, const testing::Environment& env,
             const fs::path& stderr_file) {
    storage_.push_back(testing::cli_path().string());
    storage_.insert(storage_.end(), args.begin(), args.end());
    const std::size_t argument_count = storage_.size();
    const char* path = std::getenv("PATH");
    storage_.push_back(fmt::format("PATH={}", path ? path : "/usr/bin:/bin"));
    for (const auto& [name, value] : env) storage_.push_back(name + "=" + value);
    for (std::size_t i = 0; i < storage_.size(); ++i) {
      (i < argument_count ? argv_ : envp_).push_back(storage_[i].data());
    }
    argv_.push_back(nullptr);
    envp_.push_back(nullptr);
    const std::string err = stderr_file.string();
    start_ = Clock::now();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setsid();
      const int null_fd = ::open("/dev/null", O_RDWR);
      const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (null_fd < 0 || err_fd < 0) ::_exit(126);
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      ::execve(argv_[0], argv_.data(), envp_.data());
      ::_exit(127);
    }
  }
  ~CliProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      (void)wait();
    }
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0; }
  [[nodiscard]] Clock::time_point start() const { return start_; }
  void kill() const { ::kill(pid_, SIGKILL); }
  // The exit code, or 128+N when killed by signal N.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return WIFEXITED(status)     ? WEXITSTATUS(status)
           : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                 : -1;
  }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> argv_, envp_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  Clock::time_point start_;
};

constexpr int kKilled = 128 + SIGKILL;

// Runs the binary to completion and returns how long it took, in microseconds.
std::int64_t timed_run(const std::vector<std::string>& args, const testing::Environment& env,
                       const fs::path& stderr_file) {
  CliProcess process(args, env, stderr_file);
  EXPECT_TRUE(process.started());
  const int code = process.wait();
  EXPECT_EQ(code, 0) << "uninterrupted run failed: " << testing::read_file(stderr_file);
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - process.start())
      .count();
}

// Starts the binary, kills it after `delay_us` (measured from the fork), and
// returns its exit code (kKilled when the kill landed before it finished).
int run_and_kill(const std::vector<std::string>& args, const testing::Environment& env,
                 const fs::path& stderr_file, std::int64_t delay_us) {
  CliProcess process(args, env, stderr_file);
  EXPECT_TRUE(process.started());
  std::this_thread::sleep_until(process.start() + std::chrono::microseconds(delay_us));
  process.kill();
  return process.wait();
}

testing::Environment cli_env(const fs::path& dir, const std::string& key) {
  return {{"CREDENTIAL_VAULT_DIR", dir.string()}, {"CREDENTIAL_MASTER_KEY", key}};
}

TEST(KeyRotationCrashTest, SigkillDuringRotateMasterKeyLeavesExactlyOneKeyThatOpensTheVault) {
  const int iterations = testing::count_for_mode(20, 100);
  const std::uint64_t seed = testing::test_seed();
  std::mt19937_64 rng(seed);
  TempDir tmp;
  TestVault expected = make_vault(tmp.path() / "vault");
  const fs::path err_file = tmp.path() / "stderr.txt";

  // One uninterrupted rotation: the kills below land anywhere from the start
  // of the process to a little past the end of such a run.
  std::string next_key(generate_master_key().reveal());
  testing::Environment env = cli_env(expected.dir, expected.key);
  env["CREDENTIAL_MASTER_KEY_NEW"] = next_key;
  const std::int64_t full_us = timed_run({"rotate-master-key"}, env, err_file);
  ASSERT_FALSE(try_open(expected.dir, expected.key).has_value())
      << "the old key still opens the vault";
  expected.key = next_key;

  int killed_old_key = 0;  // killed, and the old key opens the vault: before the commit
  int killed_new_key = 0;  // killed, and the new key opens it: after the commit
  int finished = 0, failures = 0;
  // Until a kill landed while the rotation ran, a few more iterations than planned.
  int iteration = 0;
  for (; (iteration < iterations ||
          (killed_old_key + killed_new_key == 0 && iteration < 4 * iterations)) &&
         failures == 0;
       ++iteration) {
    next_key = std::string(generate_master_key().reveal());
    env = cli_env(expected.dir, expected.key);
    env["CREDENTIAL_MASTER_KEY_NEW"] = next_key;
    const auto delay =
        static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(full_us * 6 / 5 + 1));
    const int code = run_and_kill({"rotate-master-key"}, env, err_file, delay);
    if (code != kKilled && code != 0) {
      ADD_FAILURE() << "iteration " << iteration << ": rotate-master-key exited " << code << ": "
                    << testing::read_file(err_file);
      ++failures;
      break;
    }
    std::optional<Vault> with_old = try_open(expected.dir, expected.key);
    std::optional<Vault> with_new = try_open(expected.dir, next_key);
    if (with_old.has_value() == with_new.has_value()) {
      ADD_FAILURE() << "iteration " << iteration << " (killed after " << delay << " us, exit "
                    << code << "): " << (with_old ? "both keys open" : "neither key opens")
                    << " the vault";
      ++failures;
      break;
    }
    if (code == 0) {
      ++finished;
      if (!with_new) {
        ADD_FAILURE() << "iteration " << iteration
                      << ": rotate-master-key succeeded but the new key does not open";
        ++failures;
        break;
      }
    } else if (with_new) {
      ++killed_new_key;
    } else {
      ++killed_old_key;
    }
    if (with_new) expected.key = next_key;
    Vault& vault = with_new ? *with_new : *with_old;
    failures += check_contents(vault, expected, iteration);
  }

  // A last rotation, uninterrupted, from whichever key the loop left.
  next_key = std::string(generate_master_key().reveal());
  env = cli_env(expected.dir, expected.key);
  env["CREDENTIAL_MASTER_KEY_NEW"] = next_key;
  (void)timed_run({"rotate-master-key"}, env, err_file);
  EXPECT_FALSE(try_open(expected.dir, expected.key).has_value());
  std::optional<Vault> vault = try_open(expected.dir, next_key);
  ASSERT_TRUE(vault.has_value());
  expected.key = next_key;
  failures += check_contents(*vault, expected, iteration);

  testing::print_figures(
      "key-rotation-crash",
      fmt::format(
          "credentials {}, stored versions {}, iterations {} (uninterrupted run {} us), SIGKILLs "
          "landed mid-run {} (old key opens {}, new key opens {}), runs that finished first {}, "
          "failures {}, seed {}",
          expected.versions.size(), expected.stored_versions, iteration, full_us,
          killed_old_key + killed_new_key, killed_old_key, killed_new_key, finished, failures,
          seed));
  EXPECT_EQ(failures, 0);
  // The suite proves something only if kills land while the rotation runs.
  EXPECT_GT(killed_old_key + killed_new_key, 0);
}

TEST(KeyRotationCrashTest, SigkillDuringReencryptLeavesAVaultThatVerifiesAndResumes) {
  const int iterations = testing::count_for_mode(20, 100);
  const std::uint64_t seed = testing::test_seed();
  std::mt19937_64 rng(seed);
  TempDir tmp;
  TestVault expected = make_vault(tmp.path() / "vault");
  const fs::path err_file = tmp.path() / "stderr.txt";
  const testing::Environment env = cli_env(expected.dir, expected.key);
  // Small batches: many transactions, so that kills land between and inside them.
  const std::vector<std::string> reencrypt = {"reencrypt", "--batch", "25"};

  // One uninterrupted run that moves every record, and one with nothing to
  // move (the process starting, opening the vault and exiting): a kill lands
  // anywhere from the start to a little past the expected end of a run.
  std::int64_t full_us = 0, startup_us = 0;
  {
    Vault vault = Vault::open({.directory = expected.dir, .master_key = expected.key});
    (void)vault.rotate_data_key();
    full_us = timed_run(reencrypt, env, err_file);
    const DataKeys keys = data_keys(vault);
    ASSERT_EQ(keys.not_current(), 0) << "the uninterrupted reencrypt left records behind";
    ASSERT_EQ(keys.on_current(), expected.stored_versions);
    startup_us = std::min(timed_run(reencrypt, env, err_file), full_us);
  }

  int killed_before_any_batch = 0;  // nothing moved
  int killed_mid_run = 0;  // some records moved, some not: between the old keys and the new
  int killed_after_last_batch = 0;  // everything moved, the process not yet gone
  int finished = 0, data_key_rotations = 1, failures = 0;
  std::int64_t moved_by_killed_runs = 0;
  // Until a kill left a move half done, a few more iterations than planned.
  int iteration = 0;
  for (; (iteration < iterations || (killed_mid_run == 0 && iteration < 4 * iterations)) &&
         failures == 0;
       ++iteration) {
    DataKeys before;
    {
      Vault vault = Vault::open({.directory = expected.dir, .master_key = expected.key});
      // A new data key when everything is on the newest one, and now and then
      // in the middle of a move too (records then sit under three keys).
      if (data_keys(vault).not_current() == 0 || rng() % 4 == 0) {
        (void)vault.rotate_data_key();
        ++data_key_rotations;
      }
      before = data_keys(vault);
    }
    const std::int64_t expected_us =
        startup_us + (full_us - startup_us) * before.not_current() / expected.stored_versions;
    const auto delay =
        static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(expected_us * 6 / 5 + 1));
    const int code = run_and_kill(reencrypt, env, err_file, delay);
    if (code != kKilled && code != 0) {
      ADD_FAILURE() << "iteration " << iteration << ": reencrypt exited " << code << ": "
                    << testing::read_file(err_file);
      ++failures;
      break;
    }
    std::optional<Vault> vault = try_open(expected.dir, expected.key);
    if (!vault) {
      ADD_FAILURE() << "iteration " << iteration << ": the vault no longer opens with its key";
      ++failures;
      break;
    }
    const DataKeys after = data_keys(*vault);
    if (after.current != before.current || after.total() != expected.stored_versions) {
      ADD_FAILURE() << "iteration " << iteration << ": data key " << after.current << " holds "
                    << after.total() << " records in all; expected key " << before.current
                    << " and " << expected.stored_versions;
      ++failures;
    }
    const std::int64_t moved = after.on_current() - before.on_current();
    if (code == 0) {
      ++finished;
      if (after.not_current() != 0) {
        ADD_FAILURE() << "iteration " << iteration << ": reencrypt succeeded and left "
                      << after.not_current() << " records under older keys";
        ++failures;
      }
    } else if (moved == 0) {
      ++killed_before_any_batch;
    } else if (after.not_current() > 0) {
      ++killed_mid_run;
      moved_by_killed_runs += moved;
    } else {
      ++killed_after_last_batch;
      moved_by_killed_runs += moved;
    }
    failures += check_contents(*vault, expected, iteration);
  }

  // The last reencrypt, uninterrupted, moves whatever the kills left behind.
  const testing::CliResult last = testing::run_cli(reencrypt, env);
  EXPECT_EQ(last.exit_code, 0) << last;
  Vault vault = Vault::open({.directory = expected.dir, .master_key = expected.key});
  const DataKeys keys = data_keys(vault);
  EXPECT_EQ(keys.not_current(), 0) << "records left under older data keys";
  EXPECT_EQ(keys.on_current(), expected.stored_versions);
  failures += check_contents(vault, expected, iteration);
  for (const CredentialVersion& v :
       vault.history(kAdmin, vault.get_credential(kAdmin, "owner0", name_of(0)).credential_id)) {
    EXPECT_EQ(v.key_id, keys.current) << "version " << v.version;
  }

  testing::print_figures(
      "reencrypt-crash",
      fmt::format(
          "credentials {}, stored versions {}, iterations {} (uninterrupted run {} us, of which "
          "start-up {} us), data key rotations {}, SIGKILLs before any batch {}, mid-run {} "
          "(records moved by killed runs {}), after the last batch {}, runs that finished first "
          "{}, failures {}, seed {}",
          expected.versions.size(), expected.stored_versions, iteration, full_us, startup_us,
          data_key_rotations, killed_before_any_batch, killed_mid_run, moved_by_killed_runs,
          killed_after_last_batch, finished, failures, seed));
  EXPECT_EQ(failures, 0);
  // The suite proves something only if some kills left a move half done.
  EXPECT_GT(killed_mid_run, 0);
}

}  // namespace
}  // namespace credentials
