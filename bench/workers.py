"""Scale-out benchmarks: throughput with 1, 2, 4 and 8 worker processes, pickup latency, and the
durable step on the chosen store beside a raw INSERT+COMMIT floor measured in the same run.

    python bench/workers.py [--server postgresql://postgres@127.0.0.1:5432/postgres] [--json]
                            [--only durable scale_io scale_cpu pickup] [--workers 1 2 4 8]

Every figure works in a database of its own, created on --server and dropped after it.

``scale_io`` is the I/O-bound workload: runs of 5 steps that each await 50 ms, every worker driving
up to ``--io-concurrency`` runs at once, so one worker's ideal is concurrency / 0.25 s runs/s and N
workers' is N times that (the bar: at least 0.8 x N x one worker). ``scale_cpu`` is the CPU-light
case: runs of one no-op step, where the machine's cores (reported beside it, with the load
average) bound throughput, not the workers. The runs are all submitted before the workers start,
and throughput is taken between 10% and 90% of them finished (no process start-up, no tail).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_flows import io5, noop  # noqa: E402

import podium  # noqa: E402


def _workers(db: str, n: int, concurrency: int = 500) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PODIUM_DB": db}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from podium.cli import main; main()",
                "worker",
                "--concurrency",
                str(concurrency),
                "--grace",
                "1",
            ],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


async def _wait_all(api: podium.Client, ids: list[str], timeout: float) -> None:
    """Wait until every run in ``ids`` finished, polling lightly (one query per check) so that the
    benchmark does not load the database it measures."""
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while True:
        done = {r.id for r in await api.list(status=["completed", "failed", "cancelled"], limit=len(ids) + 100)}
        if wanted <= done:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(wanted - done)} runs unfinished after {timeout}s")
        await asyncio.sleep(0.05 if len(ids) > 1 else 0.002)


async def pickup(db: str, samples: int) -> dict:
    procs = _workers(db, 1)
    lat = []
    try:
        async with podium.Client(db, execute=False) as api:
            await asyncio.sleep(1.5)
            for _ in range(samples):
                handle = await api.start(noop)
                await _wait_all(api, [handle.id], 30)
                h = await api.history(handle.id)
                claimed = next(e.ts for e in h.events if e.type == "run_resumed")
                lat.append((claimed - h.run.created_at) * 1000)
                await asyncio.sleep(0.05)
    finally:
        _stop(procs)
    lat.sort()
    return {
        "workload": "pickup_latency",
        "n": samples,
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(lat[int(len(lat) * 0.95) - 1], 2),
    }


async def durable_step(db: str, repeats: int) -> dict:
    from run import chain_workflow  # bench/run.py

    wf = chain_workflow()
    best = float("inf")
    async with podium.Client(db) as c:
        await c.run(wf)
        for _ in range(repeats):
            t = time.perf_counter()
            await c.run(wf)
            best = min(best, time.perf_counter() - t)
    floor = await _floor(db, repeats)
    return {
        "workload": "durable_chain",
        "n": 200,
        "per_step_us": round(best / 200 * 1e6, 1),
        "floor_per_step_us": round(floor * 1e6, 1),
        "ratio": round(best / 200 / floor, 2),
    }


async def _floor(db: str, repeats: int) -> float:
    """One raw INSERT+COMMIT per step, on the same server (or file)."""
    if db.startswith("postgres"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            # A regular (logged) table: a TEMP table would skip the WAL flush that a commit costs.
            await conn.execute("DROP TABLE IF EXISTS podium_floor")
            await conn.execute("CREATE TABLE podium_floor (id BIGSERIAL PRIMARY KEY, data TEXT)")
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(200):
                    await conn.execute("INSERT INTO podium_floor (data) VALUES (%s)", ('{"output":null}',))
                best = min(best, (time.perf_counter() - t) / 200)
            await conn.execute("DROP TABLE podium_floor")
            return best
    from run import floor_sqlite

    folder = os.path.dirname(db.removeprefix("sqlite:///")) or "."
    return min(floor_sqlite(folder) for _ in range(repeats)) / 200


async def _submit(db: str, wf: podium.Workflow, runs: int) -> None:
    async with podium.Client(db, execute=False) as api:
        sem = asyncio.Semaphore(16)

        async def one() -> None:
            async with sem:
                await api.start(wf)

        await asyncio.gather(*(one() for _ in range(runs)))


def _finished(db: str) -> tuple[int, int]:
    """(completed, failed or cancelled) runs, read directly: one cheap query per poll."""
    if db.startswith("postgres"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), "
                "count(*) FILTER (WHERE status IN ('failed', 'cancelled')) FROM runs"
            ).fetchone()
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
            row = conn.execute(
                "SELECT sum(status = 'completed'), sum(status IN ('failed', 'cancelled')) FROM runs"
            ).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1] or 0)


def scale(server: str | None, workload: str, workers: int, runs: int, concurrency: int) -> dict:
    """Throughput of ``workers`` worker processes over ``runs`` runs submitted up front."""
    from _scratch import scratch_database

    wf = io5 if workload == "io" else noop
    with scratch_database(server) as db:
        asyncio.run(_submit(db, wf, runs))
        procs = _workers(db, workers, concurrency)
        marks: list[tuple[float, int, float]] = []  # (time, runs finished, the workers' CPU seconds)
        try:
            deadline = time.monotonic() + 600
            while True:
                done, failed = _finished(db)
                marks.append((time.monotonic(), done, sum(_cpu_seconds(p.pid) for p in procs)))
                if failed:
                    raise SystemExit(f"{failed} runs failed or were cancelled")
                if done >= runs:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{runs - done} runs unfinished after 600 s")
                time.sleep(0.1)
        finally:
            _stop(procs)
    lo, hi = _at(marks, runs * 0.1), _at(marks, runs * 0.9)
    rate = (hi[1] - lo[1]) / (hi[0] - lo[0])
    cpu = (hi[2] - lo[2]) / (hi[1] - lo[1])  # in the same window: no start-up
    return {
        "workload": f"scale_{workload}",
        "workers": workers,
        "n": runs,
        "concurrency": concurrency,
        "runs_per_s": round(rate, 1),
        **({"ideal_runs_per_s": round(workers * concurrency / 0.25, 1)} if workload == "io" else {}),
        "worker_cpu_ms_per_run": round(cpu * 1000, 2),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _at(marks: list[tuple[float, int, float]], count: float) -> tuple[float, int, float]:
    """The first poll at which at least ``count`` runs had finished."""
    return next(m for m in marks if m[1] >= count)


async def main_async(args: argparse.Namespace) -> None:
    if "durable" in args.only:
        _emit(await durable_step(args.db, 5), args.json)
    if "pickup" in args.only:
        _emit(await pickup(args.db, args.samples), args.json)


def _scaling(args: argparse.Namespace, server: str | None) -> None:
    for workload in ("io", "cpu"):
        if f"scale_{workload}" not in args.only:
            continue
        one: float | None = None
        for n in args.workers:
            per = args.io_runs if workload == "io" else args.cpu_runs
            conc = args.io_concurrency if workload == "io" else args.cpu_concurrency
            row = scale(server, workload, n, per * n, conc)
            if n == 1:
                one = row["runs_per_s"]
            if one:
                row["vs_one_worker"] = round(row["runs_per_s"] / one, 2)
                if workload == "io":
                    row["bar"] = round(0.8 * n, 2)
                    row["meets_bar"] = row["runs_per_s"] >= 0.8 * n * one
            _emit(row, args.json)


def _emit(row: dict, as_json: bool) -> None:
    print(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=None, help="PostgreSQL admin URL (default $PODIUM_BENCH_PG or the local server), or 'sqlite'")
    p.add_argument("--only", nargs="+", default=["durable", "scale_io", "scale_cpu", "pickup"],
                   choices=["durable", "scale_io", "scale_cpu", "pickup"])  # fmt: skip
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4, 8], help="Worker counts to measure (start with 1).")
    p.add_argument("--io-runs", type=int, default=400, help="I/O-bound runs per worker.")
    p.add_argument("--io-concurrency", type=int, default=10, help="Runs each worker drives at once (I/O-bound).")
    p.add_argument("--cpu-runs", type=int, default=1000, help="CPU-light runs per worker.")
    p.add_argument("--cpu-concurrency", type=int, default=100, help="Runs each worker drives at once (CPU-light).")
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from _scratch import scratch_database, server_from_env

    server = args.server or server_from_env()
    if {"durable", "pickup"} & set(args.only):
        with scratch_database(server) as db:  # never a database it did not create
            args.db = db
            asyncio.run(main_async(args))
    _scaling(args, server)


if __name__ == "__main__":
    main()
