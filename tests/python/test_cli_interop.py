"""The package and the real credential_manager binary on one vault: a password
rotated by the CLI is seen at the next get_credential of a vault that stayed
open, and errors carry the CLI's messages."""

import pytest

import secure_credentials as sc


def cli_error(done) -> str:
    """The message of the CLI's `credential_manager: error: ...` line."""
    prefix = "credential_manager: error: "
    lines = [line for line in done.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, done.stderr
    return lines[0][len(prefix):]


def test_rotation_by_the_cli_is_seen_at_the_next_get_credential(vault, cli, alice):
    vault.store_credential(alice, "prod_db", "postgres", "db.example.com", "production",
                           "dbuser", "before-rotation")
    held = vault.get_credential(alice, "prod_db")
    assert vault.get_decrypted_password(held) == "before-rotation"
    for round_number in range(1, 4):
        new_password = f"rotated-by-cli-{round_number}"
        done = cli.run("update", "--user", "alice", "--name", "prod_db", "--password-stdin",
                       stdin=new_password + "\n")
        assert done.returncode == 0, done.stderr
        fresh = vault.get_credential(alice, "prod_db")
        assert vault.get_decrypted_password(fresh) == new_password
        assert fresh.version == round_number + 1
        assert new_password in vault.build_connection_string(fresh)
    # A credential object is what was read: the one held from before keeps its password.
    assert vault.get_decrypted_password(held) == "before-rotation"


def test_what_one_side_stores_the_other_sees(vault, cli, alice):
    done = cli.run("add", "--user", "alice", "--name", "from_cli", "--db-type", "postgres",
                   "--host", "h.example.com", "--database", "d", "--username", "u",
                   "--password-stdin", stdin="cli-password\n")
    assert done.returncode == 0, done.stderr
    from_cli = vault.get_credential(alice, "from_cli")
    assert (from_cli.host, vault.get_decrypted_password(from_cli)) == ("h.example.com",
                                                                      "cli-password")
    vault.store_credential(alice, "from_python", "mysql", "m.example.com", "shop", "u", "py-pw")
    done = cli.run("show", "--user", "alice", "--name", "from_python", "--reveal", "--json")
    assert done.returncode == 0, done.stderr
    assert '"py-pw"' in done.stdout and "m.example.com" in done.stdout
    done = cli.run("delete", "--user", "alice", "--name", "from_python", "--yes")
    assert done.returncode == 0, done.stderr
    with pytest.raises(sc.CredentialNotFoundError):
        vault.get_credential(alice, "from_python")


def test_errors_carry_the_clis_messages(vault, cli, alice, bob):
    alice_id = vault.store_credential(alice, "db", "postgres", "h", "d", "u", "pw")
    cases = [
        (sc.CredentialNotFoundError, lambda: vault.get_credential(alice, "missing"),
         ["show", "--user", "alice", "--name", "missing"], 3),
        (sc.UnauthorizedAccessError, lambda: vault.get_credential(bob, alice_id),
         ["show", "--user", "bob", "--name", alice_id], 4),
        (sc.AlreadyExistsError,
         lambda: vault.store_credential(alice, "db", "postgres", "h", "d", "u", "pw"),
         ["add", "--user", "alice", "--name", "db", "--db-type", "postgres", "--host", "h",
          "--database", "d", "--username", "u", "--password-stdin"], 6),
        (sc.ConflictError, lambda: vault.update_password(alice, "db", "pw", expected_version=7),
         ["update", "--user", "alice", "--name", "db", "--if-version", "7", "--password-stdin"],
         10),
        (sc.CredentialNotFoundError, lambda: vault.delete_credential(bob, "db"),
         ["delete", "--user", "bob", "--name", "db", "--yes"], 3),
    ]
    for error_class, call, argv, exit_code in cases:
        with pytest.raises(error_class) as caught:
            call()
        done = cli.run(*argv, stdin="pw\n")
        assert done.returncode == exit_code, (argv, done.stderr)
        assert type(caught.value) is error_class
        assert str(caught.value) == cli_error(done), argv


def test_wrong_master_key_and_missing_key(vault_dir, vault, alice, monkeypatch):
    vault.store_credential(alice, "db", "postgres", "h", "d", "u", "pw")
    with pytest.raises(sc.DecryptionFailedError):
        sc.CredentialVault(vault_dir, master_key=sc.generate_master_key())
    monkeypatch.delenv("CREDENTIAL_MASTER_KEY", raising=False)
    monkeypatch.delenv("CREDENTIAL_MASTER_KEY_FILE", raising=False)
    with pytest.raises(sc.MissingKeyError, match="keygen"):
        sc.CredentialVault(vault_dir)


def test_rotation_by_the_cli_on_the_shared_postgresql_vault(postgres_vault_url, master_key, cli,
                                                             alice):
    vault = sc.CredentialVault(url=postgres_vault_url, master_key=master_key)
    vault.store_credential(alice, "shared_db", "postgres", "h", "d", "u", "before")
    assert vault.get_decrypted_password(vault.get_credential(alice, "shared_db")) == "before"
    cli.env.pop("CREDENTIAL_VAULT_DIR")
    cli.env["CREDENTIAL_VAULT_URL"] = postgres_vault_url
    done = cli.run("update", "--user", "alice", "--name", "shared_db", "--password-stdin",
                   stdin="after\n")
    assert done.returncode == 0, done.stderr
    assert vault.get_decrypted_password(vault.get_credential(alice, "shared_db")) == "after"
    # A second handle (as another process would hold) sees it too.
    other = sc.CredentialVault(postgres_vault_url, master_key=master_key)
    assert other.get_decrypted_password(other.get_credential(alice, "shared_db")) == "after"
