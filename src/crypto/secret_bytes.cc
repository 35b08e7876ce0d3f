#include "crypto/secret_bytes.h"

#include <sodium.h>
#include <sys/mman.h>

#include <cstring>
#include <utility>

namespace credentials::internal {

SecretBytes::SecretBytes(std::size_t size)
    : data_(size ? new std::uint8_t[size]() : nullptr), size_(size), capacity_(size) {}

SecretBytes::SecretBytes(std::span<const std::uint8_t> bytes) : SecretBytes(bytes.size()) {
  if (!bytes.empty()) std::memcpy(data_, bytes.data(), bytes.size());
}

SecretBytes::~SecretBytes() { release(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      locked_(std::exchange(other.locked_, false)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

void SecretBytes::lock() noexcept {
  if (data_ && !locked_) locked_ = ::mlock(data_, capacity_) == 0;
}

void SecretBytes::truncate(std::size_t size) noexcept {
  if (size >= size_) return;
  sodium_memzero(data_ + size, size_ - size);
  size_ = size;
}

void SecretBytes::release() noexcept {
  if (!data_) return;
  sodium_memzero(data_, capacity_);
  if (locked_) ::munlock(data_, capacity_);
  delete[] data_;
  data_ = nullptr;
  size_ = capacity_ = 0;
  locked_ = false;
}

}  // namespace credentials::internal
