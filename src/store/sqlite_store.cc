#include "store/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "credentials/errors.h"

namespace credentials::internal {
namespace fs = std::filesystem;
namespace {

constexpr int kBusyTimeoutMs = 30000;

// A file that is not an SQLite database, damaged pages, or a table or
// column of the vault's schema that is gone: a vault file that was altered
// (exit 5, as a record that fails its MAC), not a storage failure. Throws
// the error for the last failed call on `db`.
[[noreturn]] void throw_storage_error(sqlite3* db, const std::string& message) {
  const int code = db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
  const std::string detail = db ? sqlite3_errmsg(db) : "out of memory";
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    throw DecryptionFailedError(fmt::format(
        "the vault file is damaged or is not a vault ({}): restore the vault from a backup", detail));
  }
  if (code == SQLITE_ERROR && (detail.rfind("no such table", 0) == 0 || detail.rfind("no such column", 0) == 0)) {
    throw DecryptionFailedError(fmt::format(
        "the vault was altered ({}): run `credential_manager verify` and restore the vault from a backup",
        detail));
  }
  throw DatabaseError(message);
}

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw_storage_error(db, fmt::format("vault storage: {} failed: {}", what,
                                      db ? sqlite3_errmsg(db) : "out of memory"));
}

// The directory and file modes are set explicitly, not left to the umask:
// under `umask 000` SQLite would otherwise create a world-readable vault.
void make_private_directory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw DatabaseError(fmt::format("cannot create the vault directory {}: {}", dir.string(),
                                    ec.message()));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    throw DatabaseError(fmt::format("cannot make the vault directory {} private: {}", dir.string(),
                                    std::strerror(errno)));
  }
}

void fsync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Creates the database file 0600 before SQLite opens it; SQLite gives its
// -wal and -shm files the mode of the database file.
void make_private_file(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == ELOOP) {
    throw InvalidArgumentError(fmt::format(
        "the vault file {} is a symbolic link: it is never followed, and nothing was created",
        file.string()));
  }
  if (fd < 0) {
    throw DatabaseError(fmt::format("cannot create the vault file {}: {}", file.string(),
                                    std::strerror(errno)));
  }
  const bool ok = ::fchmod(fd, 0600) == 0;
  ::close(fd);
  if (!ok) throw DatabaseError(fmt::format("cannot make the vault file {} private", file.string()));
  fsync_path(file.parent_path(), O_RDONLY | O_DIRECTORY);
}

Bytes column_bytes(sqlite3_stmt* stmt, int column) {
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, column));
  const int n = sqlite3_column_bytes(stmt, column);
  return data ? Bytes(data, data + n) : Bytes();
}

}  // namespace

// A cached prepared statement; reset and unbound when a use ends.
class SqliteStore::Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      fail(db, "prepare");
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& bind(int i, ByteView blob) {
    // An empty span may have a null data pointer, which sqlite3_bind_blob
    // would bind as NULL; an empty blob is what is meant.
    check(blob.empty() ? sqlite3_bind_zeroblob(stmt_, i, 0)
                       : sqlite3_bind_blob(stmt_, i, blob.data(), static_cast<int>(blob.size()),
                                           SQLITE_STATIC));
    return *this;
  }
  Statement& bind(int i, std::string_view text) {
    check(sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC));
    return *this;
  }
  Statement& bind(int i, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, i, value));
    return *this;
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "query");
  }
  void run() {
    while (step()) {
    }
  }
  sqlite3_stmt* get() { return stmt_; }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, "bind");
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

namespace {
// Resets the statement when a use ends, also by exception.
struct Use {
  explicit Use(auto& statement) : s(statement) {}
  ~Use() { s.reset(); }
  decltype(auto) operator->() { return &s; }
  SqliteStore::Statement& s;
};
}  // namespace

namespace {
// SQLite's usual cache_size (-2000: KiB), the floor of a large write's.
constexpr std::size_t kDefaultCacheKib = 2000;
}  // namespace

// Before anything is created: SQLite's "unable to open database file" came
// only after an empty vault.db had been made in the link's target.
void SqliteStore::refuse_symbolic_links(const fs::path& directory) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(directory, ec).lexically_normal();
  if (ec) return;  // the open below reports what is wrong
  fs::path walked;
  for (const fs::path& part : absolute) {
    if (part.empty()) continue;  // a trailing '/'
    walked /= part;
    struct stat st {};
    if (::lstat(walked.c_str(), &st) != 0) return;  // the rest does not exist yet
    if (!S_ISLNK(st.st_mode)) continue;
    const fs::path real = fs::weakly_canonical(absolute, ec);
    throw InvalidArgumentError(fmt::format(
        "the vault directory {} {} a symbolic link ({}): a vault is opened by its real path only, "
        "so that a link cannot redirect it; nothing was changed. Name the real directory{}",
        directory.string(), walked == absolute ? "is" : "goes through", walked.string(),
        ec ? std::string() : fmt::format(": {}", real.string())));
  }
}

