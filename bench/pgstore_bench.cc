// The shared store (issue 9): the vault on PostgreSQL (PostgresStore), at the
// sizes of vault_bench, whose embedded figures these sit beside in
// docs/PERFORMANCE.md. Their floor is floors_bench's raw libpq round trip
// (BM_LibpqRoundTrip) and write transactions (BM_LibpqWriteTransaction).
//
//   - populating a vault of N credentials through the batch path
//     (store_credentials: one transaction of N/1,000 per user)
//   - get_credential with the audit event of the read
//   - the same gets from 1, 2 and 4 threads sharing one handle: what the
//     handle's connection pool (pool_size, default 4) buys an application
//     whose threads share a Vault
//   - update_password and store_credential (durable: synchronous_commit on)
//
// The server is the one the PG* environment names (PGHOST, PGPORT, PGUSER,
// PGPASSWORD, PGDATABASE; bench/run and .ci/run start a throwaway cluster
// with pg_virtualenv -t). When no server is reachable with it, every
// benchmark here is skipped with a message saying why.
//
// Each size gets a vault schema of its own in that database,
// bench_vault_<size>_<pid>, populated at the first benchmark of that size
// (the cluster is throwaway, so nothing is cached between runs), vacuumed
// and checkpointed (untimed), and dropped at exit. The dataset is
// vault_bench's (bench/bench_common.h): 1,000 users holding N/1,000
// credentials each, plus `listuser` holding 100.
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include "bench_common.h"

