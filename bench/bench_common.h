// Shared helpers of the benchmark binaries (bench/*_bench.cc): sizes, the
// cache of populated vaults, the fixed test key, scratch copies and RSS.
//
// The cache lives in <dir of the binary>/vaults (override: CREDENTIALS_BENCH_DIR):
//   vaults/<size>/vault/      a populated vault, never modified by a benchmark
//   vaults/<size>/master.key  its master key (a raw test key, 0600)
//   vaults/<size>/COMPLETE    written last: the cache is usable
// Benchmarks that write (store, update, rotate, reencrypt, audit events of
// reads) work on a scratch copy, vaults/work-<size>-<pid>/, removed at exit.
//
// Dataset at size S: 1,000 users u0000..u0999 holding S/1000 credentials each
// (db-000, db-001, ...), plus user `listuser` holding 100 (for the list
// figures, so that they are comparable across sizes).
//
// CREDENTIALS_BENCH_QUICK=1 (CI): the smallest size only, one repetition.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "credentials/credentials.h"

namespace credentials::bench {

namespace fs = std::filesystem;

inline bool quick() {
  const char* q = std::getenv("CREDENTIALS_BENCH_QUICK");
  return q != nullptr && *q != '\0' && std::string(q) != "0";
}

inline std::vector<std::int64_t> sizes() {
  if (quick()) return {1000};
  return {1000, 10000, 100000};
}

inline constexpr int kUsers = 1000;
inline constexpr int kListSize = 100;
inline const char* const kListUser = "listuser";

inline std::string user_id(int i) { return fmt::format("u{:04d}", i); }
inline std::string cred_name(int j) { return fmt::format("db-{:03d}", j); }

inline UserContext user_ctx(const std::string& id) { return {id, id, {"user"}}; }

inline fs::path bench_dir() {
  if (const char* dir = std::getenv("CREDENTIALS_BENCH_DIR"); dir && *dir) return dir;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return fs::current_path() / "vaults";
  return exe.parent_path() / "vaults";
}

// A realistic credential; `seed` varies the fields.
inline NewCredential sample_credential(std::string name, int seed, std::mt19937_64& rng) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%&*+-=?@^_";
  std::string password;
  for (int i = 0; i < 24; ++i) password.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
  NewCredential c;
  c.name = std::move(name);
  c.db_type = "postgres";
  c.host = fmt::format("db-{}.internal.example.com", seed % 97);
  c.port = 5432;
  c.database = fmt::format("app_{}", seed % 31);
  c.username = fmt::format("svc_{}", seed);
  c.password = SecretString(std::move(password));
  c.description = "benchmark credential";
  c.ssl_mode = "require";
  return c;
}

inline void write_private_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// VmRSS / VmHWM of this process in KiB.
inline long proc_status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return 0;
}

// The populated vault of `size` credentials (+ listuser), from the cache or
// made now. Returns the cache directory; the vault is in <dir>/vault.
inline fs::path cached_vault(std::int64_t size) {
  const fs::path dir = bench_dir() / std::to_string(size);
  const fs::path stamp = dir / "COMPLETE";
  if (fs::exists(stamp)) {
    // Usable only if it still opens with this build (the format may change).
    try {
      VaultOptions options;
      options.directory = dir / "vault";
      options.master_key = SecretString(read_file(dir / "master.key"));
      options.create_if_missing = false;
      Vault vault = Vault::open(std::move(options));
      (void)vault.get_credential(user_ctx(kListUser), cred_name(0));
      return dir;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench: cached vault %s is unusable (%s): populating again\n",
                   dir.c_str(), e.what());
    }
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  SecretString key = generate_master_key();
  write_private_file(dir / "master.key", std::string(key.reveal()));
  VaultOptions options;
  options.directory = dir / "vault";
  options.master_key = std::move(key);
  Vault vault = Vault::open(std::move(options));
  std::mt19937_64 rng(static_cast<std::uint64_t>(size));
  const int per_user = static_cast<int>(size / kUsers);
  std::fprintf(stderr, "bench: populating a vault of %lld credentials in %s ...\n",
               static_cast<long long>(size), dir.c_str());
  for (int u = 0; u < kUsers; ++u) {
    std::vector<NewCredential> batch;
    batch.reserve(per_user);
    for (int j = 0; j < per_user; ++j)
      batch.push_back(sample_credential(cred_name(j), u * 1000 + j, rng));
    (void)vault.store_credentials(user_ctx(user_id(u)), std::move(batch));
  }
  std::vector<NewCredential> batch;
  for (int j = 0; j < kListSize; ++j) batch.push_back(sample_credential(cred_name(j), j, rng));
  (void)vault.store_credentials(user_ctx(kListUser), std::move(batch));
  write_private_file(stamp, std::to_string(size) + "\n");
  return dir;
}

