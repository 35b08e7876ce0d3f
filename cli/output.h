// What the CLI prints: results on stdout (a table, a field list, or exactly
// one JSON document with --json), messages and warnings on stderr.
//
// Human-readable output escapes control characters, so that a host or a
// description stored by someone else cannot send escape sequences to the
// terminal of the person who lists it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "credentials/credentials.h"

namespace credentials::cli {

// Shown instead of a password. Always the same length, so it says nothing
// about the password's length.
inline constexpr std::string_view kPasswordMask = "********";

// The credential's fields as list --json / show --json print them: id, owner,
// name, db_type, host, port, database, username, description, ssl_mode,
// connection_timeout, created_at, updated_at (ISO-8601 UTC), version.
[[nodiscard]] nlohmann::ordered_json to_json(const CredentialInfo& info);

// Writes the document and a newline to stdout. Throws CommandError when a
// field is not valid UTF-8 (JSON cannot carry it).
void print_json(const nlohmann::ordered_json& document);

// The document on one line and a newline (JSON lines: `audit --json`).
// Throws CommandError like print_json.
void print_json_line(const nlohmann::ordered_json& document);

// `text` with control characters written as \xNN (newlines too, unless
// `keep_newlines`: multi-line driver messages stay readable).
[[nodiscard]] std::string printable(std::string_view text, bool keep_newlines = false);

// Columns aligned under `headers`, two spaces apart. Cells are printed as
// given: pass them through printable() first.
void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

// "2026-11-28 10:50:41": a timestamp to the second, for tables.
[[nodiscard]] std::string short_timestamp(Timestamp t);

// The table `list` prints; the OWNER column only when `with_owner`.
void print_credential_table(const std::vector<CredentialInfo>& credentials, bool with_owner);

// Every field, one per line; the password as kPasswordMask unless
// `revealed_password` is given.
void print_credential_fields(const CredentialInfo& info,
                             std::optional<std::string_view> revealed_password);

// "owner/name", the way messages refer to a credential.
[[nodiscard]] std::string display_name(const CredentialInfo& info);
// "postgres, dbuser@db.example.com:5432/production" (sqlite: "sqlite, /path").
[[nodiscard]] std::string describe_target(const CredentialInfo& info);

// "credential_manager: warning: ..." on stderr.
void warn(std::string_view message);
// An informational line on stderr (never on stdout, which --json keeps clean).
void note(std::string_view message);

}  // namespace credentials::cli
