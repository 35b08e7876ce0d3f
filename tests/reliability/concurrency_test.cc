// Concurrency suite: many writers (processes, or threads of one process) run
// random store/update/delete/get operations on a shared set of names, with
// check-and-set updates. The committed history, ordered by the audit trail
// (each write's audit event commits in the write's own transaction), is
// replayed serially: every committed check-and-set must apply to the version
// it read (else an update was lost), every get must have returned a state the
// name really had at that time, and the replay must end in the vault's final
// state. A get's event reaches the chain through its process's read journal,
// later than the get itself (at the latest with the process's next write):
// the get happened after the worker's previous write and before its own
// event's position, so that is the window its value must come from. The only errors allowed are the expected ConflictError,
// AlreadyExistsError and CredentialNotFoundError (docs/RELIABILITY.md).
//
// The suite is named ConcurrencyTest so that CI's ThreadSanitizer step
// (ctest -R Concurren) runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "credentials/credentials.h"
#include "reliability/reliability.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

using testing::TempDir;

constexpr const char* kOwner = "team";
constexpr int kNames = 6;
const UserContext kAdmin{"auditor", "auditor", {"admin"}};

// A worker acts as the same user; a role of its own ("w<N>") appears in the
// audit events, which is how its events are told apart from the others'.
UserContext worker_user(int worker) { return {kOwner, kOwner, {"user", fmt::format("w{}", worker)}}; }

// One completed call, as the worker saw it.
struct Entry {
  char kind = 0;  // G get, S store, U update (check-and-set), X delete;
                  // C conflict, A already exists, N not found, E other error
  std::string name;
  std::string password;      // G: read; S/U: written
  std::uint64_t version = 0;  // G: read; U: the new version
  std::uint64_t base = 0;     // U: the version it was based on
  std::string error;          // E: kind and message
  [[nodiscard]] bool committed() const { return kind == 'G' || kind == 'S' || kind == 'U' || kind == 'X'; }
};

std::string to_line(const Entry& e) {
  std::string error = e.error;
  for (char& c : error) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", e.kind, e.name, e.password.empty() ? "-" : e.password,
                     e.version, e.base, error.empty() ? "-" : error);
}

Entry from_line(const std::string& line) {
  Entry e;
  std::istringstream in(line);
  std::string kind;
  std::getline(in, kind, '\t');
  e.kind = kind.empty() ? 0 : kind[0];
  std::getline(in, e.name, '\t');
  std::getline(in, e.password, '\t');
  std::string v, b;
  std::getline(in, v, '\t');
  std::getline(in, b, '\t');
  std::getline(in, e.error);
  e.version = std::stoull(v);
  e.base = std::stoull(b);
  if (e.password == "-") e.password.clear();
  if (e.error == "-") e.error.clear();
  return e;
}

// Runs `ops` random operations; returns what happened, in order.
std::vector<Entry> run_worker(Vault& vault, int worker, int ops, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const UserContext user = worker_user(worker);
  std::vector<Entry> log;
  for (int i = 0; i < ops; ++i) {
    const std::string name = fmt::format("shared{}", rng() % kNames);
    const std::string password = fmt::format("w{}-op{}-'\"@:/?#%", worker, i);
    const int dice = static_cast<int>(rng() % 100);
    try {
      if (dice < 25) {
        const Credential c = vault.get_credential(user, name);
        log.push_back({'G', name, std::string(c.password.reveal()), c.version, 0, ""});
      } else if (dice < 70) {
        const Credential c = vault.get_credential(user, name);
        log.push_back({'G', name, std::string(c.password.reveal()), c.version, 0, ""});
        // The second entry of a check-and-set carries its base version
        // (never 0), which is how it is told from a call of its own.
        try {
          const std::uint64_t v = vault.update_password(user, name, password, c.version);
          log.push_back({'U', name, password, v, c.version, ""});
        } catch (const ConflictError&) {
          log.push_back({'C', name, "", 0, c.version, ""});
        } catch (const CredentialNotFoundError&) {
          log.push_back({'N', name, "", 0, c.version, ""});
        }
      } else if (dice < 85) {
        (void)vault.store_credential(user, {.name = name, .db_type = "postgres", .host = "db.example.com",
                                            .database = "prod", .username = "svc", .password = password});
        log.push_back({'S', name, password, 1, 0, ""});
      } else {
        vault.delete_credential(user, name);
        log.push_back({'X', name, "", 0, 0, ""});
      }
    } catch (const AlreadyExistsError&) {
      log.push_back({'A', name, "", 0, 0, ""});
    } catch (const CredentialNotFoundError&) {
      log.push_back({'N', name, "", 0, 0, ""});
    } catch (const ConflictError&) {
      log.push_back({'C', name, "", 0, 0, ""});
    } catch (const std::exception& e) {
      log.push_back({'E', name, "", 0, 0, fmt::format("{}: {}", typeid(e).name(), e.what())});
    }
  }
  return log;
}

