// A vault handle keeps the records it has read while nothing is committed
// (src/vault/record_cache.h): every change by another handle or process,
// and by itself, must still be seen by the very next read.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "credentials/credentials.h"
#include "support/temp_dir.h"
#include "vault/vault_impl.h"

namespace credentials {
namespace {

using testing::TempDir;

class KeptRecordsTest : public ::testing::Test {
 protected:
  Vault open_vault() { return Vault::open({.directory = dir_.path() / "vault", .master_key = key_.clone()}); }
  std::string password_of(Vault& vault, std::string_view name) {
    return std::string(vault.get_credential(alice_, name).password.reveal());
  }

  TempDir dir_;
  SecretString key_{generate_master_key()};
  const UserContext alice_{"alice", "alice", {"user"}};
};

TEST_F(KeptRecordsTest, ChangesByAnotherHandleAreSeenAtTheNextRead) {
  Vault reader = open_vault();
  Vault writer = open_vault();
  writer.store_credential(alice_, {.name = "db", .host = "h", .password = "first"});
  writer.store_credential(alice_, {.name = "other", .host = "h", .password = "other-1"});
  // Enough reads for several folds of the reader's journal: its own
  // commits keep what it read; the writer's must not.
  for (int i = 0; i < 2500; ++i) ASSERT_EQ(password_of(reader, "db"), "first");

  writer.update_password(alice_, "db", SecretString("second"));
  EXPECT_EQ(password_of(reader, "db"), "second");
  EXPECT_EQ(reader.get_credential(alice_, "db").version, 2u);

  // A change to another credential is seen as well, and the first one
  // still reads right after it.
  EXPECT_EQ(password_of(reader, "other"), "other-1");
  writer.update_password(alice_, "other", SecretString("other-2"));
  EXPECT_EQ(password_of(reader, "other"), "other-2");
  EXPECT_EQ(password_of(reader, "db"), "second");

  writer.delete_credential(alice_, "db");
  EXPECT_THROW((void)reader.get_credential(alice_, "db"), CredentialNotFoundError);
  writer.store_credential(alice_, {.name = "db", .host = "h", .password = "recreated"});
  EXPECT_EQ(password_of(reader, "db"), "recreated");
  EXPECT_EQ(reader.get_credential(alice_, "db").version, 1u);
}

TEST_F(KeptRecordsTest, ChangesByAnotherProcessAreSeenAtTheNextRead) {
  Vault reader = open_vault();
  reader.store_credential(alice_, {.name = "db", .host = "h", .password = "first"});
  for (int i = 0; i < 1500; ++i) ASSERT_EQ(password_of(reader, "db"), "first");
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      Vault writer = open_vault();
      writer.update_password(alice_, "db", SecretString("from-the-child"));
    } catch (const std::exception&) {
      code = 1;
    }
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(password_of(reader, "db"), "from-the-child");
}

TEST_F(KeptRecordsTest, OwnChangesAreSeenAtTheNextRead) {
  Vault vault = open_vault();
  vault.store_credential(alice_, {.name = "db", .host = "h", .password = "first"});
  for (int i = 0; i < 10; ++i) ASSERT_EQ(password_of(vault, "db"), "first");
  vault.update_password(alice_, "db", SecretString("second"));
  EXPECT_EQ(password_of(vault, "db"), "second");
  vault.delete_credential(alice_, "db");
  EXPECT_THROW((void)vault.get_credential(alice_, "db"), CredentialNotFoundError);
}

// A handle that keeps none (record_cache_bytes 0), or fewer than it reads
// (each put evicts another), reads every credential right, and sees
// another handle's change at once; the budget is the handle's.
TEST_F(KeptRecordsTest, AHandleWithoutRoomToKeepThemReadsEveryCredential) {
  Vault writer = open_vault();
  for (int i = 0; i < 40; ++i) {
    writer.store_credential(alice_, {.name = "db" + std::to_string(i), .host = "h",
                                     .password = "p" + std::to_string(i)});
  }
  for (const std::size_t budget : {std::size_t{0}, std::size_t{4096}, std::size_t{1} << 20}) {
    Vault reader = Vault::open(
        {.directory = dir_.path() / "vault", .master_key = key_.clone(), .record_cache_bytes = budget});
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(password_of(reader, "db" + std::to_string(i)), "p" + std::to_string(i)) << budget;
      }
    }
    // A record this small costs ~300 bytes kept: a few fit in 4 KiB.
    const std::size_t kept = reader.impl().kept_record_count();
    if (budget == 0) {
      EXPECT_EQ(kept, 0u);
    } else if (budget == 4096) {
      EXPECT_TRUE(kept >= 1 && kept <= 20) << kept;
    } else {
      EXPECT_EQ(kept, 40u);
    }
    writer.update_password(alice_, "db7", SecretString("changed-" + std::to_string(budget)));
    EXPECT_EQ(password_of(reader, "db7"), "changed-" + std::to_string(budget));
    writer.update_password(alice_, "db7", SecretString("p7"));
  }
}

// A read noted for the handle's next batch of last-used writes marks its
// kept record, so that reads of it in the next minute are not noted again:
// a record kept across the handle's own folds kept its old time, and each
// read of it was written once more (at 100,000 credentials a sixteenth of
// the credentials table's ~2,200 pages per fold).
TEST_F(KeptRecordsTest, AReadNotedForItsLastUsedTimeIsNotNotedAgainWithinTheMinute) {
  Vault vault = open_vault();
  vault.store_credential(alice_, {.name = "db", .host = "h", .password = "p"});
  ASSERT_EQ(password_of(vault, "db"), "p");
  EXPECT_EQ(vault.impl().pending_last_used_count(), 1u);
  const auto listed = vault.list_credentials(alice_);  // writes this handle's pending times
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed.front().last_used.has_value());
  EXPECT_EQ(vault.impl().pending_last_used_count(), 0u);
  ASSERT_EQ(vault.impl().kept_record_count(), 1u);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(password_of(vault, "db"), "p");
  EXPECT_EQ(vault.impl().pending_last_used_count(), 0u);
  EXPECT_EQ(vault.impl().kept_record_count(), 1u) << "the reads were served from the kept record";
}

}  // namespace
}  // namespace credentials
