"""The Python system's walkthrough, written as its framework's users write code
against services.credentials: get_vault(), keyword arguments,
`await execute_skill(skill_name=..., inputs={..., "user_context": user})`.

The one change for secure_credentials is services/credentials/__init__.py,
which is the single line `from secure_credentials import *`.

The environment names the vault (CREDENTIAL_VAULT_DIR, CREDENTIAL_MASTER_KEY),
the skills (CREDENTIAL_SKILLS_DIR: the repository's skills/) and two
application databases: alice's on PostgreSQL (DEMO_PG_*), bob's in SQLite
(DEMO_SQLITE_PATH). Exits 1 at the first step that misbehaves.
"""

import asyncio
import os
import sys
from urllib.parse import unquote, urlsplit

from services.credentials import (AuthContext, CredentialNotFoundError, UnauthorizedAccessError,
                                  UserContext, execute_skill, get_system_user, get_vault)


def check(ok, what):
    print(("  [ok] " if ok else "  [FAILED] ") + what)
    if not ok:
        sys.exit(1)


def raises(error, call):
    try:
        call()
    except error:
        return True
    return False


def main():
    vault = get_vault()
    alice = UserContext(user_id="alice", username="alice@example.com", roles=["user"])
    bob = UserContext(user_id="bob", username="bob@example.com", roles=["user"])
    alice_password = os.environ["DEMO_PG_PASSWORD"]

    print("== 1. Store a credential for each user")
    alice_id = vault.store_credential(
        user_context=alice, name="my_postgres_main", db_type="postgres",
        host=os.environ["DEMO_PG_HOST"], port=int(os.environ["DEMO_PG_PORT"]),
        database=os.environ["DEMO_PG_DATABASE"], username=os.environ["DEMO_PG_USER"],
        password=alice_password, description="Alice's application database")
    bob_id = vault.store_credential(
        user_context=bob, name="my_postgres_main", db_type="sqlite", host="",
        database=os.environ["DEMO_SQLITE_PATH"], username="", password="unused-by-sqlite",
        description="Bob's application database")
    check(alice_id != bob_id, f"two credentials named my_postgres_main: {alice_id}, {bob_id}")

    print("== 2. Isolation, both ways")
    check(raises(UnauthorizedAccessError, lambda: vault.get_credential(bob, alice_id)),
          "bob cannot read alice's credential by id")
    check(raises(UnauthorizedAccessError, lambda: vault.get_credential(alice, bob_id)),
          "alice cannot read bob's credential by id")
    check(vault.get_credential(alice, "my_postgres_main").credential_id == alice_id,
          "alice's name resolves in alice's namespace")
    check(vault.get_credential(bob, "my_postgres_main").credential_id == bob_id,
          "bob's name resolves in bob's namespace")

    print("== 3. List")
    credentials = vault.list_credentials(alice)
    for cred in credentials:
        print(f"    {cred.name}: {cred.host}:{cred.port}/{cred.database}")
    check([c.credential_id for c in credentials] == [alice_id], "alice lists only her own")
    check(len(vault.list_credentials(get_system_user())) == 2, "the system user lists both")

    print("== 4. Connection string")
    credential = vault.get_credential(alice, "my_postgres_main")
    connection_string = vault.build_connection_string(credential)
    url = urlsplit(connection_string)
    check(url.scheme == "postgresql" and unquote(url.password) == alice_password,
          "a postgresql:// URL carrying the password")
    masked = connection_string.replace(url.password, "****")
    print(f"    {masked}")
    check(alice_password not in masked and url.password not in masked, "the password is masked")
    check(vault.get_decrypted_password(credential) == alice_password, "get_decrypted_password")

    print("== 5. Execute a skill for each user")
    result = asyncio.run(execute_skill(
        skill_name="DatabaseUserFetcher",
        inputs={"user_id": 1, "user_context": alice}))
    check(result["row_count"] == 1 and result["query_result"][0]["email"] == "ada@postgres.example",
          f"alice's row comes from her PostgreSQL database: {result['query_result'][0]['email']}")
    result = asyncio.run(execute_skill(
        skill_name="DatabaseUserFetcher",
        inputs={"user_id": 1, "user_context": bob}))
    check(result["row_count"] == 1 and result["query_result"][0]["email"] == "bob@sqlite.example",
          f"bob's row comes from his SQLite database: {result['query_result'][0]['email']}")
    AuthContext.initialize(alice)
    result = asyncio.run(execute_skill(skill_name="DatabaseUserFetcher", inputs={"user_id": 2}))
    check(result["query_result"][0]["email"] == "grace@postgres.example",
          "without user_context, the skill runs as AuthContext's current user")

    print("== 6. Rotate the password")
    vault.update_password(user_context=alice, credential_ref="my_postgres_main",
                          new_password="not-the-database-password")
    check(vault.get_decrypted_password(vault.get_credential(alice, "my_postgres_main")) ==
          "not-the-database-password", "the next get_credential returns the new password")
    try:
        asyncio.run(execute_skill(skill_name="DatabaseUserFetcher",
                                  inputs={"user_id": 1, "user_context": alice}))
        check(False, "the skill connects with the rotated (wrong) password and fails")
    except Exception as error:  # noqa: BLE001 - the framework catches broadly too
        message = str(error)
        check("not-the-database-password" not in message and alice_password not in message,
              f"the skill fails with the rotated password ({type(error).__name__}), "
              "naming neither password")
    vault.update_password(alice, "my_postgres_main", alice_password)
    result = asyncio.run(execute_skill(skill_name="DatabaseUserFetcher",
                                       inputs={"user_id": 1, "user_context": alice}))
    check(result["row_count"] == 1, "rotated back: the next execution connects again")

    print("== 7. Delete")
    vault.delete_credential(bob, "my_postgres_main")
    check(raises(CredentialNotFoundError, lambda: vault.get_credential(bob, "my_postgres_main")),
          "bob's credential is gone")
    check(raises(CredentialNotFoundError, lambda: asyncio.run(execute_skill(
        skill_name="DatabaseUserFetcher", inputs={"user_id": 1, "user_context": bob}))),
        "bob's skill execution now says the credential is not found")
    check(vault.get_credential(alice, "my_postgres_main").credential_id == alice_id,
          "alice's credential is still there")
    print("demo complete")


if __name__ == "__main__":
    main()
