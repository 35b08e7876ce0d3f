// `audit`, `audit verify` and `audit head`: reading the tamper-evident audit
// trail, checking its chain, and printing a checkpoint of it.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "exit_codes.h"
#include "output.h"

namespace credentials::cli {
namespace {

struct AuditOptions {
  std::string name;
  std::string action;
  std::string since;
  std::size_t limit = 1000;
  std::vector<std::string> checkpoints;
  CLI::App* verify = nullptr;
  CLI::App* head = nullptr;
};

// Accepts what parse_timestamp accepts, and a bare date (midnight UTC).
Timestamp parse_since(const std::string& text) {
  try {
    if (text.size() == 10) return parse_timestamp(text + "T00:00:00Z");
    return parse_timestamp(text);
  } catch (const InvalidArgumentError&) {
    throw CommandError(ExitCode::kUsage,
                       fmt::format("--since {}: not an ISO-8601 UTC time", printable(text)),
                       "write e.g. 2026-11-28, 2026-11-28T10:00:00Z or 2026-11-28T10:00:00.5Z");
  }
}

nlohmann::ordered_json event_json(const AuditEvent& event) {
  return nlohmann::ordered_json{
      {"seq", event.seq > 0 ? nlohmann::ordered_json(event.seq) : nlohmann::ordered_json(nullptr)},
      {"time", format_timestamp(event.time)},
      {"actor", event.actor},
      {"roles", event.roles},
      {"action", event.action},
      {"owner", event.owner},
      {"name", event.name},
      {"outcome", event.outcome},
      {"error", event.error},
      {"skill", event.skill},
      {"query_sha256", event.query_sha256},
      {"pid", event.pid},
  };
}

std::string or_dash(const std::string& text) { return text.empty() ? "-" : printable(text); }

void run_audit(const CommonOptions& common, const AuditOptions& options) {
  if (common.user.empty()) {
    throw CommandError(ExitCode::kUsage, "audit: --user is required to list events",
                       "pass --user U (your own events) or --user U --roles admin (every "
                       "user's); `audit verify` and `audit head` need no --user");
  }
  const UserContext user = user_context(common);
  AuditQuery query;
  if (!common.owner.empty()) query.owner = common.owner;
  if (!options.name.empty()) query.name = options.name;
  if (!options.action.empty()) query.action = options.action;
  if (!options.since.empty()) query.since = parse_since(options.since);
  query.limit = options.limit;
  Vault vault = open_vault(common, IfNoVault::kFail);
  const std::vector<AuditEvent> events = vault.audit_events(user, query);
  if (common.json) {
    for (const AuditEvent& event : events) print_json_line(event_json(event));
    return;
  }
  if (events.empty()) {
    fmt::print("No audit events match.\n");
    return;
  }
  std::vector<std::vector<std::string>> rows;
  rows.reserve(events.size());
  for (const AuditEvent& event : events) {
    std::string actor = printable(event.actor);
    if (!event.roles.empty()) {
      actor += " (";
      for (std::size_t i = 0; i < event.roles.size(); ++i) {
        actor += (i ? "," : "") + printable(event.roles[i]);
      }
      actor += ")";
    }
    std::string action = printable(event.action);
    if (!event.skill.empty()) action += " " + printable(event.skill);
    rows.push_back({event.seq > 0 ? std::to_string(event.seq) : "-", short_timestamp(event.time),
                    actor, action, or_dash(event.owner), or_dash(event.name),
                    printable(event.outcome), or_dash(event.error)});
  }
  print_table({"SEQ", "TIME (UTC)", "ACTOR", "ACTION", "OWNER", "NAME", "OUTCOME", "ERROR"}, rows);
}

void reject_user(const CommonOptions& common, const char* verb) {
  if (!common.user.empty() || !common.owner.empty()) {
    throw CommandError(ExitCode::kUsage,
                       fmt::format("audit {} checks the whole chain and takes no --user or --owner",
                                   verb),
                       fmt::format("run: credential_manager audit {}", verb));
  }
}

void run_audit_verify(const CommonOptions& common, const std::vector<std::string>& checkpoints) {
  reject_user(common, "verify");
  Vault vault = open_vault(common, IfNoVault::kFail);
  const AuditVerification result = vault.verify_audit(checkpoints);
  if (common.json) {
    print_json({{"ok", result.ok},
                {"events", result.events},
                {"first_bad_seq", result.first_bad_seq},
                {"problem", result.problem}});
  } else if (result.ok && checkpoints.empty()) {
    fmt::print("Audit chain verified: {} events, no tampering found.\n", result.events);
  } else if (result.ok) {
    fmt::print(
        "Audit chain verified: {} events, no tampering found; it holds the {} checkpoint{} "
        "given.\n",
        result.events, checkpoints.size(), checkpoints.size() == 1 ? "" : "s");
  }
  if (!result.ok) {
    throw CommandError(
        ExitCode::kDecryptionFailed,
        fmt::format("the audit trail does not verify at event {}: {} ({} events checked)",
                    result.first_bad_seq, printable(result.problem), result.events),
        checkpoints.empty()
            ? "the audit data was altered after it was written: restore the vault from a backup "
              "and compare with an `audit head` checkpoint kept off this machine"
            : "the audit data was altered, or the vault was rolled back or replaced: restore it "
              "from a backup that holds your latest checkpoint");
  }
}

void run_audit_head(const CommonOptions& common) {
  reject_user(common, "head");
  Vault vault = open_vault(common, IfNoVault::kFail);
  const AuditHead head = vault.audit_head();
  if (common.json) {
    print_json({{"seq", head.seq},
                {"mac", head.mac_hex},
                {"vault_id", head.vault_id_hex},
                {"checkpoint", head.checkpoint()}});
    return;
  }
  fmt::print("{}\n", head.checkpoint());
}

}  // namespace

Command add_audit_command(CLI::App& root, CommonOptions& common) {
  auto options = std::make_shared<AuditOptions>();
  CLI::App* command = root.add_subcommand(
      "audit",
      "Show the audit trail (your events; every user's for --roles admin); "
      "`audit verify` checks the chain, `audit head` prints a checkpoint");
  command->require_subcommand(0, 1);
  add_version_flag(*command);
  command->add_option("-u,--user", common.user,
                      "The user asking (required to list events); sees events about their own "
                      "credentials");
  command
      ->add_option("--roles", common.roles,
                   "Comma-separated roles; admin or superuser see every user's events")
      ->delimiter(',')
      ->default_str("user");
  add_vault_location_options(*command, common);
  command->add_option("--owner", common.owner,
                      "Only events about this user's credentials (needs --roles admin)");
  command->add_option("-n,--name", options->name, "Only events about this credential name or id");
  command->add_option("--action", options->action,
                      "Only this action (store, get, list, update, delete, test, skill, ...)");
  command->add_option("--since", options->since,
                      "Only events at or after this ISO-8601 UTC time (2026-11-28 or "
                      "2026-11-28T10:00:00Z)");
  command->add_option("--limit", options->limit, "At most this many events, the newest (default 1000)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  command->add_flag("--json", common.json,
                    "Print JSON lines: one JSON object per event, one per line, on stdout");

  options->verify = command->add_subcommand(
      "verify", "Check the whole audit chain (exit 5 and the first bad event if broken)");
  add_version_flag(*options->verify);
  add_vault_location_options(*options->verify, common);
  add_json_flag(*options->verify, common);
  options->verify->add_option(
      "--checkpoint", options->checkpoints,
      "A checkpoint `audit head` printed earlier (repeatable): exit 5 unless the chain still holds "
      "it (a rolled-back vault, or another vault's checkpoint)");

  options->head = command->add_subcommand(
      "head",
      "Print a checkpoint of the chain (vault id, last sequence number, MAC) to keep off this "
      "machine; check it later with `audit verify --checkpoint`");
  add_version_flag(*options->head);
  add_vault_location_options(*options->head, common);
  add_json_flag(*options->head, common);

  return {command, [options, &common] {
            if (options->verify->parsed()) {
              run_audit_verify(common, options->checkpoints);
            } else if (options->head->parsed()) {
              run_audit_head(common);
            } else {
              run_audit(common, *options);
            }
          }};
}

}  // namespace credentials::cli
