// ./.env: where the Python framework keeps its CREDENTIAL_* variables.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace credentials::cli {

// Sets, from the file (KEY=VALUE lines, as python-dotenv reads them: `export`,
// `#` comments, '...' and "..." values), each CREDENTIAL_* variable the
// environment does not set. The master key's two variables
// (CREDENTIAL_MASTER_KEY, CREDENTIAL_MASTER_KEY_FILE) go together, and so do
// the vault location's (CREDENTIAL_VAULT_DIR, CREDENTIAL_VAULT_URL): when the
// environment sets one of a pair, the file sets neither, so the environment
// always wins. Other variables and lines that do not parse are left alone; a
// missing or unreadable file sets nothing. The file is only read, never
// written. Returns the names it set.
std::vector<std::string> load_dotenv(const std::filesystem::path& file);

}  // namespace credentials::cli