std::unique_ptr<SqliteStore> SqliteStore::open(const fs::path& directory, bool create) {
  refuse_symbolic_links(directory);
  const fs::path file = directory / kFileName;
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    if (!create) return nullptr;
    make_private_directory(directory);
    make_private_file(file);
  } else if (create) {
    // An existing directory is tightened too: a vault must never sit in a
    // directory that others can list.
    make_private_directory(directory);
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    const int extended = db ? sqlite3_extended_errcode(db) : rc;
    sqlite3_close(db);
    if (extended == SQLITE_CANTOPEN_SYMLINK) {
      throw InvalidArgumentError(fmt::format(
          "the vault file {} is a symbolic link: it is never followed. Point --vault-dir (or "
          "CREDENTIAL_VAULT_DIR) at the directory that holds the vault itself",
          file.string()));
    }
    throw DatabaseError(fmt::format("cannot open the vault {}: {}", file.string(), message));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(directory, db));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // What the file holds is checked before anything writes to it (the
  // pragmas below do): a file that is not a vault is refused, never given a
  // fresh header and keys, and an empty one is a vault only to create.
  switch (store->contents()) {
    case Contents::kEmpty:
      if (!create) return nullptr;
      break;
    case Contents::kVault:
      store->vault_id_ = store->get_meta("vault_id").value_or(Bytes());
      break;
    case Contents::kAlteredVault:
      throw DecryptionFailedError(fmt::format(
          "{} has a vault's tables but not its header (vault id, key derivation, format): it was "
          "emptied or altered. Nothing was changed; restore the vault from a backup",
          file.string()));
    case Contents::kForeign:
      throw InvalidArgumentError(fmt::format(
          "{} is not a vault: it is an SQLite database of another program. Nothing was changed; "
          "point --vault-dir (or CREDENTIAL_VAULT_DIR) at a vault directory",
          file.string()));
  }
  // No checkpoint when the last connection closes: it would fsync the
  // database on the exit of every short-lived process (a CLI `list`). The
  // write-ahead log stays beside the database, is checkpointed as it grows
  // (every 1,000 pages), and is part of the vault (docs/FORMAT.md).
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  sqlite3_extended_result_codes(db, 1);
  // secure_delete: deleted versions are overwritten, not left in free pages.
  // temp_store=MEMORY: no temporary files outside the vault directory.
  // mmap_size: the database file is read through a shared mapping of the
  // kernel's page cache instead of a read(2) and a copy per page into a
  // private cache. A get at 100,000 credentials went from 34 to 19 µs, and a
  // CLI `list` has fewer page faults. What it maps is the encrypted file;
  // file-backed pages are not in a core dump (coredump_filter) and count as
  // shared, reclaimable memory. Past 256 MiB the rest is read as before.
  store->exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
      "PRAGMA temp_store=MEMORY; PRAGMA trusted_schema=OFF; PRAGMA foreign_keys=ON;"
      "PRAGMA mmap_size=268435456;");
  return store;
}

SqliteStore::SqliteStore(fs::path directory, sqlite3* db)
    : directory_(std::move(directory)), db_(db) {}

SqliteStore::~SqliteStore() {
  statements_.clear();
  // The log is not checkpointed at close (see open), but a large one is:
  // the next process would read all of it to rebuild its index, and, once it
  // is past the auto-checkpoint size, copy all of it into the database again
  // at its first commit (a new connection cannot know it was copied).
  // 256 KiB: a CLI `list` at 1,000 credentials took ~0.5 ms longer with a
  // log of ~400 KiB to read than with an empty one; a command appends ~9 KiB,
  // so about one process in 28 pays for a checkpoint (one fsync).
  constexpr std::uintmax_t kLargeLogBytes = 256 << 10;
  std::error_code ec;
  const auto log_size = fs::file_size(directory_ / (std::string(kFileName) + "-wal"), ec);
  if (!ec && log_size > kLargeLogBytes) compact_log();
  sqlite3_close_v2(db_);
}

void SqliteStore::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    throw_storage_error(db_, fmt::format("vault storage: {}", message));
  }
}

SqliteStore::Statement& SqliteStore::prepare(const char* sql) {
  auto& slot = statements_[sql];
  if (!slot) slot = std::make_unique<Statement>(db_, sql);
  return *slot;
}

void SqliteStore::set_durable(bool durable) {
  if (durable == durable_) return;
  exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  durable_ = durable;
}

// Transaction statements are prepared once: sqlite3_exec would parse
// "BEGIN" and "COMMIT" again for every read (about a microsecond each).
void SqliteStore::run_prepared(const char* sql) {
  Use q(prepare(sql));
  if (sqlite3_step(q->get()) != SQLITE_DONE) {
    throw_storage_error(db_, fmt::format("vault storage: {}", sqlite3_errmsg(db_)));
  }
}

