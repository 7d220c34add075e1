"""Broker triggers in workflow files: checked with file:line (settings, and the connector against the
registry: deny by default), and run by the server's triggers: one run per message, even when the
message is published twice; a connector removed from the registry stops consuming."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client
from podium import yaml as podium_yaml
from podium.connectors.consumer import run_id_for
from podium.server.app import Settings
from podium.server.triggers import Triggers

from .brokers import RedisHarness
from .conftest import need_broker

FLOW = """name: orders-in
triggers:
  - redis: {{connector: {name}, stream: {stream}, deliver: all, claim_idle: 1}}
steps:
  - id: take
    uses: set
    with: {{n: "{{{{ input.n }}}}"}}
"""


def test_a_broker_trigger_must_name_a_registered_connector_of_its_kind(tmp_path: Path) -> None:
    flow = tmp_path / "orders.yaml"
    flow.write_text(FLOW.format(name="bus", stream="orders"))
    problems = podium_yaml.validate_file(flow, capabilities={})
    assert problems and problems[0].code == "capability" and problems[0].line == 3, problems
    assert "connector 'bus' is not registered" in problems[0].message
    assert "podium connectors add bus redis" in (problems[0].hint or "")


@pytest.mark.parametrize(
    ("trigger", "message", "line"),
    [
        ("nats: {connector: bus}", "needs `stream`", 3),
        ("redis: {connector: bus, stream: s, queue: q}", "unknown field(s) queue", 3),
        ("amqp: {queue: q}", "names its connector", 3),
        ("mqtt: {connector: '{{ input.x }}', topic: a}", "cannot be a template", 3),
        ("nats: ORDERS", "is a mapping of settings", 3),
        ("kafka: {connector: bus}", "a trigger needs exactly one of schedule, webhook, event, nats", 3),
    ],
)
def test_bad_broker_triggers_say_what_and_where(trigger: str, message: str, line: int) -> None:
    text = f"name: x\ntriggers:\n  - {trigger}\nsteps:\n  - id: a\n    uses: set\n    with: {{n: 1}}\n"
    problems = podium_yaml.validate_text(text)
    assert any(message in p.message and p.line == line for p in problems), problems


async def _eventually(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def test_the_server_starts_one_run_per_message_and_stops_when_the_connector_is_removed(tmp_path: Path) -> None:
    need_broker("redis")
    h = RedisHarness()
    try:
        async with Client(f"sqlite:///{tmp_path}/p.db") as client:
            await client.add_capability("bus", "connector", {"kind": "redis", "url": "redis://127.0.0.1:6379/0"})
            wf = podium_yaml.load_text(FLOW.format(name="bus", stream=h.name), capabilities=await client.capabilities())
            client.register(wf)
            trig = Triggers(client, Settings(store=client.store.url, trigger_interval=3600))
            assert [t.kind for t in trig.brokers] == ["redis"]
            await h.publish_raw({"n": 1}, "m-1")
            await h.publish_raw({"n": 1}, "m-1")  # published twice
            await h.publish_raw({"n": 2}, "m-2")
            await trig.start()
            try:
                rids = [run_id_for("bus", "orders-in", k) for k in ("m-1", "m-2")]

                async def both_done() -> bool:
                    runs = await client.list()
                    return len(runs) == 2 and all(r.status.finished for r in runs)

                await _eventually(both_done, "two finished runs")
                assert sorted([(await client.result(r, timeout=30))["n"] for r in rids]) == [1, 2]
                (consumer,) = trig.consumers.consumers.values()
                await _eventually(lambda: _true(consumer.duplicates == 1), "the duplicate acknowledged")
                # Removed from the registry: nothing more is consumed (the message waits in the broker).
                await client.remove_capability("bus")
                await _eventually(lambda: _true(not trig.consumers.consumers), "the consumer to stop")
                await h.publish_raw({"n": 3}, "m-3")
                failed = [e.details() for e in await client.audit_log() if e.action == "trigger.failed"]
                assert failed and "not registered" in failed[-1]["error"], failed
                assert len(await client.list()) == 2
            finally:
                await trig.stop()
    finally:
        await h.cleanup()


async def _true(value: bool) -> bool:
    return value


async def test_a_broker_trigger_stops_within_a_poll_once_its_deployer_is_disabled(tmp_path: Path) -> None:
    """A broker trigger acts as the workflow's deployer and asks who that is before each poll
    (every second). The server keeps the deploy entry a few seconds (its audit scan) but reads the
    deployer's standing at every ask: once dana is disabled, her trigger takes no further message
    after the poll under way (at most 1 s, plus the time to notice): the refusal is reported and the
    next message waits in the broker."""
    need_broker("redis")
    h = RedisHarness()
    db = f"sqlite:///{tmp_path}/p.db"
    try:
        async with Client(db) as setup:
            await setup.create_user("root", ["admin"])
            root = await setup.create_token("root")
        async with Client(db, token=root) as admin:
            await admin.define_role("author", ["workflows.deploy", "workflows.read", "runs.read", "runs.start"])
            await admin.create_user("svc", ["operator", "worker"], service=True)
            await admin.create_user("dana", ["author"])
            svc, dana = await admin.create_token("svc"), await admin.create_token("dana")
            await admin.add_capability("bus", "connector", {"kind": "redis", "url": "redis://127.0.0.1:6379/0"})
        async with Client(db, token=dana) as author:
            await author.deploy(FLOW.format(name="bus", stream=h.name))
        async with Client(db, token=svc) as client, Client(db, token=root) as admin:
            trig = Triggers(client, Settings(store=db, trigger_interval=3600))
            await trig.follow_deploys()
            assert [t.kind for t in trig.brokers] == ["redis"]
            await trig.start()
            try:
                await h.publish_raw({"n": 1}, "m-1")
                rid = run_id_for("bus", "orders-in", "m-1")
                await _eventually(lambda: _true_async(client, rid), "the first message's run")
                starter = await client.governance.started_by(rid)
                assert starter is not None and starter.name == "dana"
                await admin.disable_user("dana")
                disabled = time.monotonic()

                async def refused() -> bool:
                    failed = [e.details() for e in await admin.audit_log() if e.action == "trigger.failed"]
                    return bool(failed) and "disabled" in failed[-1]["error"]

                await _eventually(refused, "the refusal", timeout=10)
                assert time.monotonic() - disabled < 3.0, "the trigger went on past its poll"
                await h.publish_raw({"n": 2}, "m-2")
                await asyncio.sleep(1.5)
                assert [r.id for r in await admin.list(workflow="orders-in")] == [rid]  # m-2 started nothing
                assert ("m-2", {"n": 2}) in await h.read_raw()  # it waits in the broker
            finally:
                await trig.stop()
    finally:
        await h.cleanup()


async def _true_async(client: Any, rid: str) -> bool:
    return any(r.id == rid for r in await client.list(workflow="orders-in"))
