"""The transactional outbox on SQLite, PostgreSQL and MariaDB (real servers), delivered by the relay
to a real webhook endpoint on 127.0.0.1 that deduplicates by Idempotency-Key.

The business write and its messages commit together or not at all; a repeated ``transact`` (same
key) writes nothing; the relay retries with backoff, parks a refused message without losing it; and
a relay killed between delivering and marking a message (SIGKILL, a real process) leaves it to the
next relay, which delivers it again with the same key: the target applies it exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from podium import Client, Workflow
from podium.connectors import ConnectorError
from podium.connectors.relay import OutboxRelay
from podium.connectors.sql import SqlConnector, _url
from podium.connectors.webhook import WebhookConnector
from podium.resilience import Backoff

from .standins import Hook

ROOT = Path(__file__).resolve().parents[2]


def orders_table(url: str) -> None:
    engine = sa.create_engine(_url(url))
    meta = sa.MetaData()
    sa.Table(
        "orders",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item", sa.String(100), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
    )
    meta.create_all(engine)
    engine.dispose()


def hook_for(hook: Hook) -> WebhookConnector:
    slack = WebhookConnector(hook.url, allow_private=True)
    slack.retry = Backoff(max_attempts=1)  # the relay's own backoff is what is tested
    return slack


def place(order: int, *, text: str | None = None) -> dict[str, Any]:
    return {
        "writes": [{"op": "insert", "table": "orders", "values": {"id": order, "item": "lamp", "qty": 1}}],
        "messages": [{"target": "slack", "operation": "post", "arguments": {"text": text or f"order {order} placed"}}],
    }


async def until(check: Any, timeout: float = 60.0) -> None:
    """Wait for ``check()`` (async) to be true: a condition, not a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.02)


async def test_write_and_messages_commit_together_once_per_key(sql_url: str) -> None:
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    first = await db.call("transact", place(1), idempotency_key="run-1/step/connector:db.transact")
    assert first["repeated"] is False and first["messages"] == ["run-1/step/connector:db.transact/message-0"]
    again = await db.call("transact", place(1), idempotency_key="run-1/step/connector:db.transact")
    assert again["repeated"] is True and again["messages"] == first["messages"]
    assert await db.call("query", {"table": "orders"}) == [{"id": 1, "item": "lamp", "qty": 1}]
    (msg,) = await db.outbox_messages()
    assert (msg.status, msg.target, msg.operation, msg.arguments) == ("pending", "slack", "post", {"text": "order 1 placed"})
    # a write that fails takes its messages with it
    with pytest.raises(ConnectorError):
        await db.call("transact", place(1, text="duplicate order"), idempotency_key="other-key")
    assert len(await db.outbox_messages()) == 1
    assert await db.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}
    await db.close()


async def test_a_workflow_cannot_forge_outbox_rows(sql_url: str) -> None:
    """The attack: a step writes straight into the outbox to make the relay post (or mail) for it."""
    db = SqlConnector(sql_url)
    await db.ensure_outbox()
    for op, args in [
        ("insert", {"table": "podium_outbox", "values": {"key": "x", "target": "mail", "operation": "send"}}),
        ("update", {"table": "podium_outbox", "values": {"status": "pending"}, "where": {"id": 1}}),
        ("upsert", {"table": "podium_outbox_applied", "values": {"key": "x", "result": "{}"}, "key": ["key"]}),
    ]:
        with pytest.raises(ConnectorError, match="outbox"):
            await db.call(op, args)
    assert await db.outbox_messages() == []
    await db.close()


async def test_the_relay_delivers_retries_with_backoff_and_parks_refusals(sql_url: str, hook: Hook) -> None:
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    for n in (1, 2):
        await db.call("transact", place(n), idempotency_key=f"k{n}")
    relay = OutboxRelay(db, {"slack": hook_for(hook)}, backoff=Backoff(max_attempts=100, initial=0.05, max_delay=0.2))
    hook.failures = [(503, {"Retry-After": "0"}), (400, {})]
    done = await relay.run_once()
    assert (done.sent, done.retrying, done.failed) == (0, 1, 1)

    async def delivered() -> bool:
        await relay.run_once()
        return (await db.outbox_counts())["pending"] == 0

    await until(delivered)
    counts = await db.outbox_counts()
    assert counts == {"pending": 0, "sent": 1, "failed": 1}
    (parked,) = await db.outbox_messages(status="failed")
    assert "HTTP 400" in (parked.last_error or "") and "SECRETPATH" not in (parked.last_error or "")
    assert await db.outbox_retry(parked.key)
    assert (await relay.run_once()).sent == 1
    assert await db.outbox_counts() == {"pending": 0, "sent": 2, "failed": 0}
    assert sorted(hook.effects) == ["k1/message-0", "k2/message-0"]
    await db.close()