// A scratch copy of a cached vault, removed when the process exits normally.
class ScratchVault {
 public:
  explicit ScratchVault(std::int64_t size, std::string_view tag = "work") {
    const fs::path cache = cached_vault(size);
    key_ = read_file(cache / "master.key");
    root_ = bench_dir() / fmt::format("{}-{}-{}", tag, size, ::getpid());
    fs::remove_all(root_);
    fs::create_directories(root_);
    fs::copy(cache / "vault", root_ / "vault", fs::copy_options::recursive);
    fs::permissions(root_ / "vault", fs::perms::owner_all);
    // On disk before anything is measured: otherwise the first checkpoint's
    // fdatasync of the copy writes back all of it (75 MB at 100,000), and
    // one repetition of a write benchmark took ~750 ms an operation.
    for (const auto& entry : fs::recursive_directory_iterator(root_ / "vault")) {
      if (!entry.is_regular_file()) continue;
      const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        (void)::fsync(fd);
        ::close(fd);
      }
    }
  }
  ~ScratchVault() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  ScratchVault(const ScratchVault&) = delete;
  ScratchVault& operator=(const ScratchVault&) = delete;

  [[nodiscard]] fs::path directory() const { return root_ / "vault"; }
  [[nodiscard]] const fs::path& root() const { return root_; }
  [[nodiscard]] SecretString key() const { return SecretString(key_); }

  [[nodiscard]] Vault open() const {
    VaultOptions options;
    options.directory = directory();
    options.master_key = key();
    options.create_if_missing = false;
    return Vault::open(std::move(options));
  }

 private:
  fs::path root_;
  std::string key_;
};

// A fixed pseudo-random sequence of (user, credential) pairs covering the vault.
struct AccessPattern {
  std::vector<std::pair<int, int>> order;
  std::size_t next = 0;

  AccessPattern(std::int64_t size, std::size_t count = 1 << 16) {
    std::mt19937_64 rng(42);
    const int per_user = static_cast<int>(size / kUsers);
    order.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      order.emplace_back(static_cast<int>(rng() % kUsers), static_cast<int>(rng() % per_user));
    }
  }
  const std::pair<int, int>& operator()() {
    const auto& p = order[next];
    next = (next + 1) % order.size();
    return p;
  }
};

// Two operations timed one after the other inside each iteration, their order
// swapped at every iteration (a, b, then b, a), for a target that is a ratio
// of the two. Run as two benchmarks minutes apart, the ratio moved by ±30% on
// this virtual machine (another tenant, the page cache, the server's state,
// whichever ran first); paired, whatever the machine does lands on both.
// report() sets the counters the report reads:
//   <a>_us, <b>_us   the median of each operation's own times
//   ratio            median(a) / median(b)
//   paired_ratio     the median over iterations of a_i / b_i
class PairedTimer {
 public:
  explicit PairedTimer(std::size_t expected = 1 << 14) {
    a_.reserve(expected);
    b_.reserve(expected);
  }

  template <class A, class B>
  void run(A&& a, B&& b) {
    if (a_first_) {
      time(a, a_);
      time(b, b_);
    } else {
      time(b, b_);
      time(a, a_);
    }
    a_first_ = !a_first_;
  }

  void report(benchmark::State& state, const std::string& a_name,
              const std::string& b_name) const {
    if (a_.empty()) return;
    std::vector<double> ratios(a_.size());
    for (std::size_t i = 0; i < a_.size(); ++i) ratios[i] = a_[i] / b_[i];
    const double ma = median(a_), mb = median(b_);
    state.counters[a_name + "_us"] = ma;
    state.counters[b_name + "_us"] = mb;
    state.counters["ratio"] = ma / mb;
    state.counters["paired_ratio"] = median(std::move(ratios));
  }

 private:
  template <class F>
  static void time(F& f, std::vector<double>& into) {
    const auto start = std::chrono::steady_clock::now();
    f();
    into.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  static double median(std::vector<double> v) {
    const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    return *mid;
  }

  std::vector<double> a_, b_;
  bool a_first_ = true;
};

}  // namespace credentials::bench
