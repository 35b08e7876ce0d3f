// SecretBytes: a fixed-size buffer for key material and plaintext records.
//
// Move-only; wiped with sodium_memzero when destroyed. lock() asks the OS to
// keep the pages out of swap (best effort: mlock may be refused by
// RLIMIT_MEMLOCK, which is not an error). Not thread-safe for mutation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace credentials::internal {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size);
  SecretBytes(std::span<const std::uint8_t> bytes);  // NOLINT: copies
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  [[nodiscard]] SecretBytes clone() const { return SecretBytes(span()); }
  void lock() noexcept;

  [[nodiscard]] std::uint8_t* data() noexcept { return data_; }
  [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<const std::uint8_t> span() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<std::uint8_t> mutable_span() noexcept { return {data_, size_}; }
  [[nodiscard]] std::string_view as_chars() const noexcept {
    return {reinterpret_cast<const char*>(data_), size_};
  }
  // Shrinks the logical size (the tail is wiped).
  void truncate(std::size_t size) noexcept;

 private:
  void release() noexcept;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  bool locked_ = false;
};

}  // namespace credentials::internal
