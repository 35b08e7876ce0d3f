#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <utility>

#include "exit_codes.h"

namespace credentials::cli {
namespace {

// No real password or answer is this long; the cap stops a runaway pipe from
// growing a secret buffer without bound.
constexpr std::size_t kMaxLineBytes = 64 * 1024;

// The terminal settings to restore if a signal ends the process while echo is
// off; otherwise the user's shell would be left without echo.
struct EchoRestore {
  volatile sig_atomic_t active = 0;
  int fd = -1;
  termios saved{};
};
EchoRestore echo_restore;
constexpr int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void restore_echo_and_reraise(int signal_number) {
  if (echo_restore.active != 0) {
    ::tcsetattr(echo_restore.fd, TCSAFLUSH, &echo_restore.saved);
    echo_restore.active = 0;
  }
  std::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

// Switches echo off on `fd` for its lifetime (if `fd` is a terminal).
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    termios current{};
    if (::tcgetattr(fd_, &current) != 0) return;  // not a terminal: nothing echoes anyway
    echo_restore.fd = fd_;
    echo_restore.saved = current;
    for (int signal_number : kRestoreSignals) {
      struct sigaction action {};
      action.sa_handler = restore_echo_and_reraise;
      sigemptyset(&action.sa_mask);
      ::sigaction(signal_number, &action, &previous_[index(signal_number)]);
    }
    echo_restore.active = 1;
    termios silent = current;
    silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    silent.c_lflag |= ECHONL;  // the Enter key still moves to the next line
    ::tcsetattr(fd_, TCSAFLUSH, &silent);
    engaged_ = true;
  }
  ~EchoOff() {
    if (!engaged_) return;
    ::tcsetattr(fd_, TCSAFLUSH, &echo_restore.saved);
    echo_restore.active = 0;
    for (int signal_number : kRestoreSignals) {
      ::sigaction(signal_number, &previous_[index(signal_number)], nullptr);
    }
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  static std::size_t index(int signal_number) {
    for (std::size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      if (kRestoreSignals[i] == signal_number) return i;
    }
    return 0;
  }
  int fd_;
  bool engaged_ = false;
  struct sigaction previous_[std::size(kRestoreSignals)]{};
};

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return;  // a prompt that cannot be shown is not worth failing over
    }
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

// Reads up to a newline, one byte at a time so that nothing after the line is
// consumed. Returns false when input ended before any byte was read.
bool read_line(int fd, SecretString& line) {
  bool read_anything = false;
  char byte = 0;
  for (;;) {
    const ssize_t count = ::read(fd, &byte, 1);
    if (count < 0) {
      if (errno == EINTR) continue;
      throw CommandError(ExitCode::kFailure, "could not read the input");
    }
    if (count == 0) break;
    read_anything = true;
    if (byte == '\n') break;
    if (line.size() >= kMaxLineBytes) {
      throw CommandError(ExitCode::kUsage, "input line is longer than 64 KiB");
    }
    line.append(std::string_view(&byte, 1));
  }
  byte = 0;
  if (!line.empty() && line.reveal().back() == '\r') {
    SecretString trimmed(line.reveal().substr(0, line.size() - 1));
    line = std::move(trimmed);
  }
  return read_anything;
}

}  // namespace

std::optional<Terminal> Terminal::open() {
  const int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  return Terminal(fd);
}

Terminal::Terminal(Terminal&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Terminal& Terminal::operator=(Terminal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Terminal::~Terminal() {
  if (fd_ >= 0) ::close(fd_);
}

void Terminal::write(std::string_view text) { write_all(fd_, text); }

std::string Terminal::ask(std::string_view prompt) {
  write(prompt);
  SecretString line;
  if (!read_line(fd_, line)) {
    write("\n");
    throw CommandError(ExitCode::kFailure, "input ended before an answer was given");
  }
  return std::string(line.reveal());
}

SecretString Terminal::ask_secret(std::string_view prompt) {
  SecretString line;
  bool answered = false;
  {
    EchoOff echo_off(fd_);
    write(prompt);
    answered = read_line(fd_, line);
  }
  if (!answered) {
    write("\n");
    throw CommandError(ExitCode::kFailure, "input ended before the password was given");
  }
  return line;
}

SecretString read_password_line_from_stdin() {
  SecretString line;
  bool answered = false;
  {
    EchoOff echo_off(STDIN_FILENO);
    answered = read_line(STDIN_FILENO, line);
  }
  if (!answered) {
    throw CommandError(ExitCode::kUsage,
                       "--password-stdin: standard input is empty; pipe the password in, "
                       "e.g. `printf '%s\\n' \"$DB_PASSWORD\" | credential_manager ...`");
  }
  return line;
}

}  // namespace credentials::cli
