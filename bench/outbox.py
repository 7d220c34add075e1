"""The transactional outbox, measured: ``sql transact`` (a business row + one message, one
transaction) and the relay delivering to a deduplicating webhook endpoint on 127.0.0.1.

    python bench/outbox.py                                  # SQLite, 1,000 messages
    python bench/outbox.py --db postgresql://postgres@127.0.0.1:5432/bench --n 2000
    python bench/outbox.py --db mariadb://root@127.0.0.1:3306/test

Prints one JSON line: transact calls/s, relay deliveries/s (concurrency 8, one relay), p50/p95 of
commit -> accepted by the target with the relay running in the background (poll interval 0.05 s),
and duplicates applied at the target (goal 0). The database's outbox tables are dropped first.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from podium.connectors.relay import OutboxRelay
from podium.connectors.sql import SqlConnector, _url
from podium.connectors.webhook import WebhookConnector

APPLIED: dict[str, float] = {}
REQUESTS = [0]


class Target(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        REQUESTS[0] += 1
        APPLIED.setdefault(self.headers["Idempotency-Key"], time.time())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def reset(url: str) -> None:
    engine = sa.create_engine(_url(url))
    with engine.begin() as conn:
        for table in ("podium_outbox", "podium_outbox_applied", "bench_orders"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text("CREATE TABLE bench_orders (id INTEGER PRIMARY KEY, item VARCHAR(50))"))
    engine.dispose()


def place(i: int) -> dict[str, Any]:
    return {
        "writes": [{"op": "insert", "table": "bench_orders", "values": {"id": i, "item": "lamp"}}],
        "messages": [{"target": "hook", "operation": "post", "arguments": {"text": f"order {i}"}}],
    }


async def main(url: str, n: int) -> dict[str, Any]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hook = WebhookConnector(f"http://127.0.0.1:{srv.server_address[1]}/hook", allow_private=True)
    reset(url)
    db = SqlConnector(url)
    await db.ensure_outbox()
    t0 = time.perf_counter()
    for i in range(n):
        await db.call("transact", place(i), idempotency_key=f"a{i}")
    transact = n / (time.perf_counter() - t0)
    relay = OutboxRelay(db, {"hook": hook}, batch=200)
    t0 = time.perf_counter()
    while (await db.outbox_counts())["pending"]:
        await relay.run_once()
    relay_rate = n / (time.perf_counter() - t0)
    # end to end, with the relay in the background
    committed: dict[str, float] = {}
    async with relay.running(interval=0.05):
        for i in range(n, n + min(n, 300)):
            out = await db.call("transact", place(i), idempotency_key=f"b{i}")
            committed[out["messages"][0]] = time.time()
            await asyncio.sleep(0.005)
        while any(k not in APPLIED for k in committed):
            await asyncio.sleep(0.01)
    lat = sorted(APPLIED[k] - t for k, t in committed.items())
    srv.shutdown()
    await db.close()
    return {
        "bench": "outbox",
        "db": url.split("://")[0],
        "messages": n + len(committed),
        "transact_per_s": round(transact, 1),
        "relay_deliveries_per_s": round(relay_rate, 1),
        "commit_to_delivery_p50_ms": round(statistics.median(lat) * 1000, 1),
        "commit_to_delivery_p95_ms": round(lat[int(len(lat) * 0.95) - 1] * 1000, 1),
        "requests": REQUESTS[0],
        "duplicates_applied": REQUESTS[0] - len(APPLIED),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=None, help="Database URL (default: a temporary SQLite file).")
    ap.add_argument("--n", type=int, default=1000)
    a = ap.parse_args()
    url = a.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    print(json.dumps(asyncio.run(main(url, a.n))))
