"""NATS as the event bus between engines: a worker that polls only every 10 minutes picks up a new
run and a signal sent through another engine at once (the wake-up goes over NATS), and events
emitted by one engine reach the handlers of another."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from podium import Client, ConfigError, Workflow
from podium.storage import NatsBus, open_bus, open_store

from .conftest import need_broker


@pytest.fixture
async def bus_url() -> Any:
    need_broker("nats")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield f"nats://127.0.0.1:4222?prefix={prefix}"
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    with contextlib.suppress(Exception):  # no event was published: no stream
        await nc.jetstream().delete_stream(f"{prefix.upper()}_EVENTS")
    await nc.close()


async def test_a_parked_run_is_woken_through_nats_without_waiting_for_a_poll(bus_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/shared.db"
    wf = Workflow("approval")

    @wf.step
    async def wait(ctx, input):
        return {"decision": await ctx.wait_for("decision")}

    stop = asyncio.Event()
    # The worker would poll the store only every 600 s: anything sooner is the bus.
    async with Client(db, workflows=[wf], poll_interval=600, event_bus=bus_url) as worker:
        assert isinstance(worker.events, NatsBus)
        working = asyncio.ensure_future(worker.work(stop))
        async with Client(db, workflows=[wf], execute=False, poll_interval=0.05, event_bus=bus_url) as api:
            handle = await api.start(wf, None)

            async def parked() -> bool:
                return (await api.get(handle.id)).status.value == "waiting"

            for _ in range(3000):  # the worker was woken for the new run, and parked it
                if await parked():
                    break
                await asyncio.sleep(0.01)
            assert await parked()
            await api.signal(handle.id, "decision", "yes")
            assert await api.result(handle.id, timeout=60) == {"decision": "yes"}
        stop.set()
        await asyncio.wait_for(working, 30)


async def test_events_cross_engines_over_nats(bus_url: str, tmp_path: Path) -> None:
    got: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    async with Client(f"sqlite:///{tmp_path}/a.db", event_bus=bus_url) as a, Client(f"sqlite:///{tmp_path}/b.db", event_bus=bus_url) as b:
        await b.on("ticket.*", lambda topic, payload: got.put_nowait((topic, payload)))
        await a.emit("ticket.created", {"id": 7})
        await a.emit("other.thing", 1)
        assert await asyncio.wait_for(got.get(), 30) == ("ticket.created", {"id": 7})


def test_a_bus_url_that_is_not_nats_is_refused(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    assert open_bus(None, store) is store
    with pytest.raises(ConfigError, match="nats://"):
        open_bus("redis://127.0.0.1:6379", store)
    with pytest.raises(ConfigError, match="prefix"):
        open_bus("nats://127.0.0.1:4222?prefix=a.b", store)
