// The plaintext layout of one credential version (docs/FORMAT.md, "Record
// plaintext"). Encoding writes straight into a SecretBytes so the password
// never passes through an unwiped std::string; decoding is strict (every
// length checked) because it runs on bytes that came from disk.
#pragma once

#include "credentials/credential.h"
#include "crypto/primitives.h"

namespace credentials::internal {

[[nodiscard]] SecretBytes encode_record(const Credential& credential);
// Throws DecryptionFailedError("... malformed ...") on any inconsistency.
[[nodiscard]] Credential decode_record(ByteView plaintext);

}  // namespace credentials::internal