namespace credentials::bench {
namespace {

// Connects with the PG* environment alone (libpq's defaults).
PGconn* connect_from_environment() { return PQconnectdb("connect_timeout=10"); }

std::string first_line(const char* text) {
  std::string line = text ? text : "";
  if (const auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  return line;
}

// Why the benchmarks cannot run here, or nothing when a server answers.
const std::optional<std::string>& server_problem() {
  static const std::optional<std::string> problem = []() -> std::optional<std::string> {
    PGconn* conn = connect_from_environment();
    std::optional<std::string> why;
    if (PQstatus(conn) != CONNECTION_OK) {
      const char* host = std::getenv("PGHOST");
      why = fmt::format(
          "cannot connect to a PostgreSQL server with the PG* environment (PGHOST={}): run "
          "under pg_virtualenv -t, as bench/run does ({})",
          host && *host ? host : "unset", first_line(PQerrorMessage(conn)));
    }
    PQfinish(conn);
    return why;
  }();
  return problem;
}

// Runs each statement on a connection of its own; reports failures on
// stderr unless `quiet`.
void run_sql(const std::vector<std::string>& statements, bool quiet = false) {
  PGconn* conn = connect_from_environment();
  if (PQstatus(conn) == CONNECTION_OK) {
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    for (const auto& sql : statements) {
      PGresult* r = PQexec(conn, sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK && !quiet) {
        std::fprintf(stderr, "pgstore_bench: %s: %s\n", sql.c_str(),
                     first_line(PQresultErrorMessage(r)).c_str());
      }
      PQclear(r);
    }
  }
  PQfinish(conn);
}

void drop_schema(const std::string& schema) {
  run_sql({fmt::format("DROP SCHEMA IF EXISTS \"{}\" CASCADE", schema)});
}

// After a bulk load: VACUUM ANALYZE the vault's tables and CHECKPOINT (when
// the role may), so that autovacuum and the checkpointer, which the load
// sets off, do not run during the timed loops.
void settle(const std::string& schema) {
  std::vector<std::string> statements;
  PGconn* conn = connect_from_environment();
  const char* values[] = {schema.c_str()};
  PGresult* r = PQexecParams(conn, "SELECT tablename FROM pg_tables WHERE schemaname = $1", 1,
                             nullptr, values, nullptr, nullptr, 0);
  for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); ++i) {
    statements.push_back(
        fmt::format("VACUUM (ANALYZE) \"{}\".\"{}\"", schema, PQgetvalue(r, i, 0)));
  }
  PQclear(r);
  PQfinish(conn);
  run_sql(statements);
  run_sql({"CHECKPOINT"}, /*quiet=*/true);
}

// A vault of `size` credentials in its own schema, populated when made.
struct Env {
  explicit Env(std::int64_t size)
      : size(size),
        schema(fmt::format("bench_vault_{}_{}", size, ::getpid())),
        key(generate_master_key().reveal()),
        pattern(size) {
    for (int u = 0; u < kUsers; ++u) users.push_back(user_ctx(user_id(u)));
    drop_schema(schema);  // a leftover of an earlier process with this pid
    try {
      populate();
    } catch (...) {
      vault.reset();
      drop_schema(schema);
      throw;
    }
    settle(schema);
  }
  ~Env() {
    by_pool_size.clear();
    vault.reset();
    drop_schema(schema);
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  void populate() {
    vault.emplace(open());
    const auto start = std::chrono::steady_clock::now();
    std::mt19937_64 rng(static_cast<std::uint64_t>(size));
    const int per_user = static_cast<int>(size / kUsers);
    for (int u = 0; u < kUsers; ++u) {
      std::vector<NewCredential> batch;
      batch.reserve(per_user);
      for (int j = 0; j < per_user; ++j)
        batch.push_back(sample_credential(cred_name(j), u * 1000 + j, rng));
      (void)vault->store_credentials(users[u], std::move(batch));
    }
    std::vector<NewCredential> batch;
    for (int j = 0; j < kListSize; ++j) batch.push_back(sample_credential(cred_name(j), j, rng));
    (void)vault->store_credentials(user_ctx(kListUser), std::move(batch));
    populate_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  // `pool_size` 0: the URL leaves it out (the default, 4).
  [[nodiscard]] Vault open(std::int64_t pool_size = 0) const {
    VaultOptions options;
    // No host, user or database in the URL: libpq takes them from PG*.
    options.url = "postgresql://?schema=" + schema;
    if (pool_size) options.url += fmt::format("&pool_size={}", pool_size);
    options.master_key = SecretString(key);
    return Vault::open(std::move(options));
  }

  std::int64_t size;
  std::string schema;
  std::string key;
  AccessPattern pattern;
  std::vector<UserContext> users;
  std::optional<Vault> vault;
  std::map<std::int64_t, Vault> by_pool_size;  // the threaded gets' handles
  double populate_seconds = 0;
};

std::map<std::int64_t, std::unique_ptr<Env>>& envs() {
  static std::map<std::int64_t, std::unique_ptr<Env>> all;
  return all;
}

// The vault of `size`, made (and populated) on first use; nullptr, with
// `why`, when there is no server or the vault cannot be made.
Env* find_or_make_env(std::int64_t size, std::string& why) {
  if (const auto& problem = server_problem()) {
    why = *problem;
    return nullptr;
  }
  auto& slot = envs()[size];
  if (!slot) {
    try {
      slot = std::make_unique<Env>(size);
    } catch (const std::exception& e) {
      envs().erase(size);
      why = fmt::format("cannot make the PostgreSQL vault: {}", e.what());
      return nullptr;
    }
  }
  return slot.get();
}

void skip(benchmark::State& state, const std::string& why) {
  state.SkipWithError(why.c_str());
  for (auto _ : state) {
  }
}

// The vault of `size`, made (and populated) on first use; nullptr, with the
// benchmark skipped, when there is no server or the vault cannot be made.
Env* env(benchmark::State& state) {
  std::string why;
  Env* e = find_or_make_env(state.range(0), why);
  if (!e) skip(state, why);
  return e;
}

void apply_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : sizes()) b->Arg(s);
  b->ArgName("credentials")->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// --- population -------------------------------------------------------------------

// Creates the vault of N credentials through the batch path: one
// store_credentials transaction per user (N/1,000 credentials each).
// Registered first, so it is what makes each size's vault (later benchmarks
// make it untimed when this one is filtered out). Its time is the whole
// making (open, load, settle); the counters are the load's alone:
// populate_s, and credentials_per_s.
void BM_PgPopulateBatch(benchmark::State& state) {
  const std::int64_t size = state.range(0);
  if (server_problem()) {
    (void)env(state);  // skips the benchmark, saying why
    return;
  }
  if (envs().count(size)) {
    state.SkipWithError("already populated in this process (it runs once per size)");
    for (auto _ : state) {
    }
    return;
  }
  std::string error;
  for (auto _ : state) {
    try {
      envs()[size] = std::make_unique<Env>(size);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (!error.empty()) {
    envs().erase(size);
    state.SkipWithError(fmt::format("cannot make the PostgreSQL vault: {}", error).c_str());
    return;
  }
  const Env& e = *envs()[size];
  state.counters["populate_s"] = e.populate_seconds;
  state.counters["credentials_per_s"] =
      static_cast<double>(e.size + kListSize) / e.populate_seconds;
}
BENCHMARK(BM_PgPopulateBatch)
    ->Apply(apply_sizes)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);

// --- reads ------------------------------------------------------------------------

void BM_PgGetCredential(benchmark::State& state) {
  Env* e = env(state);
  if (!e) return;
  for (auto _ : state) {
    const auto& [u, j] = e->pattern();
    Credential c = e->vault->get_credential(e->users[u], cred_name(j));
    benchmark::DoNotOptimize(c.password.size());
  }
}
BENCHMARK(BM_PgGetCredential)->Apply(apply_sizes);

// Gets from several threads through one handle (->Threads), opened with
// pool_size 1 (the threads take turns on one connection) or 4: the reads
// run in parallel on the handle's pooled connections, and each read's event
// is a write transaction, serialised on the server by the vault's lock.
// items_per_second is the handle's total.
void pg_get_from_threads(benchmark::State& state) {
  static std::mutex making;  // the threads of one run share the vault they make
  Env* e = nullptr;
  Vault* vault = nullptr;
  std::string why;
  {
    // Not skipped under the lock: the state loop waits for every thread.
    std::lock_guard lock(making);
    e = find_or_make_env(state.range(0), why);
    try {
      if (e) {
        const std::int64_t pool_size = state.range(1);
        auto it = e->by_pool_size.find(pool_size);
        if (it == e->by_pool_size.end())
          it = e->by_pool_size.emplace(pool_size, e->open(pool_size)).first;
        vault = &it->second;
      }
    } catch (const std::exception& error) {
      why = error.what();
      e = nullptr;
    }
  }
  if (!e) return skip(state, why);
  // Each thread its own walk through the credentials (AccessPattern is not
  // shared between threads).
  AccessPattern pattern(e->size);
  for (int skip = 0; skip < state.thread_index() * 997; ++skip) (void)pattern();
  for (auto _ : state) {
    const auto& [u, j] = pattern();
    Credential c = vault->get_credential(e->users[u], cred_name(j));
    benchmark::DoNotOptimize(c.password.size());
  }
  state.SetItemsProcessed(state.iterations());
}
void apply_sizes_pools_threads(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({sizes(), {1, 4}})
      ->ArgNames({"credentials", "pool_size"})
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond)
      ->Threads(1)
      ->Threads(2)
      ->Threads(4);
}
void BM_PgGetCredentialThreads(benchmark::State& state) { pg_get_from_threads(state); }
BENCHMARK(BM_PgGetCredentialThreads)->Apply(apply_sizes_pools_threads);

// --- durable writes ---------------------------------------------------------------

void BM_PgUpdatePassword(benchmark::State& state) {
  Env* e = env(state);
  if (!e) return;
  std::int64_t n = 0;
  for (auto _ : state) {
    const auto& [u, j] = e->pattern();
    (void)e->vault->update_password(e->users[u], cred_name(j),
                                    SecretString(fmt::format("rotated-password-{}", ++n)));
  }
}
BENCHMARK(BM_PgUpdatePassword)->Apply(apply_sizes);

// New credentials of the existing users; deleted again (untimed) after each
// run, so the vault the other benchmarks measure keeps its size.
void BM_PgStoreCredential(benchmark::State& state) {
  Env* e = env(state);
  if (!e) return;
  std::mt19937_64 rng(7);
  static std::int64_t counter = 0;
  std::vector<std::pair<int, std::string>> added;
  added.reserve(1 << 16);
  for (auto _ : state) {
    const int u = e->pattern().first;
    std::string name = fmt::format("new-{}", ++counter);
    (void)e->vault->store_credential(e->users[u],
                                     sample_credential(name, static_cast<int>(counter), rng));
    added.emplace_back(u, std::move(name));
  }
  for (const auto& [u, name] : added) e->vault->delete_credential(e->users[u], name);
}
BENCHMARK(BM_PgStoreCredential)->Apply(apply_sizes);

}  // namespace
}  // namespace credentials::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Closes the vaults and drops their schemas before the process exits.
  credentials::bench::envs().clear();
  return 0;
}
