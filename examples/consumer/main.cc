// Stores and reads back one credential: proof that the installed headers and
// library are usable on their own.
#include <credentials/credentials.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer VAULT_DIR\n");
    return 2;
  }
  using namespace credentials;
  Vault vault = Vault::open({.directory = argv[1], .master_key = generate_master_key()});
  const UserContext user{.user_id = "alice", .username = "alice", .roles = {"user"}};
  vault.store_credential(user, {.name = "my_db", .db_type = "postgres", .host = "db.example.com",
                                .port = 5432, .database = "mydb", .username = "dbuser",
                                .password = "secret123", .description = "Production database"});
  const Credential c = vault.get_credential(user, "my_db");
  std::puts(c.password.reveal() == "secret123" ? "ok" : "mismatch");
  return c.password.reveal() == "secret123" ? 0 : 1;
}
