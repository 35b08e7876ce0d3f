// Secret leaks: canary passwords (with @:/?#%[]'"\ in them) go through the
// real credential_manager binary with --password-stdin, on success and error
// paths (wrong password at a real PostgreSQL, a server that never answers, a
// refused port, a malformed DATABASE_URL). Every place a secret could end up
// is scanned for the canary's unique token, which survives any escaping of
// its special characters: stdout, stderr, the vault files, the decrypted
// audit events, every file the runs left in TMPDIR and the working
// directory, /proc/<pid>/cmdline and /proc/<pid>/environ of the running CLI,
// and a forced crash of the CLI must write no core dump.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "credentials/credentials.h"
#include "credentials/skills.h"
#include "reliability/reliability.h"
#include "support/cli_runner.h"
#include "support/postgres.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string random_token() {
  std::string key(generate_master_key().reveal());
  std::string token = "Kq7canary";
  for (char c : key.substr(0, 12)) token.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : 'x');
  return token;
}

struct Spawned {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;
};

// fork+exec of the CLI with pipes, so the test can inspect it while it runs.
Spawned spawn_cli(const std::vector<std::string>& args, const testing::Environment& env,
                  const fs::path& cwd, bool unlimited_core) {
  int in[2], out[2], err[2];
  if (::pipe(in) || ::pipe(out) || ::pipe(err)) throw std::runtime_error("pipe");
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  const std::string path = testing::cli_path().string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    if (unlimited_core) {
      const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
      ::setrlimit(RLIMIT_CORE, &unlimited);
    }
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> argv{const_cast<char*>(path.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  return {pid, in[1], out[0], err[0]};
}

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return s;
}

std::string read_proc(pid_t pid, const char* what) {
  return testing::read_file(fs::path("/proc") / std::to_string(pid) / what);
}

// A TCP server that accepts connections and never answers: a database that
// hangs, so the CLI can be inspected while it holds the password.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() {
    for (int c : clients_) ::close(c);
    ::close(fd_);
  }
  [[nodiscard]] int port() const { return port_; }
  // Waits until a client connected (the CLI is inside the connect).
  bool wait_for_client(std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) {
        clients_.push_back(c);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> clients_;
};

class LeakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_);
    fs::create_directories(work_);
    env_ = {{"PATH", "/usr/bin:/bin"},
            {"HOME", home_.path().string()},
            {"TMPDIR", tmp_.string()},
            {"CREDENTIAL_MASTER_KEY", std::string(key_.reveal())},
            {"CREDENTIAL_VAULT_DIR", (dir_.path() / "vault").string()}};
  }

  // Counts hits of any canary token in `text`; records where.
  [[nodiscard]] int count_hits(const std::string& text) const {
    int n = 0;
    for (const auto& token : tokens_) n += text.find(token) != std::string::npos;
    return n;
  }
  void scan(const std::string& where, const std::string& text) {
    ++places_;
    for (const auto& token : tokens_) {
      if (text.find(token) != std::string::npos) {
        ++hits_;
        ADD_FAILURE() << "canary " << token << " leaked into " << where;
      }
    }
  }
  void scan_tree(const fs::path& root, const std::string& label) {
    if (!fs::exists(root)) return;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file()) scan(label + ": " + entry.path().string(), testing::read_file(entry.path()));
    }
  }

  testing::CliResult cli(const std::vector<std::string>& args, std::string_view stdin_text = {},
                         const testing::Environment& extra = {}) {
    testing::Environment env = env_;
    for (const auto& [k, v] : extra) env[k] = v;
    testing::CliResult r = testing::run_cli(args, env, stdin_text, work_);
    scan("stdout of " + args[0], r.out);
    scan("stderr of " + args[0], r.err);
    ++runs_;
    return r;
  }

  std::string canary() {
    tokens_.push_back(random_token());
    return tokens_.back() + "-@:/?#%[]'\"\\ %40%2F";
  }

  TempDir dir_, home_;
  fs::path tmp_ = dir_.path() / "tmp";
  fs::path work_ = dir_.path() / "work";
  SecretString key_ = generate_master_key();
  testing::Environment env_;
  std::vector<std::string> tokens_;
  int places_ = 0, hits_ = 0, runs_ = 0;
};

