#include <sodium.h>

#include <cstring>
#include <utility>

#include "credentials/secret.h"

namespace credentials {

SecretString::SecretString(const char* text) { assign(text, text ? std::strlen(text) : 0); }
SecretString::SecretString(std::string_view text) { assign(text.data(), text.size()); }
SecretString::SecretString(const std::string& text) { assign(text.data(), text.size()); }
SecretString::SecretString(std::string&& text) {
  assign(text.data(), text.size());
  sodium_memzero(text.data(), text.size());
  text.clear();
}

SecretString::~SecretString() { clear(); }

SecretString::SecretString(SecretString&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    clear();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

SecretString SecretString::clone() const { return SecretString(reveal()); }

bool SecretString::equals(const SecretString& other) const noexcept {
  return size_ == other.size_ && (size_ == 0 || sodium_memcmp(data_, other.data_, size_) == 0);
}

void SecretString::append(std::string_view text) {
  if (text.empty()) return;
  if (size_ + text.size() > capacity_) {
    // Grow by copying into a new buffer and wiping the old one: realloc could
    // leave the old bytes behind in freed memory.
    std::size_t capacity = std::max(capacity_ * 2, size_ + text.size());
    char* grown = new char[capacity];
    if (size_) std::memcpy(grown, data_, size_);
    if (data_) {
      sodium_memzero(data_, capacity_);
      delete[] data_;
    }
    data_ = grown;
    capacity_ = capacity;
  }
  std::memcpy(data_ + size_, text.data(), text.size());
  size_ += text.size();
}

void SecretString::clear() noexcept {
  if (data_) {
    sodium_memzero(data_, capacity_);
    delete[] data_;
  }
  data_ = nullptr;
  size_ = capacity_ = 0;
}

void SecretString::assign(const char* text, std::size_t size) {
  clear();
  append(std::string_view(text, size));
}

}  // namespace credentials
