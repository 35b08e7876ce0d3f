"""A Python vault with the shapes the Python system stored and this vault once
refused or mangled imports whole, and each credential is reached by its
original user id and name: through the vault API and a skill's credential_ref.
The legacy file is written as the Python system wrote it (cryptography's
Fernet, json.dumps)."""

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import secure_credentials as sc

LONG_DESCRIPTION = "Reporting replica.\nOwned by the data team.\n" + "Кириллица, line after line.\n" * 60


def write_legacy_vault(path: Path, key: bytes, records: list) -> None:
    fernet = Fernet(key)
    data = {}
    for credential_id, user_id, name, db_type, description in records:
        data[credential_id] = {
            "credential_id": credential_id, "user_id": user_id, "name": name, "db_type": db_type,
            "host": "db.example.com", "port": 1433 if db_type == "sqlserver" else 5432,
            "database": "app", "username": "svc",
            "encrypted_password": fernet.encrypt(f"pw of {credential_id}".encode()).decode(),
            "created_at": "2024-02-29T23:59:59", "updated_at": "2024-03-01T00:00:00",
            "description": description, "ssl_mode": None, "connection_timeout": 30}
    path.write_bytes(fernet.encrypt(json.dumps(data).encode()))


AWKWARD = [
    ("alice smith_prod_1.5", "alice smith", "prod", "postgres", None),
    ("юзер_база данных_2.5", "юзер", "база данных", "postgres", LONG_DESCRIPTION),
    ("bob_mssql_3.5", "bob", "mssql", "sqlserver", "two\nlines"),
]


def user(user_id: str) -> sc.UserContext:
    return sc.UserContext(user_id=user_id, username=f"{user_id}@app", roles=["user"])


def test_awkward_python_vault_imports_whole(vault, tmp_path):
    key = Fernet.generate_key()
    write_legacy_vault(tmp_path / "vault.enc", key, AWKWARD)
    report = vault.import_legacy(tmp_path / "vault.enc", key.decode())
    assert (report.imported, report.renamed, report.invalid) == (3, 0, 0)

    cyrillic = vault.get_credential(user("юзер"), "база данных")
    assert cyrillic.user_id == "юзер" and cyrillic.name == "база данных"
    assert cyrillic.description == LONG_DESCRIPTION
    assert vault.get_decrypted_password(cyrillic) == "pw of юзер_база данных_2.5"
    assert vault.get_credential(user("юзер"), "юзер_база данных_2.5").name == "база данных"
    mssql = vault.get_credential(user("bob"), "mssql")
    assert (mssql.db_type, mssql.port, mssql.description) == ("sqlserver", 1433, "two\nlines")
    assert [c.name for c in vault.list_credentials(user("alice smith"))] == ["prod"]

    vault.update_password(user_context=user("alice smith"), credential_ref="prod",
                          new_password="new pw")
    assert vault.get_decrypted_password(vault.get_credential(user("alice smith"), "prod")) == "new pw"
    vault.delete_credential(user("юзер"), "база данных")
    with pytest.raises(sc.CredentialNotFoundError):
        vault.get_credential(user("юзер"), "база данных")


def test_invalid_records_are_named_and_imported_only_with_skip_invalid(vault, tmp_path):
    key = Fernet.generate_key()
    write_legacy_vault(tmp_path / "vault.enc", key, AWKWARD + [
        ("zwsp_4.0", "alice", "a\u200bb", "postgres", None),
        ("esc_5.0", "alice\x1b", "db", "postgres", None)])
    with pytest.raises(sc.InvalidArgumentError) as caught:
        vault.import_legacy(tmp_path / "vault.enc", key.decode())
    message = str(caught.value)
    assert "zwsp_4.0: invalid credential name" in message and "U+200B" in message, message
    assert "esc_5.0: invalid user id" in message and "U+001B" in message, message
    assert vault.list_credentials(sc.get_system_user()) == []

    report = vault.import_legacy(tmp_path / "vault.enc", key.decode(), skip_invalid=True)
    assert (report.imported, report.invalid) == (3, 2)
    invalid = {c.legacy_id: c.reason for c in report.credentials if c.status == "invalid"}
    assert set(invalid) == {"zwsp_4.0", "esc_5.0"}
    assert "U+200B" in invalid["zwsp_4.0"]
    assert len(vault.list_credentials(sc.get_system_user())) == 3


def test_names_follow_one_rule_when_stored_from_python(vault):
    owner = user("юзер smith")
    vault.store_credential(owner, "база данных", "sqlserver", "h", "d", "u", "pw", port=1433)
    assert vault.get_credential(owner, "база данных").db_type == "sqlserver"
    for name in ["a\u200bb", "admin\u202egpj", "\ufeffdb", "a\x00b", "a\x1b[2J", "n" * 129,
                 "ж" * 65, "x\udc80", ""]:
        with pytest.raises(sc.InvalidArgumentError):
            vault.store_credential(owner, name, "postgres", "h", "d", "u", "pw")
    for user_id in ["bad\u200buser", "bad\nuser", "\udc80"]:
        with pytest.raises(sc.InvalidArgumentError):
            vault.store_credential(user(user_id), "db", "postgres", "h", "d", "u", "pw")
    assert [c.name for c in vault.list_credentials(owner)] == ["база данных"]


def test_a_skill_reaches_a_credential_by_a_non_ascii_name(vault, tmp_path):
    database = tmp_path / "app.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'Алиса')")
    owner = user("юзер")
    vault.store_credential(owner, "база данных", "sqlite", "", str(database), "", "")
    skill = tmp_path / "skills" / "Users"
    skill.mkdir(parents=True)
    (skill / "skill.md").write_text(
        "---\nname: Users\nexecutor: action\naction:\n  type: data_query\n"
        "  query: \"SELECT name FROM users WHERE id = {id}\"\n  credential_ref: база данных\n---\n",
        encoding="utf-8")
    result = asyncio.run(sc.execute_skill("Users", {"id": 1, "user_context": owner}, vault=vault,
                                          skills_dir=str(tmp_path / "skills")))
    assert result["query_result"] == [{"name": "Алиса"}]
