"""CredentialVault and get_vault: the Python system's vault API over the C++ library.

Every method that touches the vault releases the GIL while the library works
(threads sharing one vault run in parallel), and every read sees the latest
committed state: a password rotated by the CLI or another process is seen at
the next get_credential.
"""

import os
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional, Union

from . import _secure_credentials as _native
from .errors import InvalidArgumentError
from .models import CredentialReference, DatabaseCredential, SealedPassword, UserContext

_EPOCH = datetime(1970, 1, 1)


# --- argument checks ----------------------------------------------------------
# Done here so that the C++ layer never rejects an argument itself: its
# messages would quote every argument of the call. These never quote a value.

def _user(user_context: Any, what: str = "user_context") -> UserContext:
    if user_context is None:
        raise TypeError(f"{what} is required: UserContext(user_id=..., username=..., roles=[...])")
    if isinstance(user_context, Mapping):
        fields = (user_context.get("user_id"), user_context.get("username", ""),
                  user_context.get("roles", []))
    else:
        try:
            fields = (user_context.user_id, user_context.username, user_context.roles)
        except AttributeError:
            raise TypeError(f"{what} must be a UserContext, not {type(user_context).__name__}") \
                from None
    user_id, username, roles = fields
    if not isinstance(user_id, str) or not isinstance(username, str):
        raise TypeError(f"{what}.user_id and {what}.username must be str")
    if isinstance(roles, (str, bytes)) or roles is None:
        raise TypeError(f"{what}.roles must be a list of str")
    roles = list(roles)
    if not all(isinstance(role, str) for role in roles):
        raise TypeError(f"{what}.roles must be a list of str")
    for field, value in (("user_id", user_id), ("username", username)):
        _text(value, f"{what}.{field}")
    for role in roles:
        _text(role, f"{what}.roles")
    return UserContext(user_id=user_id, username=username, roles=roles)


