"""A framework's program, written against the Python system's API, runs
unchanged once its services/credentials/__init__.py is the one line
`from secure_credentials import *` (framework_app/)."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]

# A password with every character a URL or a shell could trip on.
ALICE_DB_PASSWORD = "Al1ce p@ss/w:rd#%?&='\"\\ é"

USERS_TABLE = "CREATE TABLE users (id int PRIMARY KEY, email text, name text, " \
              "created_at text, status text);\n"


def test_the_framework_demo_runs_unchanged_on_secure_credentials(tmp_path, master_key, postgres):
    role = postgres.create_role(ALICE_DB_PASSWORD, USERS_TABLE + (
        "INSERT INTO users VALUES (1, 'ada@postgres.example', 'Ada', '2026-01-02', 'active'),"
        " (2, 'grace@postgres.example', 'Grace', '2026-02-03', 'active');\n"))
    sqlite_path = tmp_path / "bob.db"
    with sqlite3.connect(sqlite_path) as db:
        db.executescript(USERS_TABLE + (
            "INSERT INTO users VALUES (1, 'bob@sqlite.example', 'Bob', '2026-03-04', 'active');"))
    db.close()

    # The framework's own directory first on the path, the package after it.
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE / "framework_app"), env.get("PYTHONPATH", "")]),
        PYTHONDONTWRITEBYTECODE="1",
        CREDENTIAL_MASTER_KEY=master_key, CREDENTIAL_VAULT_DIR=str(tmp_path / ".credentials"),
        CREDENTIAL_SKILLS_DIR=str(REPOSITORY / "skills"),
        DEMO_PG_HOST=postgres.host, DEMO_PG_PORT=str(postgres.port), DEMO_PG_DATABASE=role,
        DEMO_PG_USER=role, DEMO_PG_PASSWORD=ALICE_DB_PASSWORD, DEMO_SQLITE_PATH=str(sqlite_path))
    for name in ("CREDENTIAL_VAULT_URL", "DATABASE_URL", "PGPASSWORD", "DEFAULT_USER_ID"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, str(HERE / "framework_app" / "demo_secure_credentials.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("demo complete")
    assert "[FAILED]" not in done.stdout
    assert done.stderr == ""
    # The masked URL was printed; the password never was, in any form.
    assert "****@" in done.stdout
    assert ALICE_DB_PASSWORD not in done.stdout
    assert "Al1ce" not in done.stdout
    assert (tmp_path / ".credentials" / "vault.db").exists()
