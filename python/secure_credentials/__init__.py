"""secure_credentials: encrypted, per-user database credentials for Python.

The Python system's public API (services/credentials) over the C++ library:
a framework switches by making its services/credentials/__init__.py the one
line `from secure_credentials import *`. See docs/PYTHON.md.
"""

from .errors import (AlreadyExistsError, ConflictError, CredentialError, CredentialNotFoundError,
                     DatabaseError, DecryptionFailedError, InvalidArgumentError, MissingKeyError,
                     SkillError, UnauthorizedAccessError, UnauthorizedError)
from .models import CredentialReference, DatabaseCredential, UserContext
from .auth import (AuthContext, create_user_context, get_current_user, get_default_user,
                   get_system_user)
from .vault import CredentialVault, generate_master_key, get_vault
from .skills import execute_skill

__all__ = [
    # The Python system's names.
    "CredentialVault",
    "DatabaseCredential",
    "CredentialReference",
    "UserContext",
    "CredentialNotFoundError",
    "UnauthorizedAccessError",
    "get_vault",
    "get_system_user",
    "get_default_user",
    "create_user_context",
    "AuthContext",
    "get_current_user",
    # The framework's skill call.
    "execute_skill",
    # This package's additions.
    "CredentialError",
    "UnauthorizedError",
    "DecryptionFailedError",
    "AlreadyExistsError",
    "InvalidArgumentError",
    "ConflictError",
    "DatabaseError",
    "SkillError",
    "MissingKeyError",
    "generate_master_key",
]
