"""Load test of ``POST /api/events/{type}`` on one real ``podium serve`` (127.0.0.1), SQLite and
PostgreSQL: N unique events from C concurrent HTTP/1.1 keep-alive connections, each event posted
twice with the same ``Idempotency-Key`` (a sender that retries; ``--posts 1``: once). Each unique
event starts one run of a one-step workflow, executed by the same server.

Then the server is killed (``kill -9``, right after the last answer) and started again, and the
store is read back: every acknowledged event must have its run (0 lost: an answer is given only
once the run is durable) and each key exactly one run. One JSON line per figure:

* ``unique_events_per_s``: unique events acknowledged per second (with their retries);
* ``posts_per_s``: every post (first sends and retries);
* ``wrong_answers``: answers that were not 202 with the run (first post) or the duplicate (retry);
* ``lost``, ``runs_per_key``: read back after the ``kill -9``.

    python bench/server_events.py                     # both backends, 10,000 events, 64 clients
    python bench/server_events.py --backend sqlite --events 2000 --clients 32
    python bench/server_events.py --backend postgres --server postgresql://postgres@127.0.0.1:5432/postgres

The load comes from a small raw HTTP/1.1 client on asyncio streams (a full HTTP client library
would cost more CPU than the server on a small machine). Each backend gets a store it creates
(bench/_scratch.py) and removes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from typing import Any

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _scratch import scratch_database, server_from_env  # noqa: E402

EVENT = "ticket.created"


MODE: dict[str, Any] = {}
"""How this invocation serves and posts (single or batch, HTTP parts, executing or not): on every line."""


def emit(backend: str, figure: str, value: Any, **extra: Any) -> None:
    line = {"bench": "server_events", "backend": backend, "figure": figure, "value": value, **MODE, **extra}
    print(json.dumps({**line, "load": [round(x, 1) for x in os.getloadavg()]}), flush=True)


def run_id_for(key: str) -> str:
    """The run id the server derives for the key (podium.server.triggers.derived_id)."""
    return hashlib.sha256("\x00".join(("event", EVENT, "tickets", key)).encode()).hexdigest()[:24]


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads the answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode() + body
        )
        status_line = await self.reader.readline()
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return int(status_line.split()[1]), json.loads(data) if data else {}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(db: str, port: int, env: dict[str, str], args: argparse.Namespace) -> subprocess.Popen[bytes]:
    # --plain: as if httptools and uvloop were not installed (podium serve then uses h11 and asyncio).
    hide = "import sys; sys.modules['httptools'] = sys.modules['uvloop'] = None; " if args.plain else ""
    extra = ["--no-execute"] if args.no_execute else []
    return subprocess.Popen(
        [sys.executable, "-c", hide + "from podium.cli import main; main()", "serve", "--db", db, "--port", str(port),
         "--log-level", "warning", "-w", "tests.server.flows:tickets", *extra],
        cwd=ROOT,
        env=env,
    )  # fmt: skip


async def ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        for _ in range(3000):
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}")
            await asyncio.sleep(0.02)
    raise SystemExit("the server did not get ready")


async def load(port: int, events: int, clients: int, posts: int = 2, batch: int = 0) -> dict[str, Any]:
    """Post every event ``posts`` times (same key) from ``clients`` connections, one by one or
    ``batch`` at a time (``POST /api/events``); check every answer."""
    keys = iter(range(events))
    acked: list[str] = []
    problems: list[str] = []

    async def batches() -> None:
        conn = Connection(port)
        while chunk := list(itertools.islice(keys, batch)):
            body = json.dumps({"events": [
                {"type": EVENT, "idempotency_key": f"k{i}", "payload": {"id": i, "subject": f"ticket {i}"}} for i in chunk
            ]}).encode()  # fmt: skip
            for attempt in range(posts):  # the whole batch again, as a sender that timed out would
                status, answer = await conn.post("/api/events", body, {})
                got = answer.get("events") or []
                for i, item in zip(chunk, got, strict=False):
                    rid = run_id_for(f"k{i}")
                    fine = item["new"] and item["runs"] == [rid] if not attempt else item["duplicates"] == [rid]
                    if not fine:
                        problems.append(f"k{i} attempt {attempt + 1}: {item}")
                if status != 202 or len(got) != len(chunk):
                    problems.append(f"batch from k{chunk[0]} attempt {attempt + 1}: {status} {str(answer)[:300]}")
            acked.extend(f"k{i}" for i in chunk)

    async def client() -> None:
        if batch:
            return await batches()
        conn = Connection(port)
        for i in keys:
            key = f"k{i}"
            body = json.dumps({"id": i, "subject": f"ticket {i}"}).encode()
            for attempt in range(posts):  # an at-least-once sender retries: the key dedups
                status, answer = await conn.post(f"/api/events/{EVENT}", body, {"Idempotency-Key": key})
                expected = {"runs": [run_id_for(key)], "duplicates": []}
                if attempt:
                    expected = {"runs": [], "duplicates": [run_id_for(key)]}
                if status != 202 or {k: answer.get(k) for k in expected} != expected:
                    problems.append(f"{key} attempt {attempt + 1}: {status} {answer}")
            acked.append(key)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"elapsed": time.perf_counter() - t0, "acked": acked, "problems": problems}


async def count_runs(url: str) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        cursor = None
        while True:
            params: dict[str, Any] = {"workflow": "tickets", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/api/runs", params=params)).json()
            ids += [r["id"] for r in page["runs"]]
            cursor = page["next_cursor"]
            if not cursor:
                return ids


async def drained(url: str, events: int, procs: list[subprocess.Popen[bytes]], acked_after: float, cpu0: float, backend: str) -> None:
    """Wait until every event's run has also been executed (the server acknowledges before running
    it, and with ``--workers`` the workers run it): events per second from the first post to the
    last run ended, and the CPU of the server and its workers together."""
    t0 = time.perf_counter() - acked_after
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while True:
            text = (await http.get("/metrics")).text
            left = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("podium_runs_unfinished{"))  # fmt: skip
            if not left:
                break
            if time.perf_counter() - t0 > 3600:
                raise SystemExit(f"{left:.0f} of {events} runs still unfinished after an hour")
            await asyncio.sleep(0.2)
    elapsed, cpu = time.perf_counter() - t0, sum(cpu_seconds(p.pid) for p in procs) - cpu0
    emit(backend, "executed_events_per_s", round(events / elapsed), seconds=round(elapsed, 2), floor=1000)
    emit(backend, "cpu_us_per_executed_event", round(cpu / events * 1e6), events_per_core_s=round(events / cpu),
         processes=len(procs))  # fmt: skip


def spawn_workers(db: str, env: dict[str, str], n: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-c", "from podium.cli import main; main()", "worker", "--db", db,
               "--log-level", "warning", "-w", "tests.server.flows:tickets"]  # fmt: skip
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(n)]


async def bench(backend: str, db: str, args: argparse.Namespace, env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = spawn(db, port, env, args)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await ready(url, proc)
        workers = spawn_workers(db, env, args.workers)
        await asyncio.sleep(2 if workers else 0)  # the workers open the store and start polling
        cpu0 = cpu_seconds(proc.pid)
        wcpu0 = sum(cpu_seconds(w.pid) for w in workers)
        got = await load(port, args.events, args.clients, args.posts, args.batch)
        cpu = cpu_seconds(proc.pid) - cpu0
        if args.drain:
            await drained(url, args.events, [proc, *workers], got["elapsed"], cpu0 + wcpu0, backend)
        proc.send_signal(signal.SIGKILL)  # right after the last answer: what was answered must be there
        proc.wait(10)
        elapsed, acked, problems = got["elapsed"], got["acked"], got["problems"]
        emit(backend, "unique_events_per_s", round(args.events / elapsed), events=args.events,
             clients=args.clients, seconds=round(elapsed, 2), floor=1000)  # fmt: skip
        emit(backend, "posts_per_s", round(args.posts * args.events / elapsed), posts=args.posts * args.events)
        # The machine is shared: the server's own CPU per event says what one core would sustain.
        emit(backend, "server_cpu_us_per_event", round(cpu / args.events * 1e6), posts_per_event=args.posts,
             events_per_core_s=round(args.events / cpu) if cpu else None)  # fmt: skip
        emit(backend, "wrong_answers", len(problems), first=problems[:3])
        proc = spawn(db, port, env, args)
        await ready(url, proc)
        ids = await count_runs(url)
        expected = {run_id_for(k) for k in acked}
        emit(backend, "lost", len(expected - set(ids)), acked=len(acked), after="kill -9 and restart")
        emit(backend, "runs_per_key", len(ids) / max(1, len(expected)), runs=len(ids), keys=len(expected),
             unexpected=len(set(ids) - expected), repeated=len(ids) - len(set(ids)))  # fmt: skip
    finally:
        for p in (proc, *workers):
            if p.poll() is None:
                p.terminate()
                p.wait(60)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--posts", type=int, default=2, help="posts per event (1: no retry; 2: each retried once)")
    ap.add_argument("--batch", type=int, default=0, help="events per POST /api/events (0: one POST /api/events/{type} each)")
    ap.add_argument("--no-execute", action="store_true", help="podium serve --no-execute: accept only (runs stay queued for workers)")
    ap.add_argument("--plain", action="store_true", help="serve with h11 and asyncio even if httptools and uvloop are installed")
    ap.add_argument("--workers", type=int, default=0, help="also start this many podium worker processes on the store")
    ap.add_argument("--drain", action="store_true", help="also wait for every run to complete before the kill (figures: executed_events_per_s)")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--server", default=None, help="PostgreSQL admin URL (default $PODIUM_BENCH_PG or the local one)")
    args = ap.parse_args()
    if args.drain and args.no_execute and not args.workers:
        ap.error("--drain waits for the runs to be run: with --no-execute, give --workers N")
    fast = not args.plain and all(find_spec(m) for m in ("httptools", "uvloop"))
    MODE.update(mode=f"batch {args.batch}" if args.batch else "single", http="httptools+uvloop" if fast else "h11+asyncio",
                execute="workers" if args.no_execute and args.workers else not args.no_execute)  # fmt: skip
    if args.workers:
        MODE["workers"] = args.workers
    with tempfile.TemporaryDirectory(prefix="podium-ingest-") as keys:
        path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path, "PODIUM_AUDIT_KEY": os.path.join(keys, "audit.key")}
        for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
            server = "sqlite" if backend == "sqlite" else (args.server or server_from_env())
            with scratch_database(server) as db:
                await bench(backend, db, args, env)


if __name__ == "__main__":
    asyncio.run(main())
