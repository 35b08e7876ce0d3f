#include "legacy/legacy_vault.h"

#include <charconv>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

// A std::map-backed document, with the top-level key order recorded by a
// second, SAX pass (TopLevelKeys). Both are linear: nlohmann::ordered_json
// searches linearly on every insert, and nlohmann's callback parser scans the
// enclosing object at the end of every nested one; either made importing
// 100,000 credentials quadratic (minutes).
using Json = nlohmann::json;

// The keys of the top-level object, in file order.
class TopLevelKeys final : public nlohmann::json_sax<Json> {
 public:
  std::vector<std::string> keys;

  bool key(string_t& name) override {
    if (depth_ == 1) keys.push_back(name);
    return true;
  }
  bool start_object(std::size_t) override { return ++depth_, true; }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return ++depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  int depth_ = 0;
};

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

std::string_view trim(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  const std::size_t end = text.find_last_not_of(kWhitespace);
  return text.substr(begin, end - begin + 1);
}

[[noreturn]] void throw_decryption_failure(FernetFailure failure) {
  switch (failure) {
    case FernetFailure::kMalformed:
      throw DecryptionFailedError(
          "legacy vault: the file is not a Fernet token (truncated or corrupted)");
    case FernetFailure::kBadSignature:
      throw DecryptionFailedError(
          "legacy vault: decryption failed: wrong legacy master key, or the file was altered");
    default:
      throw DecryptionFailedError("legacy vault: decryption failed: the file is corrupted");
  }
}

// Reads the fields of one credential object; errors name the credential and
// the field, never a value.
class FieldReader {
 public:
  FieldReader(const Json& object, std::string_view id) : object_(object), id_(id) {}

  [[noreturn]] void fail(std::string_view field, std::string_view problem) const {
    throw InvalidArgumentError(
        fmt::format("legacy vault: credential '{}': field '{}' {}", id_, field, problem));
  }

  const Json* find(std::string_view field) const {
    const auto it = object_.find(field);
    return it == object_.end() ? nullptr : &*it;
  }

  const Json& required(std::string_view field) const {
    const Json* value = find(field);
    if (value == nullptr) fail(field, "is missing");
    return *value;
  }

  // A string; null reads as "" when null_ok.
  std::string string(std::string_view field, bool null_ok = false) const {
    const Json& value = required(field);
    if (value.is_null() && null_ok) return {};
    if (!value.is_string()) fail(field, null_ok ? "must be a string or null" : "must be a string");
    return value.get<std::string>();
  }

  // Absent or null: nullopt.
  std::optional<std::string> optional_string(std::string_view field) const {
    const Json* value = find(field);
    if (value == nullptr || value->is_null()) return std::nullopt;
    if (!value->is_string()) fail(field, "must be a string or null");
    return value->get<std::string>();
  }

  // An integer in [min, max] (a string of digits is accepted too); absent or
  // null gives `fallback` when there is one.
  int integer(std::string_view field, std::optional<int> fallback, int min, int max) const {
    const Json* value = find(field);
    if (value == nullptr || value->is_null()) {
      if (fallback) return *fallback;
      fail(field, value == nullptr ? "is missing" : "must be an integer");
    }
    std::int64_t number = 0;
    if (value->is_number_integer()) {
      if (value->is_number_unsigned() &&
          value->get<std::uint64_t>() >
              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(field, fmt::format("must be between {} and {}", min, max));
      }
      number = value->get<std::int64_t>();
    } else if (value->is_string()) {
      const std::string& text = value->get_ref<const std::string&>();
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        fail(field, "must be an integer");
      }
    } else {
      fail(field, "must be an integer");
    }
    if (number < min || number > max)
      fail(field, fmt::format("must be between {} and {}", min, max));
    return static_cast<int>(number);
  }

  Timestamp timestamp(std::string_view field) const {
    const std::string text = string(field);
    try {
      return parse_timestamp(text);
    } catch (const InvalidArgumentError&) {
      fail(field, "is not an ISO-8601 timestamp");
    }
  }

 private:
  const Json& object_;
  std::string_view id_;
};

