// Shared helpers of the reliability suites (docs/RELIABILITY.md).
//
// Quick mode (default, CI) and long mode (CREDENTIALS_TEST_LONG=1) differ only
// in counts. Every suite prints its figures as one line starting with
// "[figures]"; when CREDENTIALS_FIGURES_FILE is set the line is appended to
// that file too, so CI can show the figures of tests that passed quietly.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace credentials::testing {

[[nodiscard]] inline bool long_mode() {
  const char* value = std::getenv("CREDENTIALS_TEST_LONG");
  return value && std::string_view(value) == "1";
}

// `quick` in CI, `long_count` with CREDENTIALS_TEST_LONG=1.
[[nodiscard]] inline int count_for_mode(int quick, int long_count) {
  return long_mode() ? long_count : quick;
}

inline void print_figures(std::string_view suite, std::string_view text) {
  const std::string line = fmt::format("[figures] {} ({} mode): {}\n", suite,
                                       long_mode() ? "long" : "quick", text);
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  if (const char* file = std::getenv("CREDENTIALS_FIGURES_FILE"); file && *file) {
    const int fd = ::open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      // One write() with O_APPEND: lines from parallel tests never interleave.
      [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
      ::close(fd);
    }
  }
}

// A seed printed with the figures, so a failure can be replayed with
// CREDENTIALS_TEST_SEED=<seed>.
[[nodiscard]] inline std::uint64_t test_seed() {
  if (const char* value = std::getenv("CREDENTIALS_TEST_SEED"); value && *value) {
    return std::strtoull(value, nullptr, 10);
  }
  return std::random_device{}();
}

}  // namespace credentials::testing
