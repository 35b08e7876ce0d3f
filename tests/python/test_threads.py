"""Threads sharing one vault: every blocking call releases the GIL, so other
threads run while one waits inside the library, and calls overlap."""

import asyncio
import subprocess
import threading
import time

import pytest

import secure_credentials as sc
from conftest import write_skill

THREADS = 6


def test_a_call_waiting_inside_the_library_lets_other_threads_run(vault, vault_dir, alice):
    vault.store_credential(alice, "seed", "postgres", "h", "d", "u", "pw")
    # Another process holds the vault's write lock: the next write waits for it.
    holder = subprocess.Popen(["sqlite3", str(vault_dir / "vault.db")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"

        outcome = {}

        def store():
            started = time.monotonic()
            try:
                outcome["id"] = vault.store_credential(alice, "waited", "postgres", "h", "d", "u",
                                                       "pw")
            except Exception as error:  # reported below
                outcome["error"] = error
            outcome["seconds"] = time.monotonic() - started

        writer = threading.Thread(target=store)
        writer.start()
        # Pure Python on this thread for a second, while the writer waits. With
        # the GIL held by the waiting call this loop could not run until the
        # library gave up (its busy timeout is 30 s), and the writer would have
        # failed by then.
        ticks = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            ticks += 1
        assert writer.is_alive(), f"the writer did not wait for the lock: {outcome}"
        assert ticks > 10_000
        holder.stdin.write("COMMIT;\n.quit\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
    writer.join(timeout=60)
    assert not writer.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["seconds"] >= 0.9
    assert vault.get_credential(alice, "waited").credential_id == outcome["id"]


def test_threads_share_one_vault(any_vault):
    vault = any_vault
    admin = sc.UserContext(user_id="root", username="root", roles=["admin"])
    vault.store_credential(admin, "shared", "postgres", "h", "d", "u", "v0")
    users = [sc.create_user_context(f"user{i}") for i in range(THREADS)]
    ids = {}
    errors = []
    start = threading.Barrier(THREADS)
    rotations = 5

    def work(index):
        user = users[index]
        try:
            start.wait()
            ids[index] = [vault.store_credential(user, f"db{k}", "postgres", f"host{index}", "d",
                                                 "u", f"pw-{index}-{k}") for k in range(8)]
            for k in range(8):
                vault.update_password(user, f"db{k}", f"new-{index}-{k}")
                credential = vault.get_credential(user, f"db{k}")
                assert vault.get_decrypted_password(credential) == f"new-{index}-{k}"
                assert credential.host == f"host{index}"
            assert [c.name for c in vault.list_credentials(user)] == [f"db{k}" for k in range(8)]
            for _ in range(rotations):
                vault.update_password(admin, "shared", f"by-{index}")
            # Another thread's credential, by id: never reachable.
            other = (index + 1) % THREADS
            while other not in ids:
                time.sleep(0.01)
            with pytest.raises(sc.UnauthorizedAccessError):
                vault.get_credential(user, ids[other][1])
            vault.delete_credential(user, "db0")
        except BaseException as error:  # collected for the main thread
            errors.append((index, error))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    # No lost update: every rotation of the shared credential made a version.
    assert vault.get_credential(admin, "shared").version == 1 + THREADS * rotations
    assert len(vault.list_credentials(admin)) == 1 + THREADS * 7


def test_skill_executions_on_threads_overlap(vault, alice, postgres, tmp_path):
    role_password = "thr-pw-Z9"
    role = postgres.create_role(role_password)
    vault.store_credential(alice, "pg_app", "postgres", postgres.host, role, role, role_password,
                           port=postgres.port)
    skills = tmp_path / "skills"
    write_skill(skills, "Sleeper", "postgres", "SELECT {n}::int AS n, pg_sleep({seconds})::text AS slept",
                "pg_app", ["n", "seconds"])
    sleep = 0.6
    # Warm up: one connection made, the skills loaded.
    asyncio.run(sc.execute_skill("Sleeper", {"n": 0, "seconds": 0, "user_context": alice},
                                 vault=vault, skills_dir=str(skills)))
    results = {}

    def run(n):
        results[n] = asyncio.run(sc.execute_skill(
            "Sleeper", {"n": n, "seconds": sleep, "user_context": alice}, vault=vault,
            skills_dir=str(skills)))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    assert sorted(results) == [0, 1, 2, 3]
    assert all(results[n]["query_result"] == [{"n": n, "slept": ""}] for n in results)
    # One after another they take 4 x 0.6 = 2.4 s; overlapping, about 0.6 s.
    assert elapsed < 0.6 * 4 * 0.6, f"4 executions of {sleep} s took {elapsed:.2f} s"