TEST_F(LeakTest, CanaryPasswordsAppearNowhereOnSuccessAndErrorPaths) {
  auto& pg = testing::PostgresServer::instance();
  const std::string suffix = std::to_string(::getpid());
  const std::string role = "leak_role_" + suffix, database = "leak_db_" + suffix;
  const std::string right = canary();
  const std::string wrong = canary();
  pg.create_role(role, right);
  pg.create_database(database, role);
  const std::string port = std::to_string(pg.port());

  // add, blocked on stdin while its command line and environment are read.
  {
    Spawned p = spawn_cli({"add", "--user", "alice", "--name", "pg", "--db-type", "postgres", "--host",
                           pg.host(), "--port", port, "--database", database, "--username", role,
                           "--password-stdin", "--no-prompt"},
                          env_, work_, false);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    scan("/proc/<add>/cmdline", read_proc(p.pid, "cmdline"));
    scan("/proc/<add>/environ", read_proc(p.pid, "environ"));
    const std::string line = right + "\n";
    ASSERT_EQ(::write(p.in, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    ::close(p.in);
    const std::string out = read_all(p.out), err = read_all(p.err);
    int status = 0;
    ::waitpid(p.pid, &status, 0);
    scan("stdout of add", out);
    scan("stderr of add", err);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  }
  // Success: a real connection with the canary as the password.
  auto ok = cli({"test", "--user", "alice", "--name", "pg"});
  EXPECT_EQ(ok.exit_code, 0) << ok;
  (void)cli({"test", "--user", "alice", "--name", "pg", "--json"});
  (void)cli({"show", "--user", "alice", "--name", "pg"});
  (void)cli({"show", "--user", "alice", "--name", "pg", "--json"});
  (void)cli({"list", "--user", "alice", "--json"});
  (void)cli({"list", "--user", "admin", "--roles", "admin"});

  // Wrong password at the database.
  auto upd = cli({"update", "--user", "alice", "--name", "pg", "--password-stdin"}, wrong + "\n");
  EXPECT_EQ(upd.exit_code, 0) << upd;
  auto denied = cli({"test", "--user", "alice", "--name", "pg"});
  EXPECT_EQ(denied.exit_code, 7) << denied;
  (void)cli({"test", "--user", "alice", "--name", "pg", "--json"});

  // A refused port, and a wrong user name, with the canary password.
  auto add2 = cli({"add", "--user", "alice", "--name", "refused", "--host", "127.0.0.1", "--port", "1",
                   "--database", "d", "--username", "u", "--password-stdin", "--no-prompt"},
                  canary() + "\n");
  EXPECT_EQ(add2.exit_code, 0) << add2;
  auto refused = cli({"test", "--user", "alice", "--name", "refused"});
  EXPECT_EQ(refused.exit_code, 7) << refused;

  // A server that never answers: inspect the CLI while it waits inside the
  // connection, holding the password.
  SilentServer silent;
  auto add3 = cli({"add", "--user", "alice", "--name", "silent", "--host", "127.0.0.1", "--port",
                   std::to_string(silent.port()), "--database", "d", "--username", "u",
                   "--connection-timeout", "3", "--password-stdin", "--no-prompt"},
                  canary() + "\n");
  EXPECT_EQ(add3.exit_code, 0) << add3;
  {
    Spawned p = spawn_cli({"test", "--user", "alice", "--name", "silent"}, env_, work_, false);
    EXPECT_TRUE(silent.wait_for_client(std::chrono::seconds(20)));
    scan("/proc/<test>/cmdline", read_proc(p.pid, "cmdline"));
    scan("/proc/<test>/environ", read_proc(p.pid, "environ"));
    ::close(p.in);
    const std::string out = read_all(p.out), err = read_all(p.err);
    int status = 0;
    ::waitpid(p.pid, &status, 0);
    scan("stdout of test (timeout)", out);
    scan("stderr of test (timeout)", err);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status << " " << err;
  }

  // DATABASE_URL: malformed, and well-formed with the wrong password. The
  // URL is the user's own environment; what must not happen is the CLI
  // repeating it.
  const auto skills = dir_.path() / "skills";
  fs::create_directories(skills / "Url");
  std::ofstream(skills / "Url" / "skill.md")
      << "---\nname: Url\nexecutor: action\naction:\n  type: data_query\n  source: postgres\n"
         "  query: SELECT 1\n---\n";
  const std::string url_token = canary();
  for (const std::string& url :
       {"postgresql://u:" + url_token + "@[::1", "postgresql://u:" + url_token + "@host:notaport/db",
        "postgresql://" + role + ":" + url_token + "@" + pg.host() + ":" + port + "/" + database,
        "mysql://u:" + url_token + "@h/db", "postgresql://u:%zz" + url_token + "@h/db"}) {
    auto run = cli({"run", "--user", "alice", "--skill", "Url", "--skills-dir", skills.string()}, {},
                   {{"DATABASE_URL", url}});
    EXPECT_NE(run.exit_code, 0) << run;
  }

  // Where else the canaries could be: the vault's files, the decrypted audit
  // events, temporary files, the working directory.
  scan_tree(dir_.path() / "vault", "vault file");
  scan_tree(tmp_, "TMPDIR");
  scan_tree(work_, "working directory");
  scan_tree(home_.path(), "HOME");
  {
    Vault vault = Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone()});
    AuditQuery all;
    all.limit = 100000;
    std::string events;
    int n = 0;
    for (const auto& e : vault.audit_events({"root", "root", {"admin"}}, all)) {
      ++n;
      events += e.actor + e.action + e.owner + e.name + e.outcome + e.error + e.skill + e.query_sha256 + "\n";
    }
    EXPECT_GT(n, 10);
    scan("decrypted audit events", events);
  }
  testing::print_figures("secret-leaks",
                         fmt::format("canaries {}, CLI runs {}, places scanned {}, hits {}",
                                     tokens_.size(), runs_ + 2, places_, hits_));
  EXPECT_EQ(hits_, 0);
  // The control: the scanner finds a canary that is there, escaped or not.
  EXPECT_EQ(count_hits("xx" + tokens_.front() + "%40%3Ayy"), 1);
}

