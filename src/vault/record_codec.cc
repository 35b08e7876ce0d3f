#include "vault/record_codec.h"

#include <cstring>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

// Format 1: a version byte, then tag(1) ‖ length(4, big-endian) ‖ bytes for
// each field. Unknown tags are skipped so later versions can add fields.
constexpr std::uint8_t kRecordFormat = 1;
enum Tag : std::uint8_t {
  kId = 1, kOwner, kName, kDbType, kHost, kPort, kDatabase, kUsername, kPassword,
  kDescription, kSslMode, kConnectionTimeout, kCreatedAt, kUpdatedAt, kVersion,
};

class Writer {
 public:
  explicit Writer(SecretBytes& out) : out_(out) {}
  void text(Tag tag, std::string_view value) { field(tag, as_bytes(value)); }
  void integer(Tag tag, std::int64_t value) {
    std::uint8_t be[8];
    for (int i = 7; i >= 0; --i) {
      be[i] = static_cast<std::uint8_t>(value & 0xff);
      value = static_cast<std::int64_t>(static_cast<std::uint64_t>(value) >> 8);
    }
    field(tag, ByteView(be, 8));
  }
  [[nodiscard]] std::size_t size() const { return pos_; }
  void version_byte() { put(&kRecordFormat, 1); }

 private:
  void field(Tag tag, ByteView value) {
    const auto n = static_cast<std::uint32_t>(value.size());
    const std::uint8_t header[5] = {tag, static_cast<std::uint8_t>(n >> 24),
                                    static_cast<std::uint8_t>(n >> 16),
                                    static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    put(header, 5);
    put(value.data(), value.size());
  }
  void put(const std::uint8_t* data, std::size_t n) {
    if (out_.data() && n) std::memcpy(out_.data() + pos_, data, n);
    pos_ += n;
  }
  SecretBytes& out_;
  std::size_t pos_ = 0;
};

template <typename Sink>
void write_all(Sink& w, const Credential& c) {
  w.version_byte();
  w.text(kId, c.credential_id);
  w.text(kOwner, c.owner);
  w.text(kName, c.name);
  w.text(kDbType, c.db_type);
  w.text(kHost, c.host);
  w.integer(kPort, c.port);
  w.text(kDatabase, c.database);
  w.text(kUsername, c.username);
  w.text(kPassword, c.password.reveal());
  w.text(kDescription, c.description);
  w.text(kSslMode, c.ssl_mode);
  w.integer(kConnectionTimeout, c.connection_timeout);
  w.integer(kCreatedAt, c.created_at.time_since_epoch().count());
  w.integer(kUpdatedAt, c.updated_at.time_since_epoch().count());
  w.integer(kVersion, static_cast<std::int64_t>(c.version));
}

[[noreturn]] void malformed() { throw DecryptionFailedError("credential record is malformed"); }

std::int64_t read_integer(ByteView value) {
  if (value.size() != 8) malformed();
  std::uint64_t v = 0;
  for (std::uint8_t b : value) v = (v << 8) | b;
  return static_cast<std::int64_t>(v);
}

}  // namespace

SecretBytes encode_record(const Credential& credential) {
  SecretBytes sizing;
  Writer measure(sizing);  // first pass: measure only (no buffer)
  write_all(measure, credential);
  SecretBytes out(measure.size());
  Writer writer(out);
  write_all(writer, credential);
  return out;
}

Credential decode_record(ByteView plaintext) {
  if (plaintext.empty() || plaintext[0] != kRecordFormat) malformed();
  Credential c;
  std::uint32_t seen = 0;
  std::size_t pos = 1;
  while (pos < plaintext.size()) {
    if (plaintext.size() - pos < 5) malformed();
    const std::uint8_t tag = plaintext[pos];
    const std::uint32_t n = (std::uint32_t{plaintext[pos + 1]} << 24) |
                            (std::uint32_t{plaintext[pos + 2]} << 16) |
                            (std::uint32_t{plaintext[pos + 3]} << 8) | plaintext[pos + 4];
    pos += 5;
    if (plaintext.size() - pos < n) malformed();
    const ByteView value = plaintext.subspan(pos, n);
    pos += n;
    if (tag < 32) {
      if (seen & (1u << tag)) malformed();  // a duplicated field is never written
      seen |= 1u << tag;
    }
    const std::string_view text = as_chars(value);
    switch (tag) {
      case kId: c.credential_id = text; break;
      case kOwner: c.owner = text; break;
      case kName: c.name = text; break;
      case kDbType: c.db_type = text; break;
      case kHost: c.host = text; break;
      case kPort: c.port = static_cast<int>(read_integer(value)); break;
      case kDatabase: c.database = text; break;
      case kUsername: c.username = text; break;
      case kPassword: c.password = SecretString(text); break;
      case kDescription: c.description = text; break;
      case kSslMode: c.ssl_mode = text; break;
      case kConnectionTimeout: c.connection_timeout = static_cast<int>(read_integer(value)); break;
      case kCreatedAt: c.created_at = Timestamp(std::chrono::microseconds(read_integer(value))); break;
      case kUpdatedAt: c.updated_at = Timestamp(std::chrono::microseconds(read_integer(value))); break;
      case kVersion: c.version = static_cast<std::uint64_t>(read_integer(value)); break;
      default: break;  // a field from a later format version
    }
  }
  constexpr std::uint32_t kRequired = (1u << kId) | (1u << kOwner) | (1u << kName) |
                                      (1u << kDbType) | (1u << kPassword) | (1u << kVersion);
  if ((seen & kRequired) != kRequired) malformed();
  return c;
}

}  // namespace credentials::internal
