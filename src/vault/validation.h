// Input rules for names, user ids and credential fields. Each check throws
// InvalidArgumentError whose message states the rule (and never a secret).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "credentials/credential.h"

namespace credentials::internal {

constexpr std::size_t kMaxIdentifierLength = 128;
constexpr std::size_t kMaxFieldLength = 1024;
// The Python version set no limit on descriptions; a bound keeps one record
// from growing without end.
constexpr std::size_t kMaxDescriptionLength = 65536;
constexpr std::size_t kMaxPasswordLength = 4096;

// Unicode general category Cf (format characters: invisible, some reorder
// what a terminal shows), as of Unicode 16.0.
[[nodiscard]] bool is_format_character(char32_t c);
// Category Cc (C0, DEL, C1) or Cf.
[[nodiscard]] bool is_control_or_format(char32_t c);

// The rule for user ids and credential names (and unknown db types): 1 to
// 128 bytes of well-formed UTF-8 with no control or format character
// (Unicode categories Cc, Cf); spaces and any letter are fine. Stored and
// compared as the bytes given: no Unicode normalisation.
[[nodiscard]] bool is_valid_identifier(std::string_view text);
// Why `text` breaks that rule ("it is empty", "it holds the control
// character U+001B", ...), or nullopt when it does not.
[[nodiscard]] std::optional<std::string> identifier_problem(std::string_view text);
// Well-formed UTF-8 (RFC 3629).
[[nodiscard]] bool is_utf8(std::string_view text);
// The longest start of the UTF-8 `text` of at most `max` bytes that does not
// cut a character.
[[nodiscard]] std::string_view utf8_prefix(std::string_view text, std::size_t max);
// `what` names the argument in the message, e.g. "credential name".
void validate_identifier(std::string_view text, std::string_view what);
// Validates and normalises (default port, lowercase known db type) in place.
void validate_fields(CredentialInfo& info, const SecretString& password);

}  // namespace credentials::internal