// A crash of the CLI while it holds a password (inside a connection attempt)
// must not write a core dump, even with RLIMIT_CORE unlimited when it starts.
TEST_F(LeakTest, CrashingCliWritesNoCoreDump) {
  const std::string core_pattern = testing::read_file("/proc/sys/kernel/core_pattern");
  // The control: an unhardened program in the same situation does dump
  // core, so the check below can fail.
  int control_dumps = 0;
  for (int sig : {SIGABRT, SIGSEGV}) {
    const fs::path cwd = dir_.path() / ("control-" + std::to_string(sig));
    fs::create_directories(cwd);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
      ::setrlimit(RLIMIT_CORE, &unlimited);
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      ::execl("/bin/sleep", "sleep", "30", nullptr);
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WCOREDUMP(status)) ++control_dumps;
  }

  SilentServer silent;
  auto add = testing::run_cli({"add", "--user", "alice", "--name", "silent", "--host", "127.0.0.1", "--port",
                               std::to_string(silent.port()), "--database", "d", "--username", "u",
                               "--connection-timeout", "30", "--password-stdin", "--no-prompt"},
                              env_, canary() + "\n", work_);
  ASSERT_EQ(add.exit_code, 0) << add;
  int cli_dumps = 0, core_files = 0, crashes = 0;
  for (int sig : {SIGABRT, SIGSEGV, SIGQUIT, SIGBUS}) {
    const fs::path cwd = dir_.path() / ("cli-" + std::to_string(sig));
    fs::create_directories(cwd);
    Spawned p = spawn_cli({"test", "--user", "alice", "--name", "silent"}, env_, cwd, true);
    ASSERT_TRUE(silent.wait_for_client(std::chrono::seconds(20)));
    ::kill(p.pid, sig);
    int status = 0;
    ::waitpid(p.pid, &status, 0);
    for (int fd : {p.in, p.out, p.err}) ::close(fd);
    ++crashes;
    if (WIFSIGNALED(status) && WCOREDUMP(status)) {
      ++cli_dumps;
      ADD_FAILURE() << "credential_manager dumped core on signal " << sig;
    }
    for (const auto& entry : fs::directory_iterator(cwd)) {
      ++core_files;
      ADD_FAILURE() << "file left after the crash: " << entry.path();
    }
  }
  testing::print_figures(
      "secret-leaks-core",
      fmt::format("core_pattern '{}', unhardened control dumped core {} of 2, CLI crashes {}, CLI core "
                  "dumps {}, files in its working directory {}",
                  core_pattern.substr(0, core_pattern.find('\n')), control_dumps, crashes, cli_dumps,
                  core_files));
  EXPECT_EQ(cli_dumps, 0);
  EXPECT_EQ(core_files, 0);
}

}  // namespace
}  // namespace credentials
