#include "support/cli_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace credentials::testing {
namespace {

using Clock = std::chrono::steady_clock;

// argv and envp for execve, built before fork: after fork in a threaded
// process only async-signal-safe calls are allowed.
struct ExecArguments {
  std::vector<std::string> storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecArguments(const std::vector<std::string>& args, const Environment& env) {
    storage.push_back(cli_path().string());
    storage.insert(storage.end(), args.begin(), args.end());
    const std::size_t argument_count = storage.size();
    Environment full = env;
    if (full.find("PATH") == full.end()) {
      const char* path = std::getenv("PATH");
      full["PATH"] = path != nullptr ? path : "/usr/bin:/bin";
    }
    for (const auto& [name, value] : full) storage.push_back(name + "=" + value);
    for (std::size_t i = 0; i < storage.size(); ++i) {
      (i < argument_count ? argv : envp).push_back(storage[i].data());
    }
    argv.push_back(nullptr);
    envp.push_back(nullptr);
  }
};

[[noreturn]] void exec_child(const ExecArguments& exec, const std::filesystem::path& working_dir) {
  if (!working_dir.empty() && ::chdir(working_dir.c_str()) != 0) ::_exit(126);
  ::execve(exec.argv[0], exec.argv.data(), exec.envp.data());
  ::_exit(127);
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
}

}  // namespace

std::filesystem::path cli_path() { return CREDENTIALS_CLI_PATH; }

std::ostream& operator<<(std::ostream& out, const CliResult& result) {
  return out << "exit " << result.exit_code << "\n--- stdout ---\n"
             << result.out << "\n--- stderr ---\n"
             << result.err << "\n---";
}

CliResult run_cli(const std::vector<std::string>& args, const Environment& env,
                  std::string_view stdin_text, const std::filesystem::path& working_dir,
                  std::chrono::seconds timeout) {
  const ExecArguments exec(args, env);
  int in[2], out[2], err[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setsid();  // no controlling terminal: /dev/tty cannot be opened
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    exec_child(exec, working_dir);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  ::signal(SIGPIPE, SIG_IGN);  // the child may exit without reading its stdin

  CliResult result;
  std::size_t written = 0;
  int stdin_fd = in[1];
  if (stdin_text.empty()) {
    ::close(stdin_fd);
    stdin_fd = -1;
  }
  int open_outputs = 2;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (open_outputs > 0) {
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {stdin_fd, POLLOUT, 0}};
    const int ready = ::poll(fds, stdin_fd >= 0 ? 3 : 2, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[4096];
      const ssize_t count = ::read(fds[i].fd, buffer, sizeof buffer);
      if (count > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(count));
      } else if (count == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        (i == 0 ? out[0] : err[0]) = -1;
        --open_outputs;
      }
    }
    if (stdin_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t count =
          ::write(stdin_fd, stdin_text.data() + written, stdin_text.size() - written);
      if (count > 0) written += static_cast<std::size_t>(count);
      if (count < 0 && errno != EAGAIN && errno != EINTR) written = stdin_text.size();
      if (written == stdin_text.size()) {
        ::close(stdin_fd);
        stdin_fd = -1;
      }
    }
  }
  if (stdin_fd >= 0) ::close(stdin_fd);
  if (out[0] >= 0) ::close(out[0]);
  if (err[0] >= 0) ::close(err[0]);
  if (timed_out) {
    ::kill(pid, SIGKILL);
    ADD_FAILURE() << "credential_manager did not finish within " << timeout.count() << " s";
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = timed_out ? -1 : decode_status(status);
  return result;
}

PtySession::PtySession(const std::vector<std::string>& args, const Environment& env,
                       const std::filesystem::path& working_dir) {
  const ExecArguments exec(args, env);
  winsize size{};
  size.ws_row = 40;
  size.ws_col = 120;
  pid_ = ::forkpty(&master_fd_, nullptr, nullptr, &size);
  if (pid_ < 0) throw std::runtime_error("forkpty failed");
  if (pid_ == 0) exec_child(exec, working_dir);
  ::fcntl(master_fd_, F_SETFD, FD_CLOEXEC);
}

PtySession::~PtySession() {
  if (pid_ > 0 && exit_code_ < 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (master_fd_ >= 0) ::close(master_fd_);
}

bool PtySession::read_some(std::chrono::milliseconds timeout) {
  if (closed_) return false;
  pollfd fd{master_fd_, POLLIN, 0};
  const int ready = ::poll(&fd, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return true;  // nothing yet (or EINTR): not closed
  char buffer[4096];
  const ssize_t count = ::read(master_fd_, buffer, sizeof buffer);
  if (count > 0) {
    transcript_.append(buffer, static_cast<std::size_t>(count));
    return true;
  }
  if (count < 0 && errno == EINTR) return true;
  closed_ = true;  // EIO: every slave descriptor is closed, the child is gone
  return false;
}

bool PtySession::expect(std::string_view text, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::size_t at = transcript_.find(text, matched_up_to_);
    if (at != std::string::npos) {
      matched_up_to_ = at + text.size();
      return true;
    }
    if (closed_ || Clock::now() >= deadline) return false;
    read_some(std::chrono::milliseconds(remaining_ms(deadline)));
  }
}

bool PtySession::echo_enabled() const {
  termios settings{};
  if (::tcgetattr(master_fd_, &settings) != 0) {
    ADD_FAILURE() << "tcgetattr on the pseudo-terminal failed: " << std::strerror(errno);
    return false;
  }
  return (settings.c_lflag & ECHO) != 0;
}

void PtySession::signal(int signal_number) const { ::kill(pid_, signal_number); }

void PtySession::send_line(std::string_view line) {
  std::string keys(line);
  keys += '\r';  // the Enter key; the terminal's ICRNL turns it into '\n'
  std::size_t written = 0;
  while (written < keys.size()) {
    const ssize_t count = ::write(master_fd_, keys.data() + written, keys.size() - written);
    if (count < 0) {
      if (errno == EINTR) continue;
      ADD_FAILURE() << "could not type into the pseudo-terminal: " << std::strerror(errno);
      return;
    }
    written += static_cast<std::size_t>(count);
  }
}

int PtySession::wait(std::chrono::seconds timeout) {
  if (exit_code_ >= 0) return exit_code_;
  const auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) {
    read_some(std::chrono::milliseconds(remaining_ms(deadline)));
  }
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = decode_status(status);
      return exit_code_;
    }
    if (Clock::now() >= deadline) break;
    ::usleep(10'000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  exit_code_ = -2;  // killed: not a real exit code
  ADD_FAILURE() << "credential_manager did not finish within " << timeout.count()
                << " s; terminal so far:\n"
                << transcript_;
  return -1;
}

}  // namespace credentials::testing
