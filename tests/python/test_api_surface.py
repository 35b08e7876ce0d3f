"""The Python system's public API, name by name: what a framework imports from
services.credentials must be there, with the same call signatures (keyword
names included) and the same behaviour."""

import dataclasses
import inspect
from datetime import datetime

import pytest

import secure_credentials as sc

# services/credentials/__init__.py of the Python system exported exactly these.
PYTHON_SYSTEM_NAMES = [
    "CredentialVault", "DatabaseCredential", "CredentialReference", "UserContext",
    "CredentialNotFoundError", "UnauthorizedAccessError", "get_vault", "get_system_user",
    "get_default_user", "create_user_context", "AuthContext", "get_current_user",
]


def test_star_import_gives_every_name_of_the_python_system_and_execute_skill():
    namespace: dict = {}
    exec("from secure_credentials import *", namespace)
    for name in PYTHON_SYSTEM_NAMES + ["execute_skill"]:
        assert name in namespace, name
        assert namespace[name] is getattr(sc, name)
    # __all__ names only what exists, once each.
    assert len(set(sc.__all__)) == len(sc.__all__)
    for name in sc.__all__:
        assert hasattr(sc, name), name


def parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


EMPTY = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_vault_methods_have_the_python_systems_signatures():
    V = sc.CredentialVault
    assert parameters(V.store_credential)[:10] == [
        ("self", POS, EMPTY), ("user_context", POS, EMPTY), ("name", POS, EMPTY),
        ("db_type", POS, EMPTY), ("host", POS, EMPTY), ("database", POS, EMPTY),
        ("username", POS, EMPTY), ("password", POS, EMPTY), ("port", POS, None),
        ("description", POS, None)]
    assert parameters(V.store_credential)[10][1] == inspect.Parameter.VAR_KEYWORD
    assert parameters(V.get_credential) == [
        ("self", POS, EMPTY), ("user_context", POS, EMPTY), ("credential_ref", POS, EMPTY)]
    assert parameters(V.get_decrypted_password) == [("self", POS, EMPTY), ("credential", POS, EMPTY)]
    assert parameters(V.build_connection_string) == [
        ("self", POS, EMPTY), ("credential", POS, EMPTY), ("overrides", POS, None)]
    assert parameters(V.list_credentials) == [("self", POS, EMPTY), ("user_context", POS, EMPTY)]
    assert parameters(V.delete_credential) == [
        ("self", POS, EMPTY), ("user_context", POS, EMPTY), ("credential_ref", POS, EMPTY)]
    assert parameters(V.update_password)[:4] == [
        ("self", POS, EMPTY), ("user_context", POS, EMPTY), ("credential_ref", POS, EMPTY),
        ("new_password", POS, EMPTY)]
    assert parameters(V.__init__)[:2] == [("self", POS, EMPTY), ("storage_path", POS, None)]
    assert inspect.iscoroutinefunction(sc.execute_skill)
    assert [p[0] for p in parameters(sc.execute_skill)[:2]] == ["skill_name", "inputs"]


def test_models_have_the_python_systems_fields_and_defaults():
    fields = {f.name: f for f in dataclasses.fields(sc.DatabaseCredential)}
    for name in ["credential_id", "user_id", "name", "db_type", "host", "port", "database",
                 "username", "encrypted_password", "created_at", "updated_at", "description",
                 "ssl_mode", "connection_timeout"]:
        assert name in fields, name
    assert fields["description"].default is None
    assert fields["ssl_mode"].default is None
    assert fields["connection_timeout"].default == 30
    created = sc.DatabaseCredential(credential_id="x", user_id="u", name="n", db_type="postgres",
                                    host="h", port=5432, database="d", username="s",
                                    encrypted_password="t")
    assert isinstance(created.created_at, datetime) and created.created_at.tzinfo is None

    reference = sc.CredentialReference(credential_ref="my_db")
    assert (reference.host, reference.port, reference.database, reference.timeout,
            reference.ssl_mode) == (None, None, None, None, None)

    user = sc.UserContext(user_id="alice", username="alice", roles=["user"])
    assert not user.is_admin()
    assert sc.UserContext(user_id="a", username="a", roles=["admin"]).is_admin()
    assert sc.UserContext(user_id="a", username="a", roles=["user", "superuser"]).is_admin()
    assert sc.UserContext(user_id="a", username="a").roles == []
    assert user.dict() == {"user_id": "alice", "username": "alice", "roles": ["user"]}
    assert user == sc.UserContext(user_id="alice", username="alice", roles=["user"])


def test_user_helpers(monkeypatch):
    assert sc.get_system_user() == sc.UserContext("system", "system@app", ["admin"])
    monkeypatch.delenv("DEFAULT_USER_ID", raising=False)
    assert sc.get_default_user() == sc.UserContext("system", "system@app", ["admin"])
    monkeypatch.setenv("DEFAULT_USER_ID", "carol")
    assert sc.get_default_user() == sc.UserContext("carol", "carol@app", ["admin"])
    assert sc.create_user_context("dave") == sc.UserContext("dave", "dave@app", ["user"])
    assert sc.create_user_context("erin", is_admin=True) == sc.UserContext(
        "erin", "erin@app", ["admin", "user"])


