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
import json
import os
import signal
import socket
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

EVENT = "ticket.created"


def emit(backend: str, figure: str, value: Any, **extra: Any) -> None:
    print(json.dumps({"bench": "server_events", "backend": backend, "figure": figure, "value": value, **extra}), flush=True)


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


def spawn(db: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", "serve", "--db", db, "--port", str(port),
         "--log-level", "warning", "-w", "tests.server.flows:tickets"],
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


async def load(port: int, events: int, clients: int, posts: int = 2) -> dict[str, Any]:
    """Post every event ``posts`` times (same key) from ``clients`` connections; check every answer."""
    keys = iter(range(events))
    acked: list[str] = []
    problems: list[str] = []

    async def client() -> None:
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


async def bench(backend: str, db: str, args: argparse.Namespace, env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = spawn(db, port, env)
    try:
        await ready(url, proc)
        cpu0 = cpu_seconds(proc.pid)
        got = await load(port, args.events, args.clients, args.posts)
        cpu = cpu_seconds(proc.pid) - cpu0
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
        proc = spawn(db, port, env)
        await ready(url, proc)
        ids = await count_runs(url)
        expected = {run_id_for(k) for k in acked}
        emit(backend, "lost", len(expected - set(ids)), acked=len(acked), after="kill -9 and restart")
        emit(backend, "runs_per_key", len(ids) / max(1, len(expected)), runs=len(ids), keys=len(expected),
             unexpected=len(set(ids) - expected), repeated=len(ids) - len(set(ids)))  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--posts", type=int, default=2, help="posts per event (1: no retry; 2: each retried once)")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--server", default=None, help="PostgreSQL admin URL (default $PODIUM_BENCH_PG or the local one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="podium-ingest-") as keys:
        env = {**os.environ, "PYTHONPATH": ROOT, "PODIUM_AUDIT_KEY": os.path.join(keys, "audit.key")}
        for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
            server = "sqlite" if backend == "sqlite" else (args.server or server_from_env())
            with scratch_database(server) as db:
                await bench(backend, db, args, env)


if __name__ == "__main__":
    asyncio.run(main())
