// Talking to the person at the keyboard: prompts on the controlling terminal
// (/dev/tty, like ssh and sudo) so that they work while stdin and stdout are
// redirected, and secret input with echo switched off.
//
// Not thread-safe: the CLI is single-threaded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "credentials/secret.h"

namespace credentials::cli {

class Terminal {
 public:
  // The controlling terminal, or nullopt when the process has none (cron, CI,
  // `setsid`): callers then refuse to guess and ask for flags instead.
  [[nodiscard]] static std::optional<Terminal> open();

  Terminal(Terminal&& other) noexcept;
  Terminal& operator=(Terminal&& other) noexcept;
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;
  ~Terminal();

  // Writes text as is (no newline added).
  void write(std::string_view text);
  // Prints the prompt and reads one line with echo on; the newline is dropped.
  // Throws CommandError when input ends (Ctrl-D).
  [[nodiscard]] std::string ask(std::string_view prompt);
  // Like ask(), with echo off while the line is typed. Echo is switched off
  // BEFORE the prompt appears, so nothing typed after the prompt is echoed,
  // and restored even when a signal ends the process.
  [[nodiscard]] SecretString ask_secret(std::string_view prompt);

 private:
  explicit Terminal(int fd) : fd_(fd) {}
  int fd_;
};

// Reads one line of standard input as a password (--password-stdin): the line
// ends at the first newline ("\n" or "\r\n", dropped) or at end of input.
// Echo is switched off if standard input is itself a terminal. Throws
// CommandError when there is no input at all.
[[nodiscard]] SecretString read_password_line_from_stdin();

}  // namespace credentials::cli
