// Connecting to a user's database with a vault credential.
//
// Connections are made from structured parameters (libpq PQconnectdbParams,
// sqlite3_open_v2), never from a URL string, so no password character can
// break them. Error messages never depend on the password: drivers do not put
// it in their text, and nothing is masked (a mask shows where the password
// matches other text). A server that receives the password (PostgreSQL's
// `password` authentication sends it in clear) can send anything back, in an
// error or in a result: use scram-sha-256 and sslmode=verify-full.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "credentials/credential.h"
#include "credentials/user_context.h"

namespace credentials {

struct ConnectionTestResult {
  std::string server_version;            // e.g. "PostgreSQL 15.18", "SQLite 3.40.1"
  std::chrono::microseconds round_trip;  // one trivial query on the open connection
};

// Connects with the credential (sslmode and connect_timeout honoured), runs a
// trivial query and disconnects. Throws DatabaseError when the connection or
// query fails, InvalidArgumentError for a db type that cannot be connected to
// yet (the message says so plainly).
[[nodiscard]] ConnectionTestResult test_connection(const Credential& credential,
                                                   const ConnectionOverrides& overrides = {});

class Vault;

// test_connection with the credential `ref` (a name in the caller's namespace
// or a credential id) taken from the vault, as `user`. Besides the vault's own
// event for reading the credential, records exactly one `test` audit event
// with outcome "ok" or "error" (and the error kind). Throws as
// Vault::get_credential and test_connection, and DatabaseError when the audit
// event cannot be written.
[[nodiscard]] ConnectionTestResult test_credential(Vault& vault, const UserContext& user,
                                                   std::string_view ref,
                                                   const ConnectionOverrides& overrides = {});

}  // namespace credentials