struct Figures {
  long operations = 0;
  long gets = 0, stores = 0, updates = 0, deletes = 0;
  long conflicts = 0, already_exists = 0, not_found = 0;
  long unexpected_errors = 0;
  long lost_updates = 0;        // committed check-and-set not based on the current version
  long impossible_reads = 0;    // a get that returned a state the name never had then
  long replay_mismatches = 0;   // other differences between the history and the replay
};

// Orders the workers' committed calls by the audit trail and replays them.
Figures check_history(Vault& vault, const std::vector<std::vector<Entry>>& logs) {
  Figures f;
  std::vector<std::vector<const Entry*>> committed(logs.size());
  for (std::size_t w = 0; w < logs.size(); ++w) {
    for (const Entry& e : logs[w]) {
      ++f.operations;
      switch (e.kind) {
        case 'G': ++f.gets; break;
        case 'S': ++f.stores; break;
        case 'U': ++f.updates; break;
        case 'X': ++f.deletes; break;
        case 'C': ++f.conflicts; break;
        case 'A': ++f.already_exists; break;
        case 'N': ++f.not_found; break;
        default:
          ++f.unexpected_errors;
          ADD_FAILURE() << "worker " << w << ": unexpected error: " << e.error;
      }
      // A check-and-set is two entries (its get, then U or C): count it once.
      if (e.kind == 'U' || ((e.kind == 'C' || e.kind == 'N') && e.base != 0)) --f.operations;
      if (e.committed()) committed[w].push_back(&e);
    }
  }

  // Every successful call left exactly one "ok" event; for one worker they
  // are in the worker's order.
  AuditQuery query;
  query.owner = kOwner;
  query.limit = 10'000'000;
  std::vector<std::pair<int, std::size_t>> order;  // (worker, index in committed[worker])
  std::vector<std::size_t> next(logs.size(), 0);
  std::vector<std::int64_t> seq_of_order;
  for (const AuditEvent& event : vault.audit_events(kAdmin, query)) {
    if (event.outcome != "ok") continue;
    int worker = -1;
    for (const auto& role : event.roles) {
      if (role.size() > 1 && role[0] == 'w') worker = std::stoi(role.substr(1));
    }
    if (worker < 0 || worker >= static_cast<int>(logs.size())) continue;
    const std::size_t i = next[worker]++;
    if (i >= committed[worker].size()) {
      ++f.replay_mismatches;
      ADD_FAILURE() << "worker " << worker << " has more ok audit events than successful calls";
      continue;
    }
    const char kind = committed[worker][i]->kind;
    const std::string expected_action = kind == 'G' ? "get" : kind == 'S' ? "store"
                                        : kind == 'U' ? "update_password" : "delete";
    if (event.action != expected_action || event.name != committed[worker][i]->name) {
      ++f.replay_mismatches;
      ADD_FAILURE() << "worker " << worker << " call " << i << ": audit says " << event.action << " "
                    << event.name << ", the worker did " << expected_action << " "
                    << committed[worker][i]->name;
    }
    order.emplace_back(worker, i);
    seq_of_order.push_back(event.seq);
  }
  for (std::size_t w = 0; w < logs.size(); ++w) {
    if (next[w] != committed[w].size()) {
      ++f.replay_mismatches;
      ADD_FAILURE() << "worker " << w << ": " << committed[w].size() << " successful calls but "
                    << next[w] << " ok audit events";
    }
  }

  // Serial replay. history[name]: the states the name went through, each with
  // the audit position at which it began.
  struct State {
    std::string password;
    std::uint64_t version;
    bool operator==(const State&) const = default;
  };
  std::map<std::string, std::vector<std::pair<std::size_t, std::optional<State>>>> history;
  auto current = [&](const std::string& name) -> std::optional<State> {
    auto it = history.find(name);
    return it == history.end() || it->second.empty() ? std::nullopt : it->second.back().second;
  };
  std::vector<std::size_t> previous_position(logs.size(), 0);
  for (std::size_t pos = 0; pos < order.size(); ++pos) {
    const auto [w, i] = order[pos];
    const Entry& e = *committed[w][i];
    const std::optional<State> now = current(e.name);
    switch (e.kind) {
      case 'S':
        if (now) {
          ++f.replay_mismatches;
          ADD_FAILURE() << "store of " << e.name << " succeeded while it existed";
        }
        history[e.name].push_back({pos + 1, State{e.password, 1}});
        break;
      case 'U':
        if (!now || now->version != e.base || e.version != e.base + 1) {
          ++f.lost_updates;
          ADD_FAILURE() << "lost update: worker " << w << " updated " << e.name << " from version "
                        << e.base << " to " << e.version << " but the replay is at "
                        << (now ? std::to_string(now->version) : "absent");
        }
        history[e.name].push_back({pos + 1, State{e.password, e.version}});
        break;
      case 'X':
        if (!now) {
          ++f.replay_mismatches;
          ADD_FAILURE() << "delete of " << e.name << " succeeded while it was absent";
        }
        history[e.name].push_back({pos + 1, std::nullopt});
        break;
      case 'G': {
        // The read happened after this worker's previous event and before
        // this one: it must show a state the name had in that window.
        const State read{e.password, e.version};
        bool possible = false;
        const std::size_t from = previous_position[w];
        std::optional<State> at_from;
        for (const auto& [start, state] : history[e.name]) {
          if (start <= from) at_from = state;
          if (start > from && start <= pos && state == read) possible = true;
        }
        if (at_from == read) possible = true;
        if (!possible) {
          ++f.impossible_reads;
          ADD_FAILURE() << "worker " << w << " read " << e.name << " at version " << e.version
                        << ", a state it did not have at that time";
        }
        break;
      }
    }
    if (e.kind != 'G') previous_position[w] = pos + 1;
  }

  // The replay ends where the vault is.
  std::map<std::string, State> final_vault;
  for (const auto& info : vault.list_credentials(kAdmin)) {
    const Credential c = vault.get_credential(kAdmin, info.owner, info.name);
    final_vault[c.name] = {std::string(c.password.reveal()), c.version};
  }
  std::map<std::string, State> final_replay;
  for (const auto& [name, states] : history) {
    if (!states.empty() && states.back().second) final_replay[name] = *states.back().second;
  }
  if (final_vault != final_replay) {
    ++f.replay_mismatches;
    ADD_FAILURE() << "the serial replay ends with " << final_replay.size()
                  << " credentials that differ from the vault's " << final_vault.size();
  }
  const VerifyReport report = vault.verify();
  if (!report.ok()) {
    ++f.replay_mismatches;
    ADD_FAILURE() << "verify failed after the concurrent run";
  }
  return f;
}

