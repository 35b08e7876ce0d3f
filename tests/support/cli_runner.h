// Running the real credential_manager binary from tests.
//
// run_cli() runs it like a script would: arguments, an explicit environment
// (nothing inherited but PATH, so a developer's CREDENTIAL_MASTER_KEY cannot
// leak into a test), text on stdin, stdout and stderr captured separately,
// and no controlling terminal (the child calls setsid), so any attempt to
// prompt fails exactly as it would under cron or CI.
//
// PtySession runs it like a person would: on a fresh pseudo-terminal that is
// its controlling terminal and its stdin/stdout/stderr. Everything the
// terminal would show, including the echo of typed input, is in transcript().
//
// Not thread-safe; each test makes its own.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace credentials::testing {

// The path of the built credential_manager (CREDENTIALS_CLI_PATH).
[[nodiscard]] std::filesystem::path cli_path();

// Environment variables for the child, replacing (not added to) the test's.
using Environment = std::map<std::string, std::string>;

struct CliResult {
  int exit_code = -1;  // the exit status; 128+N when killed by signal N
  std::string out;
  std::string err;
};

// "exit 3; stdout: ...; stderr: ..." so that a failed EXPECT shows what happened.
std::ostream& operator<<(std::ostream& out, const CliResult& result);

// Runs credential_manager with `args` (argv[0] is added). `working_dir`
// empty: the test's own. Kills the child and records a test failure if it
// has not finished after `timeout`.
[[nodiscard]] CliResult run_cli(const std::vector<std::string>& args, const Environment& env,
                                std::string_view stdin_text = {},
                                const std::filesystem::path& working_dir = {},
                                std::chrono::seconds timeout = std::chrono::seconds(60));

class PtySession {
 public:
  // Starts credential_manager with `args` on a new pseudo-terminal.
  PtySession(const std::vector<std::string>& args, const Environment& env,
             const std::filesystem::path& working_dir = {});
  // Kills the child if it is still running.
  ~PtySession();
  PtySession(const PtySession&) = delete;
  PtySession& operator=(const PtySession&) = delete;

  // Reads terminal output until `text` appears after the point the previous
  // expect() matched. False when the child ends or `timeout` passes first.
  [[nodiscard]] bool expect(std::string_view text,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Types `line` and Enter.
  void send_line(std::string_view line);
  // Reads the rest of the output and waits for the child; returns its exit
  // code (128+N for signal N), or -1 after `timeout` (the child is killed).
  int wait(std::chrono::seconds timeout = std::chrono::seconds(30));

  // Whether the terminal echoes typed input right now (ECHO in its termios),
  // e.g. after the child was interrupted at a password prompt.
  [[nodiscard]] bool echo_enabled() const;
  // Sends a signal to the child.
  void signal(int signal_number) const;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Everything the terminal showed so far.
  [[nodiscard]] const std::string& transcript() const { return transcript_; }

 private:
  // Reads what is available within `timeout`; false once the child closed the terminal.
  bool read_some(std::chrono::milliseconds timeout);

  int master_fd_ = -1;
  pid_t pid_ = -1;
  bool closed_ = false;
  int exit_code_ = -1;
  std::string transcript_;
  std::size_t matched_up_to_ = 0;
};

}  // namespace credentials::testing
