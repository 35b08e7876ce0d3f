// UserContext: who is asking. Built by the embedding application AFTER it has
// authenticated the user; the library trusts it as given (docs/THREAT_MODEL.md).
#pragma once

#include <string>
#include <vector>

namespace credentials {

struct UserContext {
  std::string user_id;
  std::string username;
  std::vector<std::string> roles;

  // `admin` and `superuser` are administrators: they reach every namespace.
  [[nodiscard]] bool is_admin() const;
};

}  // namespace credentials
