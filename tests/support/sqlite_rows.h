// sqlite_rows: a statement run on a vault's SQLite file directly, as someone
// with write access to the file but not the key would (tamper tests).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace credentials::testing {

// The first column of every row `statement` returns ("<null>" for NULL).
// Throws std::runtime_error, with SQLite's message, when it fails.
std::vector<std::string> sqlite_rows(const std::filesystem::path& file, const std::string& statement);

}  // namespace credentials::testing
