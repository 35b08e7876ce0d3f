#include "legacy/legacy_vault.h"

#include <charconv>
#include <fstream>
#include <iterator>
#include <limits>
#include <exception>
#include <map>
#include <unordered_map>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

// Credentials are read one at a time, as the parser streams through the
// file: only the credential being read is ever a document (a DOM of the
// whole file, ~2 KiB a credential, made importing 100,000 peak at ~450 MB).
using Json = nlohmann::json;

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

// Reads the top-level object of a vault as nlohmann's SAX parser reports
// it: each credential's value becomes a document of its own, is read into a
// LegacyCredential and dropped. What a file of credentials means is what the
// Python version's dict of it meant: the order of first appearance, and for
// a repeated key its last value. So a credential that does not read is kept
// as its error, and the errors are thrown after the whole file has parsed,
// in that order: a syntax error anywhere comes first, and a bad value that a
// later one replaces is no error at all.
class VaultReader final : public nlohmann::json_sax<Json> {
 public:
  explicit VaultReader(const FernetKey& key) : key_(key) {}

  bool null() override { return value(Json(nullptr)); }
  bool boolean(bool b) override { return value(Json(b)); }
  bool number_integer(number_integer_t n) override { return value(Json(n)); }
  bool number_unsigned(number_unsigned_t n) override { return value(Json(n)); }
  bool number_float(number_float_t n, const string_t&) override { return value(Json(n)); }
  bool string(string_t& text) override { return value(Json(std::move(text))); }
  bool binary(binary_t&) override { return value(Json()); }  // not in JSON text
  bool start_object(std::size_t) override { return open(Json::object()); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& name) override {
    if (depth_ == 1 && !not_an_object_) {
      id_ = std::move(name);
    } else {
      key_in_value_ = std::move(name);
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) override {
    error_at_ = position;
    // A number beyond a double; its message is fixed text, but keep one
    // wording for every malformed file.
    number_out_of_range_ = dynamic_cast<const nlohmann::detail::out_of_range*>(&error) != nullptr;
    return false;
  }

  // After sax_parse returned true: the credentials, or the first error;
  // with `unreadable`, the records that did not read listed there instead.
  std::vector<LegacyCredential> credentials(std::vector<UnreadableRecord>* unreadable) && {
    if (not_an_object_) {
      throw InvalidArgumentError("legacy vault: the decrypted file is not a JSON object of credentials");
    }
    if (errors_.empty()) return std::move(read_);
    if (!unreadable) std::rethrow_exception(errors_.begin()->second);
    std::vector<LegacyCredential> readable;
    for (std::size_t i = 0; i < read_.size(); ++i) {
      const auto error = errors_.find(i);
      if (error == errors_.end()) {
        readable.push_back(std::move(read_[i]));
        continue;
      }
      try {
        std::rethrow_exception(error->second);
      } catch (const Error& e) {
        unreadable->push_back({read_[i].credential_id, e.what()});
      }
    }
    return readable;
  }

  // After sax_parse returned false.
  [[noreturn]] void throw_parse_error() const {
    if (number_out_of_range_) {
      throw InvalidArgumentError("legacy vault: the decrypted file is not valid JSON (a number is out of range)");
    }
    // The parser's own message quotes the text near the error: never shown.
    throw InvalidArgumentError(fmt::format("legacy vault: the decrypted file is not valid JSON (at byte {})", error_at_));
  }

 private:
  // A scalar: a credential's whole value (depth 1), or a part of one.
  bool value(Json scalar) {
    if (not_an_object_) return true;
    if (depth_ == 0) {
      not_an_object_ = true;  // a file that is one number, string, ...
      return true;
    }
    if (depth_ == 1) {
      finish(std::move(scalar));
    } else {
      add(std::move(scalar));
    }
    return true;
  }

  bool open(Json container) {
    ++depth_;
    if (not_an_object_) return true;
    if (depth_ == 1) {
      not_an_object_ = !container.is_object();
    } else if (depth_ == 2) {
      building_ = std::move(container);
      open_.push_back(&building_);
    } else {
      open_.push_back(&add(std::move(container)));
    }
    return true;
  }

  bool close() {
    --depth_;
    if (not_an_object_ || depth_ == 0) return true;
    open_.pop_back();
    if (depth_ == 1) finish(std::move(building_));
    return true;
  }

  // Adds a part to the container being built; the part as stored. Parts of
  // an object are stored in a std::map, whose elements never move; a part
  // of an array may move when the array grows, but by then it is complete.
  Json& add(Json part) {
    Json& container = *open_.back();
    if (container.is_object()) return container[key_in_value_] = std::move(part);
    container.push_back(std::move(part));
    return container.back();
  }

  void finish(Json credential_value) {
    const auto [at, first] = position_.try_emplace(id_, read_.size());
    if (first) read_.emplace_back();
    try {
      read_[at->second] = read_credential(id_, credential_value, key_);
      errors_.erase(at->second);
    } catch (const Error&) {
      read_[at->second] = LegacyCredential{};
      read_[at->second].credential_id = id_;
      errors_[at->second] = std::current_exception();
    }
  }

  const FernetKey& key_;
  int depth_ = 0;                  // containers open, the top-level object included
  bool not_an_object_ = false;     // the top-level value is not an object
  std::string id_;                 // the credential being read (its key)
  std::string key_in_value_;       // the last key inside its value
  Json building_;                  // its value
  std::vector<Json*> open_;        // the containers of it still open
  // In order of first appearance; where one did not read, an empty
  // credential, and its error in errors_ (by index: the first is thrown).
  std::vector<LegacyCredential> read_;
  std::map<std::size_t, std::exception_ptr> errors_;
  std::unordered_map<std::string, std::size_t> position_;  // id -> index in read_
  std::size_t error_at_ = 0;
  bool number_out_of_range_ = false;
};

}  // namespace

