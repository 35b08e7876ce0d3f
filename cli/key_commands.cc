// The key verbs: `rotate-master-key`, `rotate-data-key`, `reencrypt` and
// `keys`. They act on the whole vault (whoever holds the master key runs
// them), so they take no --user; the library records each as an audit event.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "exit_codes.h"
#include "key_checks.h"
#include "output.h"
#include "terminal.h"

namespace credentials::cli {
namespace {

struct RotateMasterKeyOptions {
  std::string new_key_file;
};

std::string_view without_trailing_space(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// Read as CREDENTIAL_MASTER_KEY_FILE is: at most 4 KiB, not a directory.
SecretString read_key_file(const std::string& path) {
  try {
    SecretString key = read_master_key_file(path, "--new-key-file");
    warn_if_key_file_is_open(path, "--new-key-file");
    return key;
  } catch (const MissingKeyError& error) {
    throw CommandError(ExitCode::kUsage, error.what(),
                       "make a key with: credential_manager keygen");
  }
}

// --new-key-file, else CREDENTIAL_MASTER_KEY_NEW, else asked twice on the
// terminal. `source` is set to where it came from, for messages.
SecretString new_master_key(const RotateMasterKeyOptions& options, std::string& source) {
  if (!options.new_key_file.empty()) {
    source = "--new-key-file";
    return read_key_file(options.new_key_file);
  }
  if (const char* key = std::getenv("CREDENTIAL_MASTER_KEY_NEW"); key && *key) {
    source = "CREDENTIAL_MASTER_KEY_NEW";
    return SecretString(key);
  }
  source = "the terminal";
  std::optional<Terminal> terminal = Terminal::open();
  if (!terminal) {
    throw CommandError(ExitCode::kUsage,
                       "no new master key: set CREDENTIAL_MASTER_KEY_NEW or pass --new-key-file "
                       "FILE (there is no terminal to ask on)",
                       "make the new key with: credential_manager keygen");
  }
  SecretString first = terminal->ask_secret("New master key (from `credential_manager keygen`): ");
  SecretString second = terminal->ask_secret("Repeat the new master key: ");
  if (!first.equals(second)) {
    throw CommandError(ExitCode::kUsage, "the two keys typed do not match: nothing was changed");
  }
  return first;
}

void run_rotate_master_key(const CommonOptions& common, const RotateMasterKeyOptions& options) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  std::string source;
  SecretString key = new_master_key(options, source);
  if (without_trailing_space(key.reveal()).empty()) {
    throw CommandError(ExitCode::kUsage, "the new master key is empty: nothing was changed",
                       "make one with: credential_manager keygen");
  }
  check_new_master_key(without_trailing_space(key.reveal()), source);
  const SecretString current = master_key_from_environment();
  if (without_trailing_space(key.reveal()) == without_trailing_space(current.reveal())) {
    throw CommandError(ExitCode::kUsage,
                       "the new master key is the current one: nothing was changed",
                       "make a new one with: credential_manager keygen");
  }
  vault.rotate_master_key(std::move(key));
  if (common.json) {
    print_json({{"rotated", true}});
  } else {
    fmt::print("Master key rotated: the vault's keys are now wrapped by the new key.\n");
  }
  warn(
      "update CREDENTIAL_MASTER_KEY (or the file named by CREDENTIAL_MASTER_KEY_FILE) to the new "
      "key everywhere this vault is used: the old key no longer opens it");
}

void run_rotate_data_key(const CommonOptions& common) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  const std::int64_t key_id = vault.rotate_data_key();
  if (common.json) {
    print_json({{"key_id", key_id}});
    return;
  }
  fmt::print("Added data key {}: new writes use it.\n", key_id);
  note("Existing records stay readable under their old keys; move them with: "
       "credential_manager reencrypt");
}

struct ReencryptOptions {
  std::size_t batch = 500;
};

// "1234/5000 records  850/s  ETA 0:04", redrawn in place on stderr.
class ProgressBar {
 public:
  ProgressBar() : start_(std::chrono::steady_clock::now()) {}
  void draw(const ReencryptProgress& progress) {
    // At most ten redraws a second, but always the first and the last.
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && progress.done < progress.total && now - last_draw_ < std::chrono::milliseconds(100)) {
      return;
    }
    last_draw_ = now;
    const double seconds = elapsed();
    const double rate = seconds > 0 ? static_cast<double>(progress.done) / seconds : 0.0;
    const double fraction =
        progress.total > 0 ? static_cast<double>(progress.done) / static_cast<double>(progress.total)
                           : 1.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string eta = "--:--";
    if (rate > 0 && progress.total >= progress.done) {
      const auto left = static_cast<long>(static_cast<double>(progress.total - progress.done) / rate);
      eta = fmt::format("{}:{:02}", left / 60, left % 60);
    }
    fmt::print(stderr, "\rRe-encrypting [{}{}] {}/{} records  {:.0f}/s  ETA {}\x1b[K",
               std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(kWidth - filled), '.'), progress.done,
               progress.total, rate, eta);
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_) fmt::print(stderr, "\n");
  }
  [[nodiscard]] double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false;
};

