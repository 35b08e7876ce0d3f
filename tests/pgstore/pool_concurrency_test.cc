// The shared store's connection pool (issue 9): threads of one application
// sharing one vault handle run their reads on connections of their own, at
// most `pool_size` of them, and every pooled connection comes back after a
// server restart. Real servers throughout: the pg_virtualenv one, and a
// private cluster for the restart.
//
// The suite is named PostgresPoolConcurrencyTest so that the ThreadSanitizer
// run (ctest -R Concurren) picks it up.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "credentials/credentials.h"
#include "pgstore/pg_fixture.h"
#include "store/postgres_store.h"

namespace credentials {
namespace {

using testing::PgDatabase;
using namespace std::chrono_literals;

const UserContext kAlice{"alice", "alice@example.com", {"user"}};

bool long_mode() {
  const char* value = std::getenv("CREDENTIALS_TEST_LONG");
  return value && std::string(value) == "1";
}

std::string with_query(std::string url, std::string_view parameters) {
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += parameters;
  return url;
}

// An application_name of this test alone, to find its connections on the server.
std::string unique_application_name() {
  static std::atomic<int> counter{0};
  return fmt::format("pool_test_{}_{}", ::getpid(), counter++);
}

// The first column of the first row of `sql`, run on a connection of its own
// to `url` (a libpq URL); "" when there is no row.
std::string query_value(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect: " + message);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  std::string value;
  if (PQresultStatus(result) != PGRES_TUPLES_OK) {
    std::string message = PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    throw std::runtime_error("query failed: " + message);
  }
  if (PQntuples(result) > 0) value = PQgetvalue(result, 0, 0);
  PQclear(result);
  PQfinish(conn);
  return value;
}

// Backends connected with `application_name`, all of them or only those
// waiting for a lock (`waiting`).
int backends_of(const std::string& url, const std::string& application_name, bool waiting = false) {
  return std::stoi(query_value(
      url, fmt::format("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}'{}",
                       application_name, waiting ? " AND wait_event_type = 'Lock'" : "")));
}

// Polls `condition` for up to `limit`; true when it held.
template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

VaultOptions options_for(const std::string& url, const SecretString& key, bool create = true) {
  VaultOptions o;
  o.url = url;
  o.master_key = key.clone();
  o.create_if_missing = create;
  return o;
}

// Holds an ACCESS EXCLUSIVE lock on the vault's credentials table, from a
// connection of its own to `url`, until release(): every read of a
// credential waits for it on the server.
class CredentialsTableLock {
 public:
  explicit CredentialsTableLock(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    PGresult* result =
        PQexec(conn_, "BEGIN; LOCK TABLE credential_vault.credentials IN ACCESS EXCLUSIVE MODE");
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    const std::string message = ok ? "" : PQerrorMessage(conn_);
    PQclear(result);
    if (!ok) {
      PQfinish(conn_);
      throw std::runtime_error("cannot lock the credentials table: " + message);
    }
  }
  ~CredentialsTableLock() { PQfinish(conn_); }  // rolls back, if not released
  CredentialsTableLock(const CredentialsTableLock&) = delete;
  CredentialsTableLock& operator=(const CredentialsTableLock&) = delete;
  void release() { PQclear(PQexec(conn_, "COMMIT")); }

