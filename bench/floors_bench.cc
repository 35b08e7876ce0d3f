// The floors the vault's figures are compared with (issue 8), measured in the
// same run on the same machine and file system:
//   - one AES-256-GCM decrypt of one record-sized payload (internal::aead_decrypt)
//   - one SQLite point lookup on a WITHOUT ROWID blob-keyed table of the vault's size
//   - one fsync of a file in the vault's file system (write 4 KiB + fsync), and
//     the same with fdatasync (what SQLite calls at a durable WAL commit)
//   - one raw libpq round trip (SELECT 1 on an open connection; needs PGHOST)
// and, to explain the composite figures: HMAC-SHA256 of a lookup tag, and
// one small SQLite write transaction with and without fsync (WAL mode,
// synchronous=NORMAL / FULL, as the vault runs reads' and writes' transactions),
// and the same on PostgreSQL (synchronous_commit off / on, as the shared
// store runs them).
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "bench_common.h"
#include "crypto/primitives.h"
#include "vault/record_codec.h"

namespace credentials::bench {
namespace {

using internal::Bytes;
using internal::SecretBytes;

// The plaintext of a typical record, as the vault encodes it.
SecretBytes record_plaintext() {
  std::mt19937_64 rng(1);
  NewCredential in = sample_credential("db-042", 42042, rng);
  Credential c;
  c.credential_id = "u0042_db-042_0123456789abcdef";
  c.owner = "u0042";
  c.name = in.name;
  c.db_type = in.db_type;
  c.host = in.host;
  c.port = in.port;
  c.database = in.database;
  c.username = in.username;
  c.password = std::move(in.password);
  c.description = in.description;
  c.ssl_mode = in.ssl_mode;
  c.version = 1;
  return internal::encode_record(c);
}

// Associated data of the vault's size: label ‖ vault id ‖ lookup ‖ version ‖ key id.
Bytes record_aad() { return internal::random_bytes(21 + 16 + 32 + 8 + 8); }

void apply_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : sizes()) b->Arg(s);
  b->ArgName("rows")->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void BM_AeadDecryptRecord(benchmark::State& state) {
  const SecretBytes key = internal::random_secret(internal::kKeySize);
  const SecretBytes plain = record_plaintext();
  const Bytes aad = record_aad();
  const Bytes sealed = internal::aead_encrypt(key, plain.span(), aad);
  for (auto _ : state) {
    auto out = internal::aead_decrypt(key, sealed, aad);
    benchmark::DoNotOptimize(out->span().data());
  }
  state.counters["sealed_bytes"] = static_cast<double>(sealed.size());
}
BENCHMARK(BM_AeadDecryptRecord)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_HmacLookupTag(benchmark::State& state) {
  const SecretBytes key = internal::random_secret(internal::kKeySize);
  const Bytes message =
      internal::random_bytes(1 + 8 + 5 + 8 + 6);  // 'l' ‖ len ‖ owner ‖ len ‖ name
  for (auto _ : state) {
    Bytes tag = internal::hmac_sha256(key, message);
    benchmark::DoNotOptimize(tag.data());
  }
}
BENCHMARK(BM_HmacLookupTag)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The MAC of one 300-byte read-journal entry under a key held by the
// keyring, as the audit computes it two or three times a read (after the
// first MiB, with OpenSSL's SHA-NI code).
void BM_HmacJournalEntry(benchmark::State& state) {
  const internal::HmacSha256 keyed(internal::random_bytes(internal::kKeySize));
  const Bytes entry = internal::random_bytes(300);
  for (auto _ : state) {
    Bytes mac = keyed.mac(entry);
    benchmark::DoNotOptimize(mac.data());
  }
}
BENCHMARK(BM_HmacJournalEntry)->UseRealTime()->Unit(benchmark::kMicrosecond);

// One AES-GCM nonce from the OS: what the library draws, and getrandom(2)
// itself.
void BM_RandomNonce(benchmark::State& state) {
  Bytes nonce(internal::kGcmNonceSize);
  for (auto _ : state) {
    internal::random_fill(nonce);
    benchmark::DoNotOptimize(nonce.data());
  }
}
BENCHMARK(BM_RandomNonce)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_GetrandomSyscall(benchmark::State& state) {
  Bytes nonce(internal::kGcmNonceSize);
  for (auto _ : state) {
    if (::getrandom(nonce.data(), nonce.size(), 0) != static_cast<ssize_t>(nonce.size())) {
      state.SkipWithError("getrandom failed");
      break;
    }
    benchmark::DoNotOptimize(nonce.data());
  }
}
BENCHMARK(BM_GetrandomSyscall)->UseRealTime()->Unit(benchmark::kMicrosecond);

// --- SQLite -----------------------------------------------------------------------

struct SqliteFile {
  fs::path path;
  sqlite3* db = nullptr;
  explicit SqliteFile(const std::string& name) {
    fs::create_directories(bench_dir());
    path = bench_dir() / fmt::format("{}-{}.db", name, ::getpid());
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) std::abort();
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  }
  ~SqliteFile() {
    sqlite3_close_v2(db);
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix, ec);
  }
  void exec(const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
      std::abort();
    }
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) std::abort();
    return stmt;
  }
};