void SqliteStore::start_write(bool durable) {
  set_durable(durable);
  run_prepared("BEGIN IMMEDIATE");
  // `restore --force` replaces a vault in place (replace_contents): a
  // connection that opened another vault must not write into the restored
  // one what it seals for its own.
  if (!vault_id_.empty() && get_meta("vault_id") != vault_id_) {
    rollback_transaction();
    throw DatabaseError(fmt::format(
        "the vault in {} was replaced by another vault (restored from its backup) since this "
        "process opened it: nothing was written. Open the vault again",
        directory_.string()));
  }
}

void SqliteStore::start_read() { run_prepared("BEGIN"); }

bool SqliteStore::in_transaction() { return sqlite3_get_autocommit(db_) == 0; }

// Changes when another connection commits: SQLite notices it at the start
// of a read, from the log's index (no file read).
std::optional<std::uint64_t> SqliteStore::data_version() {
  Use q(prepare("PRAGMA data_version"));
  if (!q->step()) throw DatabaseError("vault storage: PRAGMA data_version returned nothing");
  return static_cast<std::uint64_t>(sqlite3_column_int64(q->get(), 0));
}

// The pragma moves when another connection commits; total_changes counts
// this connection's own writes, and only grows.
std::optional<ChangeStamp> SqliteStore::change_stamp() {
  const auto others = data_version();
  return ChangeStamp{*others, static_cast<std::uint64_t>(sqlite3_total_changes64(db_))};
}

void SqliteStore::commit_transaction() { run_prepared("COMMIT"); }

void SqliteStore::rollback_transaction() noexcept {
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

SqliteStore::Contents SqliteStore::contents() {
  sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);  // a foreign schema is parsed
  auto txn = begin_read();
  Use q(prepare(
      "SELECT count(*), count(*) FILTER (WHERE type = 'table' AND name IN ('meta', 'keys', "
      "'credentials', 'credential_ids', 'versions', 'audit', 'ledger')) FROM sqlite_schema"));
  q->step();
  if (sqlite3_column_int64(q->get(), 0) == 0) return Contents::kEmpty;
  if (sqlite3_column_int64(q->get(), 1) == 0) return Contents::kForeign;
  return initialized() ? Contents::kVault : Contents::kAlteredVault;
}

bool SqliteStore::initialized() {
  Use q(prepare("SELECT 1 FROM sqlite_schema WHERE type='table' AND name='meta'"));
  if (!q->step()) return false;
  // A vault's format (or a pre-release build's format_version, which the
  // vault refuses with what to do).
  return get_meta("format").has_value() || get_meta("format_version").has_value();
}

