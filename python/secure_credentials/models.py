"""The data models, with the Python system's names and fields.

They were pydantic models there; here they are dataclasses: keyword
construction, attribute access, equality, and dict() / model_dump() for code
that serialised them.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, List, Optional

SEALED_PASSWORD = "[encrypted]"


class SealedPassword(str):
    """What DatabaseCredential.encrypted_password holds for a credential read
    from the vault: the text "[encrypted]", and a handle on the password, which
    stays in the C++ library (wiped when the last reference goes) and comes out
    only through CredentialVault.get_decrypted_password and
    build_connection_string. Copies of the credential (copy, deepcopy,
    dataclasses.replace, DatabaseCredential(**credential.dict())) share it; a
    pickle is refused, so the password never lands in a file."""

    def __new__(cls, sealed: Any = None, reader: Any = None) -> "SealedPassword":
        token = super().__new__(cls, SEALED_PASSWORD)
        token._sealed = sealed  # the library's credential, with its password
        token._reader = reader  # else the user who listed it, to read it on demand
        return token

    def __copy__(self) -> "SealedPassword":
        return self

    def __deepcopy__(self, memo: dict) -> "SealedPassword":
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a credential read from the vault cannot be pickled: it holds a password")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _Model:
    def dict(self) -> dict:
        """The fields as a dict (pydantic's dict())."""
        return dataclasses.asdict(self)

    def model_dump(self) -> dict:
        """The fields as a dict (pydantic 2's model_dump())."""
        return dataclasses.asdict(self)


@dataclass
class UserContext(_Model):
    """Who is asking. Built by the application AFTER it authenticated the user:
    the vault trusts it as given."""

    user_id: str
    username: str
    roles: List[str] = field(default_factory=list)

    def is_admin(self) -> bool:
        """True for the roles "admin" and "superuser": they reach every namespace."""
        return "admin" in self.roles or "superuser" in self.roles


@dataclass
class DatabaseCredential(_Model):
    """A stored credential. Timestamps are naive UTC datetimes."""

    credential_id: str
    user_id: str
    name: str
    db_type: str
    host: str
    port: int
    database: str
    username: str
    encrypted_password: str = SEALED_PASSWORD
    created_at: datetime = field(default_factory=_utcnow)
    updated_at: datetime = field(default_factory=_utcnow)
    description: Optional[str] = None
    ssl_mode: Optional[str] = None
    connection_timeout: Optional[int] = 30
    # This package's additions: the version (1 for the first store, +1 per
    # update) and the last successful read (list_credentials fills it).
    version: int = 0
    last_used: Optional[datetime] = None


@dataclass
class CredentialReference(_Model):
    """A reference to a credential (a name in the caller's namespace, or an
    id), with the overrides a skill's db_config.json may carry."""

    credential_ref: str
    host: Optional[str] = None
    port: Optional[int] = None
    database: Optional[str] = None
    timeout: Optional[float] = None
    ssl_mode: Optional[str] = None
