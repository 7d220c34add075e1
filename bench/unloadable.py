"""Runs an engine cannot load (a workflow version retired, its code gone): what each claim costs.

A store holds ``--runs`` pending runs of a version no engine here has, then one run it has. An
engine claims ``--limit`` runs at a time, as a worker with that many free slots does: each run it
cannot load is released and left alone for a while (podium.engine.worker.UNLOADABLE_RETRY). One
JSON line per backend:

* ``rounds_to_know``: claims until one meets no run the engine has not left alone (``know_s``: how
  long they took);
* ``claim_ms``: a claim once they are all known (median of ``--claims``; it claims nothing);
* ``skip_bytes``: what that claim sends the store to leave them alone (the ``skip`` and
  ``skip_versions`` arguments as JSON);
* ``live_claim_ms``: the claim that then takes the one run the engine has (behind all of them).

    python bench/unloadable.py                        # SQLite and the local PostgreSQL, 5,000 runs
    python bench/unloadable.py --backend sqlite --runs 20000

Each backend works in a store it creates (bench/_scratch.py) and removes at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from _scratch import scratch_database, server_from_env

from podium import Client, Workflow
from podium.records import RunRecord, RunStatus


def _flow(version: str) -> Workflow:
    wf = Workflow("bench_unloadable", version=version)

    @wf.step
    async def one(ctx: Any, input: Any) -> Any:
        return input

    return wf


async def _measure(url: str, runs: int, limit: int, claims: int) -> dict[str, Any]:
    live = _flow("2")
    async with Client(url, execute=False, workflows=[live]) as setup:
        t0 = time.time() - runs - 10
        stuck = [
            RunRecord(id=f"stuck-{i:06d}", workflow="bench_unloadable", version="1", status=RunStatus.PENDING,
                      input="1", created_at=t0 + i)
            for i in range(runs)
        ]  # fmt: skip
        for i in range(0, runs, 1000):
            await setup.store.create_runs([(r, (), None) for r in stuck[i : i + 1000]])
    async with Client(url, workflows=[live], recover=False, audit=False) as engine:
        sent: list[int] = []
        got_back: list[int] = []
        real = engine.store.claim_runs

        async def spy(*args: Any, **kw: Any) -> Any:
            sent.append(len(json.dumps(list(kw.get("skip") or []))) + len(json.dumps(list(kw.get("skip_versions") or []))))
            got = await real(*args, **kw)
            got_back.append(len(got))
            return got

        engine.store.claim_runs = spy  # type: ignore[method-assign]
        rounds, t_know = 0, time.perf_counter()
        while not got_back or got_back[-1]:  # until a claim meets no run it has not left alone
            rounds += 1
            await engine.take_over(limit=limit)
        know_s = time.perf_counter() - t_know
        times = []
        for _ in range(claims):
            t = time.perf_counter()
            assert await engine.take_over(limit=limit) == []
            times.append((time.perf_counter() - t) * 1000)
        skip_bytes = sent[-1]
        async with Client(url, execute=False, workflows=[live]) as submit:
            rid = (await submit.start(live, 1)).id
        t = time.perf_counter()
        got = await engine.take_over(limit=limit)
        live_ms = (time.perf_counter() - t) * 1000
        assert got == [rid], got
        await engine.wait(rid, timeout=60)
    return {
        "runs": runs, "limit": limit, "rounds_to_know": rounds, "know_s": round(know_s, 2), "claim_ms": round(statistics.median(times), 2),
        "skip_bytes": skip_bytes, "live_claim_ms": round(live_ms, 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--server", default=None, help="PostgreSQL admin URL (default: PODIUM_BENCH_PG or local)")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--claims", type=int, default=20)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        server = "sqlite" if backend == "sqlite" else (args.server or server_from_env())
        with scratch_database(server) as url:
            out = asyncio.run(_measure(url, args.runs, args.limit, args.claims))
        print(json.dumps({"backend": backend, **out}), flush=True)


if __name__ == "__main__":
    main()
