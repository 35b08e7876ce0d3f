// Checks on how the master key and the vault are kept, for the person at the
// keyboard: the mistakes that silently weaken a vault or lock its owner out
// later. Warnings go to stderr and do not stop the command; the refusals
// throw CommandError.
//
// (The library itself refuses what is unsafe in every program: a key file
// longer than 4 KiB or that is a directory (read_master_key_file), a new
// vault under a passphrase shorter than 12 characters, a vault directory
// reached through a symbolic link.)
#pragma once

#include <string_view>

#include "credentials/credentials.h"

namespace credentials::cli {

// The master key as master_key_from_environment reads it, checked by
// check_master_key.
[[nodiscard]] SecretString master_key();

// Once per process, for the key from CREDENTIAL_MASTER_KEY or the file named
// by CREDENTIAL_MASTER_KEY_FILE: warns when the file can be read or written
// by group or others (as ssh does for a private key), and when the key
// looks like a generated key with a character missing or extra
// (warn_if_mistyped).
void check_master_key(const SecretString& key);

// A key that will protect the vault from now on (rotate-master-key), from
// `source`: refused (ExitCode::kUsage) when it is a passphrase shorter than
// 12 characters; warned about when it looks mistyped.
// `key` without its trailing whitespace (the library trims it too).
void check_new_master_key(std::string_view key, std::string_view source);

// Warns when `key` (from `source`) is 43 or 45 characters of base64: almost
// a generated key (44), so it is taken as a passphrase, and a vault it
// creates or opens will not open with the generated key.
void warn_if_mistyped(std::string_view key, std::string_view source);

// Warns when the file named by `source` can be read or written by group or
// others, saying how to fix it. Pipes (<(pass show key)) are not checked.
void warn_if_key_file_is_open(const std::filesystem::path& path, std::string_view source);

// Once per process: warns when the embedded vault's directory, or a file or
// directory in it, can be read or written by group or others (the library
// makes them 0700 / 0600; a copy or a chmod may have opened them).
void check_vault_permissions(const VaultOptions& options);

}  // namespace credentials::cli
