// TempDir: a fresh directory under $TMPDIR, removed with its contents.
#pragma once

#include <filesystem>
#include <string>

namespace credentials::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Reads a whole file as bytes (as a std::string).
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

}  // namespace credentials::testing
