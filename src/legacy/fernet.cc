#include "legacy/fernet.h"

#include <chrono>
#include <limits>
#include <string>

#include <sodium.h>

#include "credentials/errors.h"

namespace credentials::internal {
namespace {

constexpr std::size_t kHeaderSize = 1 + 8 + 16;  // version, timestamp, IV
constexpr std::size_t kMacSize = 32;
constexpr std::size_t kBlockSize = 16;
constexpr std::int64_t kMaxClockSkew = 60;  // seconds, as Python's Fernet

// Python's len(): code points. Counts the bytes that do not continue a UTF-8
// sequence.
std::size_t code_points(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

}  // namespace

FernetKey::FernetKey(SecretBytes bytes) : bytes_(std::move(bytes)) {
  if (bytes_.size() != kSize) fatal("FernetKey needs 32 bytes");
}

std::optional<FernetKey> FernetKey::from_text(std::string_view text) {
  if (text.size() != kTextSize) return std::nullopt;
  SecretBytes urlsafe(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    urlsafe.data()[i] = static_cast<std::uint8_t>(c == '+' ? '-' : c == '/' ? '_' : c);
  }
  std::optional<Bytes> decoded = base64url_decode(urlsafe.as_chars());
  if (!decoded) return std::nullopt;
  SecretBytes key{ByteView(*decoded)};
  sodium_memzero(decoded->data(), decoded->size());
  if (key.size() != kSize) return std::nullopt;
  return FernetKey(std::move(key));
}

FernetKey legacy_fernet_key(std::string_view master_key) {
  if (code_points(master_key) == FernetKey::kTextSize) {
    std::optional<FernetKey> key = FernetKey::from_text(master_key);
    if (!key) {
      throw InvalidArgumentError(
          "legacy master key: a 44-character key must be a Fernet key (url-safe base64 of 32 "
          "bytes); any other length is a passphrase");
    }
    return std::move(*key);
  }
  return FernetKey(pbkdf2_sha256(master_key, as_bytes(kLegacyPbkdf2Salt), kLegacyPbkdf2Iterations,
                                 FernetKey::kSize));
}

FernetDecrypted fernet_decrypt(const FernetKey& key, std::string_view token,
                               const std::optional<FernetTtl>& ttl) {
  FernetDecrypted result;
  const std::optional<Bytes> data = base64url_decode(token);
  if (!data || data->size() < kHeaderSize + kBlockSize + kMacSize ||
      (data->size() - kHeaderSize - kMacSize) % kBlockSize != 0 || (*data)[0] != kFernetVersion) {
    result.failure = FernetFailure::kMalformed;
    return result;
  }
  const ByteView bytes(*data);
  const ByteView signed_part = bytes.first(bytes.size() - kMacSize);
  const Bytes mac = hmac_sha256(key.signing_key(), signed_part);
  if (!constant_time_equal(mac, bytes.last(kMacSize))) {
    result.failure = FernetFailure::kBadSignature;
    return result;
  }
  std::uint64_t timestamp = 0;
  for (std::size_t i = 1; i < 9; ++i) timestamp = (timestamp << 8) | bytes[i];
  result.timestamp = timestamp;
  if (ttl) {
    // Saturated so that the sums below cannot overflow: such a token is
    // from the future anyway.
    constexpr std::int64_t kFar = std::numeric_limits<std::int64_t>::max() / 4;
    const std::int64_t ts =
        timestamp > static_cast<std::uint64_t>(kFar) ? kFar : static_cast<std::int64_t>(timestamp);
    if (ts + ttl->ttl.count() < ttl->now) {
      result.failure = FernetFailure::kExpired;
      return result;
    }
    if (ttl->now + kMaxClockSkew < ts) {
      result.failure = FernetFailure::kFromTheFuture;
      return result;
    }
  }
  const ByteView iv = bytes.subspan(9, 16);
  const ByteView ciphertext = signed_part.subspan(kHeaderSize);
  result.plaintext = aes128_cbc_decrypt(key.encryption_key(), iv, ciphertext);
  if (!result.plaintext) result.failure = FernetFailure::kBadPadding;
  return result;
}

std::string fernet_encrypt(const FernetKey& key, ByteView plaintext, std::uint64_t timestamp,
                           ByteView iv) {
  if (iv.size() != 16) fatal("Fernet needs a 16-byte IV");
  Bytes data;
  data.reserve(kHeaderSize + plaintext.size() + kBlockSize + kMacSize);
  data.push_back(kFernetVersion);
  for (int shift = 56; shift >= 0; shift -= 8) {
    data.push_back(static_cast<std::uint8_t>(timestamp >> shift));
  }
  data.insert(data.end(), iv.begin(), iv.end());
  const Bytes ciphertext = aes128_cbc_encrypt(key.encryption_key(), iv, plaintext);
  data.insert(data.end(), ciphertext.begin(), ciphertext.end());
  const Bytes mac = hmac_sha256(key.signing_key(), data);
  data.insert(data.end(), mac.begin(), mac.end());
  return base64url_encode(data);
}

std::string fernet_encrypt(const FernetKey& key, ByteView plaintext) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  const Bytes iv = random_bytes(16);
  return fernet_encrypt(key, plaintext, static_cast<std::uint64_t>(now.count()), iv);
}

}  // namespace credentials::internal
