"""execute_skill: the framework's call, run on a thread so the event loop never blocks."""

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Optional

from . import _secure_credentials as _native
from .auth import AuthContext
from .vault import CredentialVault, _user, get_vault


def _execute(skill_name: str, inputs: dict, user: Any, vault: Optional[CredentialVault],
             skills_dir: Optional[str]) -> Any:
    payload = json.dumps(inputs, allow_nan=False)
    if vault is None and skills_dir is None:
        result = _native.execute_skill(skill_name, payload, user)
    else:
        runner = (vault if vault is not None else get_vault())._runner(skills_dir)
        result = runner.execute(skill_name, payload, user)
    return json.loads(result)


async def execute_skill(skill_name: str, inputs: Optional[Mapping] = None, *,
                        vault: Optional[CredentialVault] = None,
                        skills_dir: Optional[str] = None) -> Any:
    """Runs the skill `skill_name` for the user in inputs["user_context"] (else
    AuthContext's current user) and returns its result:
    {"query_result": [rows], "row_count": n}, or {"affected_rows": n}.

    The skill comes from skills_dir (else CREDENTIAL_SKILLS_DIR, else ./skills)
    and its credential from vault (else get_vault()). The other inputs fill the
    query's {placeholders} as bound parameters; inputs["user_context"] is
    available to them as a dict (user_id, username, roles). Runs on a thread
    of the default executor with the GIL released, so the event loop and other
    threads keep running."""
    if not isinstance(skill_name, str):
        raise TypeError(f"skill_name must be a str, not {type(skill_name).__name__}")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"inputs must be a dict, not {type(inputs).__name__}")
    inputs = dict(inputs or {})
    given = inputs.get("user_context")
    if given is None:
        try:
            given = AuthContext.get_current_user()
        except RuntimeError:
            raise RuntimeError(
                "execute_skill needs a user: pass inputs['user_context'] or set one with "
                "AuthContext.initialize(user_context)") from None
    user = _user(given, "inputs['user_context']")
    inputs["user_context"] = user.dict()
    return await asyncio.to_thread(_execute, skill_name, inputs, user, vault, skills_dir)
