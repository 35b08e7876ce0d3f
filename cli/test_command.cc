// `test`: really connect with a credential (credentials::test_credential,
// which records a `test` audit event) and report the server version and the
// round trip of one trivial query.

#include <chrono>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "credentials/database.h"
#include "exit_codes.h"
#include "output.h"

namespace credentials::cli {
namespace {

void run_test(const CommonOptions& common) {
  Vault vault = open_vault(common, IfNoVault::kFail);
  // Fetched for the messages below (and to resolve --owner); the test then
  // takes it by id, which also reaches another owner's for an administrator.
  const Credential credential = fetch_credential(vault, common);
  ConnectionTestResult result;
  try {
    result = test_credential(vault, user_context(common), credential.credential_id);
  } catch (const DatabaseError& error) {
    // The driver's text as it is: it never holds the password, and masking
    // the password in it would show where the password matches the host,
    // the user or any word (credentials/database.h).
    throw CommandError(
        ExitCode::kCouldNotConnect,
        fmt::format("could not connect with {} ({}): {}", display_name(credential),
                    describe_target(credential), error.what()),
        "check the host, port and the credential's password (rotate it with `update`)");
  } catch (const InvalidArgumentError& error) {
    // A db type this build cannot connect to: that is not the database's fault.
    throw CommandError(ExitCode::kFailure, error.what());
  }
  const double round_trip_ms = std::chrono::duration<double, std::milli>(result.round_trip).count();
  if (common.json) {
    print_json({{"id", credential.credential_id},
                {"owner", credential.owner},
                {"name", credential.name},
                {"db_type", credential.db_type},
                {"host", credential.host},
                {"port", credential.port},
                {"database", credential.database},
                {"connected", true},
                {"server_version", result.server_version},
                {"round_trip_ms", round_trip_ms}});
    return;
  }
  fmt::print("Connected with {} ({}).\n", display_name(credential), describe_target(credential));
  fmt::print("server:     {}\n", printable(result.server_version));
  fmt::print("round trip: {:.3f} ms\n", round_trip_ms);
}

}  // namespace

Command add_test_command(CLI::App& root, CommonOptions& common) {
  CLI::App* command = root.add_subcommand(
      "test", "Connect with a credential, run a trivial query, print server version and timing");
  add_version_flag(*command);
  add_user_options(*command, common);
  add_name_option(*command, common, /*required=*/true);
  add_owner_option(*command, common);
  add_json_flag(*command, common);
  return {command, [&common] { run_test(common); }};
}

}  // namespace credentials::cli