void BM_SqlitePointLookup(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  SqliteFile f("floor-lookup");
  f.exec("CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;");
  const std::size_t value_size =
      record_plaintext().size() + internal::kGcmNonceSize + internal::kGcmTagSize;
  std::vector<Bytes> keys;
  keys.reserve(rows);
  f.exec("BEGIN");
  sqlite3_stmt* ins = f.prepare("INSERT INTO t(k, v) VALUES(?1, ?2)");
  for (std::int64_t i = 0; i < rows; ++i) {
    keys.push_back(internal::random_bytes(32));
    const Bytes value = internal::random_bytes(value_size);
    sqlite3_bind_blob(ins, 1, keys.back().data(), 32, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(ins) != SQLITE_DONE) std::abort();
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  f.exec("COMMIT");
  sqlite3_stmt* q = f.prepare("SELECT v FROM t WHERE k = ?1");
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    const Bytes& k = keys[rng() % keys.size()];
    sqlite3_bind_blob(q, 1, k.data(), 32, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) state.SkipWithError("row not found");
    benchmark::DoNotOptimize(sqlite3_column_blob(q, 0));
    benchmark::DoNotOptimize(sqlite3_column_bytes(q, 0));
    sqlite3_reset(q);
  }
  sqlite3_finalize(q);
  state.counters["value_bytes"] = static_cast<double>(value_size);
}
BENCHMARK(BM_SqlitePointLookup)->Apply(apply_sizes);

// One small write transaction (BEGIN IMMEDIATE; INSERT ~200 bytes; COMMIT):
// durable=0 is synchronous=NORMAL (no fsync at commit, as the vault records a
// read's audit event), durable=1 is synchronous=FULL (as the vault writes).
void BM_SqliteWriteTransaction(benchmark::State& state) {
  SqliteFile f("floor-commit");
  f.exec(state.range(0) ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  f.exec("CREATE TABLE t (seq INTEGER PRIMARY KEY, v BLOB NOT NULL);");
  sqlite3_stmt* ins = f.prepare("INSERT INTO t(v) VALUES(?1)");
  sqlite3_stmt* begin = f.prepare("BEGIN IMMEDIATE");
  sqlite3_stmt* commit = f.prepare("COMMIT");
  const Bytes value = internal::random_bytes(200);
  for (auto _ : state) {
    sqlite3_step(begin);
    sqlite3_reset(begin);
    sqlite3_bind_blob(ins, 1, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) state.SkipWithError("insert failed");
    sqlite3_reset(ins);
    if (sqlite3_step(commit) != SQLITE_DONE) state.SkipWithError("commit failed");
    sqlite3_reset(commit);
  }
  for (sqlite3_stmt* s : {ins, begin, commit}) sqlite3_finalize(s);
}
BENCHMARK(BM_SqliteWriteTransaction)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("durable")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// --- the file system ----------------------------------------------------------------

// range(0) == 0: fsync (data and inode: the mtime change makes ext4 commit its
// journal); 1: fdatasync (data only), which is what SQLite calls on Linux
// when it overwrites its WAL in place.
void BM_Sync4KiB(benchmark::State& state) {
  const bool data_only = state.range(0) == 1;
  fs::create_directories(bench_dir());
  const fs::path path = bench_dir() / fmt::format("floor-fsync-{}", ::getpid());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    state.SkipWithError("cannot create a file in the bench directory");
    for (auto _ : state) {
    }
    return;
  }
  char block[4096];
  std::memset(block, 'x', sizeof block);
  for (auto _ : state) {
    if (::pwrite(fd, block, sizeof block, 0) != static_cast<ssize_t>(sizeof block) ||
        (data_only ? ::fdatasync(fd) : ::fsync(fd)) != 0) {
      state.SkipWithError("write or fsync failed");
      break;
    }
  }
  ::close(fd);
  fs::remove(path);
}
BENCHMARK(BM_Sync4KiB)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("fdatasync")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// --- PostgreSQL ---------------------------------------------------------------------

