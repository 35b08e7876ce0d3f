// An audit event sealed ahead of its outcome (VaultImpl::prepare_event, used
// by the skill runner while a statement is at its server): recorded once,
// only when asked, as the event actually recorded, and never lost or
// repeated when other events come in between.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "credentials/credentials.h"
#include "support/temp_dir.h"
#include "vault/vault_impl.h"

namespace credentials {
namespace {

using internal::AuditRecord;
using internal::PreparedEvent;
using testing::TempDir;

const UserContext kAlice{"alice", "alice", {}};
const UserContext kAdmin{"root", "root", {"admin"}};

class PreparedEventTest : public ::testing::Test {
 protected:
  Vault open() const {
    VaultOptions options;
    options.directory = dir_.path() / "vault";
    options.master_key = SecretString("Lv0xkzAfpDwWn3ZFBqPDDPxl_7kTBRbb_yBBYvmeh1o=");
    return Vault::open(std::move(options));
  }

  static AuditRecord skill_event(const std::string& skill, const std::string& outcome = "ok") {
    AuditRecord event;
    event.action = "skill";
    event.owner = "alice";
    event.name = "db";
    event.outcome = outcome;
    event.skill = skill;
    return event;
  }

  static std::vector<AuditEvent> skill_events(Vault& vault) {
    AuditQuery query;
    query.action = "skill";
    query.limit = 100000;
    return vault.audit_events(kAdmin, query);
  }

  TempDir dir_;
};

TEST_F(PreparedEventTest, IsRecordedOnceAndTheChainVerifies) {
  Vault vault = open();
  PreparedEvent prepared;
  vault.impl().prepare_event(kAlice, skill_event("Fetch"), prepared);
  ASSERT_TRUE(prepared.ready);
  vault.impl().record_prepared_event(kAlice, skill_event("Fetch"), prepared);

  const auto events = skill_events(vault);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor, "alice");
  EXPECT_EQ(events[0].skill, "Fetch");
  EXPECT_EQ(events[0].outcome, "ok");
  EXPECT_TRUE(vault.verify_audit().ok) << vault.verify_audit().problem;
}

// A skill whose statement failed never asks for its prepared success: the
// trail holds no success for it, also after the handle closes and folds.
TEST_F(PreparedEventTest, IsNotRecordedUntilAsked) {
  {
    Vault vault = open();
    PreparedEvent prepared;
    vault.impl().prepare_event(kAlice, skill_event("Fails"), prepared);
    ASSERT_TRUE(prepared.ready);
    vault.impl().record_event(kAlice, skill_event("Fails", "error"));
  }
  Vault vault = open();
  const auto events = skill_events(vault);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome, "error");
  EXPECT_TRUE(vault.verify_audit().ok) << vault.verify_audit().problem;
}

// Sealed for the next place in the journal: another event recorded in
// between takes that place, and the prepared one is sealed again after it
// (neither lost, nor a repeated index that would break the chain).
TEST_F(PreparedEventTest, AnEventInBetweenKeepsBothInOrder) {
  Vault vault = open();
  vault.store_credential(kAlice, {.name = "db", .host = "h", .password = "pw-prepared"});
  PreparedEvent first;
  PreparedEvent second;
  vault.impl().prepare_event(kAlice, skill_event("First"), first);
  vault.impl().prepare_event(kAlice, skill_event("Second"), second);
  (void)vault.get_credential(kAlice, "db");
  vault.impl().record_prepared_event(kAlice, skill_event("Second"), second);
  vault.impl().record_prepared_event(kAlice, skill_event("First"), first);

  const auto events = skill_events(vault);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].skill, "Second");
  EXPECT_EQ(events[1].skill, "First");
  EXPECT_TRUE(vault.verify_audit().ok) << vault.verify_audit().problem;
}

// The event recorded is the one passed to record_prepared_event: a prepared
// success does not stand in for a different outcome.
TEST_F(PreparedEventTest, ADifferentEventIsRecordedAsItIs) {
  Vault vault = open();
  PreparedEvent prepared;
  vault.impl().prepare_event(kAlice, skill_event("Fetch"), prepared);
  vault.impl().record_prepared_event(kAlice, skill_event("Fetch", "denied"), prepared);

  const auto events = skill_events(vault);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome, "denied");
  EXPECT_TRUE(vault.verify_audit().ok) << vault.verify_audit().problem;
}

// Nor does it stand in for the same event of another actor.
TEST_F(PreparedEventTest, AnotherActorsEventIsRecordedAsItIs) {
  Vault vault = open();
  PreparedEvent prepared;
  vault.impl().prepare_event(kAlice, skill_event("Fetch"), prepared);
  vault.impl().record_prepared_event(kAdmin, skill_event("Fetch"), prepared);

  const auto events = skill_events(vault);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor, "root");
  EXPECT_TRUE(vault.verify_audit().ok) << vault.verify_audit().problem;
}

// Prepared by one handle, offered to another: not that handle's journal, so
// it is sealed again there.
TEST_F(PreparedEventTest, APreparedEventOfAnotherHandleIsSealedAgain) {
  Vault one = open();
  Vault other = open();
  PreparedEvent prepared;
  one.impl().prepare_event(kAlice, skill_event("Fetch"), prepared);
  ASSERT_TRUE(prepared.ready);
  other.impl().record_prepared_event(kAlice, skill_event("Fetch"), prepared);

  const auto events = skill_events(other);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(other.verify_audit().ok) << other.verify_audit().problem;
}

// Thousands of prepared events (several journal folds, some run by
// prepare_event itself) all reach the chain once.
TEST_F(PreparedEventTest, ManyPreparedEventsAcrossFoldsAllArrive) {
  constexpr int kEvents = 3000;
  {
    Vault vault = open();
    for (int i = 0; i < kEvents; ++i) {
      PreparedEvent prepared;
      const AuditRecord event = skill_event("S" + std::to_string(i));
      vault.impl().prepare_event(kAlice, event, prepared);
      vault.impl().record_prepared_event(kAlice, event, prepared);
    }
  }
  Vault vault = open();
  const auto events = skill_events(vault);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(events[i].skill, "S" + std::to_string(i));
  EXPECT_TRUE(vault.verify_audit().ok) << vault.verify_audit().problem;
}

}  // namespace
}  // namespace credentials
