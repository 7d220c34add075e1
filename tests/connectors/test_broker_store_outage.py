"""Operations (tenth session): a broker trigger whose run start the store failed (it did not answer:
a killed session, a full disk, a lock held past the busy timeout) leaves the message with the broker,
unacknowledged, and starts its run once the store answers again: no dead letter for a message that
could start, no message lost, one run. Run through the server's triggers, on each real broker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client, StoreError
from podium import yaml as podium_yaml
from podium.connectors.consumer import DEADLETTERS, run_id_for
from podium.server.app import Settings
from podium.server.triggers import Triggers

from .brokers import HARNESSES
from .conftest import need_broker

SOURCES = {
    "nats": "stream: {stream}, subject: '{name}.>', deliver: all, ack_wait: 1",
    "redis": "stream: {name}, deliver: all, claim_idle: 1",
    "amqp": "queue: {name}",
    "mqtt": "topic: 'podiumtest/{name}/#', session: podium-outage-{name}",
}


async def _eventually(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


@pytest.mark.parametrize("kind", ["nats", "redis", "amqp", "mqtt"])
async def test_a_start_the_store_failed_leaves_the_message_for_redelivery(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Also: the trigger's report of the failure, which the store refuses too (its audit entry),
    is one log line, not a traceback at every retry."""
    need_broker(kind)
    h = HARNESSES[kind]()
    await h.setup()
    flow = (
        "name: orders-in\ntriggers:\n  - " + kind + ": {connector: bus, "
        + SOURCES[kind].format(name=h.name, stream=getattr(h, "stream", h.name)) + "}\n"
        "steps:\n  - id: take\n    uses: set\n    with: {n: \"{{ input.n }}\"}\n"
    )  # fmt: skip
    try:
        async with Client(f"sqlite:///{tmp_path}/p.db") as client:
            await client.add_capability("bus", "connector", {"kind": kind})  # each broker's local default URL
            client.register(podium_yaml.load_text(flow, capabilities=await client.capabilities()))
            trig = Triggers(client, Settings(store=client.store.url, trigger_interval=3600))
            trig.consumers.retry_after = 0.2
            store = client.store
            real_create = store.create_run
            failures: list[str] = []

            async def down(run: Any, *args: Any, **kw: Any) -> bool:
                failures.append(run.id)
                raise StoreError(f"SQLite store '{tmp_path}/p.db': database is locked (the store did not answer)")

            real_audit = client.record_audit

            async def unaudited(*args: Any, **kw: Any) -> None:
                raise StoreError(f"SQLite store '{tmp_path}/p.db': database is locked (the store did not answer)")

            store.create_run = down  # type: ignore[method-assign]
            client.record_audit = unaudited  # type: ignore[method-assign]
            await trig.start()
            try:
                await asyncio.sleep(0.5)  # subscribed (MQTT keeps only what arrives after)
                await h.publish_raw({"n": 7}, "m-7")
                await _eventually(lambda: _true(len(failures) >= 1), "a start that the store failed")
                assert await store.kv_list(DEADLETTERS) == {}, "dead-lettered although the store only failed"
                store.create_run = real_create  # type: ignore[method-assign]
                client.record_audit = real_audit  # type: ignore[method-assign]
                rid = run_id_for("bus", "orders-in", "m-7")
                await _eventually(lambda: _started(client, rid), "the run, once the store answers")
                assert (await client.result(rid, timeout=30))["n"] == 7
                assert await store.kv_list(DEADLETTERS) == {}
                assert [r.id for r in await client.list()] == [rid]
                traced = [r.getMessage() for r in caplog.records if r.name.startswith("podium") and r.exc_info]
                assert traced == [], traced
                assert any("could not audit" in r.getMessage() and "database is locked" in r.getMessage() for r in caplog.records)
            finally:
                store.create_run = real_create  # type: ignore[method-assign]
                client.record_audit = real_audit  # type: ignore[method-assign]
                await trig.stop()
    finally:
        await h.cleanup()


async def _true(value: bool) -> bool:
    return value


async def _started(client: Client, rid: str) -> bool:
    try:
        return await client.store.get_run(rid) is not None
    except StoreError:  # this test's own read on a session the server just killed
        return False


async def test_a_start_whose_postgresql_session_dies_in_flight_is_delivered_again(pg_url: str, tmp_path: Path) -> None:
    """The same on a real outage: the start waits behind a lock, then PostgreSQL kills its session
    (a restart, a failover). The message stays in the broker (Redis Streams: pending, claimed again),
    and exactly one run starts, with no dead letter."""
    import psycopg
    from paused_workers import waiting_on_locks

    need_broker("redis")
    h = HARNESSES["redis"]()
    app = "podium_broker_outage"
    flow = (
        "name: orders-in\ntriggers:\n  - redis: {connector: bus, " + SOURCES["redis"].format(name=h.name) + "}\n"
        "steps:\n  - id: take\n    uses: set\n    with: {n: \"{{ input.n }}\"}\n"
    )  # fmt: skip
    try:
        async with Client(f"{pg_url}?application_name={app}") as client:
            await client.add_capability("bus", "connector", {"kind": "redis"})
            client.register(podium_yaml.load_text(flow, capabilities=await client.capabilities()))
            trig = Triggers(client, Settings(store=client.store.url, trigger_interval=3600))
            trig.consumers.retry_after = 0.2
            await trig.start()
            try:
                with psycopg.connect(pg_url) as locker:  # the start waits behind this lock...
                    locker.execute("LOCK TABLE runs IN EXCLUSIVE MODE")
                    await h.publish_raw({"n": 8}, "m-8")
                    await waiting_on_locks(pg_url, "the message's start never waited for the lock")
                    with psycopg.connect(pg_url, autocommit=True) as killer:  # ...and its session dies
                        killer.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (app,)
                        )
                    locker.rollback()
                rid = run_id_for("bus", "orders-in", "m-8")
                await _eventually(lambda: _started(client, rid), "the run, once the store answers")
                assert (await client.result(rid, timeout=30))["n"] == 8
                assert await client.store.kv_list(DEADLETTERS) == {}
                assert [r.id for r in await client.list()] == [rid]
            finally:
                await trig.stop()
    finally:
        await h.cleanup()