void run_reencrypt(const CommonOptions& common, const ReencryptOptions& options) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  ProgressBar bar;
  std::function<void(const ReencryptProgress&)> on_progress;
  if (::isatty(STDERR_FILENO) == 1) {
    on_progress = [&bar](const ReencryptProgress& progress) { bar.draw(progress); };
  }
  ReencryptProgress result;
  try {
    result = vault.reencrypt(on_progress, options.batch);
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  const double seconds = bar.elapsed();
  if (common.json) {
    print_json({{"reencrypted", result.done},
                {"total", result.total},
                {"key_id", result.target_key_id},
                {"seconds", seconds}});
    return;
  }
  fmt::print("Re-encrypted {} records to data key {} in {:.2f} s.\n", result.done,
             result.target_key_id, seconds);
}

void run_keys(const CommonOptions& common) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  const std::vector<KeyInfo> keys = vault.keys();
  if (common.json) {
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const KeyInfo& key : keys) {
      array.push_back({{"key_id", key.key_id},
                       {"purpose", key.purpose},
                       {"created_at", format_timestamp(key.created_at)},
                       {"encryptions", key.encryptions},
                       {"records", key.records},
                       {"current", key.current}});
    }
    print_json(array);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const KeyInfo& key : keys) {
    const bool data = key.purpose == "data";
    rows.push_back({std::to_string(key.key_id), printable(key.purpose),
                    short_timestamp(key.created_at), data ? std::to_string(key.encryptions) : "-",
                    data ? std::to_string(key.records) : "-", key.current ? "current" : ""});
  }
  print_table({"KEY ID", "PURPOSE", "CREATED (UTC)", "ENCRYPTIONS", "RECORDS", ""}, rows);
}

// The options of a vault-wide verb: where the vault is, and --json.
void add_vault_wide_options(CLI::App& command, CommonOptions& common, bool json) {
  add_version_flag(command);
  add_vault_location_options(command, common);
  if (json) add_json_flag(command, common);
}

}  // namespace

Command add_rotate_master_key_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<RotateMasterKeyOptions>();
  CLI::App* command = root.add_subcommand(
      "rotate-master-key",
      "Re-wrap the vault's keys under a new master key (from CREDENTIAL_MASTER_KEY_NEW, "
      "--new-key-file, or asked twice on the terminal)");
  add_vault_wide_options(*command, common, /*json=*/true);
  command->add_option("--new-key-file", options->new_key_file,
                      "A file holding the new key (trailing newline ignored)");
  return {command, [options, &common] { run_rotate_master_key(common, *options); }};
}

Command add_rotate_data_key_command(CLI::App& root, CommonOptions& common) {
  CLI::App* command = root.add_subcommand(
      "rotate-data-key", "Add a new data key for new writes (then run `reencrypt`)");
  add_vault_wide_options(*command, common, /*json=*/true);
  return {command, [&common] { run_rotate_data_key(common); }};
}

Command add_reencrypt_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<ReencryptOptions>();
  CLI::App* command = root.add_subcommand(
      "reencrypt", "Move every stored record to the newest data key, in batches (resumable)");
  add_vault_wide_options(*command, common, /*json=*/true);
  command->add_option("--batch", options->batch, "Records per transaction (default 500)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  return {command, [options, &common] { run_reencrypt(common, *options); }};
}

Command add_keys_command(CLI::App& root, CommonOptions& common) {
  CLI::App* command = root.add_subcommand(
      "keys", "List the vault's keys: id, purpose, creation time, encryptions, records");
  add_vault_wide_options(*command, common, /*json=*/true);
  return {command, [&common] { run_keys(common); }};
}

}  // namespace credentials::cli