def _text(value: Any, what: str, default: Optional[str] = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        # A lone surrogate: not text the vault can store (its UTF-8 would be invalid).
        raise InvalidArgumentError(
            f"{what} is not valid UTF-8 text: it holds a lone surrogate at index {error.start}") \
            from None
    return value


def _optional_text(value: Any, what: str) -> Optional[str]:
    return None if value is None else _text(value, what)


def _integer(value: Any, what: str, default: Optional[int] = None) -> Optional[int]:
    if value is None:
        return default
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidArgumentError(f"{what} must be a whole number") from None
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


def _ref(credential_ref: Any) -> str:
    if isinstance(credential_ref, CredentialReference):
        credential_ref = credential_ref.credential_ref
    return _text(credential_ref, "credential_ref")


def _seal(secret: Any, what: str) -> Any:
    if not isinstance(secret, str):
        raise TypeError(f"{what} must be a str, not {type(secret).__name__}")
    return _native.seal(secret)


def _micros(when: Optional[datetime]) -> Optional[int]:
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return (when - _EPOCH) // timedelta(microseconds=1)


def _credential(native: Any, sealed: Any = None, reader: Optional[UserContext] = None) \
        -> DatabaseCredential:
    credential = DatabaseCredential(
        credential_id=native.credential_id, user_id=native.owner, name=native.name,
        db_type=native.db_type, host=native.host, port=native.port, database=native.database,
        username=native.username, created_at=native.created_at, updated_at=native.updated_at,
        description=native.description or None, ssl_mode=native.ssl_mode or None,
        connection_timeout=native.connection_timeout, version=native.version,
        last_used=native.last_used, encrypted_password=SealedPassword(sealed, reader))
    return credential


def _struct_repr(self: Any) -> str:
    cls = type(self)
    names = [n for n in dir(cls) if not n.startswith("_") and isinstance(getattr(cls, n), property)]
    return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"


for _cls in (_native.CredentialVersion, _native.AuditEvent, _native.AuditVerification,
             _native.AuditHead, _native.KeyInfo, _native.ReencryptProgress, _native.VerifyReport,
             _native.ImportedCredential, _native.ImportReport, _native.ConnectionTestResult):
    _cls.__repr__ = _struct_repr


def _location(storage_path: Any, url: Optional[str]) -> "tuple[str, str]":
    """(directory, url) for Vault.open."""
    if url is not None:
        return "", _text(url, "url")
    if storage_path is None:
        env_url = os.environ.get("CREDENTIAL_VAULT_URL", "")
        if env_url:
            return "", env_url
        return os.environ.get("CREDENTIAL_VAULT_DIR") or ".credentials", ""
    path = os.fspath(storage_path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path.startswith(("postgresql://", "postgres://")):
        return "", path
    # The Python system took the vault file (.credentials/vault.enc): its
    # directory is where this vault lives.
    if path.endswith(".enc"):
        path = os.path.dirname(path) or "."
    return path, ""


class CredentialVault:
    """The encrypted, multi-user credential store.

    CredentialVault(storage_path=None) opens (or creates) the vault in a
    directory: storage_path, else CREDENTIAL_VAULT_DIR, else ./.credentials (a
    path to the Python system's vault.enc means its directory); or the shared
    vault on PostgreSQL: a postgresql:// URL as storage_path or url=, else
    CREDENTIAL_VAULT_URL. The master key is master_key=, else
    CREDENTIAL_MASTER_KEY or CREDENTIAL_MASTER_KEY_FILE.

    Thread-safe: share one vault between threads. get_vault() returns the
    process-wide one.
    """

    def __init__(self, storage_path: Union[str, "os.PathLike[str]", None] = None, *,
                 master_key: Optional[str] = None, url: Optional[str] = None) -> None:
        directory, url = _location(storage_path, url)
        key = None if master_key is None else _seal(master_key, "master_key")
        self._init(_native.Vault.open(directory, url, key))

    @classmethod
    def _wrap(cls, native: Any) -> "CredentialVault":
        vault = cls.__new__(cls)
        vault._init(native)
        return vault

    def _init(self, native: Any) -> None:
        self._native = native
        self._runners: dict = {}
        self._runners_lock = threading.Lock()

    def __repr__(self) -> str:
        directory = self._native.directory
        return f"CredentialVault({directory!r})" if directory else "CredentialVault(<PostgreSQL>)"

    # --- the Python system's API ------------------------------------------------

    def store_credential(self, user_context: UserContext, name: str, db_type: str, host: str,
                         database: str, username: str, password: str, port: Optional[int] = None,
                         description: Optional[str] = None, **kwargs: Any) -> str:
        """Stores a new credential in the caller's namespace; returns its id.
        kwargs: ssl_mode, connection_timeout (seconds, default 30)."""
        ssl_mode = kwargs.pop("ssl_mode", None)
        connection_timeout = kwargs.pop("connection_timeout", None)
        if kwargs:
            raise TypeError(
                f"store_credential() got an unexpected keyword argument '{next(iter(kwargs))}'")
        return self._native.store_credential(
            _user(user_context), _text(name, "name"), _text(db_type, "db_type"),
            _text(host, "host", default=""), _integer(port, "port", default=0),
            _text(database, "database"), _text(username, "username", default=""),
            _seal(password, "password"), _text(description, "description", default=""),
            _text(ssl_mode, "ssl_mode", default=""),
            _integer(connection_timeout, "connection_timeout", default=30))

    def get_credential(self, user_context: UserContext,
                       credential_ref: Union[str, CredentialReference]) -> DatabaseCredential:
        """The credential `credential_ref` (a name in the caller's namespace, or
        an id), read now: a rotation by anyone is seen."""
        native = self._native.get_credential(_user(user_context), _ref(credential_ref))
        return _credential(native, sealed=native)

    def get_decrypted_password(self, credential: DatabaseCredential) -> str:
        """The credential's password."""
        return self._sealed(credential).password()

    def build_connection_string(self, credential: DatabaseCredential,
                                overrides: Optional[Mapping] = None) -> str:
        """A URL for the credential: postgresql://, mysql://, mongodb://,
        redis://, sqlite:///path. Every part is percent-encoded, so any password
        character survives; ssl_mode and connection_timeout are carried as query
        parameters. overrides may set host, port and database."""
        sealed = self._sealed(credential)
        overrides = dict(overrides or {})
        host = overrides.get("host")
        port = overrides.get("port")
        database = overrides.get("database")
        return sealed.connection_string(
            db_type=_text(credential.db_type, "db_type"),
            host=_text(host, "overrides['host']") if host is not None else
            _text(credential.host, "host", default=""),
            port=_integer(port, "overrides['port']") if port is not None else
            _integer(credential.port, "port", default=0),
            database=_text(database, "overrides['database']") if database is not None else
            _text(credential.database, "database", default=""),
            username=_text(credential.username, "username", default=""),
            ssl_mode=_text(credential.ssl_mode, "ssl_mode", default=""),
            connection_timeout=_integer(credential.connection_timeout, "connection_timeout",
                                        default=0))

    def list_credentials(self, user_context: UserContext) -> List[DatabaseCredential]:
        """The caller's credentials (every user's for an administrator), sorted
        by owner, then name."""
        user = _user(user_context)
        return [_credential(info, reader=user) for info in self._native.list_credentials(user)]

    def update_password(self, user_context: UserContext,
                        credential_ref: Union[str, CredentialReference], new_password: str, *,
                        expected_version: Optional[int] = None) -> int:
        """Rotates the password; returns the new version. With expected_version,
        raises ConflictError unless that is the current version."""
        return self._native.update_password(
            _user(user_context), _ref(credential_ref), _seal(new_password, "new_password"),
            _integer(expected_version, "expected_version"))

    def delete_credential(self, user_context: UserContext,
                          credential_ref: Union[str, CredentialReference]) -> None:
        """Removes the credential and every version of it."""
        self._native.delete_credential(_user(user_context), _ref(credential_ref))

    # --- the C++ library's additions, under their C++ names ----------------------

    def update_credential(self, user_context: UserContext,
                          credential_ref: Union[str, CredentialReference], *,
                          expected_version: Optional[int] = None, **changes: Any) -> int:
        """Changes any of db_type, host, port, database, username, description,
        ssl_mode, connection_timeout, password at once; returns the new version."""
        allowed = ("db_type", "host", "port", "database", "username", "description", "ssl_mode",
                   "connection_timeout", "password")
        for name in changes:
            if name not in allowed:
                raise TypeError(f"update_credential() got an unexpected keyword argument '{name}'")
        text = {name: _optional_text(changes.get(name), name)
                for name in ("db_type", "host", "database", "username", "description", "ssl_mode")}
        password = changes.get("password")
        return self._native.update_credential(
            _user(user_context), _ref(credential_ref), text["db_type"], text["host"],
            _integer(changes.get("port"), "port"), text["database"], text["username"],
            text["description"], text["ssl_mode"],
            _integer(changes.get("connection_timeout"), "connection_timeout"),
            None if password is None else _seal(password, "password"),
            _integer(expected_version, "expected_version"))

    def history(self, user_context: UserContext, credential_ref: str) -> list:
        """The versions kept for the credential (no passwords), oldest first."""
        return self._native.history(_user(user_context), _ref(credential_ref))

    def rollback(self, user_context: UserContext, credential_ref: str, version: int) -> int:
        """Makes `version` current again, as a new version; returns it."""
        return self._native.rollback(_user(user_context), _ref(credential_ref),
                                     _integer(version, "version"))

    def audit_events(self, user_context: UserContext, *, owner: Optional[str] = None,
                     name: Optional[str] = None, action: Optional[str] = None,
                     since: Optional[datetime] = None, limit: int = 1000) -> list:
        """Audit events about the caller's namespace (every event for an
        administrator): the newest `limit` matching, oldest first."""
        return self._native.audit_events(
            _user(user_context), _optional_text(owner, "owner"), _optional_text(name, "name"),
            _optional_text(action, "action"), _micros(since), _integer(limit, "limit"))

    def verify_audit(self, checkpoints: Optional[List[str]] = None) -> Any:
        """Checks the whole audit chain, and that it holds each checkpoint
        (`audit_head().checkpoint` taken earlier); reveals no event content."""
        return self._native.verify_audit(list(checkpoints or []))

    def audit_head(self) -> Any:
        """A checkpoint of the audit chain (seq, mac_hex, vault_id_hex, and the
        one-line `checkpoint`) to keep off the machine."""
        return self._native.audit_head()

    def rotate_master_key(self, new_master_key: str) -> None:
        """Re-wraps the vault's keys under a new master key."""
        self._native.rotate_master_key(_seal(new_master_key, "new_master_key"))

    def rotate_data_key(self) -> int:
        """Adds a data key for new writes; returns its id."""
        return self._native.rotate_data_key()

    def reencrypt(self, batch: int = 500) -> Any:
        """Moves every stored version to the newest data key, `batch` records per
        transaction; resumable."""
        return self._native.reencrypt(_integer(batch, "batch"))

    def keys(self) -> list:
        """The vault's keys (ids, purposes, use counts); never key material."""
        return self._native.keys()

    def backup(self, out: Union[str, "os.PathLike[str]"]) -> None:
        """A consistent online snapshot in one file (created 0600)."""
        self._native.backup(os.fspath(out))

    def verify(self) -> Any:
        """Checks every record, the indexes and the audit chain."""
        return self._native.verify()

    def import_legacy(self, vault_enc: Union[str, "os.PathLike[str]"], legacy_key: str,
                      dry_run: bool = False, skip_invalid: bool = False) -> Any:
        """Imports the Python system's vault file with its key. A credential this
        vault cannot hold raises InvalidArgumentError naming each such one by its
        legacy id, and imports nothing; with skip_invalid the others are imported
        and those are reported with status "invalid" and their reason."""
        return self._native.import_legacy(os.fspath(vault_enc), _seal(legacy_key, "legacy_key"),
                                          bool(dry_run), bool(skip_invalid))

    def test_credential(self, user_context: UserContext, credential_ref: str,
                        overrides: Optional[Mapping] = None) -> Any:
        """Connects with the credential and runs a trivial query: server_version
        and round_trip. Raises DatabaseError when that fails."""
        overrides = dict(overrides or {})
        return self._native.test_credential(
            _user(user_context), _ref(credential_ref),
            _optional_text(overrides.get("host"), "overrides['host']"),
            _integer(overrides.get("port"), "overrides['port']"),
            _optional_text(overrides.get("database"), "overrides['database']"))

    @property
    def directory(self) -> str:
        """The vault directory ("" for a vault on PostgreSQL)."""
        return self._native.directory

    # --- internals ----------------------------------------------------------------

    def _sealed(self, credential: DatabaseCredential) -> Any:
        """The library's copy of the credential, with its password."""
        token = getattr(credential, "encrypted_password", None)
        if not isinstance(token, SealedPassword):
            raise InvalidArgumentError(
                "this DatabaseCredential was not read from the vault: "
                "get it with get_credential(user_context, credential_ref)")
        if token._sealed is None:
            # Listed: read it now, as the user who listed it.
            token._sealed = self._native.get_credential(token._reader, credential.credential_id)
        return token._sealed

    def _runner(self, skills_dir: Optional[str]) -> Any:
        """The SkillRunner of this vault for a skills directory, made on first use."""
        if skills_dir is None:
            skills_dir = os.environ.get("CREDENTIAL_SKILLS_DIR") or "skills"
        skills_dir = os.fspath(skills_dir)
        with self._runners_lock:
            runner = self._runners.get(skills_dir)
            if runner is None:
                runner = _native.SkillRunner(self._native, skills_dir, True)
                self._runners[skills_dir] = runner
            return runner


_vault: Optional[CredentialVault] = None
_vault_lock = threading.Lock()


def get_vault() -> CredentialVault:
    """The process-wide vault, configured from the environment
    (CREDENTIAL_VAULT_DIR or CREDENTIAL_VAULT_URL, CREDENTIAL_MASTER_KEY or
    CREDENTIAL_MASTER_KEY_FILE) and opened on first use; a failed open is
    retried at the next call. The process-wide execute_skill uses it too."""
    global _vault
    with _vault_lock:
        if _vault is None:
            _vault = CredentialVault._wrap(_native.get_vault())
        return _vault


def generate_master_key() -> str:
    """A new random master key: 44 characters of URL-safe base64 (32 random
    bytes), the format Fernet.generate_key() also produces."""
    return _native.generate_master_key()