void SqliteStore::create_schema() {
  exec(R"sql(
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS keys (
      key_id INTEGER PRIMARY KEY,
      purpose TEXT NOT NULL,
      wrapped BLOB NOT NULL,
      created_at INTEGER NOT NULL,
      encryptions INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS credentials (
      lookup BLOB PRIMARY KEY,
      owner_tag BLOB NOT NULL,
      current_version INTEGER NOT NULL,
      last_used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS credentials_by_owner ON credentials(owner_tag);
    CREATE TABLE IF NOT EXISTS credential_ids (
      id_tag BLOB PRIMARY KEY,
      lookup BLOB NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS credential_ids_by_lookup ON credential_ids(lookup);
    CREATE TABLE IF NOT EXISTS versions (
      lookup BLOB NOT NULL,
      version INTEGER NOT NULL,
      key_id INTEGER NOT NULL,
      sealed BLOB NOT NULL,
      PRIMARY KEY (lookup, version)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS audit (
      seq INTEGER PRIMARY KEY,
      owner_tag BLOB,
      sealed BLOB NOT NULL,
      mac BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS audit_segment (
      segment_id BLOB NOT NULL,
      first_idx INTEGER NOT NULL,
      count INTEGER NOT NULL,
      entries BLOB NOT NULL,
      PRIMARY KEY (segment_id, first_idx));
    CREATE TABLE IF NOT EXISTS ledger (
      node_id INTEGER PRIMARY KEY,
      body BLOB NOT NULL);
  )sql");
}

std::optional<Bytes> SqliteStore::get_meta(std::string_view key) {
  Use q(prepare("SELECT value FROM meta WHERE key = ?1"));
  q->bind(1, key);
  if (!q->step()) return std::nullopt;
  return column_bytes(q->get(), 0);
}

void SqliteStore::put_meta(std::string_view key, ByteView value) {
  Use q(prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  q->bind(1, key).bind(2, value).run();
}

void SqliteStore::compact_log() {
  // TRUNCATE waits for readers on older snapshots; a short wait, then leave
  // it to the next delete or the automatic checkpoints.
  constexpr int kCompactWaitMs = 200;
  sqlite3_busy_timeout(db_, kCompactWaitMs);
  sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
}

// A credential takes ~800 bytes across its tables, and its keys (HMAC tags)
// land on random pages of each: past SQLite's usual 2,000 KiB of cache,
// every page a large transaction evicts is written to the log and read back
// at the next insert that lands on it. Importing 100,000 credentials took
// 12.8 s with the usual cache and 7.6 s with room for every page it touches
// (bench/vault_bench BM_ImportLegacy). The pages it may touch: the new
// records' own, and, as inserts land on random pages, the existing ones,
// at most ~5 per record (one leaf per table and index). The pages hold
// sealed records, as the file does; memory is taken only as pages are
// touched, and SQLite frees the pages above the usual bound at
// end_large_write (the C library may keep some of that heap for reuse).
// Best effort: if the cache cannot be raised, the write runs as before.
bool SqliteStore::begin_large_write(std::size_t records) {
  // A few hundred fit in the usual cache.
  constexpr std::size_t kLargeWriteRecords = 256;
  if (records <= kLargeWriteRecords || saved_cache_size_) return false;
  constexpr std::size_t kNewKibPerRecord = 2;
  constexpr std::size_t kMaxTouchedKibPerRecord = 24;
  constexpr std::size_t kMaxKib = 256u << 10;
  std::error_code ec;
  const std::uintmax_t file_bytes = fs::file_size(directory_ / kFileName, ec);
  const std::size_t existing_kib = ec ? 0 : static_cast<std::size_t>(file_bytes >> 10);
  const std::size_t touched_kib =
      std::min(records * kMaxTouchedKibPerRecord, existing_kib + records * kNewKibPerRecord);
  const std::size_t kib = std::min(kMaxKib, kDefaultCacheKib + touched_kib);
  std::int64_t current = 0;
  try {
    Use q(prepare("PRAGMA cache_size"));
    if (!q->step()) return false;
    current = sqlite3_column_int64(q->get(), 0);
  } catch (const DatabaseError&) {
    return false;
  }
  const std::string raise = fmt::format("PRAGMA cache_size=-{}", kib);
  if (sqlite3_exec(db_, raise.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return false;
  saved_cache_size_ = current;
  return true;
}

void SqliteStore::end_large_write() noexcept {
  if (!saved_cache_size_) return;
  // Back to the bound it had (negative: KiB, positive: pages); SQLite frees
  // the pages above it. Formatted without allocating: this cannot throw.
  char restore[48];
  std::snprintf(restore, sizeof restore, "PRAGMA cache_size=%lld", static_cast<long long>(*saved_cache_size_));
  sqlite3_exec(db_, restore, nullptr, nullptr, nullptr);
  saved_cache_size_.reset();
}

void SqliteStore::delete_meta(std::string_view key) {
  Use q(prepare("DELETE FROM meta WHERE key = ?1"));
  q->bind(1, key).run();
}

std::vector<std::pair<std::string, Bytes>> SqliteStore::all_meta() {
  Use q(prepare("SELECT key, value FROM meta ORDER BY key"));
  std::vector<std::pair<std::string, Bytes>> out;
  while (q->step()) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q->get(), 0)),
                     column_bytes(q->get(), 1));
  }
  return out;
}

std::vector<StoredKey> SqliteStore::load_keys() {
  Use q(prepare("SELECT key_id, purpose, wrapped, created_at, encryptions FROM keys ORDER BY key_id"));
  std::vector<StoredKey> keys;
  while (q->step()) {
    sqlite3_stmt* s = q->get();
    keys.push_back({sqlite3_column_int64(s, 0),
                    reinterpret_cast<const char*>(sqlite3_column_text(s, 1)), column_bytes(s, 2),
                    sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4)});
  }
  return keys;
}

void SqliteStore::insert_key(const StoredKey& key) {
  Use q(prepare("INSERT INTO keys(key_id, purpose, wrapped, created_at, encryptions) "
                "VALUES(?1, ?2, ?3, ?4, ?5)"));
  q->bind(1, key.key_id).bind(2, key.purpose).bind(3, key.wrapped).bind(4, key.created_at);
  q->bind(5, key.encryptions).run();
}

void SqliteStore::update_wrapped_key(std::int64_t key_id, ByteView wrapped) {
  Use q(prepare("UPDATE keys SET wrapped = ?2 WHERE key_id = ?1"));
  q->bind(1, key_id).bind(2, wrapped).run();
}

void SqliteStore::add_encryptions(std::int64_t key_id, std::int64_t count) {
  Use q(prepare("UPDATE keys SET encryptions = encryptions + ?2 WHERE key_id = ?1"));
  q->bind(1, key_id).bind(2, count).run();
}

namespace {
StoredRecord record_from(sqlite3_stmt* s) {
  return {column_bytes(s, 0), column_bytes(s, 4),
          static_cast<std::uint64_t>(sqlite3_column_int64(s, 1)), sqlite3_column_int64(s, 2),
          column_bytes(s, 3), sqlite3_column_count(s) > 5 ? sqlite3_column_int64(s, 5) : 0};
}
}  // namespace

std::optional<StoredRecord> SqliteStore::current_record(ByteView lookup) {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used FROM credentials c "
                "JOIN versions v ON v.lookup = c.lookup AND v.version = c.current_version "
                "WHERE c.lookup = ?1"));
  q->bind(1, lookup);
  if (!q->step()) return std::nullopt;
  return record_from(q->get());
}

std::optional<StoredRecord> SqliteStore::current_record(ByteView lookup,
                                                       const std::array<std::int64_t, 3>& ledger_path,
                                                       std::vector<LedgerNode>& path_nodes) {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used, "
                "(SELECT body FROM ledger WHERE node_id = ?2), (SELECT body FROM ledger WHERE node_id = ?3), "
                "(SELECT body FROM ledger WHERE node_id = ?4) FROM credentials c "
                "JOIN versions v ON v.lookup = c.lookup AND v.version = c.current_version "
                "WHERE c.lookup = ?1"));
  q->bind(1, lookup).bind(2, ledger_path[0]).bind(3, ledger_path[1]).bind(4, ledger_path[2]);
  if (!q->step()) return std::nullopt;
  for (int i = 0; i < 3; ++i) {
    if (sqlite3_column_type(q->get(), 6 + i) == SQLITE_NULL) continue;
    path_nodes.push_back({ledger_path[static_cast<std::size_t>(i)], column_bytes(q->get(), 6 + i)});
  }
  return record_from(q->get());
}

