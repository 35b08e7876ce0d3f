// Input rules for names, user ids and credential fields. Each check throws
// InvalidArgumentError whose message states the rule (and never a secret).
#pragma once

#include <string_view>

#include "credentials/credential.h"

namespace credentials::internal {

constexpr std::size_t kMaxIdentifierLength = 128;
constexpr std::size_t kMaxFieldLength = 1024;
constexpr std::size_t kMaxPasswordLength = 4096;

[[nodiscard]] bool is_valid_identifier(std::string_view text);
// Well-formed UTF-8 (RFC 3629).
[[nodiscard]] bool is_utf8(std::string_view text);
// `what` names the argument in the message, e.g. "credential name".
void validate_identifier(std::string_view text, std::string_view what);
// Validates and normalises (default port, lowercase db type) in place.
void validate_fields(CredentialInfo& info, const SecretString& password);

}  // namespace credentials::internal