 private:
  PGconn* conn_;
};

// While the credentials table is locked, every get of `vault` waits for it
// on the server, holding a pooled connection: with `threads` gets at once,
// the server shows pool_size of this handle's connections waiting (reads in
// parallel: one, were the handle's reads serialised), and no more
// connections than that. Then the gets complete. Returns the waiting
// backends seen. `server_url`: a URL of the server without our
// application_name (the lock's connection is not one of the handle's).
int waiting_gets_while_locked(Vault& vault, const std::string& server_url, const std::string& application_name,
                              int threads, int pool_size) {
  CredentialsTableLock lock(server_url);
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < threads; ++t) {
    readers.emplace_back([&] {
      try {
        if (vault.get_credential(kAlice, "shared").password.reveal() != "pw-shared") ++failures;
      } catch (const std::exception& e) {
        std::cerr << "get failed: " << e.what() << "\n";
        ++failures;
      }
    });
  }
  // The most seen waiting at once: a backend that runs the server's
  // deadlock check (after deadlock_timeout, 1 s) is not "waiting" while it
  // does, which a slow (sanitized, loaded) run can catch in one sample.
  int waiting = 0;
  (void)eventually([&] {
    waiting = std::max(waiting, backends_of(server_url, application_name, true));
    return waiting >= pool_size;
  });
  std::this_thread::sleep_for(300ms);  // time for a connection beyond the pool to appear, were there one
  waiting = std::max(waiting, backends_of(server_url, application_name, true));
  EXPECT_EQ(backends_of(server_url, application_name), pool_size);
  lock.release();
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(failures.load(), 0);
  return waiting;
}

class PostgresPoolConcurrencyTest : public ::testing::Test {
 protected:
  // The vault URL with `pool_size` and an application_name of this test.
  std::string url(int pool_size) const {
    return with_query(db_.url(), fmt::format("pool_size={}&application_name={}", pool_size, application_name_));
  }
  // A plain libpq URL to the server, as the database's owner (who may see
  // its own sessions in pg_stat_activity).
  std::string server_url() const { return db_.url(); }

  PgDatabase db_;
  SecretString key_ = generate_master_key();
  std::string application_name_ = unique_application_name();
};

// Store level: four transactions open at once hold four connections, and
// the fifth and sixth wait for one of them.
TEST_F(PostgresPoolConcurrencyTest, FourTransactionsHoldFourConnectionsAndTheNextWaits) {
  auto store = internal::PostgresStore::open(url(4), /*create=*/true);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->pool_size(), 4);
  {
    auto txn = store->begin_write();
    store->create_schema();
    txn.commit();
  }
  EXPECT_EQ(backends_of(server_url(), application_name_), 1) << "connections are made lazily";

