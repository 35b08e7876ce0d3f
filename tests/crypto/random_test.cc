// The OS randomness behind every nonce and key (getrandom(2)): never the
// same bytes twice, not in another thread and not in a fork's child.

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/primitives.h"

namespace credentials::internal {
namespace {

TEST(OsRandomTest, ThreadsNeverDrawTheSameNonce) {
  constexpr int kThreads = 4;
  constexpr int kDraws = 20'000;
  std::vector<std::vector<Bytes>> drawn(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&drawn, t] {
      for (int i = 0; i < kDraws; ++i) drawn[t].push_back(random_bytes(kGcmNonceSize));
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<Bytes> all;
  for (const auto& of_thread : drawn) all.insert(of_thread.begin(), of_thread.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kDraws));
}

// A generator whose state were copied into the child of a fork would give
// parent and child the same "random" nonces under the same keys.
TEST(OsRandomTest, AForkedChildDrawsOtherBytesThanItsParent) {
  (void)random_bytes(16);  // this thread's state exists before the fork
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const Bytes bytes = random_bytes(32);
    const bool sent = ::write(pipe_fds[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::_exit(sent ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  const Bytes in_parent = random_bytes(32);
  Bytes in_child(32);
  std::size_t got = 0;
  while (got < in_child.size()) {
    const ssize_t n = ::read(pipe_fds[0], in_child.data() + got, in_child.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, in_child.size());
  EXPECT_NE(in_parent, in_child);
}

}  // namespace
}  // namespace credentials::internal
