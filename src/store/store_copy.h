// copy_store: a verbatim copy of one vault's rows into another record store
// (PostgreSQL backups as SQLite files, `migrate-store` in both directions).
// The bytes are copied as they are: the same vault id, wrapped keys, blind
// indexes, sealed records and audit chain, so the copy opens with the same
// master key and verifies.
#pragma once

#include "store/record_store.h"

namespace credentials::internal {

// Copies every row of `from` into `to`, reading `from` in one read
// transaction (a consistent snapshot) and writing `to` in one write
// transaction (all or nothing). Creates `to`'s schema. Throws
// AlreadyExistsError when `to` already holds a vault, DatabaseError when the
// source is inconsistent (a version without a credential row, a credential
// without an id; `credential_manager verify` names them) or a write fails.
void copy_store(RecordStore& from, RecordStore& to);

}  // namespace credentials::internal