std::optional<std::uint64_t> SqliteStore::current_version(ByteView lookup) {
  Use q(prepare("SELECT current_version FROM credentials WHERE lookup = ?1"));
  q->bind(1, lookup);
  if (!q->step()) return std::nullopt;
  return static_cast<std::uint64_t>(sqlite3_column_int64(q->get(), 0));
}

std::optional<CredentialKey> SqliteStore::lookup_by_id(ByteView id_tag) {
  Use q(prepare("SELECT i.lookup, c.owner_tag FROM credential_ids i LEFT JOIN credentials c ON c.lookup = i.lookup "
                "WHERE i.id_tag = ?1"));
  q->bind(1, id_tag);
  if (!q->step()) return std::nullopt;
  return CredentialKey{column_bytes(q->get(), 0), column_bytes(q->get(), 1)};
}

std::vector<StoredRecord> SqliteStore::current_records_of_owner(ByteView owner_tag) {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used FROM credentials c "
                "JOIN versions v ON v.lookup = c.lookup AND v.version = c.current_version "
                "WHERE c.owner_tag = ?1"));
  q->bind(1, owner_tag);
  std::vector<StoredRecord> records;
  while (q->step()) records.push_back(record_from(q->get()));
  return records;
}

std::vector<StoredRecord> SqliteStore::all_current_records() {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag, c.last_used FROM credentials c "
                "JOIN versions v ON v.lookup = c.lookup AND v.version = c.current_version"));
  std::vector<StoredRecord> records;
  while (q->step()) records.push_back(record_from(q->get()));
  return records;
}

void SqliteStore::insert_credential(ByteView id_tag, const StoredRecord& first) {
  {
    Use q(prepare("INSERT INTO credentials(lookup, owner_tag, current_version) VALUES(?1, ?2, ?3)"));
    q->bind(1, first.lookup).bind(2, first.owner_tag);
    q->bind(3, static_cast<std::int64_t>(first.version)).run();
  }
  insert_credential_id(id_tag, first.lookup);
  Use q(prepare("INSERT INTO versions(lookup, version, key_id, sealed) VALUES(?1, ?2, ?3, ?4)"));
  q->bind(1, first.lookup).bind(2, static_cast<std::int64_t>(first.version));
  q->bind(3, first.key_id).bind(4, first.sealed).run();
}

void SqliteStore::insert_credential_id(ByteView id_tag, ByteView lookup) {
  Use q(prepare("INSERT INTO credential_ids(id_tag, lookup) VALUES(?1, ?2)"));
  q->bind(1, id_tag).bind(2, lookup).run();
}

void SqliteStore::add_version(const StoredRecord& record, int keep) {
  const auto version = static_cast<std::int64_t>(record.version);
  {
    Use q(prepare("INSERT INTO versions(lookup, version, key_id, sealed) VALUES(?1, ?2, ?3, ?4)"));
    q->bind(1, record.lookup).bind(2, version).bind(3, record.key_id).bind(4, record.sealed).run();
  }
  {
    Use q(prepare("UPDATE credentials SET current_version = ?2 WHERE lookup = ?1"));
    q->bind(1, record.lookup).bind(2, version).run();
  }
  Use q(prepare("DELETE FROM versions WHERE lookup = ?1 AND version <= ?2"));
  q->bind(1, record.lookup).bind(2, version - keep).run();
}

void SqliteStore::delete_credential(ByteView lookup) {
  for (const char* sql : {"DELETE FROM versions WHERE lookup = ?1",
                          "DELETE FROM credential_ids WHERE lookup = ?1",
                          "DELETE FROM credentials WHERE lookup = ?1"}) {
    Use q(prepare(sql));
    q->bind(1, lookup).run();
  }
}