def test_auth_context(monkeypatch):
    sc.AuthContext.reset()
    try:
        assert not sc.AuthContext.is_initialized()
        with pytest.raises(RuntimeError):
            sc.AuthContext.get_instance()
        with pytest.raises(RuntimeError):
            sc.get_current_user()
        user = sc.create_user_context("alice")
        instance = sc.AuthContext.initialize(user)
        assert isinstance(instance, sc.AuthContext)
        assert sc.AuthContext.get_instance() is instance
        assert sc.AuthContext.is_initialized()
        assert sc.get_current_user() is user
        bob = sc.create_user_context("bob")
        sc.AuthContext.set_current_user(bob)
        assert sc.AuthContext.get_current_user() is bob

        for value, admin in [("true", True), ("1", True), ("yes", True), ("YES", True),
                             ("false", False), ("0", False), ("no", False)]:
            monkeypatch.setenv("DEFAULT_USER_ID", "frank")
            monkeypatch.setenv("DEFAULT_USER_ADMIN", value)
            sc.AuthContext.initialize_from_env()
            current = sc.get_current_user()
            assert current.user_id == "frank" and current.is_admin() == admin, value
        monkeypatch.delenv("DEFAULT_USER_ID")
        monkeypatch.delenv("DEFAULT_USER_ADMIN")
        sc.AuthContext.initialize_from_env()
        assert sc.get_current_user() == sc.create_user_context("system", is_admin=True)

        sc.AuthContext.reset()
        assert not sc.AuthContext.is_initialized()
        with pytest.raises(RuntimeError):
            sc.get_current_user()
    finally:
        sc.AuthContext.reset()


def test_exception_hierarchy():
    for name in ["CredentialNotFoundError", "UnauthorizedAccessError", "DecryptionFailedError",
                 "AlreadyExistsError", "InvalidArgumentError", "ConflictError", "DatabaseError",
                 "SkillError", "MissingKeyError"]:
        cls = getattr(sc, name)
        assert issubclass(cls, sc.CredentialError), name
        assert issubclass(cls, Exception)
    assert sc.UnauthorizedError is sc.UnauthorizedAccessError
    assert issubclass(sc.InvalidArgumentError, ValueError)
    assert not issubclass(sc.CredentialNotFoundError, sc.UnauthorizedAccessError)


def test_get_credential_by_name_and_by_id_and_admin_reach(vault, alice, bob, admin):
    credential_id = vault.store_credential(
        user_context=alice, name="my_db", db_type="postgres", host="db.example.com",
        port=5432, database="mydb", username="dbuser", password="secret123",
        description="Production database")
    assert isinstance(credential_id, str) and credential_id
    by_name = vault.get_credential(alice, "my_db")
    by_id = vault.get_credential(alice, credential_id)
    by_reference = vault.get_credential(alice, sc.CredentialReference(credential_ref="my_db"))
    for credential in (by_name, by_id, by_reference):
        assert isinstance(credential, sc.DatabaseCredential)
        assert credential.credential_id == credential_id
        assert (credential.user_id, credential.name, credential.db_type, credential.host,
                credential.port, credential.database, credential.username,
                credential.description, credential.ssl_mode, credential.connection_timeout) == (
            "alice", "my_db", "postgres", "db.example.com", 5432, "mydb", "dbuser",
            "Production database", None, 30)
        assert credential.created_at.tzinfo is None
        assert abs((datetime.utcnow() - credential.created_at).total_seconds()) < 60
        assert vault.get_decrypted_password(credential) == "secret123"
    # An administrator reaches it by id; bob does not, by id or by name.
    assert vault.get_decrypted_password(vault.get_credential(admin, credential_id)) == "secret123"
    with pytest.raises(sc.UnauthorizedAccessError):
        vault.get_credential(bob, credential_id)
    with pytest.raises(sc.CredentialNotFoundError):
        vault.get_credential(bob, "my_db")


def test_store_credential_defaults_and_kwargs(vault, alice):
    vault.store_credential(alice, "m", "mysql", "h", "d", "u", "pw")
    vault.store_credential(alice, "g", "mongodb", "h", "d", "u", "pw", ssl_mode="require",
                           connection_timeout=7)
    assert vault.get_credential(alice, "m").port == 3306
    mongo = vault.get_credential(alice, "g")
    assert (mongo.port, mongo.ssl_mode, mongo.connection_timeout) == (27017, "require", 7)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        vault.store_credential(alice, "x", "postgres", "h", "d", "u", "pw", colour="red")
    with pytest.raises(sc.AlreadyExistsError):
        vault.store_credential(alice, "m", "mysql", "h", "d", "u", "pw")


