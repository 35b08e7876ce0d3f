"""execute_skill under asyncio: concurrent executions on SQLite and PostgreSQL,
each with its caller's credential, while the event loop keeps running."""

import asyncio
import sqlite3
import time

import pytest

import secure_credentials as sc
from conftest import write_skill

NUMBERS = "CREATE TABLE numbers (n int PRIMARY KEY, label text);\n"


def sqlite_database(path, label):
    with sqlite3.connect(path) as db:
        db.executescript(NUMBERS)
        db.executemany("INSERT INTO numbers VALUES (?, ?)",
                       [(n, f"{label}-{n}") for n in range(1, 11)])
    db.close()
    return str(path)


@pytest.fixture
def setup(any_vault, postgres, tmp_path, alice, bob):
    """alice and bob each hold `lite_app` (their own SQLite database) and
    `pg_app` (their own PostgreSQL role and database), under the same names."""
    vault = any_vault
    for user in (alice, bob):
        label = user.user_id
        vault.store_credential(user, "lite_app", "sqlite", "",
                               sqlite_database(tmp_path / f"{label}.db", f"lite-{label}"), "",
                               "unused")
        password = f"{label}-pg-pw/@:"
        role = postgres.create_role(password, NUMBERS + (
            f"INSERT INTO numbers SELECT n, 'pg-{label}-' || n FROM generate_series(1, 10) n;\n"))
        vault.store_credential(user, "pg_app", "postgres", postgres.host, role, role, password,
                               port=postgres.port)
    skills = tmp_path / "skills"
    write_skill(skills, "LiteLabel", "sqlite",
                "SELECT n, label FROM numbers WHERE n = {n}", "lite_app", ["n"])
    write_skill(skills, "PgLabel", "postgres",
                "SELECT n, label, pg_sleep({seconds})::text AS slept FROM numbers WHERE n = {n}",
                "pg_app", ["n", "seconds"])
    write_skill(skills, "PgInsert", "postgres",
                "INSERT INTO numbers VALUES ({n}, {label})", "pg_app", ["n", "label"])
    return vault, str(skills)


async def ticking_while(awaitable):
    """Runs the awaitable while a coroutine ticks every 10 ms; returns
    (result, ticks, seconds)."""
    done = False
    ticks = 0

    async def ticker():
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        result = await awaitable
    finally:
        done = True
        await task
    return result, ticks, time.monotonic() - started


@pytest.mark.asyncio
async def test_concurrent_executions_on_sqlite_and_postgresql(setup, alice, bob):
    vault, skills = setup
    calls = []
    for user in (alice, bob):
        for n in range(1, 5):
            calls.append(("LiteLabel", user, n, {"n": n}))
            calls.append(("PgLabel", user, n, {"n": n, "seconds": 0.4}))
    gathered = asyncio.gather(*[
        sc.execute_skill(skill, {**inputs, "user_context": user}, vault=vault, skills_dir=skills)
        for skill, user, _, inputs in calls])
    results, ticks, seconds = await ticking_while(gathered)
    for (skill, user, n, _), result in zip(calls, results):
        prefix = "lite" if skill == "LiteLabel" else "pg"
        assert result["row_count"] == 1
        assert result["query_result"][0]["label"] == f"{prefix}-{user.user_id}-{n}"
    # 8 PostgreSQL executions of 0.4 s: 3.2 s one after another; the default
    # executor runs them on its threads (6 on two CPUs), about 0.8 s.
    assert seconds < 2.0, f"{seconds:.2f} s"
    # The event loop ran all along.
    assert ticks >= seconds * 100 * 0.3, (ticks, seconds)


def test_statements_without_rows_and_the_user_from_auth_context(setup, alice, bob):
    vault, skills = setup
    sc.AuthContext.initialize(bob)
    try:
        inserted = asyncio.run(sc.execute_skill("PgInsert", {"n": 11, "label": "eleven"},
                                                vault=vault, skills_dir=skills))
        assert inserted == {"affected_rows": 1}
        # It went into bob's database, not alice's.
        bob_row = asyncio.run(sc.execute_skill("PgLabel", {"n": 11, "seconds": 0},
                                               vault=vault, skills_dir=skills))
        assert bob_row["query_result"][0]["label"] == "eleven"
        alice_row = asyncio.run(sc.execute_skill(
            "PgLabel", {"n": 11, "seconds": 0, "user_context": alice}, vault=vault,
            skills_dir=skills))
        assert alice_row == {"query_result": [], "row_count": 0}
    finally:
        sc.AuthContext.reset()
    with pytest.raises(RuntimeError, match="needs a user"):
        asyncio.run(sc.execute_skill("LiteLabel", {"n": 1}, vault=vault, skills_dir=skills))


def test_skill_errors_are_python_exceptions(setup, alice, bob):
    vault, skills = setup

    def run(skill, inputs):
        return asyncio.run(sc.execute_skill(skill, inputs, vault=vault, skills_dir=skills))

    with pytest.raises(sc.SkillError, match="NoSuchSkill"):
        run("NoSuchSkill", {"user_context": alice})
    with pytest.raises(sc.SkillError, match="n"):
        run("LiteLabel", {"user_context": alice})
    stranger = sc.create_user_context("carol")
    with pytest.raises(sc.CredentialNotFoundError):
        run("LiteLabel", {"n": 1, "user_context": stranger})
    with pytest.raises(sc.DatabaseError) as caught:
        run("PgInsert", {"n": 1, "label": "xyzzy-label", "user_context": alice})
    assert "xyzzy" not in str(caught.value)  # input values are scrubbed from it
    with pytest.raises(TypeError):
        run("LiteLabel", {"n": object(), "user_context": alice})