  std::mutex mutex;
  std::condition_variable released;
  bool release = false;
  std::atomic<int> inside{0}, most_inside{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      try {
        auto txn = store->begin_read();
        const int now = ++inside;
        for (int seen = most_inside.load(); now > seen && !most_inside.compare_exchange_weak(seen, now);) {
        }
        if (store->credential_count() != 0) ++failures;
        {
          std::unique_lock lock(mutex);
          released.wait(lock, [&] { return release; });
        }
        --inside;
        txn.commit();
      } catch (const std::exception& e) {
        std::cerr << "reader failed: " << e.what() << "\n";
        ++failures;
      }
    });
  }
  EXPECT_TRUE(eventually([&] { return inside.load() == 4; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(inside.load(), 4) << "more transactions than connections";
  EXPECT_EQ(backends_of(server_url(), application_name_), 4);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  released.notify_all();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(most_inside.load(), 4);
  EXPECT_EQ(backends_of(server_url(), application_name_), 4);
}

// Vault level: the reads of one handle run at once, on at most pool_size
// connections.
TEST_F(PostgresPoolConcurrencyTest, ReadsOfOneHandleRunInParallelOnAtMostPoolSizeConnections) {
  auto vault = Vault::open(options_for(url(4), key_));
  vault.store_credential(kAlice, {.name = "shared", .host = "h", .password = "pw-shared"});
  EXPECT_EQ(waiting_gets_while_locked(vault, server_url(), application_name_, 8, 4), 4);
}

// Another host adds a data key and re-encrypts: the reader threads of this
// handle, reading at once under its shared lock, each meet the new key and
// load it into the one keyring, and every read decrypts.
TEST_F(PostgresPoolConcurrencyTest, ReaderThreadsLoadADataKeyAddedByAnotherHost) {
  auto vault = Vault::open(options_for(url(4), key_));
  auto other_host = Vault::open(options_for(db_.url(), key_));
  constexpr int kCredentials = 4;
  for (int k = 0; k < kCredentials; ++k) {
    vault.store_credential(kAlice, {.name = fmt::format("c{}", k), .host = "h", .password = "pw-0"});
  }
  for (int round = 1; round <= 3; ++round) {
    (void)other_host.rotate_data_key();
    (void)other_host.reencrypt({}, 100);
    const std::string password = fmt::format("pw-{}", round);
    for (int k = 0; k < kCredentials; ++k) {
      (void)other_host.update_password(kAlice, fmt::format("c{}", k), SecretString(password));
    }
    std::atomic<int> ready{0}, failures{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 8; ++t) {
      readers.emplace_back([&, t] {
        ++ready;
        while (ready.load() < 8) std::this_thread::yield();  // all start at once
        try {
          const auto got = vault.get_credential(kAlice, fmt::format("c{}", t % kCredentials));
          if (got.password.reveal() != password) ++failures;
        } catch (const std::exception& e) {
          std::cerr << "get failed: " << e.what() << "\n";
          ++failures;
        }
      });
    }
    for (auto& reader : readers) reader.join();
    EXPECT_EQ(failures.load(), 0) << "round " << round;
  }
  EXPECT_TRUE(vault.verify().ok());
}

class PostgresPoolConcurrencyPoolSizeTest : public PostgresPoolConcurrencyTest,
                                            public ::testing::WithParamInterface<int> {};

// Eight threads get and update four credentials through one handle: every
// read returns a password that was really written, nothing fails, and the
// server never sees more connections than the pool's size.
TEST_P(PostgresPoolConcurrencyPoolSizeTest, EightThreadsGetAndUpdateThroughOneHandle) {
  const int pool_size = GetParam();
  constexpr int kCredentials = 4;
  const int rounds = long_mode() ? 400 : 60;
  auto vault = Vault::open(options_for(url(pool_size), key_));
  std::mutex written_mutex;
  std::set<std::string> written;
  for (int k = 0; k < kCredentials; ++k) {
    const std::string password = fmt::format("c{}-initial", k);
    written.insert(password);
    vault.store_credential(kAlice, {.name = fmt::format("c{}", k), .host = "h", .password = password});
  }
  std::atomic<bool> done{false};
  std::atomic<int> most_connections{0};
  std::thread monitor([&] {
    while (!done) {
      const int now = backends_of(server_url(), application_name_);
      if (now > most_connections) most_connections = now;
      std::this_thread::sleep_for(10ms);
    }
  });
  std::atomic<int> reads{0}, updates{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        const int k = (t + i) % kCredentials;
        const std::string name = fmt::format("c{}", k);
        try {
          if (i % 4 == 0) {
            const std::string password = fmt::format("c{}-t{}-i{}", k, t, i);
            {
              std::lock_guard lock(written_mutex);
              written.insert(password);
            }
            (void)vault.update_password(kAlice, name, SecretString(password));
            ++updates;
          } else {
            const std::string password(vault.get_credential(kAlice, name).password.reveal());
            std::lock_guard lock(written_mutex);
            if (!password.starts_with(fmt::format("c{}-", k)) || !written.count(password)) {
              std::lock_guard errors_lock(errors_mutex);
              errors.push_back(fmt::format("read '{}' from {}: never written there", password, name));
            }
            ++reads;
          }
        } catch (const std::exception& e) {
          std::lock_guard lock(errors_mutex);
          errors.emplace_back(e.what());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  done = true;
  monitor.join();
  EXPECT_TRUE(errors.empty()) << errors.size() << " errors, the first: " << errors.front();
  EXPECT_EQ(reads.load() + updates.load(), 8 * rounds);
  EXPECT_LE(most_connections.load(), pool_size);
  EXPECT_GE(most_connections.load(), 1);
  std::cout << "pool_size " << pool_size << ": " << reads << " reads, " << updates
            << " updates, at most " << most_connections << " connections seen\n";
  EXPECT_TRUE(vault.verify().ok());
}

INSTANTIATE_TEST_SUITE_P(PoolSizes, PostgresPoolConcurrencyPoolSizeTest, ::testing::Values(1, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "PoolSize" + std::to_string(info.param);
                         });

// A bad pool_size is refused before anything connects, with a message that
// names the parameter and its range, and not the password of the URL.
TEST_F(PostgresPoolConcurrencyTest, BadPoolSizeIsAClearInvalidArgumentError) {
  for (const char* bad : {"0", "65", "abc", "", "-1", "4x"}) {
    SCOPED_TRACE(bad);
    std::string message;
    try {
      (void)Vault::open(options_for(with_query(db_.url(), std::string("pool_size=") + bad), key_));
    } catch (const InvalidArgumentError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("pool_size"), std::string::npos) << message;
    EXPECT_NE(message.find("from 1 to 64"), std::string::npos) << message;
    EXPECT_EQ(message.find(testing::kRolePassword), std::string::npos) << message;
    EXPECT_EQ(message.find(testing::percent_encode(testing::kRolePassword)), std::string::npos) << message;
    EXPECT_EQ(message.find("w:rd"), std::string::npos) << message;
  }
  EXPECT_EQ(internal::PostgresStore::open(with_query(db_.url(), "pool_size=64"), true)->pool_size(), 64);
  EXPECT_EQ(internal::PostgresStore::open(db_.url(), true)->pool_size(), 4);
}

// The server stops and starts again while four threads write through one
// handle: every acknowledged write is there afterwards, and all four pooled
// connections work again (the server shows them, reconnected, at once).
TEST(PostgresPoolConcurrencyRestartTest, EveryPooledConnectionReconnectsAndNoAcknowledgedWriteIsLost) {
  ASSERT_TRUE(testing::PostgresServer::available()) << testing::PostgresServer::kNotConfigured;
  testing::PrivateCluster cluster;
  const std::string application_name = unique_application_name();
  const std::string url = with_query(cluster.url(), "pool_size=4&application_name=" + application_name);
  const SecretString key = generate_master_key();
  auto vault = Vault::open(options_for(url, key));
  vault.store_credential(kAlice, {.name = "shared", .host = "h", .password = "pw-shared"});

  constexpr int kWriters = 4;
  std::mutex mutex;
  std::vector<std::string> acknowledged;
  std::vector<std::string> errors;
  std::atomic<bool> stop{false};
  std::atomic<int> other_errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string name = fmt::format("w{}-{}", t, i);
        for (;;) {  // retried until it is acknowledged
          try {
            vault.store_credential(kAlice, {.name = name, .host = "h", .password = "pw-" + name});
            (void)vault.get_credential(kAlice, "shared");
            break;
          } catch (const AlreadyExistsError&) {
            break;  // an attempt whose commit was cut off did commit
          } catch (const DatabaseError& e) {
            std::lock_guard lock(mutex);
            errors.emplace_back(e.what());
          } catch (const std::exception&) {
            ++other_errors;
          }
          std::this_thread::sleep_for(20ms);
          if (stop) return;
        }
        std::lock_guard lock(mutex);
        acknowledged.push_back(name);
      }
    });
  }
  auto acknowledged_count = [&] {
    std::lock_guard lock(mutex);
    return acknowledged.size();
  };
  EXPECT_TRUE(eventually([&] { return acknowledged_count() >= 20; }, 60s));
  cluster.stop();
  std::this_thread::sleep_for(1500ms);
  const std::size_t acknowledged_while_down = acknowledged_count();
  cluster.start();
  EXPECT_TRUE(eventually([&] { return acknowledged_count() >= acknowledged_while_down + 40; }, 60s));
  stop = true;
  for (auto& writer : writers) writer.join();

  EXPECT_EQ(other_errors.load(), 0);
  ASSERT_FALSE(errors.empty()) << "no write failed while the server was down";
  for (const auto& message : errors) {
    const bool clear = message.find("unreachable") != std::string::npos ||
                       message.find("was lost") != std::string::npos ||
                       message.find("cannot connect") != std::string::npos;
    EXPECT_TRUE(clear) << message;
  }
  auto fresh = Vault::open(options_for(cluster.url(), key, false));
  for (const auto& name : acknowledged) {
    EXPECT_EQ(fresh.get_credential(kAlice, name).password.reveal(), "pw-" + name);
  }
  EXPECT_TRUE(fresh.verify().ok());
  // All four connections of the handle that lived through the restart work
  // at once.
  EXPECT_EQ(waiting_gets_while_locked(vault, cluster.url(), application_name, 6, 4), 4);
}

}  // namespace
}  // namespace credentials
