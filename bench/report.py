#!/usr/bin/env python3
"""Writes docs/PERFORMANCE.md from the JSON that bench/run leaves in <build>/results.

Usage: python3 bench/report.py build-bench/results > docs/PERFORMANCE.md
Standard library only (Debian's python3).
"""
import datetime
import json
import os
import re
import statistics
import sys

RESULTS = sys.argv[1] if len(sys.argv) > 1 else "build-bench/results"
SIZES = [1000, 10000, 100000]
UNIT_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# --- Google Benchmark results: {run_name: {"median": us, "cv": frac, ...}} -----------
bench = {}
errors = {}
started = {}  # binary -> when its run started (a partial rerun keeps the others' results)
for file in ("floors_bench.json", "vault_bench.json", "pgstore_bench.json", "skills_bench.json"):
    doc = load(file)
    if not doc:
        continue
    started[file.removesuffix(".json")] = doc.get("context", {}).get("date", "?")
    for b in doc.get("benchmarks", []):
        # Names carry "/iterations:1/repeats:3" when a benchmark fixes them; drop those.
        run = re.sub(r"/(iterations|repeats):\d+", "", b.get("run_name", b["name"]))
        if b.get("error_occurred"):
            errors[run] = b.get("error_message", "error")
            continue
        entry = bench.setdefault(run, {"counters": {}})
        t = b["real_time"] * UNIT_US[b.get("time_unit", "ns")]
        agg = b.get("aggregate_name")
        if agg in ("median", "mean", "stddev", "min", "max"):
            entry[agg] = t
            entry[agg + "_cpu"] = b["cpu_time"] * UNIT_US[b.get("time_unit", "ns")]
        elif agg == "cv":
            entry["cv"] = b["real_time"]  # a fraction
        elif b.get("run_type") == "iteration":
            entry.setdefault("runs", []).append(t)
            entry.setdefault("cpu_runs", []).append(b["cpu_time"] * UNIT_US[b.get("time_unit", "ns")])
        for k in ("rss_delta_kb", "records", "sealed_bytes", "value_bytes", "items_per_second",
                  "populate_s", "credentials_per_s",
                  # the paired benchmarks (bench_common.h PairedTimer)
                  "ratio", "paired_ratio", "big_us", "small_us", "skill_us", "raw_us"):
            if k in b and (agg in (None, "median")):
                entry["counters"][k] = b[k]
for entry in bench.values():
    if "median" not in entry and entry.get("runs"):
        entry["median"] = statistics.median(entry["runs"])
        entry["median_cpu"] = statistics.median(entry["cpu_runs"])
        entry["min"], entry["max"] = min(entry["runs"]), max(entry["runs"])
        if len(entry["runs"]) > 1:
            entry["cv"] = statistics.stdev(entry["runs"]) / statistics.mean(entry["runs"])


# Notes for figures a run could not produce (results/notes.json, written by hand:
# {"BM_ImportLegacy/credentials:100000/real_time": "stopped after 6 min"}).
notes = load("notes.json") or {}


def g(run):
    """Median in microseconds of a benchmark run name, or None."""
    e = bench.get(run)
    return e.get("median") if e else None


def cpu(run):
    e = bench.get(run)
    return e.get("median_cpu") if e else None


def spread(run):
    e = bench.get(run)
    if not e or e.get("cv") is None:
        return ""
    return f"±{e['cv'] * 100:.0f}%"


def counter(run, key):
    e = bench.get(run)
    return e["counters"].get(key) if e else None


# --- hyperfine (or the python fallback) for the CLI -----------------------------------
def cli(name):
    doc = load(name)
    if not doc:
        return None
    r = doc["results"][0]
    times = [t * 1e6 for t in r["times"]]
    med = statistics.median(times)
    cv = statistics.stdev(times) / statistics.mean(times) if len(times) > 1 else None
    return {"median": med, "cv": cv, "min": min(times), "max": max(times), "n": len(times)}


def fmt_time(us):
    if us is None:
        return "–"
    if us < 1:
        return f"{us * 1000:.0f} ns"
    if us < 1000:
        return f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"
    if us < 1e6:
        return f"{us / 1000:.2f} ms" if us < 1e4 else f"{us / 1000:.0f} ms"
    return f"{us / 1e6:.2f} s"


def ratio(value, floor):
    if value is None or not floor:
        return "–"
    r = value / floor
    return f"{r:.1f}×" if r < 100 else f"{r:.0f}×"


# --- floors ---------------------------------------------------------------------------
aead = g("BM_AeadDecryptRecord/real_time")
hmac = g("BM_HmacLookupTag/real_time")
fsync_full = g("BM_Sync4KiB/fdatasync:0/real_time")
# SQLite syncs its WAL with fdatasync on Linux: that is the durable-write floor.
fsync = g("BM_Sync4KiB/fdatasync:1/real_time") or fsync_full
libpq = g("BM_LibpqRoundTrip/real_time")
commit_nosync = g("BM_SqliteWriteTransaction/durable:0/real_time")
commit_sync = g("BM_SqliteWriteTransaction/durable:1/real_time")


def lookup(size):
    return g(f"BM_SqlitePointLookup/rows:{size}/real_time")


def sum_or_none(*xs):
    return None if any(x is None for x in xs) else sum(xs)


def vb(name, size):
    return f"BM_{name}/credentials:{size}/real_time"


machine = load("machine-start.json") or {}
machine_end = load("machine-end.json") or {}
sizes = [s for s in SIZES if g(vb("GetCredential", s)) is not None] or [1000]
big = sizes[-1]

# Each row: label, run name or value per size, floor per size, floor label,
# the Python figure per size, the target (predicate on the 100k value).
rows = []


def row(label, values, floors, floor_label, python=None, note=""):
    rows.append((label, values, floors, floor_label, python or {}, note))


get_floor = {s: sum_or_none(lookup(s), aead) for s in sizes}
row("`get_credential` (decrypt + authorization + audit event)",
    {s: vb("GetCredential", s) for s in sizes}, get_floor, "SQLite lookup + AES-GCM decrypt")
row("`get_credential` just after another handle's commit (kept records dropped)",
    {s: vb("GetAfterAnotherHandlesCommit", s) for s in sizes}, get_floor,
    "SQLite lookup + AES-GCM decrypt")
