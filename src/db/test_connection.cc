// test_connection: the CLI `test` verb. Unlike the Python version, it really
// connects and runs a query.
#include <chrono>

#include "credentials/database.h"
#include "db/connection.h"

namespace credentials {

ConnectionTestResult test_connection(const Credential& credential,
                                     const ConnectionOverrides& overrides) {
  const internal::ConnectionParams params = internal::connection_params(credential, overrides);
  const auto connection = internal::connect(params);
  const auto start = std::chrono::steady_clock::now();
  std::string version = connection->server_version();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return {std::move(version), std::chrono::duration_cast<std::chrono::microseconds>(elapsed)};
}

}  // namespace credentials