void report(std::string_view suite, int workers, int ops, const Figures& f, std::uint64_t seed) {
  testing::print_figures(
      suite, fmt::format("{} workers x {} operations = {} operations: {} gets, {} stores, {} "
                         "check-and-set updates, {} deletes committed; expected errors: {} "
                         "conflicts, {} already exists, {} not found; unexpected errors {}, lost "
                         "updates {}, impossible reads {}, other replay mismatches {}, seed {}",
                         workers, ops, f.operations, f.gets, f.stores, f.updates, f.deletes,
                         f.conflicts, f.already_exists, f.not_found, f.unexpected_errors,
                         f.lost_updates, f.impossible_reads, f.replay_mismatches, seed));
  EXPECT_EQ(f.unexpected_errors, 0);
  EXPECT_EQ(f.lost_updates, 0);
  EXPECT_EQ(f.impossible_reads, 0);
  EXPECT_EQ(f.replay_mismatches, 0);
  EXPECT_EQ(f.operations, static_cast<long>(workers) * ops);
  // Contention really happened, or the test proved nothing.
  EXPECT_GT(f.conflicts + f.already_exists + f.not_found, 0);
  EXPECT_GT(f.updates, 0);
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  Vault open_vault() { return Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone()}); }
  TempDir dir_;
  SecretString key_ = generate_master_key();
  const std::uint64_t seed_ = testing::test_seed();
};

