// Authorization matrix: 4 users (two plain, an admin, a superuser) x every
// API operation x own/other's credential, by name and by id. The expected
// outcomes are data (authorization_matrix.csv beside this file); any
// difference fails, an unexpected success first of all. A denied write must
// change nothing, and every denial must be an audit event.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "credentials/credentials.h"
#include "reliability/reliability.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

using testing::TempDir;

struct Row {
  std::string user, operation, ref, target, expected;
  int line = 0;
};

std::vector<Row> load_matrix() {
  std::ifstream in(std::string(CREDENTIALS_SOURCE_DIR) + "/tests/reliability/authorization_matrix.csv");
  std::vector<Row> rows;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#' || line.starts_with("user,")) continue;
    std::istringstream fields(line);
    Row r;
    std::getline(fields, r.user, ',');
    std::getline(fields, r.operation, ',');
    std::getline(fields, r.ref, ',');
    std::getline(fields, r.target, ',');
    std::getline(fields, r.expected, ',');
    r.line = number;
    rows.push_back(r);
  }
  return rows;
}

const std::map<std::string, UserContext> kUsers = {
    {"alice", {"alice", "alice@example.com", {"user"}}},
    {"bob", {"bob", "bob@example.com", {"user"}}},
    {"admin", {"admin", "admin@example.com", {"admin"}}},
    {"sue", {"sue", "sue@example.com", {"user", "superuser"}}},
};
const std::map<std::string, std::string> kOther = {
    {"alice", "bob"}, {"bob", "alice"}, {"admin", "alice"}, {"sue", "bob"}};
const UserContext kAuditor{"auditor", "auditor", {"admin"}};

class AuthorizationTest : public ::testing::Test {
 protected:
  void SetUp() override { vault_.emplace(Vault::open({.directory = dir_.path() / "v", .master_key = generate_master_key()})); }

  // Makes sure `owner` has its credential at version >= 2 (so there is an
  // older version to roll back to); returns its id.
  std::string ensure(const std::string& owner) {
    Vault& v = *vault_;
    const UserContext& u = kUsers.at(owner);
    const std::string name = owner + "_db";
    try {
      return v.get_credential(u, name).credential_id;
    } catch (const CredentialNotFoundError&) {
    }
    const std::string id = v.store_credential(u, {.name = name, .host = owner + ".example.com", .database = "d",
                                                  .username = "u", .password = owner + "-secret"});
    (void)v.update_password(u, name, owner + "-secret");
    return id;
  }

  Credential read_as_owner(const std::string& owner) {
    return vault_->get_credential(kUsers.at(owner), owner + "_db");
  }

  // Runs one cell; returns the outcome name.
  std::string run(const Row& r) {
    Vault& v = *vault_;
    const UserContext& user = kUsers.at(r.user);
    const std::string owner = r.target == "own" ? r.user : kOther.at(r.user);
    const std::string id = ensure(owner);
    const std::string name = owner + "_db";
    const std::string ref = r.ref == "id" ? id : name;
    try {
      if (r.operation == "get") {
        const Credential c = r.ref == "owner_name" ? v.get_credential(user, owner, name) : v.get_credential(user, ref);
        if (c.credential_id != id || c.password.reveal() != owner + "-secret") return "wrong_credential";
      } else if (r.operation == "list") {
        bool listed = false;
        for (const auto& info : v.list_credentials(user)) {
          listed |= info.credential_id == id;
          if (!user.is_admin() && info.owner != user.user_id) return "saw_other_namespace";
        }
        return listed ? "ok" : "hidden";
      } else if (r.operation == "update_password") {
        (void)v.update_password(user, ref, owner + "-secret");
      } else if (r.operation == "update_credential") {
        CredentialChanges changes;
        changes.description = "changed by " + r.user;
        (void)v.update_credential(user, ref, std::move(changes));
      } else if (r.operation == "history") {
        if (v.history(user, ref).size() < 2) return "wrong_credential";
      } else if (r.operation == "rollback") {
        // The version before the current one: always kept (history depth 5).
        (void)v.rollback(user, ref, read_as_owner(owner).version - 1);
      } else if (r.operation == "delete") {
        v.delete_credential(user, ref);
      } else if (r.operation == "audit_events") {
        AuditQuery q;
        q.owner = owner;
        for (const auto& event : v.audit_events(user, q)) {
          if (event.owner != owner) return "saw_other_namespace";
        }
      } else {
        return "unknown_operation";
      }
      return "ok";
    } catch (const UnauthorizedError&) {
      return "unauthorized";
    } catch (const CredentialNotFoundError&) {
      return "not_found";
    } catch (const std::exception& e) {
      return std::string("error: ") + e.what();
    }
  }