void BM_LibpqRoundTrip(benchmark::State& state) {
  const char* host = std::getenv("PGHOST");
  if (host == nullptr || *host == '\0') {
    state.SkipWithError("PGHOST is not set: run under pg_virtualenv (bench/run does)");
    for (auto _ : state) {
    }
    return;
  }
  PGconn* conn = PQconnectdb("");
  if (PQstatus(conn) != CONNECTION_OK) {
    state.SkipWithError("cannot connect to PostgreSQL with the PG* environment");
    PQfinish(conn);
    for (auto _ : state) {
    }
    return;
  }
  for (auto _ : state) {
    PGresult* r = PQexec(conn, "SELECT 1");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) state.SkipWithError("SELECT 1 failed");
    benchmark::DoNotOptimize(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(conn);
}
BENCHMARK(BM_LibpqRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

// One small write transaction on an open connection, three round trips
// (BEGIN; INSERT ~200 bytes with PQexecParams; COMMIT): durable=1 waits at
// COMMIT for the server's WAL flush (synchronous_commit=on, as the shared
// store's writes), durable=0 does not (synchronous_commit=off, as its reads'
// audit events). The floor of the shared store's writes (pgstore_bench).
void BM_LibpqWriteTransaction(benchmark::State& state) {
  const char* host = std::getenv("PGHOST");
  if (host == nullptr || *host == '\0') {
    state.SkipWithError("PGHOST is not set: run under pg_virtualenv (bench/run does)");
    for (auto _ : state) {
    }
    return;
  }
  PGconn* conn = PQconnectdb("");
  const std::string table = fmt::format("bench_floor_commit_{}", ::getpid());
  auto exec = [&](const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  };
  if (PQstatus(conn) != CONNECTION_OK ||
      !exec(state.range(0) ? "SET synchronous_commit = on" : "SET synchronous_commit = off") ||
      !exec(fmt::format("CREATE TABLE {} (seq bigserial PRIMARY KEY, v bytea NOT NULL)", table))) {
    state.SkipWithError("cannot connect to PostgreSQL or create a table with the PG* environment");
    PQfinish(conn);
    for (auto _ : state) {
    }
    return;
  }
  const std::string insert = fmt::format("INSERT INTO {}(v) VALUES($1)", table);
  const Bytes value = internal::random_bytes(200);
  const char* values[] = {reinterpret_cast<const char*>(value.data())};
  const int lengths[] = {static_cast<int>(value.size())};
  const int formats[] = {1};
  for (auto _ : state) {
    bool ok = exec("BEGIN");
    PGresult* r = PQexecParams(conn, insert.c_str(), 1, nullptr, values, lengths, formats, 1);
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!(exec("COMMIT") && ok)) {
      state.SkipWithError("the write transaction failed");
      break;
    }
  }
  exec("DROP TABLE " + table);
  PQfinish(conn);
}
BENCHMARK(BM_LibpqWriteTransaction)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("durable")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace credentials::bench

BENCHMARK_MAIN();
