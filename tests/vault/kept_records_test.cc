// A vault handle keeps the versions it has checked against the version
// ledger while nothing is committed (VersionLedger::known_version): every
// change by another handle or process, and by itself, must still be seen by
// the very next read.
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

}  // namespace
}  // namespace credentials
