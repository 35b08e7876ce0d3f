#include "key_checks.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <sys/stat.h>

#include "exit_codes.h"
#include "output.h"

namespace credentials::cli {
namespace {

namespace fs = std::filesystem;

// The same rule as the library's for a new vault (embedded_vault.cc).
constexpr std::size_t kMinPassphraseCharacters = 12;

std::size_t characters(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool is_base64_character(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '+' || c == '/' || c == '=';
}

std::string mode_text(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

const char* environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

}  // namespace

SecretString master_key() {
  SecretString key = master_key_from_environment();
  check_master_key(key);
  return key;
}

void check_master_key(const SecretString& key) {
  static bool checked = false;
  if (checked) return;
  checked = true;
  if (environment("CREDENTIAL_MASTER_KEY") != nullptr) {
    warn_if_mistyped(key.reveal(), "CREDENTIAL_MASTER_KEY");
  } else if (const char* path = environment("CREDENTIAL_MASTER_KEY_FILE")) {
    warn_if_key_file_is_open(path, "CREDENTIAL_MASTER_KEY_FILE");
    warn_if_mistyped(key.reveal(), "the file named by CREDENTIAL_MASTER_KEY_FILE");
  }
}

void check_new_master_key(std::string_view key, std::string_view source) {
  if (characters(key) < kMinPassphraseCharacters) {
    throw CommandError(
        ExitCode::kUsage,
        fmt::format("the new master key ({}) is too short: a passphrase needs at least {} "
                    "characters; nothing was changed",
                    source, kMinPassphraseCharacters),
        "make a key with: credential_manager keygen");
  }
  warn_if_mistyped(key, source);
}

void warn_if_mistyped(std::string_view text, std::string_view source) {
  if (text.size() != 43 && text.size() != 45) return;
  if (!std::all_of(text.begin(), text.end(), is_base64_character)) return;
  warn(fmt::format(
      "the master key from {} is {} characters of base64: a key from `credential_manager keygen` "
      "has 44, so this one is used as a passphrase and the generated key will not open a vault "
      "it opens or creates; check for a character lost or added when it was copied",
      source, text.size()));
}

void warn_if_key_file_is_open(const fs::path& path, std::string_view source) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  if ((st.st_mode & 077) == 0) return;
  warn(fmt::format(
      "the master key file {} (named by {}) has mode {}: other users can read or change it; "
      "anyone who reads it opens the vault. Run: chmod 600 {}",
      path.string(), source, mode_text(st.st_mode), path.string()));
}

void check_vault_permissions(const VaultOptions& options) {
  static bool checked = false;
  if (checked || !options.url.empty()) return;
  checked = true;
  const fs::path& directory = options.directory;
  struct stat st {};
  if (::lstat(directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  std::vector<std::string> open;
  if ((st.st_mode & 077) != 0) {
    open.push_back(fmt::format("{} ({})", directory.string(), mode_text(st.st_mode)));
  }
  std::error_code ec;
  // The vault's files: vault.db and its -wal and -shm, segments/ and the
  // files in it. Bounded: a vault directory holds a handful.
  int seen = 0;
  for (auto it = fs::recursive_directory_iterator(directory, ec);
       !ec && it != fs::recursive_directory_iterator() && ++seen <= 1000; it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    if ((st.st_mode & 077) != 0) {
      open.push_back(fmt::format("{} ({})", it->path().string(), mode_text(st.st_mode)));
    }
  }
  if (open.empty()) return;
  constexpr std::size_t kNamed = 4;
  std::string named = fmt::format(
      "{}", fmt::join(open.begin(), open.begin() + std::min(open.size(), kNamed), ", "));
  if (open.size() > kNamed) named += fmt::format(" and {} more", open.size() - kNamed);
  warn(fmt::format(
      "the vault's files can be read or changed by other users: {}. The vault is encrypted, but "
      "a copy can be attacked offline and a change can lock you out. Run: chmod -R go= {}",
      named, directory.string()));
}

}  // namespace credentials::cli