std::int64_t SqliteStore::credential_count() {
  Use q(prepare("SELECT count(*) FROM credentials"));
  q->step();
  return sqlite3_column_int64(q->get(), 0);
}

std::int64_t SqliteStore::version_count() {
  Use q(prepare("SELECT count(*) FROM versions"));
  q->step();
  return sqlite3_column_int64(q->get(), 0);
}

std::int64_t SqliteStore::newest_key_id(std::string_view purpose) {
  Use q(prepare("SELECT coalesce(max(key_id), 0) FROM keys WHERE purpose = ?1"));
  q->bind(1, purpose);
  q->step();
  return sqlite3_column_int64(q->get(), 0);
}

std::int64_t SqliteStore::key_encryptions(std::int64_t key_id) {
  Use q(prepare("SELECT encryptions FROM keys WHERE key_id = ?1"));
  q->bind(1, key_id);
  return q->step() ? sqlite3_column_int64(q->get(), 0) : 0;
}

std::vector<std::pair<std::int64_t, std::int64_t>> SqliteStore::versions_per_key() {
  Use q(prepare("SELECT key_id, count(*) FROM versions GROUP BY key_id"));
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  while (q->step()) out.emplace_back(sqlite3_column_int64(q->get(), 0), sqlite3_column_int64(q->get(), 1));
  return out;
}

std::vector<StoredRecord> SqliteStore::versions_of(ByteView lookup) {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag FROM versions v "
                "JOIN credentials c ON c.lookup = v.lookup WHERE v.lookup = ?1 ORDER BY v.version"));
  q->bind(1, lookup);
  std::vector<StoredRecord> out;
  while (q->step()) out.push_back(record_from(q->get()));
  return out;
}

std::optional<StoredRecord> SqliteStore::version_of(ByteView lookup, std::uint64_t version) {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag FROM versions v "
                "JOIN credentials c ON c.lookup = v.lookup WHERE v.lookup = ?1 AND v.version = ?2"));
  q->bind(1, lookup).bind(2, static_cast<std::int64_t>(version));
  if (!q->step()) return std::nullopt;
  return record_from(q->get());
}

std::vector<StoredRecord> SqliteStore::versions_after(ByteView lookup, std::uint64_t version,
                                                      std::int64_t limit) {
  // Versions whose credential row is missing are returned too (owner_tag
  // empty): verify reports them as orphans.
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, coalesce(c.owner_tag, x'') "
                "FROM versions v LEFT JOIN credentials c ON c.lookup = v.lookup "
                "WHERE (v.lookup, v.version) > (?1, ?2) ORDER BY v.lookup, v.version LIMIT ?3"));
  q->bind(1, lookup).bind(2, static_cast<std::int64_t>(version)).bind(3, limit);
  std::vector<StoredRecord> out;
  while (q->step()) out.push_back(record_from(q->get()));
  return out;
}

std::int64_t SqliteStore::count_versions_not_under(std::int64_t key_id) {
  Use q(prepare("SELECT count(*) FROM versions WHERE key_id <> ?1"));
  q->bind(1, key_id);
  q->step();
  return sqlite3_column_int64(q->get(), 0);
}

std::vector<StoredRecord> SqliteStore::versions_not_under(std::int64_t key_id, std::int64_t limit) {
  Use q(prepare("SELECT v.lookup, v.version, v.key_id, v.sealed, c.owner_tag FROM versions v "
                "JOIN credentials c ON c.lookup = v.lookup WHERE v.key_id <> ?1 LIMIT ?2"));
  q->bind(1, key_id).bind(2, limit);
  std::vector<StoredRecord> out;
  while (q->step()) out.push_back(record_from(q->get()));
  return out;
}

void SqliteStore::reseal_version(const StoredRecord& record) {
  Use q(prepare("UPDATE versions SET key_id = ?3, sealed = ?4 WHERE lookup = ?1 AND version = ?2"));
  q->bind(1, record.lookup).bind(2, static_cast<std::int64_t>(record.version));
  q->bind(3, record.key_id).bind(4, record.sealed).run();
}

std::vector<std::pair<Bytes, Bytes>> SqliteStore::all_credential_ids() {
  Use q(prepare("SELECT id_tag, lookup FROM credential_ids"));
  std::vector<std::pair<Bytes, Bytes>> out;
  while (q->step()) out.emplace_back(column_bytes(q->get(), 0), column_bytes(q->get(), 1));
  return out;
}

void SqliteStore::touch_last_used(ByteView lookup, std::int64_t micros) {
  Use q(prepare("UPDATE credentials SET last_used = ?2 WHERE lookup = ?1"));
  q->bind(1, lookup).bind(2, micros).run();
}

