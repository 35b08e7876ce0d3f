"""Fixtures for the secure_credentials tests (run by CTest through scripts/test).

Nothing is mocked: vaults are real SQLite files in temporary directories, the
PostgreSQL server is the throwaway one scripts/test starts (PG* variables),
and the CLI is the real credential_manager binary (CREDENTIALS_CLI_PATH).
"""

import os
import secrets
import subprocess
import textwrap
from pathlib import Path

import pytest

import secure_credentials as sc

PG_NOT_CONFIGURED = (
    "PostgreSQL tests need PGHOST etc.: run them through scripts/test (or pg_virtualenv -t)")


@pytest.fixture
def master_key() -> str:
    return sc.generate_master_key()


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return tmp_path / ".credentials"


@pytest.fixture
def vault(vault_dir: Path, master_key: str) -> sc.CredentialVault:
    return sc.CredentialVault(vault_dir, master_key=master_key)


@pytest.fixture
def alice() -> sc.UserContext:
    return sc.UserContext(user_id="alice", username="alice@example.com", roles=["user"])


@pytest.fixture
def bob() -> sc.UserContext:
    return sc.UserContext(user_id="bob", username="bob@example.com", roles=["user"])


@pytest.fixture
def admin() -> sc.UserContext:
    return sc.UserContext(user_id="root", username="root@example.com", roles=["admin"])


class Cli:
    """The real credential_manager binary on one vault."""

    def __init__(self, vault_dir: Path, master_key: str) -> None:
        self.path = os.environ.get("CREDENTIALS_CLI_PATH", "")
        if not self.path or not os.access(self.path, os.X_OK):
            pytest.fail("CREDENTIALS_CLI_PATH must name the credential_manager binary (CTest sets it)")
        self.env = dict(os.environ, CREDENTIAL_MASTER_KEY=master_key,
                        CREDENTIAL_VAULT_DIR=str(vault_dir))
        self.env.pop("CREDENTIAL_VAULT_URL", None)

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([self.path, *args], input=stdin, capture_output=True, text=True,
                              env=self.env, timeout=120)


@pytest.fixture
def cli(vault_dir: Path, master_key: str) -> Cli:
    return Cli(vault_dir, master_key)


class Postgres:
    """The throwaway server of scripts/test, through psql."""

    def __init__(self) -> None:
        if not os.environ.get("PGHOST"):
            pytest.fail(PG_NOT_CONFIGURED)
        self.host = os.environ["PGHOST"]
        self.port = int(os.environ.get("PGPORT", "5432"))
        self.database = os.environ.get("PGDATABASE", "postgres")

    def psql(self, sql: str, database: str = "") -> str:
        """Runs SQL as the superuser (from stdin: no value in any argv)."""
        args = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        if database:
            args += ["-d", database]
        done = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout

    def create_role(self, password: str, setup_sql: str = "") -> str:
        """A new LOGIN role with that password, owning a new database of the
        same name in which setup_sql ran as the role; returns the name."""
        name = f"py_{os.getpid()}_{secrets.token_hex(4)}"
        literal = password.replace("'", "''")
        self.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{literal}';\n"
                  f"CREATE DATABASE {name} OWNER {name};\n")
        if setup_sql:
            self.psql(f"SET ROLE {name};\n{setup_sql}", database=name)
        return name


@pytest.fixture
def postgres() -> Postgres:
    return Postgres()


def write_skill(skills_dir: Path, name: str, source: str, query: str, credential_ref: str,
                requires: "list[str]") -> None:
    """A data_query skill.md, as the Python system's skills are written."""
    folder = skills_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    requires_yaml = "".join(f"  - {r}\n" for r in requires) or "  []\n"
    (folder / "skill.md").write_text(textwrap.dedent(f"""\
        ---
        name: {name}
        description: {name} (test skill)
        requires:
        """) + requires_yaml + textwrap.dedent(f"""\
        produces:
          - query_result
        executor: action
        action:
          type: data_query
          source: {source}
          query: "{query}"
          credential_ref: "{credential_ref}"
        ---
        # {name}
        """))


@pytest.fixture
def postgres_vault_url(postgres: Postgres) -> str:
    """A shared vault on the throwaway server, in a schema of its own."""
    from urllib.parse import quote
    user = quote(os.environ.get("PGUSER", "postgres"), safe="")
    password = quote(os.environ.get("PGPASSWORD", ""), safe="")
    schema = f"py_vault_{os.getpid()}_{secrets.token_hex(4)}"
    return (f"postgresql://{user}:{password}@{quote(postgres.host, safe='')}:{postgres.port}/"
            f"{quote(postgres.database, safe='')}?schema={schema}")


@pytest.fixture(params=["sqlite", "postgres"])
def any_vault(request, tmp_path: Path, master_key: str) -> sc.CredentialVault:
    """The embedded vault, then the shared vault on PostgreSQL."""
    if request.param == "sqlite":
        return sc.CredentialVault(tmp_path / ".credentials", master_key=master_key)
    url = request.getfixturevalue("postgres_vault_url")
    return sc.CredentialVault(url=url, master_key=master_key)
