// SqliteStore::change_stamp: read from SQLite's shared WAL index without a
// transaction, it must move at every commit, by this connection or another,
// and hold while nothing is written (the skills runner keeps a checked
// credential version while it holds).
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
  first->put_meta("format_version", Bytes{5});  // a header: a second connection opens it as a vault
  auto second = SqliteStore::open(dir.path() / "vault", /*create=*/false);
  ASSERT_TRUE(second);

  std::set<ChangeStamp> seen;
  auto stamp_of = [&](SqliteStore& store) {
    const auto stamp = store.change_stamp();
    EXPECT_TRUE(stamp.has_value());
    return stamp.value_or(ChangeStamp{});
  };
  write_meta(*first, "0");
  // The run starts with a log of one commit: the restart below makes one
  // just like it (one frame, the same page), which only the log's salts and
  // the transaction counter tell apart.
  empty_the_log(dir.path() / "vault" / "vault.db");
  write_meta(*first, "1");
  const ChangeStamp start = stamp_of(*first);
  // Read from the WAL index (its second half is the log's salts), not from
  // the pragma (whose second half is this connection's count of changes).
  EXPECT_GE(start[1], std::uint64_t{1} << 32);
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
    EXPECT_EQ(stamp_of(*second), stamp_of(*first));
  }

  // A checkpoint that empties the log makes the next commit restart it (new
  // salts, frame counter from the start): still a stamp never seen before.
  empty_the_log(dir.path() / "vault" / "vault.db");
  write_meta(*second, "2");
  EXPECT_TRUE(seen.insert(stamp_of(*first)).second) << "the commit that restarted the log";
  write_meta(*first, "after restart, own");
  EXPECT_TRUE(seen.insert(stamp_of(*first)).second);
}

// one_commit_apart tells a commit of one's own, alone, from one with
// another's beside it (a vault handle keeps what it read across its own
// folds of its read journal, and only then).
TEST(ChangeStampTest, OneCommitApartCountsCommits) {
  TempDir dir;
  auto first = SqliteStore::open(dir.path() / "vault", /*create=*/true);
  first->create_schema();
  first->put_meta("format_version", Bytes{5});  // a header: a second connection opens it as a vault
  auto second = SqliteStore::open(dir.path() / "vault", /*create=*/false);
  write_meta(*first, "0");

  auto before = first->change_stamp().value();
  write_meta(*first, "1");
  auto after = first->change_stamp().value();
  EXPECT_TRUE(first->one_commit_apart(before, after));
  EXPECT_FALSE(first->one_commit_apart(after, before));
  EXPECT_FALSE(first->one_commit_apart(before, before)) << "no commit";

  before = after;
  write_meta(*first, "2");
  write_meta(*second, "3");
  after = first->change_stamp().value();
  EXPECT_FALSE(first->one_commit_apart(before, after)) << "another connection committed too";

  // Another connection's checkpoint emptied the log, and this connection's
  // commit began it again. Either answer is safe here (a checkpoint changes
  // no content); which one depends on SQLite's choice of salts (random for
  // a connection that has not restarted the log before), so only the
  // restart itself is checked.
  before = after;
  empty_the_log(dir.path() / "vault" / "vault.db");
  write_meta(*first, "4");
  after = first->change_stamp().value();
  EXPECT_NE(after[1], before[1]) << "the log restarted";
}

// The commit that restarts the log (a checkpoint copied all of it, nobody
// reads it): new salts, the counter one up, its frames first. Read inside
// the write transaction, as a vault handle's fold reads it.
TEST(ChangeStampTest, OwnCommitThatRestartsTheLogIsOneCommit) {
  TempDir dir;
  auto first = SqliteStore::open(dir.path() / "vault", /*create=*/true);
  first->create_schema();
  first->put_meta("format_version", Bytes{5});  // a header: a second connection opens it as a vault
  auto second = SqliteStore::open(dir.path() / "vault", /*create=*/false);
  write_meta(*first, "0");
  write_meta(*first, "1");

  // Copied whole into the database, not emptied: the next writer restarts it.
  copy_the_log_whole(dir.path() / "vault" / "vault.db");

  auto txn = first->begin_write(/*durable=*/false);
  const ChangeStamp before = first->change_stamp().value();
  first->put_meta("stamp-test", Bytes{'2'});
  txn.commit();
  const ChangeStamp after = first->change_stamp().value();
  EXPECT_NE(after[1], before[1]) << "this commit restarted the log";
  EXPECT_TRUE(first->one_commit_apart(before, after));

  // The same, and another connection's commit after it: two.
  write_meta(*first, "3");
  copy_the_log_whole(dir.path() / "vault" / "vault.db");
  auto txn2 = first->begin_write(/*durable=*/false);
  const ChangeStamp before2 = first->change_stamp().value();
  first->put_meta("stamp-test", Bytes{'4'});
  txn2.commit();
  write_meta(*second, "5");
  EXPECT_FALSE(first->one_commit_apart(before2, first->change_stamp().value()));
}

// A write transaction that changed nothing commits nothing to the log: the
// one commit after its stamp is another connection's, not its own.
TEST(ChangeStampTest, CommitThatWroteNothingIsNotTheOneCommit) {
  TempDir dir;
  auto first = SqliteStore::open(dir.path() / "vault", /*create=*/true);
  first->create_schema();
  first->put_meta("format_version", Bytes{5});  // a header: a second connection opens it as a vault
  auto second = SqliteStore::open(dir.path() / "vault", /*create=*/false);
  write_meta(*first, "0");

  auto txn = first->begin_write(/*durable=*/false);
  const ChangeStamp before = first->change_stamp().value();
  (void)first->get_meta("stamp-test");
  txn.commit();
  write_meta(*second, "1");
  EXPECT_FALSE(first->one_commit_apart(before, first->change_stamp().value()))
      << "another connection's commit taken for this one's";

  // And after a read transaction, this connection's last write is not "the last commit".
  auto write = first->begin_write(/*durable=*/false);
  const ChangeStamp before_write = first->change_stamp().value();
  first->put_meta("stamp-test", Bytes{'2'});
  write.commit();
  {
    auto read = first->begin_read();
    (void)first->get_meta("stamp-test");
    read.commit();
  }
  EXPECT_FALSE(first->one_commit_apart(before_write, first->change_stamp().value()));
}

}  // namespace
}  // namespace credentials::internal
