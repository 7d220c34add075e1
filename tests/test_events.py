"""Application events: emit/on in one process, across processes on PostgreSQL, durable from steps."""

from __future__ import annotations

import asyncio
import sys

import pytest

from podium import Client, RetryPolicy, StepContext, Workflow


async def test_emit_and_subscribe_with_patterns(store_url):
    got: list[tuple[str, object]] = []
    async with Client(store_url) as c:
        await c.on("ticket.*", lambda topic, payload: got.append((topic, payload)))
        await c.emit("ticket.created", {"id": 7})
        await c.emit("invoice.paid", {"id": 1})
        await c.emit("ticket.closed", None)
        for _ in range(100):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.02)
    assert got == [("ticket.created", {"id": 7}), ("ticket.closed", None)]


async def test_step_emits_once_even_when_retried(store_url):
    got: list[object] = []
    wf = Workflow("emitter")

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def announce(ctx: StepContext):
        await ctx.emit("order.shipped", {"order": 42})
        if ctx.attempt == 1:
            raise ConnectionError("carrier API down after announcing")
        return "ok"

    async with Client(store_url) as c:

        async def handler(topic, payload):
            got.append(payload)

        await c.on("order.*", handler)
        assert await c.run(wf) == "ok"
        await asyncio.sleep(0.2)
    assert got == [{"order": 42}]


EMITTER = """
import asyncio, sys
import podium

async def main():
    async with podium.Client(sys.argv[1], recover=False) as c:
        await c.emit("ticket.created", {"id": 99, "from": "another process"})

asyncio.run(main())
"""


async def test_events_cross_processes_on_postgres(store_url):
    if not store_url.startswith("postgres"):
        pytest.skip("only PostgreSQL carries events between processes (LISTEN/NOTIFY)")
    got: list[object] = []
    async with Client(store_url) as c:
        await c.on("ticket.created", lambda topic, payload: got.append(payload))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", EMITTER, store_url)
        assert await proc.wait() == 0
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.02)
    assert got == [{"id": 99, "from": "another process"}]


async def test_oversized_cross_process_event_is_refused(store_url):
    if not store_url.startswith("postgres"):
        pytest.skip("the size limit is PostgreSQL NOTIFY's")
    from podium import ConfigError

    async with Client(store_url) as c:
        with pytest.raises(ConfigError, match="store the data and send a reference"):
            await c.emit("big", "x" * 10_000)