std::int64_t SqliteStore::last_used(ByteView lookup) {
  Use q(prepare("SELECT last_used FROM credentials WHERE lookup = ?1"));
  q->bind(1, lookup);
  return q->step() ? sqlite3_column_int64(q->get(), 0) : 0;
}

void SqliteStore::check_backup_target(const fs::path& file, ByteView vault_id) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return;  // nothing there
  bool same_vault = false;
  if (S_ISREG(st.st_mode)) {
    sqlite3* db = nullptr;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, nullptr) ==
            SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'vault_id'", -1, &stmt,
                           nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const Bytes id = column_bytes(stmt, 0);
      same_vault = !id.empty() && id.size() == vault_id.size() &&
                   std::equal(id.begin(), id.end(), vault_id.begin());
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  if (!same_vault) {
    throw AlreadyExistsError(fmt::format(
        "{} already exists and is not a backup of this vault: nothing was written. Choose another "
        "file, or pass --force to replace it",
        file.string()));
  }
}

fs::path SqliteStore::create_partial_file(const fs::path& file) {
  std::string pattern = file.string() + ".partial-XXXXXX";
  const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) {
    throw DatabaseError(fmt::format("cannot create a file beside the backup {}: {}", file.string(),
                                    std::strerror(errno)));
  }
  const bool ok = ::fchmod(fd, 0600) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(pattern.c_str());
    throw DatabaseError(fmt::format("cannot make the backup file {} private", pattern));
  }
  return pattern;
}

