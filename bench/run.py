"""Podium's engine benchmarks, each beside its floor measured in the same run.

    python bench/run.py            # a table
    python bench/run.py --json     # one JSON object per line

Workloads (see docs/benchmarks.md for the bars and the latest figures):
  chain          200 no-op steps in a line (memory store)     floor: 200 awaits of a no-op coroutine
  fanout         one step fans out to 200 no-op steps + join  floor: asyncio.gather of 200 no-op tasks
  concurrent_io  200 concurrent runs x 5 steps of sleep(20ms)  floor: the same with plain asyncio
  durable_chain  the chain on the SQLite store                floor: raw sqlite3 INSERT+COMMIT per step
  durable_chain_power  the same, power-loss safe (fsync)   floor: the same INSERT+COMMIT with synchronous=FULL
  durable_loop   a step looping 200 times on the SQLite store   floor: raw sqlite3 INSERT+COMMIT per pass
  many_runs      10,000 concurrent runs of 2 sleeping steps on the SQLite store; peak RSS and CPU per run
                 reported                                    floor: the same tasks in plain asyncio;
                 storage floor: the rows each run must write (its runs row, four events, two audit entries),
                 by raw sqlite3 on the same schema, one commit per start (each caller waits for its own)
                 with the steps and the end of another run riding in it; journal floor: the same rows
                 committed 500 starts at a time, each start first appended to a journal file (as the
                 engine's start log does for starts made in a burst: docs/durability.md); rows floor:
                 the same rows made ready beforehand and written by executemany, 500 runs a commit (what
                 no engine can go under), and the room the 4x bar leaves the engine once the asyncio
                 floor's CPU and the rows floor are paid
  many_runs_gathered  the same runs started in asyncio.gather chunks of 100 (creations share commits)
  startup        `podium --help` in a fresh process            floor: `python -c pass`
Each figure is the best of several repeats, to keep the machine's noise out of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import podium
from podium import Client, Workflow

N = 200


async def _noop() -> None:
    return None


def chain_workflow(n: int = N) -> Workflow:
    wf = Workflow(f"chain{n}")
    prev: list[str] = []
    for i in range(n):
        wf.step(_noop, id=f"s{i}", needs=prev)
        prev = [f"s{i}"]
    return wf


def fanout_workflow(n: int = N) -> Workflow:
    wf = Workflow(f"fanout{n}")

    @wf.step
    async def items() -> list[int]:
        return list(range(n))

    @wf.step(map="items")
    async def work(items):  # type: ignore[no-untyped-def]
        return None

    @wf.step
    async def join(work):  # type: ignore[no-untyped-def]
        return len(work)

    return wf


def sleep_workflow(steps: int, delay: float) -> Workflow:
    wf = Workflow(f"sleep{steps}")

    async def nap() -> None:
        await asyncio.sleep(delay)

    prev: list[str] = []
    for i in range(steps):
        wf.step(nap, id=f"s{i}", needs=prev)
        prev = [f"s{i}"]
    return wf


async def best(fn: Callable[[], Awaitable[float]], repeats: int) -> float:
    return min([await fn() for _ in range(repeats)])


# -- floors -----------------------------------------------------------------------------------------


async def floor_chain() -> float:
    t = time.perf_counter()
    for _ in range(N):
        await _noop()
    return time.perf_counter() - t


async def floor_fanout() -> float:
    t = time.perf_counter()
    await asyncio.gather(*(asyncio.ensure_future(_noop()) for _ in range(N)))
    return time.perf_counter() - t


async def floor_concurrent_io() -> float:
    async def one() -> None:
        for _ in range(5):
            await asyncio.sleep(0.02)

    t = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(N)))
    return time.perf_counter() - t


def floor_sqlite(folder: str, n: int = N, *, fsync: bool = False) -> float:
    path = os.path.join(folder, f"floor-{time.perf_counter_ns()}.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL" if fsync else "PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT)")
    t = time.perf_counter()
    for _ in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO t (data) VALUES (?)", ('{"output":null}',))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t
    db.close()
    return elapsed


# -- workloads --------------------------------------------------------------------------------------


async def bench_chain(repeats: int) -> dict[str, Any]:
    wf = chain_workflow()
    async with Client("memory://") as c:
        await c.run(wf)

        async def once() -> float:
            t = time.perf_counter()
            await c.run(wf)
            return time.perf_counter() - t

        seconds = await best(once, repeats)
    floor = await best(floor_chain, repeats)
    return _row("chain", N, seconds, seconds / N, floor / N)


async def bench_fanout(repeats: int) -> dict[str, Any]:
    wf = fanout_workflow()
    async with Client("memory://") as c:
        await c.run(wf)

        async def once() -> float:
            t = time.perf_counter()
            await c.run(wf)
            return time.perf_counter() - t

        seconds = await best(once, repeats)
    floor = await best(floor_fanout, repeats)
    return _row("fanout", N, seconds, seconds / N, floor / N)


async def bench_concurrent_io(repeats: int) -> dict[str, Any]:
    wf = sleep_workflow(5, 0.02)
    async with Client("memory://") as c:

        async def once() -> float:
            t = time.perf_counter()
            handles = [await c.start(wf) for _ in range(N)]
            for h in handles:
                await h.result()
            return time.perf_counter() - t

        seconds = await best(once, repeats)
    floor = await best(floor_concurrent_io, repeats)
    return _row(
        "concurrent_io",
        N * 5,
        seconds,
        seconds / (N * 5),
        floor / (N * 5),
        ideal_seconds=0.1,
        floor_seconds=floor,
    )


async def bench_durable_chain(repeats: int, folder: str, *, power: bool = False) -> dict[str, Any]:
    """The chain on SQLite; with ``power`` the power-loss-safe mode (fsync per commit) against its own
    floor, a raw INSERT+COMMIT with ``synchronous=FULL``."""
    from podium.storage.sqlite import SQLiteStore

    wf = chain_workflow()
    runs: list[float] = []
    floors: list[float] = []
    name = "durable_chain_power" if power else "durable_chain"
    store = SQLiteStore(f"sqlite:///{folder}/{name}.db", durability="power" if power else "crash")
    async with Client(store) as c:
        await c.run(wf)
        for _ in range(repeats):  # interleave engine and floor so both see the same disk weather
            t = time.perf_counter()
            await c.run(wf)
            runs.append(time.perf_counter() - t)
            floors.append(floor_sqlite(folder, fsync=power))
    seconds, floor = min(runs), min(floors)
    return _row(name, N, seconds, seconds / N, floor / N, ratio=round(seconds / floor, 2))


def loop_workflow(n: int = N) -> Workflow:
    """One step looping ``n`` times (its condition counts the passes of the run under way)."""
    from podium.engine.workflow import Loop

    wf = Workflow(f"loop{n}")
    passes = {"n": 0}

    def again() -> bool:
        passes["n"] += 1
        if passes["n"] < n:
            return True
        passes["n"] = 0
        return False

    wf.step(_noop, id="spin", loop=Loop(to="spin", while_=again, max_iterations=n + 1))
    return wf


async def bench_durable_loop(repeats: int, folder: str) -> dict[str, Any]:
    from podium.storage.sqlite import SQLiteStore

    wf = loop_workflow()
    runs: list[float] = []
    floors: list[float] = []
    async with Client(SQLiteStore(f"sqlite:///{folder}/durable_loop.db")) as c:
        await c.run(wf)
        for _ in range(repeats):  # interleaved with the floor, as durable_chain
            t = time.perf_counter()
            await c.run(wf)
            runs.append(time.perf_counter() - t)
            floors.append(floor_sqlite(folder))
    seconds, floor = min(runs), min(floors)
    return _row("durable_loop", N, seconds, seconds / N, floor / N, ratio=round(seconds / floor, 2))


async def bench_many_runs(folder: str, n: int, *, gathered: int = 0) -> dict[str, Any]:
    """``n`` runs of two sleeps, started one by one in a loop (each acknowledged once durable: the
    first after its own commit, the rest of the burst through the start log, committed together),
    or, with ``gathered``, in ``asyncio.gather`` chunks of that many."""
    wf = sleep_workflow(2, 0.01)
    name = "many_runs_gathered" if gathered else "many_runs"
    async with Client(f"sqlite:///{folder}/{name}.db", max_concurrent_runs=n) as c:
        t, cpu = time.perf_counter(), time.process_time()
        if gathered:
            handles = []
            for i in range(0, n, gathered):
                handles += await asyncio.gather(*(c.start(wf) for _ in range(min(gathered, n - i))))
        else:
            handles = [await c.start(wf) for _ in range(n)]
        failures = 0
        for h in handles:
            try:
                await h.result()
            except podium.RunFailed:
                failures += 1
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        completed = len(await c.list(status=["completed"], limit=n + 1))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor, floor_cpu = await _many_floor(n)
    storage, storage_cpu = await _many_storage_floor(folder, n, batch=gathered or 1)
    _, journal_cpu = await _many_storage_floor(folder, n, batch=500, journal=True)
    rows_cpu = await _many_rows_floor(folder, n)
    return _row(
        name,
        n,
        seconds,
        seconds / (n * 2),
        floor / (n * 2),
        floor_seconds=round(floor, 3),
        ratio=round(seconds / floor, 2),
        cpu_us_per_run=round(cpu / n * 1e6, 1),
        overhead_cpu_us_per_run=round((cpu - floor_cpu) / n * 1e6, 1),
        storage_floor_seconds=round(storage, 3),
        ratio_to_storage_floor=round(seconds / (storage + floor), 2),
        storage_cpu_us_per_run=round(storage_cpu / n * 1e6, 1),
        journal_storage_cpu_us_per_run=round(journal_cpu / n * 1e6, 1),
        rows_floor_cpu_us_per_run=round(rows_cpu / n * 1e6, 1),
        # The CPU per run the engine may spend beyond the asyncio floor's and the rows floor's and
        # still finish within 4x the floor's seconds (one thread: seconds ~ CPU).
        bar_room_cpu_us_per_run=round((4 * floor - floor_cpu - rows_cpu) / n * 1e6, 1),
        failures=failures,
        completed=completed,
        peak_rss_mb=round(rss_mb, 1),
    )


async def _many_floor(n: int) -> tuple[float, float]:
    """The same load in plain asyncio: ``n`` tasks started one by one, each awaiting 2 x 10 ms.
    Returns (seconds, CPU seconds)."""

    async def run() -> None:
        for _ in range(2):
            await asyncio.sleep(0.01)

    t, cpu = time.perf_counter(), time.process_time()
    tasks = [asyncio.ensure_future(run()) for _ in range(n)]
    await asyncio.gather(*tasks)
    return time.perf_counter() - t, time.process_time() - cpu


async def _many_rows_floor(folder: str, n: int, batch: int = 500) -> float:
    """The CPU seconds SQLite alone takes to write the rows of ``n`` many_runs runs (the store's
    schema; per run its runs row inserted and updated, four events, two audit entries) with every
    parameter made beforehand, ``batch`` runs a transaction, ``executemany`` per table: the least
    any engine keeping these rows could spend on them here."""
    from podium.storage.sqlite import SQLiteStore

    path = f"{folder}/rows-floor-{time.perf_counter_ns()}.db"
    async with SQLiteStore(f"sqlite:///{path}"):  # the schema, migrated
        pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    now, sig = time.time(), "hmac:000000000000:" + "0" * 64
    ids = [podium.records.new_id() for _ in range(n)]
    runs = [(rid, "sleep2", "1", "running", "null", now, now, "bench-owner", now + 30, "default", 0) for rid in ids]
    step = f'{{"started":{now!r},"output":null}}'
    events = [
        (
            (rid, 1, "run_started", now, None, 0, None, 0, '{"owner":"bench-owner","format":1}'),
            (rid, 2, "step_completed", now, "s0", 0, None, 1, step),
            (rid, 3, "step_completed", now, "s1", 0, None, 1, step),
            (rid, 4, "run_completed", now, None, 0, None, 0, None),
        )
        for rid in ids
    ]
    start = '{"workflow":"sleep2","version":"1","input":"' + "0" * 64 + '","roles":["admin"]}'
    end = '{"workflow":"sleep2","status":"completed","events":4,"digest":"' + "0" * 64 + '"}'
    audit = [
        (
            (2 * i + 1, now, "engine", "run.start", rid, start, sig, sig, "bench", 2 * i + 1),
            (2 * i + 2, now, "engine", "run.end", rid, end, sig, sig, "bench", 2 * i + 2),
        )
        for i, rid in enumerate(ids)
    ]
    ended = [(now, rid) for rid in ids]
    cols = "id, workflow, version, status, input, created_at, started_at, owner, lease_expires_at, queue, priority"
    cpu = time.process_time()
    for i in range(0, n, batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(f"INSERT INTO runs ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", runs[i : i + batch])
        db.executemany(
            "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) VALUES (?,?,?,?,?,?,?,?,?)",
            [row for rows in events[i : i + batch] for row in rows],
        )
        db.executemany(
            "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [row for rows in audit[i : i + batch] for row in rows],
        )
        db.executemany(
            "UPDATE runs SET status='completed', output='null', finished_at=?, owner=NULL, lease_expires_at=NULL WHERE id=?",
            ended[i : i + batch],
        )
        db.execute("COMMIT")
    cpu = time.process_time() - cpu
    db.close()
    return cpu


async def _many_storage_floor(folder: str, n: int, *, batch: int = 1, journal: bool = False) -> tuple[float, float]:
    """What the durable writes of ``n`` runs cost SQLite alone, done the cheapest correct way: the
    store's own schema (its tables, indexes and triggers), one transaction per run start (each
    start is acknowledged after its commit, so sequential starts cannot share one), and the two
    step events and the end (event, status update, audit entry) of an earlier run in that same
    transaction. No engine, no signing. With ``batch``, one transaction per ``batch`` starts (as
    when they are started together); with ``journal``, each start is first appended to a journal
    file (a line as long as a start log's). Returns (seconds, CPU seconds)."""
    from podium.storage.sqlite import SQLiteStore

    path = f"{folder}/storage-floor-{time.perf_counter_ns()}.db"
    async with SQLiteStore(f"sqlite:///{path}"):  # the schema, migrated
        pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    cols = (
        "id, workflow, version, status, input, created_at, started_at, owner, lease_expires_at, queue, priority"
    )
    event = "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) VALUES (?,?,?,?,?,?,?,?,?)"
    audit = "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq) VALUES (?,?,?,?,?,?,?,?,?,?)"
    lag = 50  # the run whose steps and end ride in a start's transaction
    ids = [podium.records.new_id() for _ in range(n)]
    sig = "hmac:000000000000:" + "0" * 64
    cseq = 0

    def entry(action: str, rid: str, data: str) -> None:
        nonlocal cseq
        cseq += 1
        seq = (db.execute("SELECT MAX(seq) FROM audit").fetchone()[0] or 0) + 1
        db.execute(audit, (seq, time.time(), "engine", action, rid, data, sig, sig, "bench", cseq))

    def finish(rid: str) -> None:
        now = time.time()
        for seq, step in ((2, "s0"), (3, "s1")):
            db.execute(event, (rid, seq, "step_completed", now, step, 0, None, 1, f'{{"started":{now!r},"output":null}}'))
        db.execute(event, (rid, 4, "run_completed", now, None, 0, None, 0, None))
        db.execute(
            "UPDATE runs SET status='completed', output='null', finished_at=?, owner=NULL, lease_expires_at=NULL WHERE id=?",
            (now, rid),
        )
        entry("run.end", rid, '{"workflow":"sleep2","status":"completed","events":4,"digest":"' + "0" * 64 + '"}')

    line = b"0" * 900 + b"\n"
    jfd = os.open(f"{path}-journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if journal else -1
    t, cpu = time.perf_counter(), time.process_time()
    for i, rid in enumerate(ids):
        now = time.time()
        if journal:
            os.write(jfd, line)
        if i % batch == 0:
            db.execute("BEGIN IMMEDIATE")
        db.execute(
            f"INSERT INTO runs ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (rid, "sleep2", "1", "running", "null", now, now, "bench-owner", now + 30, "default", 0),
        )
        db.execute(event, (rid, 1, "run_started", now, None, 0, None, 0, '{"owner":"bench-owner","format":1}'))
        entry("run.start", rid, '{"workflow":"sleep2","version":"1","input":"' + "0" * 64 + '","roles":["admin"]}')
        if i >= lag:
            finish(ids[i - lag])
        if i % batch == batch - 1 or i == n - 1:
            db.execute("COMMIT")
    db.execute("BEGIN IMMEDIATE")
    for rid in ids[max(0, n - lag) :]:
        finish(rid)
    db.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    db.close()
    if journal:
        os.close(jfd)
    return elapsed, cpu


def bench_startup(repeats: int) -> dict[str, Any]:
    def timed(cmd: list[str]) -> float:
        out = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            out.append(time.perf_counter() - t)
        return min(out)

    podium_cmd = [
        sys.executable,
        "-c",
        "from podium.cli import main; import sys; sys.argv=['podium','--help']; main()",
    ]
    seconds = timed(podium_cmd)
    floor = timed([sys.executable, "-c", "pass"])
    return _row("startup", 1, seconds, seconds, floor)


def _row(
    workload: str, n: int, seconds: float, per_step: float, floor: float | None, **extra: Any
) -> dict[str, Any]:
    row = {
        "workload": workload,
        "n": n,
        "seconds": round(seconds, 4),
        "per_step_us": round(per_step * 1e6, 1),
        "floor_per_step_us": None if floor is None else round(floor * 1e6, 1),
    }
    row.update(extra)
    return row


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        every = ["chain", "fanout", "concurrent_io", "durable_chain", "durable_chain_power", "durable_loop", "many_runs", "many_runs_gathered", "startup"]
        wanted = set(args.only or every)
        if unknown := sorted(wanted - set(every)):
            raise SystemExit(f"error: no workload {', '.join(unknown)}; --only takes: {' '.join(every)}")
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("chain", lambda: bench_chain(args.repeats)),
            ("fanout", lambda: bench_fanout(args.repeats)),
            ("concurrent_io", lambda: bench_concurrent_io(max(3, args.repeats // 3))),
            ("durable_chain", lambda: bench_durable_chain(args.repeats, folder)),
            ("durable_chain_power", lambda: bench_durable_chain(args.repeats, folder, power=True)),
            ("durable_loop", lambda: bench_durable_loop(args.repeats, folder)),
            ("many_runs", lambda: bench_many_runs(folder, args.many)),
            ("many_runs_gathered", lambda: bench_many_runs(folder, args.many, gathered=100)),
        ]
        for name, fn in steps:
            if name in wanted:
                rows.append(await fn())
                _emit(rows[-1], args.json)
        if "startup" in wanted:
            rows.append(bench_startup(args.repeats))
            _emit(rows[-1], args.json)
    return rows


def _emit(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
    else:
        extra = {
            k: v
            for k, v in row.items()
            if k not in ("workload", "n", "seconds", "per_step_us", "floor_per_step_us")
        }
        floor = "-" if row["floor_per_step_us"] is None else f"{row['floor_per_step_us']:>9.1f}"
        print(
            f"{row['workload']:<14} n={row['n']:<6} {row['seconds']:>9.4f} s  {row['per_step_us']:>9.1f} us/step"
            f"  floor {floor} us  {json.dumps(extra) if extra else ''}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per workload; the best is kept")
    parser.add_argument("--many", type=int, default=10_000, help="runs in the many_runs workload")
    parser.add_argument("--only", nargs="*", help="run only these workloads")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