row("`get_credential` + `build_connection_string`",
    {s: vb("GetConnectionString", s) for s in sizes}, get_floor, "SQLite lookup + AES-GCM decrypt",
    {1000: 77, 10000: 1400, 100000: 8300})
row("`list_credentials` (user holding 100)",
    {s: vb("ListCredentials100", s) for s in sizes},
    {s: sum_or_none(lookup(s), 100 * aead if aead else None) for s in sizes},
    "SQLite lookup + 100 AES-GCM decrypts")
row("`store_credential` (durable)", {s: vb("StoreCredential", s) for s in sizes},
    {s: fsync for s in sizes}, "fdatasync (4 KiB write + fdatasync)", {1000: 38000, 10000: 387000, 100000: 4.3e6})
row("`update_password` (durable)", {s: vb("UpdatePassword", s) for s in sizes},
    {s: fsync for s in sizes}, "fdatasync (4 KiB write + fdatasync)")
row("`store_credentials`, 100 in one transaction", {s: vb("StoreCredentialsBatch100", s) for s in sizes},
    {s: sum_or_none(fsync, 100 * aead if aead else None) for s in sizes}, "fdatasync + 100 AES-GCM")
row("open vault + first `get_credential` (in-process)", {s: vb("OpenAndFirstGet", s) for s in sizes},
    get_floor, "SQLite lookup + AES-GCM decrypt", {1000: 19000, 10000: 198000, 100000: 2.5e6})
row("`rotate_master_key` (raw 44-character key)", {s: vb("RotateMasterKey", s) for s in sizes},
    {s: fsync for s in sizes}, "fdatasync")
row("`rotate_master_key` (passphrase: Argon2id 64 MiB)",
    {s: vb("RotateMasterKeyPassphrase", s) for s in sizes}, {s: fsync for s in sizes}, "fdatasync")


