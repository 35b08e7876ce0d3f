// An audit event's JSON (src/audit/audit_event.h): any field values make a
// JSON object that reads back as they were, and an anchor's or a write's
// trailing fields are found in it, and in nothing else.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/audit_event.h"

namespace credentials::internal {
namespace {

struct Owned {
  std::string actor, action, owner, name, outcome, error, skill, query_sha256;
  std::vector<std::string> roles;
  std::int64_t time_micros = 0;
  std::int64_t pid = 0;

  EventFields fields() const {
    EventFields f;
    f.time = Timestamp(std::chrono::microseconds(time_micros));
    f.actor = actor;
    f.roles = roles;
    f.action = action;
    f.owner = owner;
    f.name = name;
    f.outcome = outcome;
    f.error = error;
    f.skill = skill;
    f.query_sha256 = query_sha256;
    f.pid = pid;
    return f;
  }
};

Owned a_get() {
  return {"u0001", "get", "u0001", "db-001", "ok", "", "", "", {"user"}, 1'796'000'000'123'456, 48213};
}

TEST(AuditEventTest, AnyFieldsMakeJsonThatReadsBackAsTheyWere) {
  std::vector<Owned> events = {a_get()};
  Owned skill = a_get();
  skill.action = "skill";
  skill.skill = "user-fetcher";
  skill.query_sha256 = std::string(64, 'a');
  skill.roles = {"user", "admin", "superuser"};
  events.push_back(skill);
  Owned awkward = a_get();
  awkward.name = "quote\" back\\slash\nnewline\ttab\x01 \xc3\xbc \xe2\x9c\x93";
  awkward.error = "UnauthorizedError";
  awkward.outcome = "denied";
  awkward.roles = {};
  events.push_back(awkward);
  events.push_back(Owned{});
  for (const Owned& event : events) {
    const auto body = nlohmann::json::parse(event_json(event.fields()), nullptr, false);
    ASSERT_TRUE(body.is_object()) << event.name;
    EXPECT_EQ(body["name"], event.name);
    EXPECT_EQ(body["action"], event.action);
    EXPECT_EQ(body["roles"].size(), event.roles.size());
    EXPECT_EQ(body["pid"], event.pid);
    EXPECT_EQ(body.contains("skill"), !event.skill.empty());
  }
  Owned not_utf8 = a_get();
  not_utf8.owner = "not utf-8 \xff\xfe";
  EXPECT_TRUE(nlohmann::json::parse(event_json(not_utf8.fields()), nullptr, false).is_object());
}

TEST(AuditEventTest, AnAnchorReadsBackAndNothingElseIsOne) {
  const Bytes segment(16, 0xab), last(32, 0x5c);
  const Owned get = a_get();
  EventFields anchor = get.fields();
  anchor.action = kAnchorAction;
  anchor.segment = segment;
  anchor.entries = 1'000'001;
  anchor.last = last;
  const auto read = event_anchor(event_json(anchor));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->segment, segment);
  EXPECT_EQ(read->entries, 1'000'001);
  EXPECT_EQ(read->last, last);

  EXPECT_FALSE(event_anchor(event_json(a_get().fields())).has_value()) << "a read";
  // A name that looks like an anchor's fields is still a name.
  Owned tricky = a_get();
  tricky.action = "anchor";
  tricky.name = R"(","segment":"abab","entries":3,"last":"5c5c)";
  EXPECT_FALSE(event_anchor(event_json(tricky.fields())).has_value());
  EventFields other_action = anchor;
  other_action.action = "get";
  EXPECT_FALSE(event_anchor(event_json(other_action)).has_value());
  EXPECT_FALSE(
      event_anchor(R"({"action":"anchor","segment":"zz","entries":1,"last":"00"})").has_value());
  EXPECT_FALSE(
      event_anchor(R"({"action":"anchor","segment":"ab","entries":"1","last":"00"})").has_value());
  EXPECT_FALSE(event_anchor(R"({"action":"anchor","segment":"ab",)").has_value());
}

TEST(AuditEventTest, AWritesCommitmentReadsBack) {
  const Bytes prior(32, 0x01), state(32, 0x02);
  const Owned get = a_get();
  EventFields write = get.fields();
  write.action = "store";
  write.prior = prior;
  write.state = state;
  const auto commitment = event_commitment(event_json(write));
  ASSERT_TRUE(commitment.has_value());
  EXPECT_EQ(commitment->prior, prior);
  EXPECT_EQ(commitment->state, state);
  EXPECT_FALSE(event_commitment(event_json(a_get().fields())).has_value());
}

}  // namespace
}  // namespace credentials::internal
