// The audit trail: one event per vault operation, allowed or denied, sealed
// and chained so that editing, deleting, inserting, reordering or truncating
// events is detected (docs/FORMAT.md, "Audit"). Events never hold a password,
// a connection string, an input value or a query parameter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "credentials/credential.h"

namespace credentials {

struct AuditEvent {
  // The event's number in the audit chain, which holds the events of
  // writes; 0 for the event of a read or a failure, which its handle
  // recorded in a segment of its own (docs/FORMAT.md, "Audit segments").
  std::int64_t seq = 0;
  Timestamp time{};
  std::string actor;               // user id of the caller
  std::vector<std::string> roles;  // the caller's roles
  std::string action;              // store, get, list, update, update_password, delete, skill, ...
  std::string owner;               // namespace acted on ("" for vault-wide actions)
  std::string name;                // credential name or id as given
  std::string outcome;             // ok, denied, not_found, error
  std::string error;               // error kind on failure, e.g. UnauthorizedError
  std::string skill;               // skill executions: the skill name
  std::string query_sha256;        // skill executions: SHA-256 of the query text
  std::int64_t pid = 0;            // process that performed the action
};

struct AuditQuery {
  std::optional<std::string> owner{};   // only events about this namespace
  std::optional<std::string> name{};    // only events about this credential
  std::optional<std::string> action{};  // only this action
  std::optional<Timestamp> since{};     // only events at or after this time
  std::size_t limit = 1000;           // the newest `limit` matching events
};

struct AuditVerification {
  bool ok = true;
  std::int64_t events = 0;         // events checked
  std::int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;             // what is wrong at first_bad_seq
};

// The chain's head as a checkpoint: keep checkpoints off the machine
// (docs/THREAT_MODEL.md, "Checkpoints"). Vault::verify_audit(checkpoints)
// tells whether the chain still holds one: a chain that does not was
// rolled back, or is another vault's.
struct AuditHead {
  std::int64_t seq = 0;
  std::string mac_hex;       // the chain's MAC at `seq`
  std::string vault_id_hex;  // the vault the chain belongs to
  // One line of text: "credentials-checkpoint:1:<vault id>:<seq>:<mac>".
  [[nodiscard]] std::string checkpoint() const;
};

}  // namespace credentials
