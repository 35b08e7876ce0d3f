"""The exceptions of secure_credentials.

Every error the library raises is a CredentialError; the two the Python
system exported keep their names (CredentialNotFoundError,
UnauthorizedAccessError). Messages are the library's, the same the CLI
prints after "credential_manager: error:": fixed text plus names, never a
password, a key or a connection string.
"""

from . import _secure_credentials as _native


class CredentialError(Exception):
    """Base class of every error of the vault, its skills and its keys."""


class CredentialNotFoundError(CredentialError):
    """The credential does not exist in the caller's reach (or there is no vault)."""


class UnauthorizedAccessError(CredentialError):
    """The caller may not reach that namespace (it never says whether the credential exists)."""


# The C++ library's name for it.
UnauthorizedError = UnauthorizedAccessError


class DecryptionFailedError(CredentialError):
    """Wrong master key, or vault bytes that were altered or moved."""


class AlreadyExistsError(CredentialError):
    """A credential with that name already exists for that user."""


class InvalidArgumentError(CredentialError, ValueError):
    """Bad input from the caller; the message states the rule."""


class ConflictError(CredentialError):
    """A check-and-set (expected_version) lost against another writer."""


class DatabaseError(CredentialError):
    """The vault's own storage, or a user's database, failed."""


class SkillError(CredentialError):
    """A skill is malformed, or its execution failed."""


class MissingKeyError(CredentialError):
    """No master key is configured; the message says how to make one."""


# By the C++ library's ErrorCode (include/credentials/errors.h).
_native.set_error_classes({
    1: CredentialError,
    2: InvalidArgumentError,
    3: CredentialNotFoundError,
    4: UnauthorizedAccessError,
    5: DecryptionFailedError,
    6: AlreadyExistsError,
    7: DatabaseError,
    8: SkillError,
    9: ConflictError,
    10: MissingKeyError,
})