def test_build_connection_string_formats_and_overrides(vault, alice):
    vault.store_credential(alice, "pg", "postgres", "db.example.com", "mydb", "dbuser",
                           "p@ss/w:rd#1%", port=5433)
    credential = vault.get_credential(alice, "pg")
    # Percent-encoded, so the password survives a URL parser; the timeout as a parameter.
    assert vault.build_connection_string(credential) == (
        "postgresql://dbuser:p%40ss%2Fw%3Ard%231%25@db.example.com:5433/mydb?connect_timeout=30")
    assert vault.build_connection_string(
        credential, {"host": "replica", "port": 6432, "database": "other"}) == (
        "postgresql://dbuser:p%40ss%2Fw%3Ard%231%25@replica:6432/other?connect_timeout=30")
    vault.store_credential(alice, "my", "mysql", "m.example.com", "shop", "u", "pw",
                           ssl_mode="require", connection_timeout=5)
    assert vault.build_connection_string(vault.get_credential(alice, "my")) == (
        "mysql://u:pw@m.example.com:3306/shop?ssl-mode=require&connect_timeout=5")
    vault.store_credential(alice, "mo", "mongodb", "mo.example.com", "app", "u", "pw")
    assert vault.build_connection_string(vault.get_credential(alice, "mo")) == (
        "mongodb://u:pw@mo.example.com:27017/app?connectTimeoutMS=30000")
    # Changed fields of the object are honoured, as the Python system built the URL from them.
    credential.host = "moved.example.com"
    assert "@moved.example.com:5433/mydb?" in vault.build_connection_string(credential)


def test_listed_credentials_give_their_password_to_the_user_who_listed_them(vault, alice, admin):
    vault.store_credential(alice, "a", "postgres", "h", "d", "u", "first")
    vault.store_credential(alice, "b", "postgres", "h", "d", "u", "second")
    listed = vault.list_credentials(alice)
    assert [c.name for c in listed] == ["a", "b"]
    assert [vault.get_decrypted_password(c) for c in listed] == ["first", "second"]
    assert [vault.get_decrypted_password(c) for c in vault.list_credentials(admin)] == [
        "first", "second"]
    made_up = sc.DatabaseCredential(credential_id="x", user_id="alice", name="a",
                                    db_type="postgres", host="h", port=1, database="d",
                                    username="u", encrypted_password="gAAAA")
    with pytest.raises(sc.InvalidArgumentError, match="not read from the vault"):
        vault.get_decrypted_password(made_up)


def test_storage_path_forms(tmp_path, master_key, alice, monkeypatch):
    # A directory, the Python system's vault file (its directory), and the environment.
    sc.CredentialVault(tmp_path / "v1", master_key=master_key).store_credential(
        alice, "x", "postgres", "h", "d", "u", "pw")
    assert (tmp_path / "v1" / "vault.db").exists()
    sc.CredentialVault(tmp_path / "v2" / "vault.enc", master_key=master_key).store_credential(
        alice, "x", "postgres", "h", "d", "u", "pw")
    assert (tmp_path / "v2" / "vault.db").exists()
    monkeypatch.setenv("CREDENTIAL_VAULT_DIR", str(tmp_path / "v1"))
    monkeypatch.setenv("CREDENTIAL_MASTER_KEY", master_key)
    monkeypatch.delenv("CREDENTIAL_VAULT_URL", raising=False)
    from_env = sc.CredentialVault()
    assert from_env.directory == str(tmp_path / "v1")
    assert [c.name for c in from_env.list_credentials(alice)] == ["x"]


def test_extras_under_their_cpp_names(vault, alice, admin, tmp_path):
    vault.store_credential(alice, "db", "postgres", "h", "d", "u", "v1")
    assert vault.update_password(alice, "db", "v2") == 2
    assert vault.update_credential(alice, "db", host="h2", password="v3") == 3
    assert [v.version for v in vault.history(alice, "db")] == [1, 2, 3]
    assert vault.rollback(alice, "db", 1) == 4
    credential = vault.get_credential(alice, "db")
    assert (vault.get_decrypted_password(credential), credential.host, credential.version) == (
        "v1", "h", 4)
    with pytest.raises(sc.ConflictError):
        vault.update_password(alice, "db", "v5", expected_version=3)
    events = vault.audit_events(alice, name="db")
    assert {"store", "update_password", "get"} <= {e.action for e in events}
    assert all(e.actor == "alice" for e in events)
    assert vault.verify_audit().ok
    assert vault.audit_head().seq > 0
    new_key = sc.generate_master_key()
    vault.rotate_master_key(new_key)
    assert vault.rotate_data_key() > 0
    assert vault.reencrypt().done >= 1
    assert any(k.current for k in vault.keys())
    vault.backup(tmp_path / "backup.db")
    assert (tmp_path / "backup.db").exists()
    assert vault.verify().ok()
    reopened = sc.CredentialVault(vault.directory, master_key=new_key)
    assert reopened.get_decrypted_password(reopened.get_credential(alice, "db")) == "v1"
    assert "version=" in repr(vault.history(alice, "db")[0])
