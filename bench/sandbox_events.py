"""How long a business event of the sandbox company takes from the system's write to a Podium
subscriber: ``POST /orders`` on the ERP, then ``order.created`` through the outbox and the bus to
``client.on``. One JSON line per bus: the embedded bus (a client's store) and NATS (when it answers
on 127.0.0.1:4222; else a line saying why it was skipped).

    python bench/sandbox_events.py [--events 200]

The sandbox uses its own temporary folder and the client a memory store; NATS gets a stream of its
own (deleted afterwards)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

import podium
from podium.sandbox import Sandbox


async def _measure(company: Sandbox, client: Any, events: int) -> dict[str, Any]:
    arrived: dict[int, float] = {}
    await client.on("order.created", lambda topic, payload: arrived.setdefault(payload["order_id"], time.perf_counter()))
    sent: dict[int, float] = {}
    started = time.perf_counter()
    async with httpx.AsyncClient() as web:
        for _ in range(events):
            t = time.perf_counter()
            r = await web.post(f"{company.urls['erp']}/orders", json={"customer_id": "C001", "sku": "TP-30", "qty": 1})
            sent[r.json()["order_id"]] = t
    deadline = time.monotonic() + 60
    while len(arrived) < events and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - started
    latencies = sorted(arrived[k] - sent[k] for k in arrived if k in sent)
    return {
        "events": events,
        "delivered": len(arrived),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "events_per_s": round(len(arrived) / wall, 1),
    }


async def embedded(events: int) -> dict[str, Any]:
    with Sandbox(event_bus=None) as company:  # the seeded stock allows 120 orders of TP-30...
        async with podium.Client("memory://") as client:
            await company.attach(client)
            figures = await _measure(company, client, events)
            await company.detach()
    return {"figure": "sandbox_event_latency", "bus": "embedded", **figures}


async def nats(events: int) -> dict[str, Any]:
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", 4222)) != 0:
            return {"figure": "sandbox_event_latency", "bus": "nats", "skipped": "nothing answers on 127.0.0.1:4222"}
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    url = f"nats://127.0.0.1:4222?prefix={prefix}"
    try:
        with Sandbox(event_bus=url) as company:
            async with podium.Client("memory://", event_bus=url) as client:
                figures = await _measure(company, client, events)
    finally:
        import nats as nats_py

        nc = await nats_py.connect("nats://127.0.0.1:4222")
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(f"{prefix.upper()}_EVENTS")
        await nc.close()
    return {"figure": "sandbox_event_latency", "bus": "nats", **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100, help="orders placed (at most 120: the sample stock)")
    args = parser.parse_args()
    events = min(args.events, 120)
    for measure in (embedded, nats):
        print(json.dumps(asyncio.run(measure(events))), flush=True)


if __name__ == "__main__":
    main()
