"""Connector policies bound to deployed workflows (sixth session), at call time and in the outbox
relay (business database on SQLite, PostgreSQL, MariaDB). In a store with users a workflow's own
policy grants what it allows beyond ``*`` only to the deployed workflow of that name; a message a
run of another definition records is marked so, and the relay checks it under ``*`` too.

The attack tests passed their attack on the code before the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from podium import Client, Policy, RunFailed
from podium.connectors.relay import OutboxRelay, audit_with, held_with
from podium.connectors.sql import SqlConnector
from podium.engine.loading import load_workflow

from .standins import Hook
from .test_outbox import hook_for, orders_table

FLOW = """
from podium import Workflow

wf = Workflow("checkout")


@wf.step
async def save(ctx, input):
    return await ctx.connector("orders").call("transact", {{
        "writes": [{{"op": "insert", "table": "orders", "values": {{"id": input, "item": {item!r}, "qty": 1}}}}],
        "messages": [{{"target": "slack", "operation": "post", "arguments": {{"text": {text!r}}}}}],
    }})
"""


def _flow(path: Path, item: str, text: str) -> str:
    """A workflow file named ``checkout`` whose step writes an order and records a Slack message."""
    path.write_text(textwrap.dedent(FLOW.format(item=item, text=text)))
    return f"{path}:wf"


async def _users(db: str) -> tuple[str, str]:
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.create_user("bob", ["operator"])
        bob = await admin.create_token("bob")
    return root, bob


async def test_attack_a_file_named_after_a_workflow_records_messages_its_policy_allows(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """The attack: ``*`` lets workflows write orders only; ``checkout`` (its policy set, the
    workflow not deployed yet) may also post to Slack. Bob's own file, calling itself
    ``checkout``, recorded a Slack message of his choosing, which the relay then delivered under
    ``checkout``'s name. Now the transaction is refused whole (nothing written), saying why and
    how to deploy; the deployed ``checkout`` records its message, and the relay delivers it."""
    orders_table(sql_url)
    orders, slack = SqlConnector(sql_url), hook_for(hook)
    db = f"sqlite:///{tmp_path}/gov.db"
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_connectors=["orders"]))
        await admin.set_policy("checkout", Policy(allowed_connectors=["orders", "slack"]))
    mine = _flow(tmp_path / "mine.py", "gift card", "send the codes to bob@example.com")
    async with Client(db, token=bob, connectors={"orders": orders}) as c:
        with pytest.raises(RunFailed) as failed:
            await c.run(load_workflow(mine), 1)
    message = str(failed.value)
    assert "message 0 of orders.transact" in message and "may not call connector operation 'slack.post'" in message, message
    assert f"podium workflows deploy {mine}" in message, message
    assert await orders.call("query", {"table": "orders"}) == [] and await orders.outbox_messages() == []

    async with Client(db, token=root) as admin:
        await admin.deploy(_flow(tmp_path / "checkout.py", "lamp", "order placed"))
    async with Client(db, token=bob, connectors={"orders": orders}) as c:
        await c.run("checkout", 2)
        (msg,) = await orders.outbox_messages()
        assert msg.workflow == "checkout"
        relay = OutboxRelay(orders, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        assert (await relay.run_once()).sent == 1
    assert list(hook.effects) == [msg.key]
    await orders.close()


async def test_attack_the_relay_checks_a_look_alikes_message_under_the_default_policy(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """The relay checks a message against the policy of now, found by the workflow name the
    message records. Bob's file calling itself ``checkout`` recorded a Slack message while the
    default allowed Slack; the admin then took Slack away from ``*`` (``checkout`` keeps it), and
    the relay delivered Bob's message under ``checkout``'s policy. Now the message records that
    its run was not the deployed ``checkout``: the relay checks it under ``*`` too, sets it aside
    saying why, and still delivers the deployed workflow's message."""
    orders_table(sql_url)
    orders, slack = SqlConnector(sql_url), hook_for(hook)
    db = f"sqlite:///{tmp_path}/gov.db"
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_connectors=["orders", "slack"]))
        await admin.set_policy("checkout", Policy(allowed_connectors=["orders", "slack"]))
    async with Client(db, token=bob, connectors={"orders": orders}) as c:
        await c.run(load_workflow(_flow(tmp_path / "mine.py", "gift card", "codes for bob")), 1)
    async with Client(db, token=root) as admin:
        await admin.deploy(_flow(tmp_path / "checkout.py", "lamp", "order placed"))
    async with Client(db, token=bob, connectors={"orders": orders}) as c:
        await c.run("checkout", 2)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_connectors=["orders"]))
        relay = OutboxRelay(orders, {"slack": slack}, held=held_with(admin.governance), audit=audit_with(admin.governance))
        done = await relay.run_once()
        assert (done.sent, done.refused) == (1, 1), done
        (refused,) = await orders.outbox_messages(status="failed")
        (sent,) = await orders.outbox_messages(status="sent")
    assert sent.workflow == "checkout" and list(hook.effects) == [sent.key]
    assert refused.arguments == {"text": "codes for bob"}
    assert "not deployed" in (refused.last_error or "") and "allowed_connectors" in (refused.last_error or ""), refused
    await orders.close()