std::vector<LegacyCredential> parse_legacy_vault_json(std::string_view json, const FernetKey& key,
                                                      std::vector<UnreadableRecord>* unreadable) {
  VaultReader reader(key);
  if (!Json::sax_parse(json.begin(), json.end(), &reader)) reader.throw_parse_error();
  return std::move(reader).credentials(unreadable);
}

std::vector<LegacyCredential> decode_legacy_vault(std::string_view token, const FernetKey& key) {
  const FernetDecrypted plaintext = fernet_decrypt(key, trim(token));
  if (!plaintext.ok()) throw_decryption_failure(plaintext.failure);
  return parse_legacy_vault_json(plaintext.plaintext->as_chars(), key);
}

std::vector<LegacyCredential> read_legacy_vault(const std::filesystem::path& path,
                                                const SecretString& legacy_key,
                                                std::vector<UnreadableRecord>* unreadable) {
  std::error_code ec;
  std::ifstream in;
  if (std::filesystem::is_regular_file(path, ec)) in.open(path, std::ios::binary);
  if (!in.is_open()) {
    throw InvalidArgumentError(
        fmt::format("legacy vault: cannot read '{}': not a readable file", path.string()));
  }
  std::string contents{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    throw InvalidArgumentError(fmt::format("legacy vault: cannot read '{}'", path.string()));
  }
  std::optional<FernetKey> key = legacy_fernet_key(legacy_key.reveal());
  FernetDecrypted plaintext = fernet_decrypt(*key, trim(contents));
  if (!plaintext.ok()) {
    const std::string_view trimmed_key = trim(legacy_key.reveal());
    std::optional<FernetKey> second;
    if (plaintext.failure == FernetFailure::kBadSignature && !trimmed_key.empty() &&
        trimmed_key.size() != legacy_key.size()) {
      try {
        second.emplace(legacy_fernet_key(trimmed_key));
      } catch (const InvalidArgumentError&) {
        // Not a usable key: report the first failure.
      }
    }
    FernetDecrypted retry;
    if (second) retry = fernet_decrypt(*second, trim(contents));
    if (!retry.ok()) throw_decryption_failure(plaintext.failure);
    plaintext = std::move(retry);
    key = std::move(second);
  }
  // The file's text goes before the parse: at 100,000 credentials it is
  // 72 MB, the plaintext 53 MB, and the credentials read from it ~45 MB.
  std::string().swap(contents);
  return parse_legacy_vault_json(plaintext.plaintext->as_chars(), *key, unreadable);
}

}  // namespace credentials::internal