def per_record_floor(size, per_record, batch=None):
    if aead is None or fsync is None:
        return None
    n = size + (100 if size else 0)
    return n * per_record * aead + (max(1, n // batch) if batch else 1) * fsync


row("`reencrypt` of every record", {s: vb("Reencrypt", s) for s in sizes},
    {s: per_record_floor(s, 2, 500) for s in sizes},
    "N × 2 AES-GCM + one fdatasync per 500")
row("`import_legacy` of a Python vault", {s: vb("ImportLegacy", s) for s in sizes},
    {s: (s * aead + fsync) if aead and fsync else None for s in sizes}, "N × AES-GCM + fdatasync")

cli_rows = {s: cli(f"cli-list-{s}.json") for s in sizes}
cli_floor = cli("cli-version.json")


def value_of(v):
    """A row cell's value: a run name, or a dict from the CLI."""
    if isinstance(v, str):
        return g(v), spread(v)
    if isinstance(v, dict):
        return v["median"], (f"±{v['cv'] * 100:.0f}%" if v.get("cv") is not None else "")
    return None, ""


# --- targets at the largest size ------------------------------------------------------
def at(run_name):
    return g(run_name)


get_big = at(vb("GetCredential", big))
store_big, store_small = at(vb("StoreCredential", big)), at(vb("StoreCredential", 1000))
upd_big, upd_small = at(vb("UpdatePassword", big)), at(vb("UpdatePassword", 1000))
open_big = at(vb("OpenAndFirstGet", big))
rss = load(f"rss-{big}.json") or {}
cli_big = cli_rows.get(big)
cli_rss = load(f"cli-rss-{big}.json") or {}
rotate_big = at(vb("RotateMasterKey", big))
reenc_big = at(vb("Reencrypt", big))
import_big = at(vb("ImportLegacy", big))
skill_pg = g("BM_SkillPostgresWarmPool/real_time")
raw_prep = g("BM_RawLibpqPrepared/real_time")
raw_params = g("BM_RawLibpqExecParams/real_time")
new_conn = g("BM_NewConnectionPerExecution/real_time")
skill_lite = g("BM_SkillSqliteWarmPool/real_time")
raw_lite = g("BM_RawSqlitePrepared/real_time")

# The ratio targets are judged on the paired benchmarks (both operations timed
# within each iteration, bench_common.h PairedTimer): the median over the
# repetitions of median(a) / median(b). The separate benchmarks' figures stay in
# the tables; a ratio of two of them, taken minutes apart, moved by ±30% here.
PAIRED = {
    "skill": "BM_SkillVsRawLibpqPaired/real_time",
    "update": "BM_UpdatePasswordGrowthPaired/real_time",
    "store": "BM_StoreCredentialGrowthPaired/real_time",
}


def paired(key, a, b):
    """(ratio, a µs, b µs) from a paired benchmark, or None when it did not run."""
    run = PAIRED[key]
    r = counter(run, "ratio")
    return None if r is None else (r, counter(run, a), counter(run, b))


def growth_target(key, big_fig, small_fig):
    """The figure and verdict of '≤ 2 ms and ≤ 1.5× its 1,000 figure'."""
    p = paired(key, "big_us", "small_us")
    if p is None:
        return (f"{fmt_time(big_fig)} ({ratio(big_fig, small_fig)} of 1,000)",
                None if big_fig is None or small_fig is None else (big_fig <= 2000 and big_fig <= 1.5 * small_fig))
    r, big_us, small_us = p
    return (f"{fmt_time(big_fig)}; {r:.2f}× of 1,000 paired ({fmt_time(big_us)} vs {fmt_time(small_us)})",
            None if big_fig is None else (big_fig <= 2000 and r <= 1.5))


def skill_target():
    p = paired("skill", "skill_us", "raw_us")
    if p is None:
        return (f"{ratio(skill_pg, raw_prep)} ({fmt_time(skill_pg)} vs {fmt_time(raw_prep)})",
                None if skill_pg is None or raw_prep is None else skill_pg <= 1.15 * raw_prep)
    r, skill_us, raw_us = p
    return (f"{r:.2f}× paired ({fmt_time(skill_us)} vs {fmt_time(raw_us)})", r <= 1.15)



def check(value, limit):
    if value is None:
        return None
    return value <= limit


targets = [
    ("get", "`get_credential` median ≤ 25 µs (audited)", fmt_time(get_big), check(get_big, 25)),
    ("store", "`store_credential` median ≤ 2 ms and ≤ 1.5× its 1,000 figure",
     *growth_target("store", store_big, store_small)),
    ("update", "`update_password` median ≤ 2 ms and ≤ 1.5× its 1,000 figure",
     *growth_target("update", upd_big, upd_small)),
    ("open", "open + first get ≤ 10 ms", fmt_time(open_big), check(open_big, 10000)),
    ("memory", "memory with the vault open ≤ 50 MB",
     f"{rss.get('rss_kb', 0) / 1024:.1f} MB RSS (library process); "
     f"{cli_rss.get('max_rss_kb', 0) / 1024:.1f} MB peak (CLI `list`)" if rss else "–",
     (max(rss.get("rss_kb", 0), cli_rss.get("max_rss_kb", 0)) <= 50 * 1024) if rss else None),
    ("cli", "`credential_manager list --user U` (100) as a process ≤ 15 ms",
     fmt_time(cli_big["median"]) if cli_big else "–", check(cli_big["median"] if cli_big else None, 15000)),
    ("rotate", "`rotate-master-key` ≤ 50 ms", fmt_time(rotate_big), check(rotate_big, 50000)),
    ("reencrypt", "`reencrypt` of every record ≤ 10 s", fmt_time(reenc_big), check(reenc_big, 10e6)),
    ("import", "`import-legacy` of 100,000 ≤ 15 s",
     notes.get(vb("ImportLegacy", big), fmt_time(import_big)),
     False if vb("ImportLegacy", big) in notes else check(import_big, 15e6)),
    ("skill", "`execute_skill` warm pool ≤ 1.15× raw libpq prepared", *skill_target()),
]

# Why a target is missed and what would close it: from reading the code paths
# the benchmarks drive (src/vault/embedded_vault.cc, src/store/sqlite_store.cc,
# src/skills/skill_runner.cc, src/db/). Shown only for targets missed in this run.
WHY = {
    "get": """A get is the lookup and decrypt (the floor column: one SQLite point
lookup, one AES-GCM decrypt) plus its audit event, in one read transaction;
the version ledger's path is checked unless the handle verified the record's
version while `PRAGMA data_version` has not moved (docs/FORMAT.md).
What is left of a get is its audit event: the row with its event minus the
row without. On this machine the figure at 100,000 moved between 7.9 and
13 µs between runs minutes apart (A/B runs of the same build against the one
that kept 16,384 records: 7.9-9.2 against 16-18.5 µs), so a single run can
land on either side of the target.
Each handle reads every credential once before it is measured (a warm
process; the cold case is the open + first get row). A read of a record not
kept (a first read, or one after another connection's commit) takes the path
the benchmark at 100,000 took when it kept only 16,384: the version ledger's
verified answer is kept (for up to 131,072 credentials) while no other
connection commits, so a get reads the record alone, with SQLite's
`data_version`, in one read transaction (two `fcntl` calls for its lock on this
file system, ~2 µs here; the B-tree descents through the 75 MB file, ~4 µs, are
memory stalls on pages no cache holds), or, the first time, with its ledger
path. The event costs no write transaction: it is sealed, HMAC-chained and
appended to the handle's audit segment file with one `write(2)` before the
value is returned (docs/FORMAT.md, "Audit segments"), and anchored in batches
of up to 1,024 (or after a second) by one non-durable transaction that inserts
the entries into `audit_segment` and appends one anchor event to the chain.
The figures here were measured with the previous design of read events (a
mapped file, no system call per read); rerun `bench/run` for this one. A
`write(2)` per read cost 2.1 µs on this machine when last measured.
Last-used times are written once a minute or per 65,536 credentials read, a
sixteenth of the key range (of the table's pages) per anchor: at 100,000
credentials the `credentials` table has ~2,200 pages, and a batch of 4,096
dirtied ~1,900 of them, ~18 µs a read in WAL pages and checkpoints; a batch
of 65,536 shares them. The longest single reads are the anchor transactions
and SQLite's WAL checkpoints, which run on the thread whose commit crosses
1,000 WAL pages.
*What would close it:* to be reassessed with the new figures. The two `fcntl`
locks of SQLite's read transaction remain (SQLite's WAL index lock); on a
machine with cheaper system calls the same code is several µs faster.""",
    "store": """A durable write is one `BEGIN IMMEDIATE` … `COMMIT` with
synchronous=FULL in WAL mode: one `fdatasync` of the WAL at commit, plus the
encryption, three HMAC tags and B-tree inserts. The floor column is one
`fdatasync` on this file system (SQLite's own sync call; a full `fsync` is in
the floors table); the figure cannot go below it. If that floor alone is near
or above 2 ms the disk misses the target for any durable store. The rest is
SQLite's page writes (WAL frames for the credentials, versions, ids, keys and
audit tables and their indexes; `add_encryptions` rewrites the keys row on
every write; an update also reseals the superseded version) and a WAL
checkpoint every ~1,000 pages, which syncs the database file too — those are
the slow outliers in the spread.
*What would close it:* fewer WAL pages per write (merge `credential_ids` into
`credentials`, count encryptions per batch instead of per record); checkpoints
in the background (`wal_autocheckpoint=0` + a checkpoint thread) so no commit
pays for one; a disk with a faster sync.""",
    "open": """Opening derives the KEK (HKDF for a raw key; Argon2id, 64 MiB, for a
passphrase — by design about 0.1–1 s), unwraps the keys, opens SQLite and
serves one audited read (a segment file is created for it: `open`, `flock`,
`rename`). Nothing proportional to the vault is loaded. The write-ahead log is
kept between processes (no checkpoint when the last connection closes), so the
first connection rebuilds its index by reading the log (up to ~4 MB, the
auto-checkpoint size) instead of paying syncs.
*What would close it:* a smaller `wal_autocheckpoint` bounds the log to read;
with a passphrase, Argon2id stays by design: use the raw key format for
processes that open often.""",
    "memory": """The resident set of a library process includes the pages of the
database file read so far through SQLite's memory map (shared, file-backed:
the kernel's page cache, reclaimable, up to 256 MiB of the file). Then the
SQLite page cache (2 MB default),
the libraries (OpenSSL, libsodium, yaml-cpp; libpq only once PostgreSQL is
used), after a passphrase unlock, Argon2id's 64 MiB work area.
*What would close it:* the raw key format (no Argon2), `PRAGMA cache_size`.""",
    "cli": """A CLI `list` is process start-up, then opening the vault (SQLite
reads its write-ahead log, HKDF, key unwrapping), decrypting 100 records and
checking their versions against the version ledger, one segment append and,
at exit, one transaction that anchors the segment (not fsynced). On this
virtual machine every fresh page a process touches costs ~10 µs (measured: a
page fault 12-24 µs, even MAP_POPULATE 6-9 µs per page), so start-up is
counted in pages: a static "hello world" touches 26 and takes ~2 ms. Done:
credential_manager links the library's objects and static SQLite, libsodium,
yaml-cpp and libstdc++ (7,500 symbol lookups gone); CLI11 registers only the
verb being run; AES-256-GCM, HMAC, SHA-256 and HKDF come from libsodium, so
OpenSSL is neither initialised (its first fetch: 5.7 million instructions)
nor even loaded (libcrypto is opened with dlopen by the legacy importer only). `--version` went from 27 to 5.7 ms and 188 page faults. The version
ledger's buckets are chosen by owner first (format 4), so checking one user's
100 records verifies 4 inner nodes instead of ~50 (15.2 → 9.2 million
instructions for a whole `list` at 1,000). The ledger's memo of verified
nodes is made in blocks of 64 on first use: as one vector of 4,161 entries
it zeroed 200 KB, ~45 of a `list`'s ~275 page faults.
At 100,000 the user's records lie on ~200 random pages of a 75 MB file (the
tables are keyed by lookup tag, an HMAC), each a page fault through the map.
*What would close it:* the remaining start-up pages (heap, relocations) and,
at 100,000, fewer pages per user: keying `credentials` and `versions` by
owner tag first would put one user's records on a few pages (a migration
that rewrites every row). The ledger check still hashes ~80 KB of leaves
(~6 million instructions): smaller leaves for large vaults.""",
    "rotate": """Rotation re-wraps the three-or-more stored keys in one durable
transaction: one fsync (floor column) plus KEK derivation. With a passphrase
as the new key, Argon2id (64 MiB, 2 passes) dominates by design.
*What would close it:* nothing for passphrases short of weaker KDF
parameters (not recommended); with raw keys it is fsync-bound.""",
    "reencrypt": """Re-encryption walks the versions once in (lookup, version) order,
500 per transaction: per record one decrypt and one seal (the floor column is
one decrypt), the row rewrite (a B-tree page write each), and one sync per
batch.
*What would close it:* larger batches (fewer syncs); decrypt and re-seal on
both cores.""",
    "import": """Per credential the import decrypts one Fernet token (HMAC-SHA256 +
AES-128-CBC, after the PBKDF2 key derivation once), probes the id index and
the name index, seals the record (AES-GCM + three HMAC tags), and bumps the
data key's encryption counter — all in one transaction, so one sync in total.
The version ledger is written once per import, not once per credential, and
the Fernet token's HMAC is computed by OpenSSL (a process switches to it
once it has MACed 1 MiB; the token of a large vault is itself larger).
The import's transaction gets a page cache large enough for every page it
touches (`LargeWrite`: ~2 KiB per new record plus the existing file, at most
256 MiB, returned at the commit): with SQLite's usual 2,000 KiB, the tag-keyed
inserts evicted pages to the log and read them back (100,000: 12.8 → 7.6 s).
About half of what remains is reading the Python file: the JSON document
(a map per credential) and one Fernet decrypt per password.
*What would close it:* parse the legacy JSON straight into credentials (no
document); count encryptions once per import instead of per record; decrypt
the Fernet tokens on both cores.""",
    "skill": """A warm skill execution is the statement itself (the raw libpq
rows) plus: the check that the credential's version is still current, the
pool lease, binding, building the JSON result, and the skill's audit event (a
segment append, as for `get`). PostgreSQL statements are prepared once
per pooled connection (`PQprepare`), as in the comparator. The version check
is skipped while the vault's change stamp has not moved since the last
check; the stamp is read from the header of SQLite's shared WAL index (its
transaction counter, last frame and salts: a few loads, no lock; through
`PRAGMA data_version` it was a read transaction of its own, two `fcntl` calls,
~8 µs of CPU per execution here). A check is two index lookups, a ledger check and a decrypt by
credential id. SQLite statements are likewise kept prepared per pooled
connection.
Counted with `strace -c` over the same benchmark, an execution makes the
comparator's three system calls (`sendto`, `poll`, `recvfrom`) plus a second
`poll`, the pool's check that the server has not closed an idle connection
(without it a terminated session would fail the next execution instead of
being replaced), and ~0.4 `pwrite` for the audit event's share of SQLite's
writes under the previous design of read events (to be counted again: an event
is now one `write(2)` and a share of its anchor): SQLite writes each log frame and each checkpointed page with a call of
its own, ~7-10 µs each on this virtual machine. A profile of both benchmarks
finds the same time inside libpq's calls (sendto ~18 µs, poll ~29 µs per call
under `perf`); the difference is the runner's own work and these calls. The
comparator's round trip varies by half from run to run here (33-58 µs in the
runs of one hour), so the target is judged on the paired benchmark (both timed
within each iteration; client and server on CPUs of their own).
The success's audit event (its encoding, AES-GCM seal, MAC and append) follows the
round trip, as do the JSON result and the lease's
return. Profiled (`perf`, December 2), the runner's own work outside libpq is
~23% of the execution's CPU, of which the liveness `poll` is the largest single
part (~4%).
*What would close it:* the liveness check replaced by a retry on a fresh
connection when a pooled one turns out closed before its statement was sent (only
then is a retry safe for a statement that writes; libpq cannot tell that case
apart from a session ended during the statement); the JSON result built without
nlohmann's map per row.""",
}

# --- the document -----------------------------------------------------------------------
out = []
w = out.append
w("# Performance")
w("")
w("Generated by `bench/run` (which runs `bench/*_bench` and `bench/report.py`); do not edit by")
w("hand — rerun `bench/run` on a quiet machine and commit the result. Raw Google Benchmark")
w("JSON is left in `build-bench/results/`.")
w("")
load_start = machine.get("loadavg", ["?"] * 3)
load_end = machine_end.get("loadavg", ["?"] * 3)
w(f"- Run: {machine.get('date', '?')}, commit {machine.get('git', '?')}; "
  f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; vault file system "
  f"{machine.get('filesystem', '?')}; PostgreSQL {machine.get('pg', '?')} (pg_virtualenv, TCP to localhost"
  + (f"; fsync {machine['pg_fsync']}, synchronous_commit {machine.get('pg_synchronous_commit', '?')}, "
     f"data on {machine.get('pg_filesystem') or '?'}" if machine.get("pg_fsync") else "") + ").")
w(f"- Load average (1/5/15 min) at start {' / '.join(load_start)}, at end {' / '.join(load_end)}.")
def _started_at(date):
    try:
        return datetime.datetime.fromisoformat(date)
    except ValueError:
        return None


_starts = [t for t in map(_started_at, started.values()) if t]
# A binary that started before the run named above (machine-start.json) is
# from an earlier run; so is one that started far from the others (a whole
# bench/run takes ~15 minutes).
_run_start = _started_at(machine.get("date", "").replace(" UTC", ":00+00:00"))
_earlier = bool(_run_start and _starts and min(_starts) < _run_start - datetime.timedelta(minutes=1))
if _starts and (_earlier or max(_starts) - min(_starts) > datetime.timedelta(minutes=20)):
    w("- The binaries' results come from more than one run (a partial rerun with "
      "`CREDENTIALS_BENCH_KEEP_RESULTS=1`; the run line above is the last one; the CLI and "
      "memory figures come from whichever run last measured them): "
      + ", ".join(f"{name} started {date.replace('T', ' ')[:16]} UTC" for name, date in started.items()) + ".")
try:
    # The benchmark's own thread (and the PostgreSQL server it drives) make a
    # load of about 1: only what is above that is someone else's.
    busy = 1.0 + 0.5 * (machine.get("cores") or 1)
    if float(load_start[0]) > busy or float(load_end[0]) > busy:
        w("- **These figures were taken on a loaded machine** (the load average was above what the benchmark itself makes):")
        w("  absolute times are inflated and noisy, the ratios to floors measured in the same run")
        w("  less so. Rerun `bench/run` on a quiet machine for figures to quote.")
except ValueError:
    pass
if notes.get("_run"):
    w(f"- {notes['_run']}")
if machine.get("quick"):
    w("- **Quick run** (CREDENTIALS_BENCH_QUICK=1): the smallest size only.")
def repetitions_of(name):
    """The repetitions the per-operation benchmarks ran with (bench/run's setting)."""
    try:
        with open(os.path.join(RESULTS, name)) as f:
            runs = json.load(f).get("benchmarks", [])
        return max((b.get("repetitions") or 0 for b in runs), default=0) or "?"
    except (OSError, ValueError):
        return "?"
w(f"- Release build; wall-clock medians over repetitions ({repetitions_of('vault_bench.json')} for the per-operation figures, 3 for")
w("  the whole-vault operations, 50 runs for the CLI); spread is the coefficient of variation")
w("  (standard deviation / mean) across those repetitions.")
w("- Dataset at size N: 1,000 users × N/1,000 credentials, plus one user holding 100 (the `list`")
w("  figures); each credential a realistic record (postgres, host, database, user, 24-character")
w("  password, description, sslmode).")
w("")

w("## Targets (issue 8, at 100,000 credentials)")
w("")
w("| target | measured | met |")
w("|---|---|---|")
for key, text, measured, ok in targets:
    w(f"| {text} | {measured} | {'yes' if ok else ('**no**' if ok is False else '–')} |")
w("")

# Issue 24: the caches measured and removed (an A/B of builds, not of this run).
w("""## Caches removed (issue 24)

A cache stays only if it saves at least 20% on a figure a user sees and relies only on
documented interfaces. Measured 2026-12-07 on 2 cores shared with other builds (load
average 4 to 7): each pair A/B interleaved in one session, three rounds of five
repetitions, at 100,000 credentials; the table gives the median of the rounds' medians
(wall clock; such a load inflates every figure, ~3× for the warm get).

| cache | figure | with | without | without / with | decision |
|---|---|---|---|---|---|
| record cache, keyed by SQLite's WAL-index header (undocumented) | `get_credential` | 14.5 µs | 46.7 µs | 3.2× | removed: undocumented interface |
| the same keyed by `PRAGMA data_version` (documented) | `get_credential` | 57.0 µs | 46.7 µs | 0.8× | not kept: slower than none |
| lookup-tag cache (recent lookup tags, owner tags) | `get_credential` | 43.9 µs | 55.1 µs | 1.25× (CPU 1.23×) | kept |
| OpenSSL's HMAC after 1 MiB (libsodium's before) | `get_credential`; `update_password` | 55.1 µs; 2.15 ms | 41.7 µs; 1.23 ms | 0.76×; 0.57× | removed: libsodium only |
| vDSO `getrandom` | `get_credential`; `update_password` | 41.7 µs; 1.23 ms | 33.4 µs; 1.53 ms | CPU 1.02×; 1.07× | removed: `getrandom(2)` |
| huge-page page cache (`short_lived_process`) | `credential_manager list --user U`, whole process | 16.5 ms | 16.6 ms | 1.0× | removed |

Each row after the first two is measured with the rows above it removed. Rows whose
"without" is faster say only that the difference is below the noise of the load.
A get reads the version ledger's verified version while `PRAGMA data_version` holds
(docs/FORMAT.md); every get takes a read transaction.""")
w("")

w("## Figures per size, with their floors")
w("")
w("Each cell: wall-clock median, spread, and in brackets the ratio to the floor measured in the")
w("same run and the CPU time of the calling thread (wall minus CPU is waiting: fsync, locks, or,")
w("on a loaded machine, the scheduler).")
w("The Python version's figures (issue 8, same machine class) are given where it had them.")
w("")
header = "| operation | floor | " + " | ".join(f"{s:,}" for s in sizes) + " | Python (" + ", ".join(f"{s:,}" for s in sizes) + ") |"
w(header)
w("|" + "---|" * (len(sizes) + 3))
for label, values, floors, floor_label, python, note in rows:
    cells = []
    for s in sizes:
        v, sp = value_of(values.get(s))
        if v is None:
            key = values.get(s) if isinstance(values.get(s), str) else None
            err = errors.get(key) if key else None
            cells.append(notes[key] if key in notes else (f"skipped: {err}" if err else "–"))
            continue
        c = cpu(values.get(s)) if isinstance(values.get(s), str) else None
        cpu_txt = f"; CPU {fmt_time(c)}" if c is not None else ""
        cells.append(f"{fmt_time(v)} {sp} ({ratio(v, floors.get(s))}{cpu_txt})")
    floor_txt = f"{floor_label}: " + " / ".join(fmt_time(floors.get(s)) for s in sizes)
    py = " / ".join(fmt_time(python.get(s)) for s in sizes) if python else "–"
    w(f"| {label} | {floor_txt} | " + " | ".join(cells) + f" | {py} |")
# The CLI rows.
cells = []
for s in sizes:
    c = cli_rows.get(s)
    cells.append(f"{fmt_time(c['median'])} ±{c['cv'] * 100:.0f}% ({ratio(c['median'], cli_floor['median'] if cli_floor else None)})" if c else "–")
w(f"| `credential_manager list --user U` (holds 100), whole process | `credential_manager --version`: "
  f"{fmt_time(cli_floor['median']) if cli_floor else '–'} | " + " | ".join(cells) + " | ~500 ms (any command) |")
w("")
w("Memory of a process with the vault open (a fresh process opens the vault and serves one get;")
w("then, in the same process, a handle on a copy of the vault reads every credential once, as a")
w("process serving all of them would):")
w("")
w("| size | RSS after open + first get | open + first get in that fresh process "
  "| after reading every credential: private memory + mapped vault file "
  "| peak RSS of `credential_manager list` "
  "| peak RSS of `credential_manager import-legacy` (a Python vault of that size; its time) |")
w("|---|---|---|---|---|---|")
for s in sizes:
    r = load(f"rss-{s}.json") or {}
    c = load(f"cli-rss-{s}.json") or {}
    i = load(f"cli-import-rss-{s}.json")
    imported = f"{i['max_rss_kb'] / 1024:.0f} MB ({i['seconds']:.1f} s)" if i else "–"
    warm = (f"{r['warm_rss_anon_kb'] / 1024:.1f} MB + {r['warm_rss_file_kb'] / 1024:.1f} MB"
            if "warm_rss_anon_kb" in r else "–")
    w(f"| {s:,} | {r.get('rss_kb', 0) / 1024:.1f} MB (before open {r.get('rss_kb_before_open', 0) / 1024:.1f} MB) "
      f"| {fmt_time(r.get('open_first_get_us'))} (one sample; it creates the WAL: see below) "
      f"| {warm} "
      f"| {c.get('max_rss_kb', 0) / 1024:.1f} MB "
      f"| {imported} |")
w("")
w("A serving process's private memory grows with what it reads, to a bound: the version ledger's")
w("verified versions (at most 131,072, ~64 bytes each), last-used times not yet written (at most")
w("65,536), SQLite's page cache (2 MB). The mapped file's pages are the kernel's page cache, shared")
w("and reclaimable.")
w("")
w("An import reads the Python vault whole before it writes (a wrong key or a damaged file imports")
w("nothing): the file's text, then its plaintext (~3/4 of it) and the credentials read from it, one")
w("credential's JSON document at a time; the write that follows raises SQLite's page cache for its")
w("size (~2 KiB a credential, at most 256 MiB).")
w("")

# --- the shared store (issue 9): the same operations on PostgreSQL ------------------
def pgb(name, size):
    return f"BM_Pg{name}/credentials:{size}/real_time"


pg_commit_async = g("BM_LibpqWriteTransaction/durable:0/real_time")
pg_commit_durable = g("BM_LibpqWriteTransaction/durable:1/real_time")
pg_sizes = [s for s in SIZES if any(g(pgb(n, s)) is not None or pgb(n, s) in errors
                                    for n in ("GetCredential", "PopulateBatch"))]
w("## The shared store: the vault on PostgreSQL (issue 9)")
w("")
if not pg_sizes:
    w("No figures in this run (`pgstore_bench` did not run: it needs the PostgreSQL server that")
    w("`bench/run` starts).")
    w("")
else:
    w("The same calls on a vault in PostgreSQL (`pgstore_bench`, `VaultOptions::url`), each beside")
    w("the embedded store's figure from the same run (`vault_bench`): the run's throwaway cluster,")
    w("TCP to localhost, one connection per vault handle, the same dataset (populated on every run")
    w("through `store_credentials`, one transaction per user). Each PostgreSQL cell: median, spread, and in")
    w("brackets its ratio to the raw libpq round trip measured in the same run (roughly, the")
    w("number of round trips it costs), to the embedded figure at the same size, and its CPU time.")
    w("")
    w("| operation | store | " + " | ".join(f"{s:,}" for s in pg_sizes) + " |")
    w("|" + "---|" * (len(pg_sizes) + 2))

    def pg_cell(run, embedded_run):
        v = g(run)
        if v is None:
            return notes.get(run) or (f"skipped: {errors[run]}" if run in errors else "–")
        parts = [f"{ratio(v, libpq)} round trip"] if libpq else []
        emb = g(embedded_run) if embedded_run else None
        if emb:
            parts.append(f"{ratio(v, emb)} embedded")
        c = cpu(run)
        if c is not None:
            parts.append(f"CPU {fmt_time(c)}")
        return f"{fmt_time(v)} {spread(run)} ({'; '.join(parts)})"

    def emb_cell(run):
        v = g(run)
        return f"{fmt_time(v)} {spread(run)}" if v is not None else "–"

    for label, pg_name, emb_name in [
        ("`get_credential` (decrypt + authorization + audit event)", "GetCredential", "GetCredential"),
        ("`update_password` (durable)", "UpdatePassword", "UpdatePassword"),
        ("`store_credential` (durable)", "StoreCredential", "StoreCredential"),
    ]:
        w(f"| {label} | embedded | " + " | ".join(emb_cell(vb(emb_name, s)) for s in pg_sizes) + " |")
        w(f"| | PostgreSQL | " + " | ".join(pg_cell(pgb(pg_name, s), vb(emb_name, s)) for s in pg_sizes) + " |")
    cells = []
    for s in pg_sizes:
        run = pgb("PopulateBatch", s)
        secs = counter(run, "populate_s")
        if secs is None:
            cells.append(notes.get(run) or (f"skipped: {errors[run]}" if run in errors else "–"))
            continue
        per = secs * 1e6 / (s + 100)
        cells.append(f"{fmt_time(secs * 1e6)} ({counter(run, 'credentials_per_s'):,.0f}/s; "
                     f"{fmt_time(per)} per credential = {ratio(per, libpq)} round trip)")
    w("| populate N (+100) credentials, `store_credentials` per user (N/1,000 each) | PostgreSQL | "
      + " | ".join(cells) + " |")
    w("")
    w(f"Floors in the same run: libpq round trip (`SELECT 1`) {fmt_time(libpq)}; a PostgreSQL write "
      f"transaction (BEGIN, INSERT, COMMIT: three round trips) {fmt_time(pg_commit_async)} without "
      f"waiting for the WAL flush, {fmt_time(pg_commit_durable)} with it"
      + (f" (the durable `update_password` is {ratio(g(pgb('UpdatePassword', pg_sizes[-1])), pg_commit_durable)} "
         f"of it at {pg_sizes[-1]:,})" if g(pgb("UpdatePassword", pg_sizes[-1])) and pg_commit_durable else "")
      + ".")
    if machine.get("pg_fsync") == "off":
        w("")
        w("**The cluster ran with fsync off**: its \"durable\" writes did not reach the disk, so they")
        w("are not comparable with the embedded store's. `bench/run` starts it with fsync on.")
    pg_growth = []
    for label, name in [("`get_credential`", "GetCredential"), ("`update_password`", "UpdatePassword"),
                        ("`store_credential`", "StoreCredential")]:
        steps = [g(pgb(name, s)) for s in pg_sizes]
        if len(pg_sizes) > 1 and all(steps):
            pg_growth.append(f"{label} " + ", ".join(f"×{b / a:.1f}" for a, b in zip(steps, steps[1:])))
    w("")
    w("Reading the figures:")
    w("")
    if pg_growth:
        w("- Growth per ×10 in size (" + " → ".join(f"{x:,}" for x in pg_sizes) + "): "
          + "; ".join(pg_growth) + ". Every call is a few index lookups on the server, so the")
        w("  size itself costs only a B-tree level. Two things can grow with it in a series of fixed")
        w("  length: an audited read updates `last_used` at most once a minute per credential, so")
        w("  at 1,000 credentials most reads of a run skip that statement and at 100,000 almost")
        w("  none do (the embedded store batches them, 65,536 a transaction: see `get` above); and a write touches more distinct pages")
        w("  in a larger vault, each first touch after a checkpoint adding a full page image to")
        w("  the WAL that the commit flushes.")
    w("""- A call on the shared store costs its round trips: each statement the store sends is one
  (statements are prepared once per connection; `BEGIN` and its `SET LOCAL`s go in one).
  A read is one lookup outside a transaction, then its audit event's transaction —
  `BEGIN`, the insert into its segment and `COMMIT`, without the vault's advisory lock and
  without waiting for the WAL flush — and `last_used` (at most once a minute per
  credential); every second or 1,024 reads, an anchor transaction under the lock. A write
  is one transaction of about a dozen round trips (`BEGIN`, the lock, the current version,
  the newest data key, its encryption count and the count's update, the inserts or
  updates, the pruning of old versions, the audit event's three statements and an
  anchor's three when the handle has read since its last, `COMMIT`) and waits at
  `COMMIT` for the server's WAL flush — the durable floor above, which on a slow disk is
  most of it.
- What would bring them down: fewer round trips. The embedded store's answer for reads, a
  local file anchored later, does not fit a store shared by hosts that cannot anchor each
  other's files; but the read's audit transaction can be one round trip
  (pipelining with `PQpipelineMode`, libpq ≥ 14, or one server-side function), and so can
  most of a write's statements. Keeping the data key's id and encryption count in the
  process between writes (the count needs only to be an upper bound) removes three more.
  Population through `store_credentials` sends several statements per credential; a `COPY`
  or multi-row `INSERT` per batch would make it a few round trips per batch.""")
    w("")

w("## Skills: `execute_skill` against a local database")
w("")
w("| what | median | spread | CPU | ratio to raw prepared |")
w("|---|---|---|---|---|")
for label, run, base in [
    ("skill on a warm pool, PostgreSQL", "BM_SkillPostgresWarmPool/real_time", raw_prep),
    ("raw libpq, prepared statement, open connection (the comparator)", "BM_RawLibpqPrepared/real_time", raw_prep),
    ("raw libpq, `PQexecParams` (unprepared: parsed and planned at every execution)", "BM_RawLibpqExecParams/real_time", raw_prep),
    ("raw libpq `SELECT 1` round trip (floor)", "BM_LibpqRoundTrip/real_time", raw_prep),
    ("new connection per execution (the Python version's way)", "BM_NewConnectionPerExecution/real_time", raw_prep),
    ("skill on a warm pool, SQLite", "BM_SkillSqliteWarmPool/real_time", raw_lite),
    ("raw sqlite3 prepared statement (SQLite comparator)", "BM_RawSqlitePrepared/real_time", raw_lite),
]:
    v = g(run)
    if v is None and run in errors:
        w(f"| {label} | skipped: {errors[run]} | | | |")
        continue
    w(f"| {label} | {fmt_time(v)} | {spread(run)} | {fmt_time(cpu(run))} | {ratio(v, base)} |")
ps = paired("skill", "skill_us", "raw_us")
if ps:
    r, skill_us, raw_us = ps
    pr = counter(PAIRED["skill"], "paired_ratio")
    w("")
    w(f"The target is judged on the paired run (`BM_SkillVsRawLibpqPaired`): each iteration runs the "
      f"skill and the raw prepared statement once each, the order swapped every iteration, and "
      f"times each. Median skill {fmt_time(skill_us)}, median raw {fmt_time(raw_us)}: "
      f"**{r:.2f}×** (the median of the per-iteration ratios: {pr:.2f}×; both are medians over "
      f"the repetitions). `bench/run` runs it with the client on CPU 0 and the server's processes on "
      f"the last CPU. The separate rows above ran minutes apart, and their ratio moved "
      f"between 0.8× and 1.4× from run to run on this machine.")
if skill_pg and new_conn:
    w("")
    w(f"A new connection per execution costs {fmt_time(new_conn)}: the warm-pool skill is "
      f"{new_conn / skill_pg:.0f}× faster than the Python version's way of running a skill.")
w("")

w("## The floors")
w("")
w("| floor | median | spread | CPU |")
w("|---|---|---|---|")
sealed = counter("BM_AeadDecryptRecord/real_time", "sealed_bytes")
for label, run in [
    (f"AES-256-GCM decrypt of one record ({int(sealed) if sealed else '?'} bytes sealed)", "BM_AeadDecryptRecord/real_time"),
    ("HMAC-SHA256 of one lookup tag", "BM_HmacLookupTag/real_time"),
    ("HMAC-SHA256 of 300 bytes, keyed once (as the audit MACs)", "BM_HmacJournalEntry/real_time"),
    ("one 12-byte nonce as the library draws it (`getrandom(2)`)", "BM_RandomNonce/real_time"),
    ("one 12-byte nonce from `getrandom(2)`", "BM_GetrandomSyscall/real_time"),
    *[(f"SQLite point lookup, WITHOUT ROWID blob key, {s:,} rows", f"BM_SqlitePointLookup/rows:{s}/real_time") for s in sizes],
    ("SQLite write transaction, WAL, no fsync (synchronous=NORMAL)", "BM_SqliteWriteTransaction/durable:0/real_time"),
    ("SQLite write transaction, WAL, durable (synchronous=FULL)", "BM_SqliteWriteTransaction/durable:1/real_time"),
    ("fsync: 4 KiB write + fsync in the vault's file system", "BM_Sync4KiB/fdatasync:0/real_time"),
    ("fdatasync: 4 KiB overwrite + fdatasync (SQLite's WAL sync)", "BM_Sync4KiB/fdatasync:1/real_time"),
    ("libpq round trip (`SELECT 1`, open connection)", "BM_LibpqRoundTrip/real_time"),
    ("PostgreSQL write transaction (BEGIN, INSERT, COMMIT), synchronous_commit=off",
     "BM_LibpqWriteTransaction/durable:0/real_time"),
    ("PostgreSQL write transaction (BEGIN, INSERT, COMMIT), durable (synchronous_commit=on)",
     "BM_LibpqWriteTransaction/durable:1/real_time"),
]:
    v = g(run)
    if v is None and run in errors:
        w(f"| {label} | skipped: {errors[run]} | | |")
        continue
    w(f"| {label} | {fmt_time(v)} | {spread(run)} | {fmt_time(cpu(run))} |")
w("")

w("## Observations")
w("")
growth = []
for label, values, *_ in rows:
    steps = [value_of(values.get(x))[0] for x in sizes]
    if len(sizes) > 1 and all(steps):
        growth.append(f"{label}: " + ", ".join(f"×{b / a:.1f}" for a, b in zip(steps, steps[1:])))
if growth:
    w("- Growth per ×10 in size (" + " → ".join(f"{x:,}" for x in sizes) + "); the Python version "
      "grew ×10. Per-credential operations should stay near ×1 (the SQLite B-tree gets one level "
      "deeper: see the point-lookup floor), whole-vault operations near ×10:")
    for line in growth:
        w(f"  - {line}")
for key, what in (("store", "`store_credential`"), ("update", "`update_password`")):
    pg_ = paired(key, "big_us", "small_us")
    if pg_:
        r, big_us, small_us = pg_
        w(f"- {what} at {sizes[-1]:,} against 1,000, paired (`{PAIRED[key].split('/')[0]}`: one write "
          f"to each vault per iteration, the order swapped every iteration): {fmt_time(big_us)} vs "
          f"{fmt_time(small_us)}, **{r:.2f}×** (median of per-iteration ratios "
          f"{counter(PAIRED[key], 'paired_ratio'):.2f}×). This is the figure the growth target is "
          f"judged on; the table's two columns ran minutes apart.")
after = {x: g(vb("GetAfterAnotherHandlesCommit", x)) for x in sizes}
if all(after.values()):
    w("- A get just after another connection's commit (`BM_GetAfterAnotherHandlesCommit`: "
      + ", ".join(f"{fmt_time(after[x])} at {x:,}" for x in sizes)
      + ") is the price of sharing the vault with a writer, paid once per foreign commit by each "
      "handle that reads next. Most of it is SQLite's: a connection that finds the database changed "
      "by another connection drops its page cache and unmaps its memory map of the file "
      "(`munmap` of every page it had touched, one `munmap` and one `mmap` per foreign commit under "
      "`strace`), then faults the pages in again; the rest is the kept records and the version "
      "ledger's known answers, dropped because the handle cannot know what the commit changed. "
      "Measured on December 2 with the memory map off (`mmap_size=0`): 65 µs at 1,000, 77 µs at "
      "10,000, 123 µs at 100,000 instead of 196, 343 and 507 µs, but each read that misses the kept "
      "records then costs 0.9, 2.6 and 5.5 µs more (12.7 against 11.8 µs, 23.8 against 18.3 µs at "
      "100,000). The map stays: a foreign commit is paid once, a miss at every read; a deployment "
      "whose readers see many commits between few reads would do better without it (not an option "
      "yet).")
w("""- `reencrypt` and `import_legacy` can grow faster than linearly: the tables are keyed by
  HMAC tags, so a large transaction's inserts land on random pages, and the larger the file
  the fewer of them are already in memory; see below.
- Durable writes sync once per transaction (checked with `strace -e fdatasync` on
  `update_password`: one `fdatasync` of the WAL per call, plus checkpoints).
  Sync latency on a shared virtual disk varies from run to run (4–20 ms were seen on the
  machine of the first run), so compare a write with the floor of the same run only.
- A process whose first vault access is also the first connection pays for creating the
  WAL (three syncs) and, at exit, for checkpointing it (two): see the fresh-process column
  in the memory table and the CLI row. In a long-running process (the in-process open
  row) opening is well under a millisecond.""")
w("")

missed = [(k, t) for k, t, _, ok in targets if ok is False]
w("## Missed targets: why, and what would close them")
w("")
if not missed:
    w("Every target with a figure in this run is met.")
for key, text in missed:
    w(f"### {text}")
    w("")
    w(WHY.get(key, "(no analysis written yet)"))
    w("")
met_notes = [(k, t) for k, t, _, ok in targets if ok is None]
if met_notes:
    w("Targets without a figure in this run: " + "; ".join(t for _, t in met_notes) + ".")
    w("")

w("## How to run")
w("")
w("```bash")
w("bench/run                               # build, populate (cached), run, write this file")
w("CREDENTIALS_BENCH_QUICK=1 bench/run     # smallest size only (a smoke run)")
w("build-bench/vault_bench --benchmark_filter=GetCredential   # one family, by hand")
w("```")
w("")
w("Populated vaults are cached in `build-bench/vaults/<size>/` with their test master key")
w("beside them, and reused while they open with the current build (delete the folder to")
w("repopulate). Benchmarks that write work on a scratch copy. CI builds the benchmarks and")
w("runs each once at the smallest size (`CREDENTIALS_BENCH_QUICK=1`) to prove they work;")
w("it does not produce these figures.")
print("\n".join(out))