LegacyCredential read_credential(const std::string& key, const Json& object,
                                 const FernetKey& fernet_key) {
  if (!object.is_object()) {
    throw InvalidArgumentError(
        fmt::format("legacy vault: credential '{}' is not a JSON object", key));
  }
  const FieldReader fields(object, key);
  LegacyCredential credential;
  credential.credential_id = key;
  if (const std::optional<std::string> inner = fields.optional_string("credential_id");
      inner && *inner != key) {
    fields.fail("credential_id", "does not match the key it is stored under");
  }
  credential.user_id = fields.string("user_id");
  credential.name = fields.string("name");
  credential.db_type = fields.string("db_type");
  credential.host = fields.string("host", /*null_ok=*/true);
  credential.port = fields.integer("port", /*fallback=*/0, 0, 65535);
  credential.database = fields.string("database", /*null_ok=*/true);
  credential.username = fields.string("username", /*null_ok=*/true);
  credential.description = fields.optional_string("description");
  credential.ssl_mode = fields.optional_string("ssl_mode");
  credential.connection_timeout =
      fields.integer("connection_timeout", /*fallback=*/30, 0, std::numeric_limits<int>::max());
  credential.created_at = fields.timestamp("created_at");
  credential.updated_at = fields.timestamp("updated_at");

  const std::string token = fields.string("encrypted_password");
  FernetDecrypted password = fernet_decrypt(fernet_key, token);
  if (!password.ok()) {
    throw DecryptionFailedError(
        fmt::format("legacy vault: credential '{}': the password does not decrypt", key));
  }
  credential.password = SecretString(password.plaintext->as_chars());
  return credential;
}

}  // namespace

std::vector<LegacyCredential> parse_legacy_vault_json(std::string_view json, const FernetKey& key) {
  Json document;
  TopLevelKeys top_level;
  const std::vector<std::string>& order = top_level.keys;  // credential ids in file order
  try {
    document = Json::parse(json.begin(), json.end());
    // The text parsed: the SAX pass over it cannot fail.
    (void)Json::sax_parse(json.begin(), json.end(), &top_level);
  } catch (const Json::parse_error& e) {
    // e.what() quotes the text near the error: never show it.
    throw InvalidArgumentError(
        fmt::format("legacy vault: the decrypted file is not valid JSON (at byte {})", e.byte));
  } catch (const Json::exception&) {
    // out_of_range: a number beyond a double. Its message is fixed text, but
    // keep one wording for every malformed file.
    throw InvalidArgumentError(
        "legacy vault: the decrypted file is not valid JSON (a number is out of range)");
  }
  if (!document.is_object()) {
    throw InvalidArgumentError(
        "legacy vault: the decrypted file is not a JSON object of credentials");
  }
  std::vector<LegacyCredential> credentials;
  credentials.reserve(document.size());
  // A repeated key keeps its first position with its last value, as a
  // Python dict built from the file did.
  std::set<std::string_view> seen;
  for (const std::string& id : order) {
    if (!seen.insert(id).second) continue;
    credentials.push_back(read_credential(id, document.at(id), key));
  }
  return credentials;
}

std::vector<LegacyCredential> decode_legacy_vault(std::string_view token, const FernetKey& key) {
  const FernetDecrypted plaintext = fernet_decrypt(key, trim(token));
  if (!plaintext.ok()) throw_decryption_failure(plaintext.failure);
  return parse_legacy_vault_json(plaintext.plaintext->as_chars(), key);
}

std::vector<LegacyCredential> read_legacy_vault(const std::filesystem::path& path,
                                                const SecretString& legacy_key) {
  std::error_code ec;
  std::ifstream in;
  if (std::filesystem::is_regular_file(path, ec)) in.open(path, std::ios::binary);
  if (!in.is_open()) {
    throw InvalidArgumentError(
        fmt::format("legacy vault: cannot read '{}': not a readable file", path.string()));
  }
  const std::string contents{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    throw InvalidArgumentError(fmt::format("legacy vault: cannot read '{}'", path.string()));
  }
  const std::string_view token = trim(contents);

  const FernetKey key = legacy_fernet_key(legacy_key.reveal());
  FernetDecrypted plaintext = fernet_decrypt(key, token);
  if (plaintext.ok()) return parse_legacy_vault_json(plaintext.plaintext->as_chars(), key);

  const std::string_view trimmed_key = trim(legacy_key.reveal());
  if (plaintext.failure == FernetFailure::kBadSignature && !trimmed_key.empty() &&
      trimmed_key.size() != legacy_key.size()) {
    std::optional<FernetKey> second;
    try {
      second.emplace(legacy_fernet_key(trimmed_key));
    } catch (const InvalidArgumentError&) {
      // Not a usable key: report the first failure.
    }
    if (second) {
      FernetDecrypted retry = fernet_decrypt(*second, token);
      if (retry.ok()) return parse_legacy_vault_json(retry.plaintext->as_chars(), *second);
    }
  }
  throw_decryption_failure(plaintext.failure);
}

}  // namespace credentials::internal
