"""The floor of a durable step on PostgreSQL, beside what the store pays for it.

    python bench/pg_floor.py [--n 2000] [--url postgresql://postgres@127.0.0.1:5432/postgres] [--no-sync]

A durable step on PostgreSQL is one INSERT + COMMIT of its event. This prints, in the same run and
on the same table, microseconds per:

  raw     psycopg, one autocommit connection: INSERT INTO events ... (one implicit transaction)
  store   PostgresStore.append([event])  (pool checkout, liveness check, the same INSERT)
  run     a whole run of two no-op steps through Client.run (``--runs`` of them, sequential),
          beside three raw INSERT+COMMITs: the commits a two-step run makes (its start, its first
          step, its end with its last step)

and the CPU time this process spent per append (the client-side cost, less sensitive to a busy
machine than wall time). Each figure is the best of 3 rounds of ``--n`` sequential appends. The server is named by --url,
else $PODIUM_TEST_PG, else the local default; a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # pg_runs beside it

import psycopg

from podium.records import Event, RunRecord, RunStatus
from podium.storage.postgres import PostgresStore

DEFAULT_URL = os.environ.get("PODIUM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DATA = '{"output":{"text":"a typical small step result","n":42},"duration":0.0012}'
INSERT = (
    "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


async def raw_round(url: str, run_id: str, n: int) -> tuple[float, float]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(INSERT, (run_id, 0, "step_completed", time.time(), "warm", 0, None, 1, DATA))
        t0, c0 = time.perf_counter(), time.process_time()
        for seq in range(1, n + 1):
            await conn.execute(INSERT, (run_id, seq, "step_completed", time.time(), "s", 0, None, 1, DATA))
        return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


async def store_round(store: PostgresStore, run_id: str, n: int) -> tuple[float, float]:
    await store.append(
        [Event(run_id=run_id, seq=0, type="step_completed", ts=time.time(), step="warm", data=DATA)]
    )
    t0, c0 = time.perf_counter(), time.process_time()
    for seq in range(1, n + 1):
        ev = Event(
            run_id=run_id, seq=seq, type="step_completed", ts=time.time(), step="s", attempt=1, data=DATA
        )
        await store.append([ev])
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


async def runs_round(url: str, n: int) -> tuple[float, float]:
    from pg_runs import two_steps

    from podium import Client

    wf = two_steps()
    async with Client(url) as c:
        for _ in range(20):  # warm: the workflow registered, the audit chain anchored
            await c.run(wf)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            await c.run(wf)
        return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


async def main(admin_url: str, n: int, no_sync: bool = False, runs: int = 0) -> None:
    name = f"podium_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        if no_sync:  # the commit does not wait for the WAL flush: shows the client-side costs
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        async with PostgresStore(url) as store:
            raw, via_store = [], []
            for i in range(3):  # interleaved, so both see the same machine
                for kind in ("raw", "store"):
                    rid = f"{kind}-{i}"
                    await store.create_run(
                        RunRecord(
                            id=rid,
                            workflow="bench",
                            version="1",
                            status=RunStatus.COMPLETED,  # only holds the events: nobody resumes it
                            created_at=time.time(),
                        )
                    )
                    if kind == "raw":
                        raw.append(await raw_round(url, rid, n))
                    else:
                        via_store.append(await store_round(store, rid, n))
        whole = [await runs_round(url, runs) for _ in range(3)] if runs else []
        with psycopg.connect(url) as conn:
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'} at {admin_url.rsplit('/', 1)[0]}, "
              f"synchronous_commit={sync_commit[0] if sync_commit else '?'}, best of 3 x {n} sequential appends")  # fmt: skip
        for label, rounds in (("raw psycopg INSERT+COMMIT", raw), ("store.append([event])", via_store)):
            wall, cpu = min(w for w, _ in rounds), min(c for _, c in rounds)
            print(f"{label:28}{wall * 1e6:8.1f} us wall   ({cpu * 1e6:6.1f} us of client CPU)")
        if whole:
            wall, cpu = min(w for w, _ in whole), min(c for _, c in whole)
            floor = 3 * min(w for w, _ in raw)
            print(f"{'a two-step run (Client.run)':28}{wall * 1e6:8.1f} us wall   ({cpu * 1e6:6.1f} us of client CPU); "
                  f"floor, three raw commits: {floor * 1e6:.1f} us ({wall / floor:.2f}x)")  # fmt: skip
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=DEFAULT_URL, help="an existing database to create the scratch one from"
    )
    parser.add_argument("--n", type=int, default=2000, help="appends per round")
    parser.add_argument("--runs", type=int, default=500, help="two-step runs per round (0: none)")
    parser.add_argument(
        "--no-sync",
        action="store_true",
        help="also measure with synchronous_commit=off (not durable: isolates the client-side overhead)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.url, args.n, runs=args.runs))
    if args.no_sync:
        asyncio.run(main(args.url, args.n, no_sync=True, runs=args.runs))
