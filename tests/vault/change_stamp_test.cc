// SqliteStore::change_stamp (`PRAGMA data_version` and this connection's
// count of changes) must move at every commit, by this connection or
// another, and hold while nothing is written (the skills runner keeps a
// checked credential version while it holds).
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include <sqlite3.h>

#include "store/sqlite_store.h"
#include "support/temp_dir.h"

namespace credentials::internal {
namespace {

using testing::TempDir;

void write_meta(SqliteStore& store, std::string_view value) {
  auto txn = store.begin_write(/*durable=*/false);
  const std::string text(value);
  store.put_meta("stamp-test", Bytes(text.begin(), text.end()));
  txn.commit();
}

// Checkpoints the whole log into the database from a connection of its own.
// TRUNCATE also empties it (new salts at once, no frame); RESTART leaves it,
// and the next commit restarts it (new salts, its frames counted from one).
void checkpoint_whole_log(const std::filesystem::path& file, int mode) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  // A connection learns the journal mode at its first read.
  ASSERT_EQ(sqlite3_exec(raw, "SELECT count(*) FROM meta", nullptr, nullptr, nullptr), SQLITE_OK);
  int log_frames = -1;
  int checkpointed = -1;
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(raw, nullptr, mode, &log_frames, &checkpointed), SQLITE_OK);
  if (mode == SQLITE_CHECKPOINT_TRUNCATE) {
    EXPECT_EQ(log_frames, 0) << "the log was emptied";
  } else {
    EXPECT_GT(log_frames, 0);
    EXPECT_EQ(checkpointed, log_frames) << "all of the log was copied";
  }
  sqlite3_close(raw);
}

void empty_the_log(const std::filesystem::path& file) { checkpoint_whole_log(file, SQLITE_CHECKPOINT_TRUNCATE); }
void copy_the_log_whole(const std::filesystem::path& file) { checkpoint_whole_log(file, SQLITE_CHECKPOINT_RESTART); }

TEST(ChangeStampTest, MovesAtEveryCommitOfAnyConnectionAndHoldsOtherwise) {
  TempDir dir;
  auto first = SqliteStore::open(dir.path() / "vault", /*create=*/true);
  first->create_schema();
  first->put_meta("format", Bytes{1});  // a header: a second connection opens it as a vault
  auto second = SqliteStore::open(dir.path() / "vault", /*create=*/false);
  ASSERT_TRUE(second);

  std::set<ChangeStamp> seen;
  auto stamp_of = [&](SqliteStore& store) {
    const auto stamp = store.change_stamp();
    EXPECT_TRUE(stamp.has_value());
    return stamp.value_or(ChangeStamp{});
  };
  write_meta(*first, "0");
  empty_the_log(dir.path() / "vault" / "vault.db");
  write_meta(*first, "1");
  const ChangeStamp start = stamp_of(*first);
  seen.insert(start);

  EXPECT_EQ(stamp_of(*first), start) << "nothing was written";
  {
    auto txn = second->begin_read();
    (void)second->get_meta("stamp-test");
    txn.commit();
  }
  EXPECT_EQ(stamp_of(*first), start) << "another connection only read";

  for (int i = 0; i < 5; ++i) {
    write_meta(*second, "other " + std::to_string(i));
    EXPECT_TRUE(seen.insert(stamp_of(*first)).second) << "a commit by another connection, round " << i;
    write_meta(*first, "own " + std::to_string(i));
    EXPECT_TRUE(seen.insert(stamp_of(*first)).second) << "a commit by this connection, round " << i;
  }

  // A checkpoint that empties the log makes the next commit restart it (new
  // salts, frame counter from the start): still a stamp never seen before.
  empty_the_log(dir.path() / "vault" / "vault.db");
  write_meta(*second, "2");
  EXPECT_TRUE(seen.insert(stamp_of(*first)).second) << "the commit that restarted the log";
  write_meta(*first, "after restart, own");
  EXPECT_TRUE(seen.insert(stamp_of(*first)).second);
}

}  // namespace
}  // namespace credentials::internal