// The snapshot is written to a new file beside `file` and renamed over it
// once complete and flushed: a backup already at `file` stays whole until
// then (also when this one fails part-way), and a hard link to it keeps it.
void SqliteStore::backup_to(const fs::path& file, bool replace_any) {
  if (!replace_any) check_backup_target(file, get_meta("vault_id").value_or(Bytes()));
  const fs::path partial = create_partial_file(file);
  struct RemoveOnFailure {
    const fs::path& path;
    bool done = false;
    ~RemoveOnFailure() {
      std::error_code ignored;
      if (!done) fs::remove(path, ignored);
    }
  } cleanup{partial};
  sqlite3* out = nullptr;
  if (sqlite3_open_v2(partial.c_str(), &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
                      nullptr) != SQLITE_OK) {
    sqlite3_close(out);
    throw DatabaseError(fmt::format("cannot create the backup file {}", partial.string()));
  }
  sqlite3_backup* backup = sqlite3_backup_init(out, "main", db_, "main");
  int rc = backup ? sqlite3_backup_step(backup, -1) : SQLITE_ERROR;
  sqlite3_backup_finish(backup);
  // The snapshot is a plain rollback-journal database: one self-contained file.
  if (rc == SQLITE_DONE) rc = sqlite3_exec(out, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  const std::string message = sqlite3_errmsg(out);
  sqlite3_close(out);
  if (rc != SQLITE_DONE && rc != SQLITE_OK) {
    throw DatabaseError(fmt::format("backup failed: {}", message));
  }
  fsync_path(partial, O_RDONLY);
  std::error_code ec;
  fs::rename(partial, file, ec);
  if (ec) {
    throw DatabaseError(
        fmt::format("cannot move the backup into place at {}: {}", file.string(), ec.message()));
  }
  cleanup.done = true;
  fsync_path(file.parent_path().empty() ? fs::path(".") : file.parent_path(), O_RDONLY | O_DIRECTORY);
}

bool SqliteStore::replace_contents(const fs::path& directory, const fs::path& source) {
  const fs::path file = directory / kFileName;
  sqlite3* to = nullptr;
  sqlite3* from = nullptr;
  struct Close {
    sqlite3*& a;
    sqlite3*& b;
    ~Close() {
      sqlite3_close(a);
      sqlite3_close(b);
    }
  } close{to, from};
  int rc =
      sqlite3_open_v2(file.c_str(), &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK && to && sqlite3_extended_errcode(to) == SQLITE_CANTOPEN_SYMLINK) {
    throw InvalidArgumentError(fmt::format(
        "the vault file {} is a symbolic link: it is never followed, and nothing was restored",
        file.string()));
  }
  if (rc != SQLITE_OK) {
    throw DatabaseError(fmt::format("cannot open the vault {} to restore into it: {}",
                                    file.string(), to ? sqlite3_errmsg(to) : "out of memory"));
  }
  sqlite3_busy_timeout(to, kBusyTimeoutMs);
  sqlite3_exec(to, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  if (sqlite3_open_v2(source.c_str(), &from, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
                      nullptr) != SQLITE_OK) {
    throw DatabaseError(fmt::format("cannot read the checked backup {}: {}", source.string(),
                                    from ? sqlite3_errmsg(from) : "out of memory"));
  }
  // One write transaction on the vault (waiting for its write lock up to the
  // busy timeout) that replaces every page; readers keep their snapshot.
  sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
  rc = backup ? sqlite3_backup_step(backup, -1) : sqlite3_errcode(to);
  const int finished = sqlite3_backup_finish(backup);
  if (rc == SQLITE_DONE) rc = finished;
  if (rc == SQLITE_DONE || rc == SQLITE_OK) {
    fsync_path(file, O_RDONLY);
    return true;
  }
  const int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) return false;  // a damaged vault file
  throw DatabaseError(fmt::format("cannot restore into the vault {}: {}; nothing was changed",
                                  file.string(), sqlite3_errstr(rc)));
}

std::vector<LedgerNode> SqliteStore::ledger_nodes(const std::vector<std::int64_t>& node_ids) {
  std::string ids = "[";
  for (const std::int64_t id : node_ids) ids += (ids.size() > 1 ? "," : "") + std::to_string(id);
  ids += "]";
  Use q(prepare("SELECT node_id, body FROM ledger WHERE node_id IN (SELECT value FROM json_each(?1))"));
  q->bind(1, std::string_view(ids));
  std::vector<LedgerNode> nodes;
  while (q->step()) nodes.push_back({sqlite3_column_int64(q->get(), 0), column_bytes(q->get(), 1)});
  return nodes;
}

std::vector<LedgerNode> SqliteStore::all_ledger_nodes() {
  Use q(prepare("SELECT node_id, body FROM ledger ORDER BY node_id"));
  std::vector<LedgerNode> nodes;
  while (q->step()) nodes.push_back({sqlite3_column_int64(q->get(), 0), column_bytes(q->get(), 1)});
  return nodes;
}

void SqliteStore::put_ledger_node(std::int64_t node_id, ByteView body) {
  Use q(prepare("INSERT INTO ledger(node_id, body) VALUES(?1, ?2) "
                "ON CONFLICT(node_id) DO UPDATE SET body = excluded.body"));
  q->bind(1, node_id).bind(2, body).run();
}

std::optional<AuditRow> SqliteStore::last_audit_row() {
  Use q(prepare("SELECT seq, owner_tag, mac FROM audit ORDER BY seq DESC LIMIT 1"));
  if (!q->step()) return std::nullopt;
  sqlite3_stmt* s = q->get();
  return AuditRow{sqlite3_column_int64(s, 0), column_bytes(s, 1), Bytes(), column_bytes(s, 2)};
}

void SqliteStore::insert_audit_row(const AuditRow& row) {
  Use q(prepare("INSERT INTO audit(seq, owner_tag, sealed, mac) VALUES(?1, ?2, ?3, ?4)"));
  q->bind(1, row.seq).bind(2, row.owner_tag).bind(3, row.sealed).bind(4, row.mac).run();
}

std::vector<AuditRow> SqliteStore::audit_rows(std::int64_t after, std::int64_t limit) {
  Use q(prepare(
      "SELECT seq, owner_tag, sealed, mac FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"));
  q->bind(1, after).bind(2, limit);
  std::vector<AuditRow> rows;
  while (q->step()) {
    sqlite3_stmt* s = q->get();
    rows.push_back(
        {sqlite3_column_int64(s, 0), column_bytes(s, 1), column_bytes(s, 2), column_bytes(s, 3)});
  }
  return rows;
}

namespace {
SegmentChunk segment_chunk_from(sqlite3_stmt* s) {
  return {column_bytes(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
          column_bytes(s, 3)};
}
}  // namespace

void SqliteStore::insert_segment_chunk(const SegmentChunk& chunk) {
  Use q(prepare(
      "INSERT INTO audit_segment(segment_id, first_idx, count, entries) VALUES(?1, ?2, ?3, ?4)"));
  q->bind(1, chunk.segment_id)
      .bind(2, chunk.first_index)
      .bind(3, chunk.count)
      .bind(4, chunk.entries)
      .run();
}

void SqliteStore::append_segment_chunk(const SegmentChunk& chunk) {
  auto txn = begin_write(/*durable=*/false);
  insert_segment_chunk(chunk);
  txn.commit();
}

std::vector<SegmentChunk> SqliteStore::segment_chunks(ByteView after_segment,
                                                      std::int64_t after_first_index,
                                                      std::int64_t limit) {
  Use q(
      prepare("SELECT segment_id, first_idx, count, entries FROM audit_segment "
              "WHERE (segment_id, first_idx) > (?1, ?2) ORDER BY segment_id, first_idx LIMIT ?3"));
  q->bind(1, after_segment).bind(2, after_first_index).bind(3, limit);
  std::vector<SegmentChunk> chunks;
  while (q->step()) chunks.push_back(segment_chunk_from(q->get()));
  return chunks;
}

std::optional<SegmentChunk> SqliteStore::last_segment_chunk(ByteView segment_id) {
  Use q(prepare(
      "SELECT segment_id, first_idx, count, entries FROM audit_segment WHERE segment_id = ?1 "
      "ORDER BY first_idx DESC LIMIT 1"));
  q->bind(1, segment_id);
  if (!q->step()) return std::nullopt;
  return segment_chunk_from(q->get());
}

}  // namespace credentials::internal
