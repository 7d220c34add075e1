"""What a run costs on PostgreSQL: client CPU, round trips, statements and commits per run, beside a
raw-psycopg floor that writes the same durable rows.

    python bench/pg_runs.py [--runs 1000] [--chunk 100] [--only sequential started gathered] [--json]
                            [--url postgresql://postgres@127.0.0.1:5432/postgres] [--tree PATH]

Workloads, each run of two short (no-op) steps, through ``Client`` on a PostgreSQL store:

  sequential  ``await client.run(wf)``, one after another (a lone run's path)
  started     ``await client.start(wf)`` one by one (each acknowledged after its own commit), then every
              result awaited, as ``bench/run.py many_runs`` (the runs' steps and ends overlap the starts)
  gathered    the same runs started in ``asyncio.gather`` chunks of ``--chunk`` (their creations share
              transactions)

and their floors, raw psycopg on one connection writing the same rows on the same schema (the run's
row and its ``run_started`` event with a signed ``run.start`` audit entry; the first step's event;
the last step's event, ``run_completed``, the run's final state and a signed ``run.end`` entry),
the cheapest correct way. An audit entry's signature covers its ``seq``, so its number must be known
before the statement that writes it: the floor draws 32 numbers at a time and writes each entry in
a statement that writes nothing if another number was drawn since (the guard of
``podium/storage/_pg_numbers.py``, which keeps the log in the order of the writes):

  sequential  per run: the start (its row, event and entry, one statement); the step; the end (its
              events, entry and final state, one statement): three round trips and commits, and a
              draw of numbers per 16 runs
  started     per run: its start with an earlier run's step and end, one transaction (pipelined):
              one round trip, one commit
  gathered    per chunk: the numbers; the starts; the first steps; the numbers; the ends, each a
              statement over arrays (unnest): five round trips, three commits per chunk

Figures per workload (one JSON object per line with ``--json``): seconds, µs per run, client CPU
per run (this process: psycopg, asyncio and the engine), round trips per run (the times psycopg
waited for the server to answer: readers it added to the event loop), statements per run (what the
client sent), transactions (``commits``: read-only ones too) and rows written per run (the scratch
database's ``pg_stat_database``), WAL bytes per run (the server's WAL position: the whole cluster, so other clients add to it) and
the server's CPU per run (its processes connected to the scratch database, from /proc: a server on
this host only).
Each figure is the best of ``--repeats`` rounds (CPU, round trips and statements from the same
round as the time). The scratch database is created and dropped here; no other is touched.
``--tree PATH`` imports ``podium`` from another checkout (to compare two commits with one script).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(  # --tree PATH: another checkout's podium
    0,
    os.path.abspath(sys.argv[sys.argv.index("--tree") + 1])
    if "--tree" in sys.argv
    else os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
)

import psycopg

import podium
from podium import Client, Workflow

DEFAULT_URL = os.environ.get("PODIUM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKLOADS = ("sequential", "started", "gathered")


def two_steps() -> Workflow:
    wf = Workflow("two")

    @wf.step
    async def first() -> int:
        return 1

    @wf.step
    async def second(first: int) -> int:
        return first + 1

    return wf


class Counts:
    """Round trips (psycopg's waits for a readable socket) and statements sent, by this process."""

    def __init__(self) -> None:
        self.waits = 0
        self.statements = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        add_reader = loop.add_reader

        def counted(fd: Any, callback: Callable[..., Any], *args: Any) -> None:
            self.waits += 1
            add_reader(fd, callback, *args)

        loop.add_reader = counted  # type: ignore[method-assign]
        counts = self
        cur_execute = psycopg.AsyncCursor.execute
        cur_many = psycopg.AsyncCursor.executemany

        async def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            counts.statements += 1  # AsyncConnection.execute comes here too
            return await cur_execute(self, query, params, **kw)

        async def executemany(self: Any, query: Any, params_seq: Any, **kw: Any) -> Any:
            params_seq = list(params_seq)
            counts.statements += len(params_seq)
            return await cur_many(self, query, params_seq, **kw)

        psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
        psycopg.AsyncCursor.executemany = executemany  # type: ignore[method-assign]

    def snapshot(self) -> tuple[int, int]:
        return self.waits, self.statements


COUNTS = Counts()


def _server_stats(url: str, name: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted, pg_current_wal_lsn() - '0/0'::pg_lsn "
            "FROM pg_stat_database WHERE datname = %s",
            (name,),
        ).fetchone()
    assert row is not None
    return {"commits": int(row[0]), "rows": int(row[1]), "wal": int(row[2])}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _server_cpu(url: str, name: str) -> dict[int, float]:
    """CPU seconds of each server process connected to the scratch database (a server on this host
    only: read from /proc; empty elsewhere)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return out


def _server_cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """What the server processes spent between two readings (one that started meanwhile: all of it)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _settled_stats(url: str, name: str) -> dict[str, int]:
    """The database's counters once the closed connections' backends have flushed theirs."""
    last = _server_stats(url, name)
    for _ in range(50):
        time.sleep(0.1)
        now = _server_stats(url, name)
        if now["commits"] == last["commits"] and now["rows"] == last["rows"]:
            return now
        last = now
    return last


async def engine_round(url: str, admin: str, name: str, mode: str, n: int, chunk: int, key: str) -> dict[str, float]:
    wf = two_steps()
    before = _settled_stats(admin, name)
    async with Client(url, max_concurrent_runs=max(n, 1000), audit_key=key) as c:
        for _ in range(20):  # warm: the workflow registered, the chain anchored, statements prepared
            await c.run(wf)
        waits, statements = COUNTS.snapshot()
        server = _server_cpu(admin, name)
        t, cpu = time.perf_counter(), time.process_time()
        if mode == "sequential":
            for _ in range(n):
                await c.run(wf)
        else:
            if mode == "started":
                handles = [await c.start(wf) for _ in range(n)]
            else:
                handles = []
                for i in range(0, n, chunk):
                    handles += await asyncio.gather(*(c.start(wf) for _ in range(min(chunk, n - i))))
            for h in handles:
                await h.result()
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        waits, statements = COUNTS.waits - waits, COUNTS.statements - statements
        server = _server_cpu_spent(server, _server_cpu(admin, name))
    after = _settled_stats(admin, name)
    warm = 20
    return {
        "seconds": seconds,
        "cpu": cpu,
        "server_cpu": server,
        "waits": waits / n,
        "statements": statements / n,
        # the counters cover the warm-up runs and the client's open and close too: per run of all
        "commits": (after["commits"] - before["commits"]) / (n + warm),
        "rows": (after["rows"] - before["rows"]) / (n + warm),
        "wal": (after["wal"] - before["wal"]) / (n + warm),
    }


# -- the floor: raw psycopg, the same rows --------------------------------------------------------

# The audit numbers are drawn ahead, 32 at a time, and each statement that writes an entry writes
# only if no number was drawn since (podium/storage/_pg_numbers.py: the log's order follows the order
# of the writes): a lone run's start, step and end are one statement each.
_GUARD = "g AS MATERIALIZED (SELECT coalesce(pg_sequence_last_value('audit_seq') = %s::bigint, FALSE) AS ok)"
_RUN_INSERT = (
    "INSERT INTO runs (id, workflow, version, status, input, created_at, started_at, owner, lease_expires_at, "
    "queue, priority, cancel_requested) SELECT %s, 'two', '1', 'running', 'null', %s::float8, %s::float8, %s, "
    "%s::float8, 'default', 0, FALSE FROM g WHERE g.ok"
)
_EVENT_IF = (
    "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) SELECT %s, %s::bigint, %s, "
    "%s::float8, %s, 0, %s::int, %s::int, %s FROM g WHERE g.ok"
)
_EVENT = "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s)"
_AUDIT = (
    "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq) "
    "SELECT %s::bigint, %s::float8, 'engine', %s, %s, %s, %s, %s, %s, %s::bigint FROM g WHERE g.ok"
)
_START = f"WITH {_GUARD}, r AS ({_RUN_INSERT}), e AS ({_EVENT_IF}), a AS ({_AUDIT}) SELECT ok FROM g"
_END = (
    f"WITH {_GUARD}, e1 AS ({_EVENT_IF}), e2 AS ({_EVENT_IF}), a AS ({_AUDIT}), u AS (UPDATE runs SET "
    "status = 'completed', output = '2', finished_at = %s, owner = NULL, lease_expires_at = NULL "
    "WHERE id = %s AND (SELECT ok FROM g)) SELECT ok FROM g"
)
_STEP = '{"output":1,"started":%r}'
_NEXT = "SELECT nextval('audit_seq') FROM generate_series(1, %s)"
_STARTS = (
    "WITH r AS (INSERT INTO runs (id, workflow, version, status, input, created_at, started_at, owner, "
    "lease_expires_at, queue, priority, cancel_requested) SELECT id, 'two', '1', 'running', 'null', t, t, %s, t + 30, "
    "'default', 0, FALSE FROM unnest(%s::text[], %s::float8[]) AS s(id, t)), "
    "e AS (INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) "
    "SELECT id, 1, 'run_started', t, NULL, 0, NULL, 0, %s FROM unnest(%s::text[], %s::float8[]) AS s(id, t)) "
    "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq) "
    "SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::bigint[])"
)
_EVENTS = (
    "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) SELECT r, s, ty, t, st, 0, "
    "NULL, a, d FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::float8[], %s::text[], %s::int[], %s::text[]) "
    "AS u(r, s, ty, t, st, a, d)"
)
_ENDS = (
    f"WITH e AS ({_EVENTS}), a AS (INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, "
    "cseq) SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::bigint[])) UPDATE runs SET status = 'completed', output = '2', "
    "finished_at = %s, owner = NULL, lease_expires_at = NULL WHERE id = ANY(%s::text[])"
)


class _Chain:
    """A writer's audit chain, signed as the store signs it (HMAC-SHA256 of the chained body)."""

    def __init__(self) -> None:
        self.id, self.cseq, self.head = uuid.uuid4().hex[:16], 0, "0" * 64
        self.key = hmac.new(os.urandom(32), digestmod=hashlib.sha256)

    def entry(self, seq: int, action: str, target: str, data: str) -> list[Any]:
        self.cseq += 1
        ts = time.time()
        body = f"{self.head}\x1f{self.id}\x1e{self.cseq}\x1e{seq}\x1f{ts!r}\x1fengine\x1f{action}\x1f{target}\x1f{data}"
        h = self.key.copy()
        h.update(body.encode())
        sig, prev = "hmac:bench:" + h.hexdigest(), self.head
        self.head = sig
        return [seq, ts, action, target, data, prev, sig, self.id, self.cseq]


def _start_data(rid: str) -> str:
    return '{"workflow":"two","version":"1","input":"' + hashlib.sha256(rid.encode()).hexdigest() + '"}'


def _end_data() -> str:
    return '{"workflow":"two","status":"completed","events":4,"digest":"' + "0" * 64 + '"}'


class _Ahead:
    """Audit numbers drawn ahead, with the last of the draw (the guard's number)."""

    def __init__(self) -> None:
        self.kept: list[int] = []
        self.top = 0

    async def take(self, conn: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
        if not self.kept:
            self.kept = sorted(r[0] for r in await (await conn.execute(_NEXT, (32,))).fetchall())
            self.top = self.kept[-1]
        return self.kept.pop(0), self.top


def _held(row: Any) -> None:
    if not (row and row[0]):
        raise SystemExit("an audit number was drawn by another writer: the floor must be alone in its database")


async def _floor_sequential(conn: psycopg.AsyncConnection[Any], ids: list[str], chain: _Chain, ahead: _Ahead) -> None:
    for rid in ids:
        now = time.time()
        seq, top = await ahead.take(conn)
        cur = await conn.execute(
            _START,
            [top, rid, now, now, "bench", now + 30, rid, 1, "run_started", now, None, None, 0, '{"owner":"bench"}',
             *chain.entry(seq, "run.start", rid, _start_data(rid))],
        )  # fmt: skip
        _held(await cur.fetchone())
        await conn.execute(_EVENT, (rid, 2, "step_completed", time.time(), "first", None, 1, _STEP % now))
        seq, top = await ahead.take(conn)
        now = time.time()
        cur = await conn.execute(
            _END,
            [top, rid, 3, "step_completed", now, "second", None, 1, _STEP % now, rid, 4, "run_completed", now, None,
             None, 0, "2", *chain.entry(seq, "run.end", rid, _end_data()), now, rid],
        )  # fmt: skip
        _held(await cur.fetchone())


async def _floor_started(conn: psycopg.AsyncConnection[Any], ids: list[str], chain: _Chain, ahead: _Ahead) -> None:
    lag = 50  # the run whose steps and end ride in a start's transaction (it started earlier)

    async def one(rid: str | None, old: str | None) -> None:
        now = time.time()
        start = await ahead.take(conn) if rid else None
        end = await ahead.take(conn) if old else None
        async with conn.pipeline():
            await conn.execute("BEGIN")
            checks = []
            if rid is not None and start is not None:
                checks.append(await conn.execute(
                    _START,
                    [start[1], rid, now, now, "bench", now + 30, rid, 1, "run_started", now, None, None, 0,
                     '{"owner":"bench"}', *chain.entry(start[0], "run.start", rid, _start_data(rid))],
                ))  # fmt: skip
            if old is not None and end is not None:
                await conn.execute(_EVENT, (old, 2, "step_completed", now, "first", None, 1, _STEP % now))
                checks.append(await conn.execute(
                    _END,
                    [end[1], old, 3, "step_completed", now, "second", None, 1, _STEP % now, old, 4, "run_completed",
                     now, None, None, 0, "2", *chain.entry(end[0], "run.end", old, _end_data()), now, old],
                ))  # fmt: skip
            await conn.execute("COMMIT")
        for cur in checks:  # after the pipeline's one sync: one round trip
            _held(await cur.fetchone())

    for i, rid in enumerate(ids):
        await one(rid, ids[i - lag] if i >= lag else None)
    for rid in ids[-lag:]:  # the last runs' ends, each alone
        await one(None, rid)


def _columns(rows: list[list[Any]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)]


async def _floor_gathered(conn: psycopg.AsyncConnection[Any], ids: list[str], chain: _Chain, chunk: int) -> None:
    for i in range(0, len(ids), chunk):
        part = ids[i : i + chunk]
        now = time.time()
        seqs = [r[0] for r in await (await conn.execute(_NEXT, (len(part),))).fetchall()]
        audit = [chain.entry(s, "run.start", rid, _start_data(rid)) for s, rid in zip(seqs, part, strict=True)]
        a = _columns([[e[0], e[1], "engine", *e[2:]] for e in audit])
        await conn.execute(_STARTS, ["bench", part, [now] * len(part), '{"owner":"bench"}', part, [now] * len(part), *a])
        now = time.time()
        await conn.execute(
            _EVENTS,
            [part, [2] * len(part), ["step_completed"] * len(part), [now] * len(part), ["first"] * len(part),
             [1] * len(part), [_STEP % now] * len(part)],
        )  # fmt: skip
        seqs = [r[0] for r in await (await conn.execute(_NEXT, (len(part),))).fetchall()]
        now = time.time()
        audit = [chain.entry(s, "run.end", rid, _end_data()) for s, rid in zip(seqs, part, strict=True)]
        a = _columns([[e[0], e[1], "engine", *e[2:]] for e in audit])
        k = len(part)
        await conn.execute(
            _ENDS,
            [part + part, [3] * k + [4] * k, ["step_completed"] * k + ["run_completed"] * k, [now] * (2 * k),
             ["second"] * k + [None] * k, [1] * k + [0] * k, [_STEP % now] * k + ["2"] * k, *a, now, part],
        )  # fmt: skip


async def floor_round(url: str, admin: str, name: str, mode: str, n: int, chunk: int) -> dict[str, float]:
    ids = [podium.records.new_id() for _ in range(n)]
    chain, ahead = _Chain(), _Ahead()
    before = _settled_stats(admin, name)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await _floor_sequential(conn, [podium.records.new_id() for _ in range(20)], chain, ahead)  # warm: plans, caches
        waits, statements = COUNTS.snapshot()
        server = _server_cpu(admin, name)
        t, cpu = time.perf_counter(), time.process_time()
        if mode == "sequential":
            await _floor_sequential(conn, ids, chain, ahead)
        elif mode == "started":
            await _floor_started(conn, ids, chain, ahead)
        else:
            await _floor_gathered(conn, ids, chain, chunk)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        waits, statements = COUNTS.waits - waits, COUNTS.statements - statements
        server = _server_cpu_spent(server, _server_cpu(admin, name))
    after = _settled_stats(admin, name)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "server_cpu": server,
        "waits": waits / n,
        "statements": statements / n,
        "commits": (after["commits"] - before["commits"]) / (n + 20),
        "rows": (after["rows"] - before["rows"]) / (n + 20),
        "wal": (after["wal"] - before["wal"]) / (n + 20),
    }


def _best(rounds: list[dict[str, float]]) -> dict[str, float]:
    return min(rounds, key=lambda r: r["seconds"])


def _row(workload: str, n: int, best: dict[str, float], floor: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": f"pg_{workload}", "n": n}
    for side, r in (("", best), ("floor_", floor)):
        out.update(
            {
                f"{side}seconds": round(r["seconds"], 4),
                f"{side}us_per_run": round(r["seconds"] / n * 1e6, 1),
                f"{side}cpu_us_per_run": round(r["cpu"] / n * 1e6, 1),
                f"{side}server_cpu_us_per_run": round(r["server_cpu"] / n * 1e6, 1),
                f"{side}round_trips_per_run": round(r["waits"], 2),
                f"{side}statements_per_run": round(r["statements"], 2),
                f"{side}commits_per_run": round(r["commits"], 2),
                f"{side}rows_per_run": round(r["rows"], 2),
                f"{side}wal_bytes_per_run": round(r["wal"]),
            }
        )
    out["ratio"] = round(best["seconds"] / floor["seconds"], 2)
    out["cpu_ratio"] = round(best["cpu"] / floor["cpu"], 2)
    return out


async def main_async(args: argparse.Namespace) -> None:
    COUNTS.install(asyncio.get_running_loop())
    admin = args.url
    name = f"podium_bench_runs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rsplit('/', 1)[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory(prefix="podium-pg-runs-") as folder:
            key = os.path.join(folder, "audit.key")
            for mode in args.only or WORKLOADS:
                engine, floor = [], []
                for _ in range(args.repeats):  # interleaved, so both see the same machine
                    engine.append(await engine_round(url, admin, name, mode, args.runs, args.chunk, key))
                    floor.append(await floor_round(url, admin, name, mode, args.runs, args.chunk))
                row = _row(mode, args.runs, _best(engine), _best(floor))
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(
                        f"{row['workload']:<14} {row['us_per_run']:>8.1f} us/run  cpu {row['cpu_us_per_run']:>7.1f} us  "
                        f"rt {row['round_trips_per_run']:>5.2f}  stmts {row['statements_per_run']:>5.2f}  "
                        f"commits {row['commits_per_run']:>5.2f}  server {row['server_cpu_us_per_run']:>7.1f} us  |  floor "
                        f"{row['floor_us_per_run']:>8.1f} us  cpu {row['floor_cpu_us_per_run']:>7.1f}  "
                        f"rt {row['floor_round_trips_per_run']:>5.2f}  commits {row['floor_commits_per_run']:>5.2f}  "
                        f"server {row['floor_server_cpu_us_per_run']:>7.1f} us  ({row['ratio']}x, cpu {row['cpu_ratio']}x)",
                        flush=True,
                    )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help="an existing database to create the scratch one from")
    parser.add_argument("--runs", type=int, default=1000, help="runs per round")
    parser.add_argument("--chunk", type=int, default=100, help="runs started together in the gathered workload")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per workload; the fastest is kept")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, help="run only these workloads")
    parser.add_argument("--json", action="store_true", help="one JSON object per workload")
    parser.add_argument("--tree", help="import podium from this checkout instead of this script's")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: the scratch database is dropped still
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
