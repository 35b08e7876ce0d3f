"""Secrets cross into Python only where the API returns them
(get_decrypted_password, build_connection_string): never in a repr, a str, a
dict of fields, a pickle or an exception message."""

import asyncio
import copy
import json
import dataclasses
import pickle
import traceback

import pytest

import secure_credentials as sc

PASSWORD = "Sup3r-S3cret-pw!"
NEW_PASSWORD = "An0ther-S3cret-pw!"


def leaks(text: str, *secrets: str) -> bool:
    return any(secret in text for secret in secrets)


def test_no_secret_in_any_repr_str_or_dict(vault, alice, admin, master_key):
    vault.store_credential(alice, "db", "postgres", "h", "d", "u", PASSWORD, description="x")
    vault.update_password(alice, "db", NEW_PASSWORD)
    got = vault.get_credential(alice, "db")
    listed = vault.list_credentials(alice)[0]
    assert vault.get_decrypted_password(listed) == NEW_PASSWORD  # listed ones hold it now too
    objects = [got, listed, got.encrypted_password._sealed, listed.encrypted_password._sealed,
               vault, alice,
               vault.history(alice, "db"), vault.audit_events(admin), vault.keys(),
               vault.verify(), vault.verify_audit(), vault.audit_head(), sc.CredentialReference("db")]
    for thing in objects:
        for text in (repr(thing), str(thing)):
            assert not leaks(text, PASSWORD, NEW_PASSWORD, master_key), text
    for credential in (got, listed):
        assert credential.encrypted_password == "[encrypted]"
        for fields in (dataclasses.asdict(credential), credential.dict(), vars(credential)):
            assert not leaks(repr(fields), PASSWORD, NEW_PASSWORD)
        # Copies still work; a pickle is refused (a secret never lands in a file).
        assert vault.get_decrypted_password(copy.deepcopy(credential)) == NEW_PASSWORD
        assert vault.get_decrypted_password(dataclasses.replace(credential)) == NEW_PASSWORD
        rebuilt = sc.DatabaseCredential(**credential.dict())
        assert vault.get_decrypted_password(rebuilt) == NEW_PASSWORD
        assert json.loads(json.dumps(credential.dict(), default=str))["encrypted_password"] == (
            "[encrypted]")
        with pytest.raises(TypeError) as caught:
            pickle.dumps(credential)
        assert not leaks(str(caught.value), NEW_PASSWORD)


def error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)) + repr(error)


def test_no_secret_in_any_error_message(vault, alice, bob, master_key, tmp_path):
    credential_id = vault.store_credential(alice, "db", "postgres", "h", "d", "u", PASSWORD)
    bad_calls = [
        # The library's own errors, with a secret among the arguments.
        lambda: vault.store_credential(alice, "db", "postgres", "h", "d", "u", PASSWORD),
        lambda: vault.store_credential(alice, "bad name\n", "postgres", "h", "d", "u", PASSWORD),
        lambda: vault.store_credential(alice, "x", "ora\u200bcle", "h", "d", "u", PASSWORD),
        lambda: vault.store_credential(alice, "x", "postgres", "h", "d", "u", PASSWORD, port=-1),
        lambda: vault.update_password(bob, credential_id, PASSWORD),
        lambda: vault.update_password(alice, "db", PASSWORD, expected_version=7),
        lambda: vault.update_credential(alice, "db", password=PASSWORD, port=70000),
        lambda: sc.CredentialVault(vault.directory, master_key=PASSWORD),
        lambda: vault.rotate_master_key(""),
        lambda: vault.import_legacy(tmp_path / "missing.enc", PASSWORD),
        # Arguments of the wrong type or text that is not Unicode.
        lambda: vault.store_credential(alice, "x", "postgres", "h", "d", "u", PASSWORD.encode()),
        lambda: vault.store_credential(alice, "x", "postgres", "h", "d", "u", PASSWORD + "\udc80"),
        lambda: vault.store_credential(alice, "x\udc80", "postgres", "h", "d", "u", PASSWORD),
        lambda: vault.store_credential(alice, 42, "postgres", "h", "d", "u", PASSWORD),
        lambda: vault.store_credential(None, "x", "postgres", "h", "d", "u", PASSWORD),
        lambda: vault.update_password(alice, "db", [PASSWORD]),
        lambda: vault.store_credential(alice, "x", "postgres", "h", "d", "u", PASSWORD,
                                       colour=PASSWORD),
        # The C++ layer called directly with a wrong argument: pybind11 quotes
        # every argument, and the password is a Secret whose repr is "<secret>".
        lambda: vault._native.store_credential(alice, "x", "postgres", "h", "not-a-port", "d", "u",
                                               sc.vault._native.seal(PASSWORD), "", "", 30),
    ]
    for call in bad_calls:
        with pytest.raises(Exception) as caught:
            call()
        text = error_text(caught.value)
        assert not leaks(text, PASSWORD, master_key), text
        assert isinstance(caught.value, (sc.CredentialError, TypeError, ValueError)), text
    # The one with the Secret in it says so.
    with pytest.raises(TypeError, match="<secret>"):
        bad_calls[-1]()


def test_no_secret_in_a_database_error_of_a_skill(vault, alice, postgres, tmp_path):
    role = postgres.create_role("right-" + PASSWORD)
    vault.store_credential(alice, "pg_app", "postgres", postgres.host, role, role, PASSWORD,
                           port=postgres.port)
    (tmp_path / "skills" / "One").mkdir(parents=True)
    (tmp_path / "skills" / "One" / "skill.md").write_text(
        "---\nname: One\nexecutor: action\naction:\n  type: data_query\n  source: postgres\n"
        "  query: \"SELECT 1 AS one\"\n  credential_ref: pg_app\n---\n")
    with pytest.raises(sc.DatabaseError) as caught:
        asyncio.run(sc.execute_skill("One", {"user_context": alice}, vault=vault,
                                     skills_dir=str(tmp_path / "skills")))
    assert not leaks(error_text(caught.value), PASSWORD), error_text(caught.value)
    vault.update_password(alice, "pg_app", "right-" + PASSWORD)
    assert asyncio.run(sc.execute_skill("One", {"user_context": alice}, vault=vault,
                                        skills_dir=str(tmp_path / "skills"))) == {
        "query_result": [{"one": 1}], "row_count": 1}
