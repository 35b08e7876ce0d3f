#include "audit/audit_event.h"

#include <fmt/format.h>

#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vault/validation.h"

namespace credentials::internal {
namespace {

constexpr std::uint8_t kCompactForm = 0x01;
constexpr std::string_view kPriorKey = "prior";
constexpr std::string_view kStateKey = "state";
constexpr std::size_t kStateSize = 32;

void put_be(Bytes& out, std::uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

// LEB128: seven bits a byte, low first, the high bit set on all but the
// last (one byte for any length below 128).
void put_count(Bytes& out, std::uint64_t value) {
  for (; value >= 0x80; value >>= 7) out.push_back(static_cast<std::uint8_t>(value | 0x80));
  out.push_back(static_cast<std::uint8_t>(value));
}

void put_string(Bytes& out, std::string_view text) {
  put_count(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

// Reads a compact event front to back; any read past its end fails it.
class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}
  std::optional<std::uint64_t> number(std::size_t bytes) {
    if (in_.size() - at_ < bytes) return std::nullopt;
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) value = (value << 8) | in_[at_++];
    return value;
  }
  std::optional<std::uint64_t> count() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ == in_.size()) return std::nullopt;
      const std::uint8_t byte = in_[at_++];
      value |= std::uint64_t{byte & 0x7Fu} << shift;
      if (!(byte & 0x80)) return value;
    }
    return std::nullopt;
  }
  std::optional<std::string_view> string() {
    const auto length = count();
    if (!length || in_.size() - at_ < *length) return std::nullopt;
    const std::string_view text(reinterpret_cast<const char*>(in_.data() + at_), *length);
    at_ += *length;
    return text;
  }
  [[nodiscard]] bool at_end() const { return at_ == in_.size(); }

 private:
  ByteView in_;
  std::size_t at_ = 0;
};

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

void compact_event(const EventFields& event, Bytes& out) {
  out.clear();
  out.push_back(kCompactForm);
  put_be(out, static_cast<std::uint64_t>(event.time.time_since_epoch().count()), 8);
  put_be(out, static_cast<std::uint64_t>(event.pid), 4);
  put_count(out, event.roles.size());
  for (const std::string& role : event.roles) put_string(out, role);
  for (std::string_view text : {event.actor, event.action, event.owner, event.name, event.outcome, event.error,
                                event.skill, event.query_sha256}) {
    put_string(out, text);
  }
}

std::optional<std::string> event_text(ByteView opened) {
  if (!opened.empty() && opened[0] == '{') return std::string(reinterpret_cast<const char*>(opened.data()), opened.size());
  if (opened.empty() || opened[0] != kCompactForm) return std::nullopt;
  Reader in(opened.subspan(1));
  const auto time = in.number(8);
  const auto pid = in.number(4);
  const auto role_count = in.count();
  if (!time || !pid || !role_count) return std::nullopt;
  std::vector<std::string> roles;
  for (std::uint64_t i = 0; i < *role_count; ++i) {
    const auto role = in.string();
    if (!role) return std::nullopt;
    roles.emplace_back(*role);
  }
  std::string_view fields[8];
  for (auto& field : fields) {
    const auto text = in.string();
    if (!text) return std::nullopt;
    field = *text;
  }
  if (!in.at_end()) return std::nullopt;
  EventFields event;
  event.time = Timestamp(std::chrono::microseconds(static_cast<std::int64_t>(*time)));
  event.pid = static_cast<std::int64_t>(*pid);
  event.roles = roles;
  event.actor = fields[0];
  event.action = fields[1];
  event.owner = fields[2];
  event.name = fields[3];
  event.outcome = fields[4];
  event.error = fields[5];
  event.skill = fields[6];
  event.query_sha256 = fields[7];
  return event_json(event);
}

}  // namespace credentials::internal
