#include <algorithm>

#include "credentials/user_context.h"

namespace credentials {

bool UserContext::is_admin() const {
  return std::any_of(roles.begin(), roles.end(),
                     [](const std::string& role) { return role == "admin" || role == "superuser"; });
}

}  // namespace credentials
