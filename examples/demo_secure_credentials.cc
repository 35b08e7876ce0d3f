// demo_secure_credentials: the complete walkthrough the Python README promised,
// on an embedded vault and an embedded SQLite database in a temporary
// directory. Every step checks its outcome; the program exits non-zero if any
// step does not behave as described.
//
//   demo_secure_credentials [--keep]    (--keep: leave the temporary directory)
#include <fmt/format.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "credentials/credentials.h"
#include "credentials/skills.h"

namespace fs = std::filesystem;
using namespace credentials;

namespace {

int failures = 0;

void step(const std::string& title) { fmt::print("\n== {}\n", title); }

void check(bool ok, const std::string& what) {
  fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

// The application's own database: what skills query on a user's behalf.
void create_application_database(const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_exec(db,
               "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, "
               "created_at TEXT, status TEXT);"
               "INSERT INTO users VALUES (1, 'ada@example.com', 'Ada', '2026-01-02T03:04:05Z', 'active'),"
               "(2, 'grace@example.com', 'Grace', '2026-02-03T04:05:06Z', 'active'),"
               "(3, 'linus@example.com', 'Linus', '2026-03-04T05:06:07Z', 'suspended');",
               nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

void write_skill(const fs::path& skills_dir) {
  fs::create_directories(skills_dir / "UserFetcher");
  std::ofstream(skills_dir / "UserFetcher" / "skill.md") << R"(---
name: UserFetcher
description: Fetch a user profile from the application database
requires:
  - user_id
produces:
  - user_profile
executor: action
action:
  type: data_query
  source: sqlite
  query: "SELECT id, email, name, created_at, status FROM users WHERE id = {user_id}"
  credential_ref: "app_db"   # a name in the caller's own namespace: no secret here
  timeout: 10.0
---
# UserFetcher

Reads one row of `users`. `{user_id}` becomes a bound parameter.
)";
}

}  // namespace

int main(int argc, char** argv) {
  const bool keep = argc > 1 && std::string(argv[1]) == "--keep";
  std::string pattern = (fs::temp_directory_path() / "credentials-demo-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    std::cerr << "cannot create a temporary directory\n";
    return 1;
  }
  const fs::path work = pattern;

  try {
    step("1. A master key (credential_manager keygen makes one; keep it in a secret manager)");
    const SecretString master_key = generate_master_key();
    check(master_key.size() == 44, "44-character URL-safe base64 key, the Fernet key format");

    step("2. Open an embedded vault");
    Vault vault = Vault::open({.directory = work / ".credentials", .master_key = master_key.clone()});
    check(fs::exists(work / ".credentials" / "vault.db"), fmt::format("vault at {}", (work / ".credentials").string()));

    step("3. Two users store their own credentials");
    const UserContext alice{"alice", "alice@example.com", {"user"}};
    const UserContext bob{"bob", "bob@example.com", {"user"}};
    const UserContext admin{"ops", "ops@example.com", {"admin"}};
    create_application_database(work / "app.db");
    const std::string alice_id = vault.store_credential(
        alice, {.name = "app_db", .db_type = "sqlite", .database = (work / "app.db").string(),
                .password = "alice-s3cret/@:#%", .description = "Application database"});
    vault.store_credential(bob, {.name = "app_db", .db_type = "postgres", .host = "db.example.com",
                                 .database = "bobdb", .username = "bob", .password = "b0b's \"pw\""});
    check(!alice_id.empty(), fmt::format("alice stored app_db as {}", alice_id));
    for (const auto& info : vault.list_credentials(admin)) {
      fmt::print("  {}/{}: {} {}:{}/{}\n", info.owner, info.name, info.db_type, info.host, info.port,
                  info.database);
    }
    check(vault.list_credentials(admin).size() == 2, "an administrator lists every user's credentials");
    check(vault.list_credentials(alice).size() == 1, "alice lists only her own");

    step("4. User isolation");
    try {
      (void)vault.get_credential(bob, alice_id);
      check(false, "bob must not read alice's credential");
    } catch (const UnauthorizedError& e) {
      check(true, fmt::format("bob is refused alice's credential: {}", e.what()));
    }
    check(vault.get_credential(bob, "app_db").owner == "bob", "the same name in bob's namespace is bob's own");

    step("5. Connection strings are percent-encoded");
    const Credential bobs = vault.get_credential(bob, "app_db");
    const SecretString url = build_connection_string(bobs);
    check(url.reveal().find("b0b%27s%20%22pw%22") != std::string_view::npos,
          "the password survives as %-escapes (printed here only for the demo)");

    step("6. Run a skill for alice: the skill names the credential, never the secret");
    write_skill(work / "skills");
    SkillRunner runner = SkillRunner::open(vault, {.skills_dir = work / "skills"});
    const auto result = runner.execute("UserFetcher", {{"user_id", 1}}, alice);
    fmt::print("  {}\n", result.dump());
    check(result.value("row_count", 0) == 1 && result["query_result"][0]["name"] == "Ada",
          "one row, typed JSON");
    const auto injected = runner.execute("UserFetcher", {{"user_id", "1 OR 1=1"}}, alice);
    check(injected.value("row_count", -1) == 0, "an injection attempt is a bound value: no rows");
    try {
      (void)runner.execute("UserFetcher", {{"user_id", 1}}, UserContext{"mallory", "", {"user"}});
      check(false, "a user without the credential must be refused");
    } catch (const CredentialNotFoundError&) {
      check(true, "mallory has no app_db: the skill does not run");
    }

    step("7. Rotate alice's password; the next execution uses the new version");
    const auto version = vault.update_password(alice, "app_db", "rotated-pw");
    check(version == 2, "update_password made version 2");
    check(runner.execute("UserFetcher", {{"user_id", 2}}, alice).value("row_count", 0) == 1,
          "the skill runs with the rotated credential, no restart");
    check(vault.history(alice, "app_db").size() == 2, "both versions are kept for rollback");

    step("8. The audit trail");
    for (const auto& event : vault.audit_events(alice, {})) {
      fmt::print("  #{} {} {} {}/{} {}{}\n", event.seq, format_timestamp(event.time), event.actor,
                 event.owner, event.name, event.action + ":" + event.outcome,
                 event.skill.empty() ? "" : " skill=" + event.skill);
    }
    const auto verification = vault.verify_audit();
    check(verification.ok, fmt::format("the chain of {} events verifies", verification.events));
    check(vault.verify().ok(), "every record decrypts under its key and place");

    step("9. A wrong master key opens nothing and changes nothing");
    try {
      (void)Vault::open({.directory = work / ".credentials", .master_key = generate_master_key()});
      check(false, "a wrong key must fail");
    } catch (const DecryptionFailedError&) {
      check(true, "DecryptionFailedError");
    }
  } catch (const Error& e) {
    fmt::print(stderr, "demo failed: {}\n", e.what());
    ++failures;
  }

  if (!keep) fs::remove_all(work);
  fmt::print("\n{}\n", failures == 0 ? "All steps behaved as described." : fmt::format("{} step(s) FAILED", failures));
  return failures == 0 ? 0 : 1;
}
