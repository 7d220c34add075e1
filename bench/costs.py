"""Where a run's cost goes on SQLite: the figures behind issue 19 item 4 (one JSON line each).

    python bench/costs.py              # all four parts, 10,000 runs for the split
    python bench/costs.py --many 3000  # a quicker split

1. ``frames``: the WAL frames (dirty 4 KiB pages) a sequential one-step run writes at its start's
   commit and at its end's, named by the B-tree each page belongs to (read from the WAL's frame
   headers after a checkpoint, mapped with SQLite's ``dbstat``). Median of 7 runs.
2. ``commit``: what one more page costs a commit: raw sqlite3 transactions that insert one row into
   each of k tables (k pages), WAL, ``synchronous=NORMAL``: the CPU time per commit for each k, the
   base and the marginal cost per page (least squares).
3. ``sequential``: a one-step run started and awaited one after another on the SQLite store, wall
   and CPU per run, and the WAL frames per run; ``many_frames``: the WAL frames and commits per run
   of 1,000 runs of the many_runs workload.
4. ``split``: the many_runs workload (``n`` runs of two 10 ms sleeps, started one by one) on the
   memory store and on SQLite, each with the garbage collector on and off, beside plain asyncio:
   CPU per run, and the garbage collector's share (``gc.callbacks``), also by generation
   (collections, µs per run). Memory store with the
   collector off = the engine's own Python; SQLite minus that = the store (SQLite and its Python).

Every database is created in a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import chain_workflow, sleep_workflow

from podium import Client
from podium.storage.sqlite import SQLiteStore


def _wal_frames(folder: str) -> list[tuple[int, bool]]:
    """(page number, whether it ends a commit) of each frame in ``folder``/x.db-wal, in order."""
    with open(f"{folder}/x.db-wal", "rb") as fh:
        raw = fh.read()
    if len(raw) < 32:
        return []
    size = struct.unpack(">I", raw[8:12])[0]
    out, off = [], 32
    while off + 24 + size <= len(raw):
        page, after = struct.unpack(">II", raw[off : off + 8])
        out.append((page, after != 0))
        off += 24 + size
    return out


def _names(path: str) -> dict[int, str]:
    try:
        return dict(sqlite3.connect(path).execute("SELECT pageno, name FROM dbstat").fetchall())
    except sqlite3.OperationalError:  # SQLite built without dbstat: page numbers only
        return {}


async def frames() -> dict[str, Any]:
    wf = chain_workflow(1)
    with tempfile.TemporaryDirectory(prefix="podium-costs-") as folder:
        store = SQLiteStore(f"sqlite:///{folder}/x.db")
        per_run: list[int] = []
        commits: list[int] = []
        seen: list[int] = []
        runs = 20
        async with Client(store) as c:
            for _ in range(300):  # tables of a few levels, as in a store that has run a while
                await c.run(wf)
            for _ in range(runs):
                store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                await c.run(wf)
                got = _wal_frames(folder)
                per_run.append(len(got))
                seen += [page for page, _ in got]
                n = 0
                for _, ends in got:
                    n += 1
                    if ends:
                        commits.append(n)
                        n = 0
            names = _names(f"{folder}/x.db")
    by_tree = collections.Counter(names.get(p, f"page {p}") for p in seen)
    return {"part": "frames", "runs": runs, "frames_per_run_median": statistics.median(per_run),
            "frames_per_commit_median": statistics.median(commits), "commits_per_run": len(commits) / runs,
            "frames_per_run_by_btree": {k: round(v / runs, 2) for k, v in by_tree.most_common()}}  # fmt: skip


def commit(k_values: tuple[int, ...] = (1, 2, 5, 10, 20), n: int = 500, rounds: int = 5) -> dict[str, Any]:
    out: dict[int, float] = {k: float("inf") for k in k_values}
    for _ in range(rounds):  # the k values take turns: each sees the same machine; the best is kept
        for k in k_values:
            with tempfile.TemporaryDirectory(prefix="podium-costs-") as folder:
                db = sqlite3.connect(f"{folder}/x.db", isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                for i in range(k):
                    db.execute(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, data TEXT)")
                inserts = [f"INSERT INTO t{i} (data) VALUES ('x')" for i in range(k)]
                for _ in range(100):  # warm: pages cached, the WAL past its header
                    db.execute("BEGIN")
                    for s in inserts:
                        db.execute(s)
                    db.execute("COMMIT")
                t = time.process_time()  # CPU time (the process's and the kernel's for it): load-proof
                for _ in range(n):
                    db.execute("BEGIN")
                    for s in inserts:
                        db.execute(s)
                    db.execute("COMMIT")
                out[k] = min(out[k], (time.process_time() - t) / n * 1e6)
                db.close()
    ks, us = list(out), list(out.values())
    mk, mu = statistics.fmean(ks), statistics.fmean(us)
    slope = sum((a - mk) * (b - mu) for a, b in zip(ks, us, strict=True)) / sum((a - mk) ** 2 for a in ks)
    return {"part": "commit", "us_per_commit_by_pages": {str(k): round(v, 1) for k, v in out.items()},
            "base_us": round(mu - slope * mk, 1), "us_per_page": round(slope, 2)}  # fmt: skip


async def sequential(n: int = 2000) -> dict[str, Any]:
    wf = chain_workflow(1)
    with tempfile.TemporaryDirectory(prefix="podium-costs-") as folder:
        store = SQLiteStore(f"sqlite:///{folder}/x.db")
        async with Client(store) as c:
            for _ in range(100):
                await c.run(wf)
            store.db.execute("PRAGMA wal_autocheckpoint=0")  # count every frame of these runs
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            t, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                await c.run(wf)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            frames = len(_wal_frames(folder))
    return {"part": "sequential", "runs": n, "wall_us_per_run": round(wall / n * 1e6, 1),
            "cpu_us_per_run": round(cpu / n * 1e6, 1), "frames_per_run": round(frames / n, 2)}  # fmt: skip


async def many_frames(n: int = 1000) -> dict[str, Any]:
    """WAL frames per run of the many_runs workload (``n`` runs; the WAL kept whole: ~60 KiB a run)."""
    wf = sleep_workflow(2, 0.01)
    with tempfile.TemporaryDirectory(prefix="podium-costs-") as folder:
        store = SQLiteStore(f"sqlite:///{folder}/x.db")
        async with Client(store, max_concurrent_runs=n) as c:
            await c.run(wf)
            store.db.execute("PRAGMA wal_autocheckpoint=0")
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            handles = [await c.start(wf) for _ in range(n)]
            for h in handles:
                await h.result()
            got = _wal_frames(folder)
    return {"part": "many_frames", "runs": n, "frames_per_run": round(len(got) / n, 2),
            "commits_per_run": round(sum(ends for _, ends in got) / n, 2)}  # fmt: skip


async def _many(url: str, n: int, collect: bool) -> tuple[float, float, dict[str, list[float]]]:
    """CPU per run of the many_runs workload, the collector's share of it (µs per run), and by
    generation: [collections, µs per run]."""
    spent = {"t": 0.0, "at": 0.0}
    by_gen: dict[str, list[float]] = {str(g): [0, 0.0] for g in range(3)}

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            spent["at"] = time.perf_counter()
        else:
            took = time.perf_counter() - spent["at"]
            spent["t"] += took
            by_gen[str(info["generation"])][0] += 1
            by_gen[str(info["generation"])][1] += took / n * 1e6

    wf = sleep_workflow(2, 0.01)
    gc.collect()
    gc.callbacks.append(watch)
    if not collect:
        gc.disable()
    try:
        async with Client(url, max_concurrent_runs=n) as c:
            cpu = time.process_time()
            handles = [await c.start(wf) for _ in range(n)]
            for h in handles:
                await h.result()
            cpu = time.process_time() - cpu
    finally:
        gc.enable()
        gc.callbacks.remove(watch)
    return cpu / n * 1e6, spent["t"] / n * 1e6, {g: [int(k), round(us, 1)] for g, (k, us) in by_gen.items()}


async def _floor(n: int) -> float:
    async def one() -> None:
        for _ in range(2):
            await asyncio.sleep(0.01)

    cpu = time.process_time()
    await asyncio.gather(*[asyncio.ensure_future(one()) for _ in range(n)])
    return (time.process_time() - cpu) / n * 1e6


async def split(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"part": "split", "runs": n, "floor_cpu_us_per_run": round(await _floor(n), 1)}
    with tempfile.TemporaryDirectory(prefix="podium-costs-") as folder:
        for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{folder}/many.db")):
            for collect in (True, False):
                if name == "sqlite" and os.path.exists(f"{folder}/many.db"):
                    os.remove(f"{folder}/many.db")
                    for extra in ("-wal", "-shm"):
                        if os.path.exists(f"{folder}/many.db{extra}"):
                            os.remove(f"{folder}/many.db{extra}")
                cpu, collector, by_gen = await _many(url, n, collect)
                key = f"{name}_gc_{'on' if collect else 'off'}"
                out[f"{key}_cpu_us_per_run"] = round(cpu, 1)
                if collect:
                    out[f"{key}_collector_us_per_run"] = round(collector, 1)
                    out[f"{key}_collections"] = by_gen  # generation: [collections, µs per run]
    out["engine_python_us_per_run"] = round(out["memory_gc_off_cpu_us_per_run"] - out["floor_cpu_us_per_run"], 1)
    out["sqlite_store_us_per_run"] = round(out["sqlite_gc_off_cpu_us_per_run"] - out["memory_gc_off_cpu_us_per_run"], 1)
    return out


async def main_async(args: argparse.Namespace) -> None:
    parts = args.only or ["frames", "commit", "sequential", "many_frames", "split"]
    for part in parts:
        if part == "frames":
            row = await frames()
        elif part == "commit":
            row = commit()
        elif part == "sequential":
            row = await sequential()
        elif part == "many_frames":
            row = await many_frames()
        else:
            row = await split(args.many)
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--many", type=int, default=10_000, help="runs in the split's many_runs workload")
    parser.add_argument("--only", nargs="*", choices=["frames", "commit", "sequential", "many_frames", "split"], help="only these parts")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
