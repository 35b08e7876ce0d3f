"""The current user: AuthContext and the Python system's user helpers."""

import os
import threading
from typing import Optional

from .models import UserContext


def create_user_context(user_id: str, is_admin: bool = False) -> UserContext:
    """UserContext(user_id, "<user_id>@app", ["admin", "user"] or ["user"])."""
    roles = ["admin", "user"] if is_admin else ["user"]
    return UserContext(user_id=user_id, username=f"{user_id}@app", roles=roles)


def get_system_user() -> UserContext:
    """UserContext("system", "system@app", ["admin"])."""
    return UserContext(user_id="system", username="system@app", roles=["admin"])


def get_default_user() -> UserContext:
    """The user named by DEFAULT_USER_ID (default "system"), as an administrator."""
    user_id = os.environ.get("DEFAULT_USER_ID", "system")
    return UserContext(user_id=user_id, username=f"{user_id}@app", roles=["admin"])


class AuthContext:
    """The process-wide current user. Every method is a classmethod."""

    _instance: Optional["AuthContext"] = None
    _current_user: Optional[UserContext] = None
    _lock = threading.Lock()

    @classmethod
    def initialize(cls, user_context: UserContext) -> "AuthContext":
        """Sets the current user; returns the instance."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            cls._current_user = user_context
            return cls._instance

    @classmethod
    def initialize_from_env(cls) -> "AuthContext":
        """initialize() with DEFAULT_USER_ID (default "system"), an administrator
        unless DEFAULT_USER_ADMIN (default true) is other than true, 1 or yes."""
        user_id = os.environ.get("DEFAULT_USER_ID", "system")
        is_admin = os.environ.get("DEFAULT_USER_ADMIN", "true").lower() in ("true", "1", "yes")
        return cls.initialize(create_user_context(user_id, is_admin=is_admin))

    @classmethod
    def get_instance(cls) -> "AuthContext":
        """The instance; RuntimeError if initialize() was not called."""
        if cls._instance is None:
            raise RuntimeError(
                "AuthContext is not initialized: call AuthContext.initialize(user_context) "
                "or AuthContext.initialize_from_env()")
        return cls._instance

    @classmethod
    def get_current_user(cls) -> UserContext:
        """The current user; RuntimeError if none is set."""
        user = cls._current_user
        if user is None:
            raise RuntimeError(
                "no current user: call AuthContext.initialize(user_context) or "
                "AuthContext.set_current_user(user_context)")
        return user

    @classmethod
    def set_current_user(cls, user_context: UserContext) -> None:
        cls._current_user = user_context

    @classmethod
    def is_initialized(cls) -> bool:
        return cls._instance is not None

    @classmethod
    def reset(cls) -> None:
        """Forgets the instance and the current user."""
        with cls._lock:
            cls._instance = None
            cls._current_user = None


def get_current_user() -> UserContext:
    """AuthContext.get_current_user()."""
    return AuthContext.get_current_user()
