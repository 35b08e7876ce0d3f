// Master-key rotation at scale (issue #6: "rotation at 10 and 10,000
// credentials"; the one at 10 is in maintenance_test.cc). Rotation re-wraps
// the vault's keys only: the stored records are not rewritten, every one of
// them still reads with its own password under the new key, the old key is
// refused, and the vault verifies.
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "credentials/credentials.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const UserContext kAdmin{"admin", "admin", {"admin"}};
constexpr int kOwners = 4;
constexpr int kPerOwner = 2500;    // 10,000 credentials
constexpr int kUpdateEvery = 100;  // every 100th credential gets a second version

UserContext owner(int o) {
  const std::string id = fmt::format("owner{}", o);
  return {id, id, {"user"}};
}
std::string name_of(int i) { return fmt::format("db{:04}", i); }
// Distinct per credential and version, with characters that need care in URLs.
std::string password_of(int o, int i, int version) {
  return fmt::format("pw-{}-{}-v{}-'\"@:/?#% ", o, i, version);
}

// Every stored version (lookup, version, key id, sealed bytes), in key order:
// what a rotation must leave byte for byte unchanged.
std::string versions_table(const fs::path& db_file) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(
                db, "SELECT lookup, version, key_id, sealed FROM versions ORDER BY lookup, version",
                -1, &stmt, nullptr),
            SQLITE_OK);
  std::string out;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    for (int column : {0, 3}) {
      const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt, column));
      out.append(bytes, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
      out.push_back('|');
    }
    out += fmt::format("{}|{}\n", sqlite3_column_int64(stmt, 1), sqlite3_column_int64(stmt, 2));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

std::string wrapped_keys(const fs::path& db_file) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT wrapped FROM keys ORDER BY key_id", -1, &stmt, nullptr),
            SQLITE_OK);
  std::string out;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out.append(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
               static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    out.push_back('|');
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(RotationScaleTest, MasterKeyRotationAtTenThousandCredentialsKeepsEveryRecord) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "vault";
  const SecretString old_key = generate_master_key();
  const SecretString new_key = generate_master_key();
  const fs::path db_file = dir / "vault.db";

  {
    Vault vault = Vault::open({.directory = dir, .master_key = old_key.clone()});
    for (int o = 0; o < kOwners; ++o) {
      std::vector<NewCredential> batch;
      batch.reserve(kPerOwner);
      for (int i = 0; i < kPerOwner; ++i) {
        batch.push_back({.name = name_of(i),
                         .db_type = "postgres",
                         .host = "db.example.com",
                         .database = "prod",
                         .username = fmt::format("svc{}", i),
                         .password = password_of(o, i, 1)});
      }
      ASSERT_EQ(vault.store_credentials(owner(o), std::move(batch)).size(), std::size_t{kPerOwner});
    }
    for (int o = 0; o < kOwners; ++o) {
      for (int i = 0; i < kPerOwner; i += kUpdateEvery) {
        ASSERT_EQ(vault.update_password(owner(o), name_of(i), password_of(o, i, 2)), 2u);
      }
    }
  }
  const std::string records_before = versions_table(db_file);
  const std::string keys_before = wrapped_keys(db_file);
  ASSERT_FALSE(records_before.empty());

  {
    Vault vault =
        Vault::open({.directory = dir, .master_key = old_key.clone(), .create_if_missing = false});
    vault.rotate_master_key(new_key.clone());
  }

  // Only the keys were re-wrapped: not one stored record was rewritten.
  EXPECT_EQ(versions_table(db_file), records_before);
  EXPECT_NE(wrapped_keys(db_file), keys_before);

  EXPECT_THROW((void)Vault::open(
                   {.directory = dir, .master_key = old_key.clone(), .create_if_missing = false}),
               DecryptionFailedError);

  Vault vault =
      Vault::open({.directory = dir, .master_key = new_key.clone(), .create_if_missing = false});
  const VerifyReport report = vault.verify();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? report.audit.problem
                                                       : report.problems.front());
  EXPECT_EQ(report.credentials, kOwners * kPerOwner);
  EXPECT_EQ(report.versions, kOwners * kPerOwner + kOwners * (kPerOwner / kUpdateEvery));

  EXPECT_EQ(vault.list_credentials(kAdmin).size(), std::size_t{kOwners * kPerOwner});
  int wrong = 0;
  for (int o = 0; o < kOwners; ++o) {
    for (int i = 0; i < kPerOwner; ++i) {
      const Credential c = vault.get_credential(kAdmin, owner(o).user_id, name_of(i));
      const int version = i % kUpdateEvery == 0 ? 2 : 1;
      if (c.password.reveal() != password_of(o, i, version) ||
          c.version != static_cast<std::uint64_t>(version)) {
        if (++wrong <= 5)
          ADD_FAILURE() << "owner" << o << "/" << name_of(i)
                        << " reads the wrong password or version";
      }
    }
  }
  EXPECT_EQ(wrong, 0);

  // Writes after the rotation work and land under the new key as well.
  (void)vault.store_credential(owner(0), {.name = "after", .host = "h", .password = "after-pw"});
  Vault reopened =
      Vault::open({.directory = dir, .master_key = new_key.clone(), .create_if_missing = false});
  EXPECT_EQ(reopened.get_credential(owner(0), "after").password.reveal(), "after-pw");
}

}  // namespace
}  // namespace credentials
