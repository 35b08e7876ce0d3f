// What the CLI prints: results on stdout (a table, a field list, or exactly
// one JSON document with --json), messages and warnings on stderr.
//
// Human-readable output escapes control and format characters, so that a
// host or a description stored by someone else, or a database server's
// message, cannot send escape sequences to the terminal of the person who
// reads it, forge lines, or reorder what they see.
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

// `text` safe to show on a terminal: control characters (C0, DEL and the C1
// controls U+0080-U+009F, newlines included), Unicode format characters
// (category Cf: U+200B, U+202E, ...) and U+2028/U+2029 are written as
// \x0a, \u202e or \U000e0001, and each byte that is not part of valid UTF-8
// as \xNN. Everything else is kept. Applying it twice changes nothing more.
// Every text that came from outside (stored fields, a server's or a
// driver's message, a path) goes through it before it is printed, except
// with --json (JSON escapes what it must) and a password --reveal prints.
[[nodiscard]] std::string printable(std::string_view text);

// Columns aligned under `headers`, two spaces apart; every cell through
// printable().
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

// "credential_manager: warning: ..." on stderr, through printable().
void warn(std::string_view message);
// An informational line on stderr (never on stdout, which --json keeps clean),
// as given: the tool's own words only.
void note(std::string_view message);

}  // namespace credentials::cli