async def test_a_relay_only_delivers_to_the_connectors_it_holds(sql_url: str, hook: Hook) -> None:
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    args = place(5)
    args["messages"].append({"target": "mail", "operation": "send", "arguments": {"to": "a@example.com"}})
    await db.call("transact", args, idempotency_key="k5")
    assert (await OutboxRelay(db, {"slack": hook_for(hook)}).run_once()).sent == 1
    (waiting,) = await db.outbox_messages(status="pending")
    assert waiting.target == "mail" and waiting.attempts == 0  # kept for a relay that holds "mail"
    await db.close()


async def test_attack_a_connector_kill_switch_holds_the_relays_deliveries(sql_url: str, hook: Hook, tmp_path: Path) -> None:
    """Before: a connector switched off (an incident at the target) still got every message the
    outbox relay held for it: kill switches stopped runs, not the relay."""
    from podium.connectors.relay import held_with

    orders_table(sql_url)
    db = SqlConnector(sql_url)
    await db.call("transact", place(6), idempotency_key="k6")
    async with Client(f"sqlite:///{tmp_path}/gov.db") as c:
        relay = OutboxRelay(db, {"slack": hook_for(hook)}, held=held_with(c.governance))
        await c.set_switch("connector", "slack", reason="Slack incident")
        assert (await relay.run_once()).handled == 0
        await c.clear_switch("connector", "slack")
        await c.set_switch("all", reason="stop everything")
        assert (await relay.run_once()).handled == 0
        (waiting,) = await db.outbox_messages(status="pending")
        assert waiting.attempts == 0 and not hook.effects  # held, not failed: nothing counted or sent
        await c.clear_switch("all")
        assert (await relay.run_once()).sent == 1
    assert list(hook.effects) == ["k6/message-0"]
    await db.close()


async def test_in_a_run_transact_and_relay_in_the_background(sql_url: str, hook: Hook, tmp_path: Path) -> None:
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    wf = Workflow("checkout")

    @wf.step
    async def save(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("orders").call("transact", place(input))

    slack = hook_for(hook)
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"orders": db, "slack": slack}) as client:
        relay = OutboxRelay(db, {"slack": slack})
        async with relay.running(interval=0.05):
            out = await client.run(wf, 9)

            async def sent() -> bool:
                return (await db.outbox_counts())["sent"] == 1

            await until(sent)
    assert out["repeated"] is False and list(hook.effects) == out["messages"]
    assert out["messages"][0].endswith("connector:orders.transact/message-0")


RELAY = """
import asyncio, sys
from podium.connectors.relay import OutboxRelay
from podium.connectors.sql import SqlConnector
from podium.connectors.webhook import WebhookConnector
from podium.resilience import Backoff

async def main():
    hook = WebhookConnector(sys.argv[2], allow_private=True)
    hook.retry = Backoff(max_attempts=1)
    await OutboxRelay(SqlConnector(sys.argv[1]), {"slack": hook}, lease=float(sys.argv[3])).run_once()

asyncio.run(main())
"""


