#include "audit/audit_event.h"

#include <fmt/format.h>

#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vault/validation.h"

namespace credentials::internal {
namespace {

constexpr std::string_view kPriorKey = "prior";
constexpr std::string_view kStateKey = "state";
constexpr std::size_t kStateSize = 32;

}  // namespace

// Text that is not UTF-8 (a credential reference as given) goes through
// nlohmann::json, which replaces invalid bytes.
void append_json_string(std::string& out, std::string_view text) {
  if (!is_utf8(text)) {
    out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  // Runs of characters that need no escape are copied whole: every audit
  // event is built from a dozen such strings.
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (static_cast<unsigned char>(ch) >= 0x20 && ch != '"' && ch != '\\') continue;
    out.append(text, run, i - run);
    run = i + 1;
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(ch));
    }
  }
  out.append(text, run);
  out += '"';
}

// Written directly rather than through a JSON object: the events of writes
// and of the shared store's reads are built here on their hot paths.
std::string event_json(const EventFields& event) {
  std::string out;
  out.reserve(256);
  auto field = [&](std::string_view key, std::string_view value) {
    out += out.empty() ? "{\"" : ",\"";
    out += key;
    out += "\":";
    append_json_string(out, value);
  };
  field("time", format_timestamp(event.time));
  field("actor", event.actor);
  out += ",\"roles\":[";
  for (std::size_t i = 0; i < event.roles.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, event.roles[i]);
  }
  out += ']';
  field("action", event.action);
  field("owner", event.owner);
  field("name", event.name);
  field("outcome", event.outcome);
  field("error", event.error);
  fmt::format_to(std::back_inserter(out), ",\"pid\":{}", event.pid);
  if (!event.skill.empty()) field("skill", event.skill);
  if (!event.query_sha256.empty()) field("query_sha256", event.query_sha256);
  if (!event.segment.empty()) {
    field("segment", hex_encode(event.segment));
    fmt::format_to(std::back_inserter(out), ",\"entries\":{}", event.entries);
    field("last", hex_encode(event.last));
  }
  if (!event.prior.empty()) field(kPriorKey, hex_encode(event.prior));
  if (!event.state.empty()) field(kStateKey, hex_encode(event.state));
  out += '}';
  return out;
}

namespace {
// The digest a text ends with as `,"<key>":"<64 hex>"` followed by `end`;
// the text before it in `rest`. `"<key>":"` can only be a key: inside a
// string a quote is escaped.
std::optional<Bytes> trailing_digest(std::string_view text, std::string_view key,
                                     std::string_view end, std::string_view& rest) {
  constexpr std::size_t kHexSize = 2 * kStateSize;
  const std::string marker = fmt::format(R"(,"{}":")", key);
  const std::size_t size = marker.size() + kHexSize + 1 + end.size();
  if (text.size() < size || !text.ends_with(end)) return std::nullopt;
  const std::string_view tail = text.substr(text.size() - size);
  if (!tail.starts_with(marker) || tail[marker.size() + kHexSize] != '"') return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  Bytes digest;
  for (std::size_t i = marker.size(); i < marker.size() + kHexSize; i += 2) {
    const int high = nibble(tail[i]), low = nibble(tail[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    digest.push_back(static_cast<std::uint8_t>(high << 4 | low));
  }
  rest = text.substr(0, text.size() - size);
  return digest;
}
}  // namespace

std::optional<StateCommitment> event_commitment(std::string_view text) {
  std::string_view rest;
  auto state = trailing_digest(text, kStateKey, "}", rest);
  if (!state) return std::nullopt;
  StateCommitment commitment{{}, std::move(*state)};
  std::string_view before_prior;
  if (auto prior = trailing_digest(rest, kPriorKey, "", before_prior))
    commitment.prior = std::move(*prior);
  return commitment;
}

std::optional<SegmentAnchor> event_anchor(std::string_view text) {
  if (text.find(R"("segment":")") == std::string_view::npos) return std::nullopt;
  const auto body = nlohmann::json::parse(text, nullptr, false);
  if (!body.is_object() || body.value("action", std::string()) != kAnchorAction)
    return std::nullopt;
  const auto segment = body.find("segment");
  const auto entries = body.find("entries");
  const auto last = body.find("last");
  if (segment == body.end() || entries == body.end() || last == body.end() ||
      !segment->is_string() || !entries->is_number_integer() || !last->is_string()) {
    return std::nullopt;
  }
  auto segment_id = hex_decode(segment->get<std::string>());
  auto last_mac = hex_decode(last->get<std::string>());
  if (!segment_id || !last_mac) return std::nullopt;
  return SegmentAnchor{std::move(*segment_id), entries->get<std::int64_t>(), std::move(*last_mac)};
}

}  // namespace credentials::internal