  TempDir dir_;
  std::optional<Vault> vault_;
};

TEST_F(AuthorizationTest, EveryCellOfTheMatrixHasItsExpectedOutcome) {
  const std::vector<Row> rows = load_matrix();
  ASSERT_EQ(rows.size(), 120u) << "authorization_matrix.csv is incomplete";
  int unexpected_successes = 0, other_mismatches = 0, denials = 0, unchanged_after_denial = 0;
  for (const Row& r : rows) {
    const std::string owner = r.target == "own" ? r.user : kOther.at(r.user);
    ensure(owner);
    const std::uint64_t version_before = read_as_owner(owner).version;
    const std::string got = run(r);
    if (got != r.expected) {
      if (got == "ok" || got == "saw_other_namespace" || got == "wrong_credential") {
        ++unexpected_successes;
      } else {
        ++other_mismatches;
      }
      ADD_FAILURE() << "authorization_matrix.csv:" << r.line << ": " << r.user << " " << r.operation
                    << " by " << r.ref << " on " << r.target << "'s credential: expected " << r.expected
                    << ", got " << got;
    }
    if (got == "unauthorized") {
      ++denials;
      // Nothing changed, and the denial is in the audit trail.
      try {
        if (read_as_owner(owner).version == version_before) ++unchanged_after_denial;
        else ADD_FAILURE() << "a denied " << r.operation << " changed " << owner << "'s credential";
      } catch (const CredentialNotFoundError&) {
        ADD_FAILURE() << "a denied " << r.operation << " deleted " << owner << "'s credential";
      }
      const auto events = vault_->audit_events(kAuditor, {.limit = 3});
      bool found = false;
      for (const auto& e : events) found |= e.outcome == "denied" && e.actor == r.user;
      EXPECT_TRUE(found) << "no denied audit event for " << r.user << " " << r.operation;
    }
  }
  testing::print_figures("authorization",
                         fmt::format("cells {} (4 users x 15 operations x own/other), unexpected "
                                     "successes {}, other mismatches {}, denials {} (target unchanged "
                                     "after {}, each an audit event)",
                                     rows.size(), unexpected_successes, other_mismatches, denials,
                                     unchanged_after_denial));
  EXPECT_EQ(unexpected_successes, 0);
  EXPECT_EQ(other_mismatches, 0);
  EXPECT_EQ(unchanged_after_denial, denials);
  EXPECT_GT(denials, 0);
}

// A denial reads the same whether or not the other user's credential exists.
TEST_F(AuthorizationTest, DenialDoesNotRevealWhetherTheCredentialExists) {
  ensure("bob");
  const UserContext& alice = kUsers.at("alice");
  std::string existing, missing;
  try {
    (void)vault_->get_credential(alice, "bob", "bob_db");
  } catch (const UnauthorizedError& e) {
    existing = e.what();
  }
  try {
    (void)vault_->get_credential(alice, "bob", "no_such_db");
  } catch (const UnauthorizedError& e) {
    missing = e.what();
  }
  EXPECT_FALSE(existing.empty());
  EXPECT_EQ(existing, missing);
  EXPECT_EQ(existing.find("bob_db"), std::string::npos);
}

// A plain user's unfiltered audit query shows only events about their own
// namespace.
TEST_F(AuthorizationTest, PlainUserAuditQueryShowsOnlyOwnNamespace) {
  ensure("alice");
  ensure("bob");
  (void)vault_->get_credential(kUsers.at("admin"), "bob", "bob_db");
  int seen = 0;
  for (const auto& event : vault_->audit_events(kUsers.at("alice"), {})) {
    ++seen;
    EXPECT_EQ(event.owner, "alice") << event.action << " by " << event.actor;
  }
  EXPECT_GT(seen, 0);
}

}  // namespace
}  // namespace credentials
