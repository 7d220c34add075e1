"""Scale-out benchmarks: throughput with 1, 2 and 4 worker processes, pickup latency, and the
durable step on the chosen store beside a raw INSERT+COMMIT floor measured in the same run.

    python bench/workers.py [--server postgresql://postgres@127.0.0.1:5432/postgres] [--json]

It works in a database of its own, created on --server and dropped at the end.

The database is emptied first (its runs tables are dropped): point it at a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench_flows import io3, noop  # noqa: E402

import podium  # noqa: E402


def _workers(db: str, n: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PODIUM_DB": db}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from podium.cli import main; main()",
                "worker",
                "--concurrency",
                "500",
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


async def throughput(db: str, workers: int, runs: int) -> dict:
    procs = _workers(db, workers)
    try:
        async with podium.Client(db, execute=False) as api:
            await asyncio.sleep(1.5)  # let the workers start
            t = time.perf_counter()
            ids = [(await api.start(io3)).id for _ in range(runs)]
            await _wait_all(api, ids, 300)
            seconds = time.perf_counter() - t
    finally:
        _stop(procs)
    return {
        "workload": f"io_runs_{workers}_workers",
        "n": runs,
        "seconds": round(seconds, 3),
        "runs_per_s": round(runs / seconds, 1),
    }


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


async def main_async(args: argparse.Namespace) -> None:
    rows = [await durable_step(args.db, 5)]
    _emit(rows[-1], args.json)
    for n in (1, 2, 4):
        rows.append(await throughput(args.db, n, args.runs))
        _emit(rows[-1], args.json)
    rows.append(await pickup(args.db, args.samples))
    _emit(rows[-1], args.json)


def _emit(row: dict, as_json: bool) -> None:
    print(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=None, help="PostgreSQL admin URL (default $PODIUM_BENCH_PG or the local server), or 'sqlite'")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from _scratch import scratch_database, server_from_env

    with scratch_database(args.server or server_from_env()) as db:  # never a database it did not create
        args.db = db
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