async def test_a_relay_killed_between_delivery_and_mark_delivers_once_at_a_deduplicating_target(
    sql_url: str, hook: Hook
) -> None:
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    await db.call("transact", place(7), idempotency_key="run-7/save/connector:orders.transact")
    # The first relay is a real process: it sends, the target holds its answer, and the process is
    # killed (SIGKILL) before it can mark the message sent.
    import threading

    hook.hold = threading.Event()
    proc = subprocess.Popen(
        [sys.executable, "-c", RELAY, _url(sql_url), hook.url, "1.0"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        arrived = await asyncio.to_thread(hook.arrived.wait, 120)
        assert arrived, proc.stdout.read().decode() if proc.poll() is not None and proc.stdout else "no request"
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        hook.hold.set()
    (msg,) = await db.outbox_messages()
    assert msg.status == "pending" and msg.attempts == 0  # the crash left it unmarked, leased
    hook.hold = None
    relay = OutboxRelay(db, {"slack": hook_for(hook)})

    async def sent() -> bool:  # the next relay takes it once the dead one's lease has run out
        await relay.run_once()
        return (await db.outbox_counts())["sent"] == 1

    await until(sent)
    keys = [r["headers"]["Idempotency-Key"] for r in hook.requests]
    assert keys == ["run-7/save/connector:orders.transact/message-0"] * 2  # delivered twice, same key
    assert list(hook.effects) == keys[:1]  # applied once
    await db.close()


CHECKOUT = """name: checkout
steps:
  - id: save
    uses: connector
    with:
      connector: orders
      operation: transact
      arguments:
        writes: [{op: insert, table: orders, values: {id: "{{ input.id }}", item: "{{ input.item }}", qty: 1}}]
        messages: [{target: slack, operation: post, arguments: {text: "order {{ input.id }} placed"}}]
"""


async def test_from_a_workflow_file_with_registered_connectors(
    hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from podium import yaml as podium_yaml
    from podium.connectors import _registry as kinds
    from podium.connectors._registry import open_registered, opened_registered
    from podium.yaml import _registry
    from podium.yaml.connector_steps import connector_step

    monkeypatch.setitem(kinds._KINDS, "webhook", WebhookConnector)  # the docs' example replaces it in tests
    orders_url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(orders_url)
    monkeypatch.setenv("ORDERS_URL", orders_url)
    monkeypatch.setenv("SLACK_URL", hook.url)
    steps = _registry.StepTypes([*_registry.builtin_step_types(), connector_step], entry_points=False)
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("orders", "connector", {"kind": "sql", "url_env": "ORDERS_URL"})
        cap = await client.add_capability(
            "slack", "connector", {"kind": "webhook", "url_env": "SLACK_URL"}, allow_private=True
        )
        wf = podium_yaml.load_text(CHECKOUT, registry=steps, capabilities=await client.capabilities())
        out = await client.run(wf, {"id": 11, "item": "desk"})
        assert out["repeated"] is False
        db = opened_registered()["orders"]  # the object the run used
        slack = open_registered(cap.target, allow_private=cap.allow_private, name="slack")
        assert isinstance(db, SqlConnector) and isinstance(slack, WebhookConnector)
        assert (await OutboxRelay(db, {"slack": slack}).run_once()).sent == 1
    assert [b["text"] for b in hook.effects.values()] == ["order 11 placed"]
    assert await db.call("query", {"table": "orders"}) == [{"id": 11, "item": "desk", "qty": 1}]


async def test_attack_one_bad_message_does_not_make_the_relay_deliver_its_batch_again(sql_url: str) -> None:
    """Attack (review of the day's diff): a workflow records a message for ``BANK``. MariaDB
    compares ``BANK`` and ``bank`` as equal, so the relay holding ``bank`` claimed it, then failed
    the whole batch on it (KeyError) before any outcome was written: the messages already
    delivered stayed pending and were delivered again when their leases ran out, every time (a
    payment made again and again). A connector's own bug on odd arguments stays that message's
    failed delivery (checked too, on every database)."""
    from podium.connectors import Connector, Operation

    orders_table(sql_url)
    db = SqlConnector(sql_url)
    paid: list[int] = []

    class Bank(Connector):
        kind = "bank"
        retry = Backoff(max_attempts=1)

        def operations(self) -> list[Operation]:
            return [Operation(name="pay")]

        async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
            if arguments.get("odd"):
                raise TypeError("a bug in the connector")
            paid.append(arguments["n"])
            return {"ok": True}

    messages = [
        {"target": "bank", "operation": "pay", "arguments": {"n": 1}},
        {"target": "bank", "operation": "pay", "arguments": {"odd": True}},
        {"target": "BANK", "operation": "pay", "arguments": {"n": 3}},
    ]
    await db.call("transact", {"messages": messages}, idempotency_key="run-9/step/connector:db.transact")
    relay = OutboxRelay(db, {"bank": Bank()}, lease=0.05)
    try:
        errors = []
        for _ in range(3):
            try:  # as OutboxRelay.run does: log a failed batch, go on
                await relay.run_once()
            except Exception as exc:
                errors.append(exc)
            await asyncio.sleep(0.1)  # past the leases
        assert paid == [1], f"delivered {paid}"
        assert errors == []
        status = {m.arguments.get("n", "odd"): (m.status, m.last_error) for m in await db.outbox_messages()}
        assert status[1] == ("sent", None)
        assert status["odd"][0] in ("pending", "failed") and "TypeError" in (status["odd"][1] or "")
        assert status[3][0] == "pending"  # not this relay's: left for one that holds BANK
    finally:
        await db.close()
