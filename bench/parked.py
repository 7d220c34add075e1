"""Many parked runs in one store: 100,000 runs waiting on a signal, an approval or a far timer,
served by one ``podium serve``. One JSON line per figure:

* ``populate_runs_per_s``: the runs started (through the Python client, 2,000 at a time, 200 on PostgreSQL) until
  every one was parked;
* ``rss_mb``: the server's resident memory on an empty store, then holding the parked runs, then
  after their timers fired (bounded: parked runs are not held in memory);
* ``ready_s``: from spawning the server to ``/readyz`` answering 200, cold and after a ``kill -9``
  (``restart_to_ready_s``); then a signal sent to one old parked run must finish it;
* ``list_ms``: ``GET /api/runs`` latencies (first page, filtered by status and workflow, every page
  by cursor, one deep page by offset);
* ``approvals_ms``: ``GET /api/approvals`` latencies with a third of the runs parked on an approval
  (the first page of 100, and every page of 1,000 by cursor, which must see each request once);
* ``timer_lateness``: ``--timers`` runs started over HTTP sleep until one instant (or instants spread
  over ``--spread`` seconds), the server is killed (``kill -9``) and started again before it: how
  late after its instant each run went on (p50, p99, max; all must fire).

    python bench/parked.py                       # SQLite and the local PostgreSQL, 100,000 runs
    python bench/parked.py --backend sqlite --runs 20000
    python bench/parked.py --backend postgres --server postgresql://postgres@127.0.0.1:5432/postgres

Each backend works in a store it creates (bench/_scratch.py) and removes at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _scratch import scratch_database, server_from_env  # noqa: E402
from bench_flows import parked  # noqa: E402

KINDS = ("signal", "approval", "timer")


def emit(backend: str, figure: str, value: Any, **extra: Any) -> None:
    print(json.dumps({"bench": "parked", "backend": backend, "figure": figure, "value": value, **extra}), flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def populate(db: str, n: int, chunk: int) -> tuple[float, list[str]]:
    """Start ``n`` runs that park (a third on a signal, an approval, a timer a month away),
    ``chunk`` at a time."""
    import podium

    far = time.time() + 30 * 86400
    signal_ids: list[str] = []
    t0 = time.perf_counter()
    async with podium.Client(db, workflows=[parked], max_concurrent_runs=2000) as client:
        for start in range(0, n, chunk):
            handles = await asyncio.gather(
                *(
                    client.start(parked, {"kind": KINDS[i % 3], "n": i, "at": far})
                    for i in range(start, min(n, start + chunk))
                )
            )
            await client.drain()
            signal_ids += [h.id for i, h in enumerate(handles) if (start + i) % 3 == 0][:2]
    return n / (time.perf_counter() - t0), signal_ids


class Server:
    """``podium serve`` on the store, in its own process."""

    def __init__(self, db: str, env: dict[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.db, self.env = db, env
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> float:
        """Spawn it; seconds until /readyz answers 200."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from podium.cli import main; main()", "serve", "--db", self.db,
             "--port", str(self.port), "--log-level", "warning", "-w", "bench_flows:parked"],
            cwd=ROOT,
            env=self.env,
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while time.perf_counter() - t0 < 120:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
                if self.proc.poll() is not None:
                    raise SystemExit(f"the server exited with {self.proc.returncode}")
                await asyncio.sleep(0.02)
        raise SystemExit("the server was not ready within 120 s")

    def rss_mb(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


async def timed_get(http: httpx.AsyncClient, path: str, **params: Any) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    r = await http.get(path, params=params)
    r.raise_for_status()
    return (time.perf_counter() - t) * 1000, r.json()


async def listing(backend: str, http: httpx.AsyncClient, n: int) -> None:
    """List latencies over the parked runs, and that the cursor walk sees each run once."""
    first = [(await timed_get(http, "/api/runs", limit=50))[0] for _ in range(20)]
    emit(backend, "list_ms", round(statistics.median(first), 2), query="first page, 50 runs")
    waiting = [(await timed_get(http, "/api/runs", status="waiting", limit=50))[0] for _ in range(20)]
    emit(backend, "list_ms", round(statistics.median(waiting), 2), query="status=waiting, 50 runs")
    both = [
        (await timed_get(http, "/api/runs", status="completed,failed", workflow="bench-parked", limit=50))[0]
        for _ in range(20)
    ]
    emit(backend, "list_ms", round(statistics.median(both), 2), query="workflow + status=completed,failed (none)")
    pages, seen, cursor = [], set(), None
    while True:
        params: dict[str, Any] = {"status": "waiting", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        ms, page = await timed_get(http, "/api/runs", **params)
        pages.append(ms)
        seen.update(r["id"] for r in page["runs"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    emit(backend, "list_ms", round(statistics.median(pages), 2), query="every page by cursor, 1000 runs",
         p99=round(pct(pages, 99), 2), pages=len(pages), runs_seen=len(seen))  # fmt: skip
    assert len(seen) >= n, f"the cursor walk saw {len(seen)} waiting runs of {n}"
    deep = [(await timed_get(http, "/api/runs", status="waiting", limit=50, offset=max(0, n - 1000)))[0] for _ in range(5)]
    emit(backend, "list_ms", round(statistics.median(deep), 2), query=f"offset={max(0, n - 1000)}, 50 runs (for comparison)")
    await approvals(backend, http, len(range(1, n, 3)))


async def approvals(backend: str, http: httpx.AsyncClient, asked: int) -> None:
    """The approvals inbox over the parked runs: first-page latency, and a cursor walk that sees each
    of the ``asked`` requests once."""
    first = [(await timed_get(http, "/api/approvals"))[0] for _ in range(20)]
    emit(backend, "approvals_ms", round(statistics.median(first), 2), query="first page, 100 requests",
         p99=round(pct(first, 99), 2), open_requests=asked)  # fmt: skip
    pages, seen, cursor = [], [], None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        ms, page = await timed_get(http, "/api/approvals", **params)
        pages.append(ms)
        seen += [(a["run_id"], a["name"]) for a in page["approvals"]]
        if not (cursor := page["next_cursor"]):
            break
    emit(backend, "approvals_ms", round(statistics.median(pages), 2), query="every page by cursor, 1000 requests",
         p99=round(pct(pages, 99), 2), pages=len(pages), requests_seen=len(seen))  # fmt: skip
    assert len(seen) == len(set(seen)) == asked, f"the cursor walk saw {len(seen)} requests ({len(set(seen))} distinct) of {asked}"


async def start_timers(http: httpx.AsyncClient, count: int, at: float, spread: float) -> list[str]:
    """``count`` runs whose timers fall due from ``at`` to ``at + spread`` (all at ``at`` with 0)."""
    ids: list[str] = []
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            due = at + spread * i / count
            r = await http.post("/api/runs", json={"workflow": "bench-parked", "input": {"kind": "timer", "at": due, "n": i}})
            r.raise_for_status()
            ids.append(r.json()["run"]["id"])

    await asyncio.gather(*(worker() for _ in range(16)))
    return ids


async def wait_status(http: httpx.AsyncClient, ids: list[str], statuses: set[str], deadline: float) -> dict[str, Any]:
    """Poll until every run of ``ids`` has one of ``statuses``; returns their records."""
    left, done = set(ids), {}
    while left and time.time() < deadline:
        for rid in list(left)[:200]:
            run = (await http.get(f"/api/runs/{rid}")).json()["run"]
            if run["status"] in statuses:
                done[rid] = run
                left.discard(rid)
        if left:
            await asyncio.sleep(0.2)
    return done


async def bench(backend: str, db: str, args: argparse.Namespace, env: dict[str, str]) -> None:
    # PostgreSQL: fewer at once, as every start waits for the cluster-wide audit lock (issue 19 item 1)
    rate, signal_ids = await populate(db, args.runs, 2000 if backend == "sqlite" else 200)
    emit(backend, "populate_runs_per_s", round(rate), runs=args.runs)
    one = Server(db, env)
    emit(backend, "ready_s", round(await one.start(), 2), when=f"cold start, {args.runs} parked runs")
    try:
        async with httpx.AsyncClient(base_url=one.url, timeout=60) as http:
            at = time.time() + args.timer_delay
            timer_ids = await start_timers(http, args.timers, at, args.spread)
            parked_now = await wait_status(http, timer_ids, {"waiting"}, time.time() + args.timer_delay / 2)
            assert len(parked_now) == len(timer_ids), "the timer runs did not all park"
            await listing(backend, http, args.runs)
            emit(backend, "rss_mb", round(one.rss_mb(), 1), when=f"serving {args.runs + args.timers} parked runs")
    finally:
        one.kill()  # a crash: the timers must still fire, from the next server
    two = Server(db, env)
    emit(backend, "restart_to_ready_s", round(await two.start(), 2), after="kill -9", parked=args.runs + args.timers)
    try:
        async with httpx.AsyncClient(base_url=two.url, timeout=60) as http:
            t = time.perf_counter()
            (await http.post(f"/api/runs/{signal_ids[0]}/signal", json={"name": "go"})).raise_for_status()
            woke = await wait_status(http, signal_ids[:1], {"completed"}, time.time() + 30)
            assert woke, "an old parked run did not go on after its signal"
            emit(backend, "signal_to_completed_ms", round((time.perf_counter() - t) * 1000, 1), after="restart")
            fired = await wait_status(http, timer_ids, {"completed"}, at + args.spread + 60)
            late = [r["output"] - r["input"]["at"] for r in fired.values()]  # went on - was due
            emit(backend, "timer_lateness_s", round(pct(late, 50), 3), p99=round(pct(late, 99), 3),
                 max=round(max(late), 3), fired=len(fired), timers=len(timer_ids), due_over_s=args.spread)  # fmt: skip
            assert len(fired) == len(timer_ids), f"{len(timer_ids) - len(fired)} timers did not fire"
            emit(backend, "rss_mb", round(two.rss_mb(), 1), when="after the restart and the timers")
    finally:
        two.stop()


async def baseline_rss(env: dict[str, str]) -> float:
    with scratch_database("sqlite") as db:
        server = Server(db, env)
        await server.start()
        try:
            return server.rss_mb()
        finally:
            server.stop()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100_000, help="parked runs in the store")
    ap.add_argument("--timers", type=int, default=1000, help="runs whose timers fall due at one instant")
    ap.add_argument("--timer-delay", type=float, default=40.0, help="seconds from their start to that instant")
    ap.add_argument("--spread", type=float, default=0.0, help="spread the timers' due times over this many seconds")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--server", default=None, help="PostgreSQL admin URL (default $PODIUM_BENCH_PG or the local one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="podium-parked-") as keys:
        os.environ["PODIUM_AUDIT_KEY"] = os.path.join(keys, "audit.key")  # not the user's key
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, HERE])}
        emit("sqlite", "rss_mb", round(await baseline_rss(env), 1), when="serving an empty store")
        for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
            server = "sqlite" if backend == "sqlite" else (args.server or server_from_env())
            with scratch_database(server) as db:
                await bench(backend, db, args, env)


if __name__ == "__main__":
    asyncio.run(main())
