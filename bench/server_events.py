"""Load test of ``POST /api/events/{type}``: N events from C concurrent clients to a real
``podium serve`` on 127.0.0.1; every event is posted twice with the same idempotency key (the
second must start nothing). Checks that no event is lost and exactly one run starts per key.

    python bench/server_events.py --events 10000 --clients 32 --db sqlite:///bench.db
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--server", default="sqlite", help="'sqlite' (default) or a PostgreSQL admin URL")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _scratch import scratch_database

    with scratch_database(args.server) as db:  # never a database it did not create
        await _bench(db, args)


async def _bench(db: str, args: argparse.Namespace) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from podium.cli import main; main()",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "-w",
            "tests.server.flows:tickets",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=args.clients)
        ) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(args.events):
                queue.put_nowait(i)
            started: list[str] = []
            dupes = errors = 0

            async def client() -> None:
                nonlocal dupes, errors
                while not queue.empty():
                    i = queue.get_nowait()
                    body = {"id": i, "subject": f"ticket {i}"}
                    for attempt in range(2):  # at-least-once senders retry: the key dedups
                        r = await http.post(
                            "/api/events/ticket.created", json=body, headers={"Idempotency-Key": f"k{i}"}
                        )
                        if r.status_code != 202:
                            errors += 1
                            continue
                        started.extend(r.json()["runs"])
                        dupes += len(r.json()["duplicates"]) if attempt else 0

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(args.clients)))
            elapsed = time.perf_counter() - t0
            posts = 2 * args.events
            print(
                f"{posts} posts ({args.events} unique keys) from {args.clients} clients in {elapsed:.1f} s: "
                f"{posts / elapsed:.0f} posts/s, {args.events / elapsed:.0f} unique events/s"
            )
            print(
                f"runs started {len(started)} (unique {len(set(started))}), duplicates refused {dupes}, errors {errors}"
            )
            assert errors == 0 and len(started) == len(set(started)) == args.events and dupes == args.events
            total, offset = 0, 0
            while True:
                page = (
                    await http.get(
                        "/api/runs", params={"workflow": "tickets", "limit": 1000, "offset": offset}
                    )
                ).json()
                total += len(page["runs"])
                if page["next_offset"] is None:
                    break
                offset = page["next_offset"]
            print(f"runs in the store: {total}")
            assert total == args.events
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
