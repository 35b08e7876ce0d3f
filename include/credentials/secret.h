// SecretString: the only type in which the library hands out a secret.
//
// Move-only, wiped (OPENSSL_cleanse) when destroyed or overwritten, never
// implicitly converted to std::string and with no operator<<, so a secret
// cannot reach a log by accident. Reading it takes an explicit, greppable
// call: reveal(). Not thread-safe for concurrent mutation, like std::string.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace credentials {

class SecretString {
 public:
  SecretString() = default;
  // Implicit on purpose: `.password = "secret123"` reads like the Python
  // keyword argument. Copies the characters; the caller's copy is theirs.
  SecretString(const char* text);              // NOLINT(google-explicit-constructor)
  SecretString(std::string_view text);         // NOLINT(google-explicit-constructor)
  SecretString(const std::string& text);       // NOLINT(google-explicit-constructor)
  // Takes the characters and wipes the source string.
  SecretString(std::string&& text);            // NOLINT(google-explicit-constructor)
  ~SecretString();

  SecretString(SecretString&& other) noexcept;
  SecretString& operator=(SecretString&& other) noexcept;
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;

  // An explicit copy, for the rare place that needs two.
  [[nodiscard]] SecretString clone() const;

  // WARNING: the view is valid while this object lives and is unchanged; do
  // not copy it into a std::string that outlives the call that needs it.
  [[nodiscard]] std::string_view reveal() const noexcept {
    return {data_, size_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  // Constant-time comparison of contents (length is not hidden).
  [[nodiscard]] bool equals(const SecretString& other) const noexcept;

  void append(std::string_view text);
  void clear() noexcept;

 private:
  void assign(const char* text, std::size_t size);
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace credentials
