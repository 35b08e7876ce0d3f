// An audit event's two encodings (src/audit/audit_event.h): the compact
// form a read journal seals opens to exactly the JSON a write's event holds,
// whatever its fields, and anything malformed opens to nothing.
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

std::optional<std::string> opened(const Owned& event) {
  Bytes compact;
  compact_event(event.fields(), compact);
  return event_text(compact);
}

TEST(AuditEventTest, CompactFormOpensToTheSameJsonAsTheEventItself) {
  std::vector<Owned> events = {a_get()};
  Owned skill = a_get();
  skill.action = "skill";
  skill.skill = "user-fetcher";
  skill.query_sha256 = std::string(64, 'a');
  skill.roles = {"user", "admin", "superuser"};
  events.push_back(skill);
  Owned awkward = a_get();
  awkward.name = "quote\" back\\slash\nnewline\ttab\x01 \xc3\xbc \xe2\x9c\x93";
  awkward.owner = "not utf-8 \xff\xfe";
  awkward.error = "UnauthorizedError";
  awkward.outcome = "denied";
  awkward.roles = {};
  awkward.time_micros = -1;  // before 1970 still round-trips
  events.push_back(awkward);
  Owned empty;
  events.push_back(empty);
  Owned long_fields = a_get();
  long_fields.name = std::string(70'000, 'n');  // a length of three LEB128 bytes
  long_fields.roles = std::vector<std::string>(300, "r");
  events.push_back(long_fields);
  for (const Owned& event : events) {
    const auto text = opened(event);
    ASSERT_TRUE(text.has_value()) << event.name.substr(0, 40);
    EXPECT_EQ(*text, event_json(event.fields()));
    EXPECT_TRUE(nlohmann::json::parse(*text, nullptr, false).is_object());
  }
}

TEST(AuditEventTest, AReadsCompactEventIsLessThanHalfItsJson) {
  Bytes compact;
  compact_event(a_get().fields(), compact);
  const std::string json = event_json(a_get().fields());
  EXPECT_LT(compact.size() * 2, json.size()) << compact.size() << " against " << json.size();
}

TEST(AuditEventTest, JsonOpensAsItIs) {
  const std::string json = event_json(a_get().fields());
  const auto text = event_text(as_bytes(json));
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, json);
}

TEST(AuditEventTest, MalformedCompactEventsOpenToNothing) {
  Bytes compact;
  Owned event = a_get();
  event.skill = "s";
  compact_event(event.fields(), compact);
  for (std::size_t size = 0; size < compact.size(); ++size) {
    EXPECT_FALSE(event_text(ByteView(compact).first(size)).has_value()) << "cut to " << size << " bytes";
  }
  Bytes longer = compact;
  longer.push_back(0);
  EXPECT_FALSE(event_text(longer).has_value()) << "a byte after the last field";
  Bytes other_form = compact;
  other_form[0] = 0x02;
  EXPECT_FALSE(event_text(other_form).has_value()) << "an unknown form";
  // A length that never ends (every byte with its continuation bit).
  Bytes endless(compact.begin(), compact.begin() + 13);
  endless.insert(endless.end(), 12, 0xFF);
  EXPECT_FALSE(event_text(endless).has_value());
  // A count of roles far beyond the bytes there.
  Bytes many(compact.begin(), compact.begin() + 13);
  many.insert(many.end(), {0xFF, 0xFF, 0xFF, 0xFF, 0x0F});
  EXPECT_FALSE(event_text(many).has_value());
}

}  // namespace
}  // namespace credentials::internal
