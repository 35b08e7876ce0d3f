#include "support/sqlite_rows.h"

#include <sqlite3.h>

#include <stdexcept>

namespace credentials::testing {

std::vector<std::string> sqlite_rows(const std::filesystem::path& file, const std::string& statement) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("sql: cannot open " + file.string() + ": " + message);
  }
  sqlite3_busy_timeout(db, 10000);
  std::vector<std::string> rows;
  char* error = nullptr;
  const int rc = sqlite3_exec(
      db, statement.c_str(),
      [](void* out, int, char** values, char**) {
        static_cast<std::vector<std::string>*>(out)->emplace_back(values[0] ? values[0] : "<null>");
        return 0;
      },
      &rows, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("sql: " + message + " in " + statement);
  return rows;
}

}  // namespace credentials::testing