TEST_F(ConcurrencyTest, SixteenProcessesLoseNoUpdateAgainstSerialReplay) {
  constexpr int kWorkers = 16;
  const int ops = testing::count_for_mode(200, 2000);
  { Vault created = open_vault(); }
  std::vector<pid_t> children;
  for (int w = 0; w < kWorkers; ++w) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        Vault vault = open_vault();
        std::ofstream out(dir_.path() / fmt::format("log-{}.txt", w));
        for (const Entry& e : run_worker(vault, w, ops, seed_ + static_cast<std::uint64_t>(w))) {
          out << to_line(e);
        }
        out.close();
        code = out ? 0 : 5;
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker process failed: " << status;
  }
  std::vector<std::vector<Entry>> logs(kWorkers);
  for (int w = 0; w < kWorkers; ++w) {
    std::ifstream in(dir_.path() / fmt::format("log-{}.txt", w));
    for (std::string line; std::getline(in, line);) logs[w].push_back(from_line(line));
  }
  Vault vault = open_vault();
  report("concurrency-processes", kWorkers, ops, check_history(vault, logs), seed_);
}

TEST_F(ConcurrencyTest, SixteenThreadsSharingOneVaultLoseNoUpdate) {
  constexpr int kWorkers = 16;
  const int ops = testing::count_for_mode(200, 2000);
  Vault vault = open_vault();
  std::vector<std::vector<Entry>> logs(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] { logs[w] = run_worker(vault, w, ops, seed_ + static_cast<std::uint64_t>(w)); });
  }
  for (auto& t : threads) t.join();
  report("concurrency-threads-shared-vault", kWorkers, ops, check_history(vault, logs), seed_);
}

// Each thread with a Vault (and SQLite connection) of its own: the locking
// between connections is exercised inside one process, where ThreadSanitizer
// sees it.
TEST_F(ConcurrencyTest, SixteenThreadsWithOwnVaultsLoseNoUpdate) {
  constexpr int kWorkers = 16;
  const int ops = testing::count_for_mode(100, 2000);
  { Vault created = open_vault(); }
  std::vector<std::vector<Entry>> logs(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      try {
        Vault vault = open_vault();
        logs[w] = run_worker(vault, w, ops, seed_ + static_cast<std::uint64_t>(w));
      } catch (const std::exception& e) {
        logs[w].push_back({'E', "", "", 0, 0, fmt::format("open failed: {}", e.what())});
      }
    });
  }
  for (auto& t : threads) t.join();
  Vault vault = open_vault();
  report("concurrency-threads-own-vaults", kWorkers, ops, check_history(vault, logs), seed_);
}

}  // namespace
}  // namespace credentials
