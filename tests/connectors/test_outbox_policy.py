"""The outbox relay obeys the policy in force when it delivers (SQLite, PostgreSQL, MariaDB): each
message records the workflow and run that wrote it (and who approved it, when a policy asked), and
the relay checks it against the current ``allowed_connectors`` and ``approve_connectors`` before it
delivers. A refused message is set aside as ``failed`` with the reason, audited, never lost."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from podium import Client, Workflow
from podium.connectors.relay import OutboxRelay, audit_with, held_with
from podium.connectors.sql import SqlConnector, _url
from podium.governance.policy import Policy

from .standins import Hook
from .test_outbox import hook_for, orders_table, place, until


def _checkout() -> Workflow:
    wf = Workflow("checkout")

    @wf.step
    async def save(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("orders").call("transact", place(input))

    return wf


async def test_attack_a_message_recorded_before_a_policy_forbade_its_target_is_not_delivered(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """The attack (or an incident): a run records a Slack message through the outbox; before the
    relay delivers it, an admin sets a policy that forbids ``checkout`` to reach Slack. The relay
    delivered it anyway (the row did not say which workflow wrote it). Now the row names its
    workflow and run, and the relay checks the policy of now: the message is set aside as failed,
    saying why, audited; once the policy allows it again, ``retry`` delivers it."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    async with Client(f"sqlite:///{tmp_path}/gov.db", workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        run = await c.start(wf, 7)
        await run.result()
        await c.set_policy("checkout", Policy(allowed_connectors=["orders"]))
        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert not hook.effects, "a message the policy now forbids was delivered"
        assert done.sent == 0 and done.refused == 1
        (msg,) = await db.outbox_messages(status="failed")
        assert (msg.workflow, msg.run_id) == ("checkout", run.id)
        assert "allowed_connectors" in (msg.last_error or "") and "slack.post" in (msg.last_error or "")
        refusals = [e.details() for e in await c.audit_log() if e.action == "policy.refuse"]
        assert any(r.get("message") == msg.id and r.get("run") == run.id for r in refusals)
        assert any(e.action == "connector.relay" and e.details().get("outcome") == "refused" for e in await c.audit_log())

        await c.set_policy("checkout", None)
        assert await db.outbox_retry(msg.key)
        assert (await relay.run_once()).sent == 1
    assert list(hook.effects) == [msg.key]
    await db.close()


async def test_a_message_that_now_needs_a_person_is_delivered_only_if_one_approved_it(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """``approve_connectors`` at delivery: a message recorded while no person was asked is set aside
    once a policy says a person approves that operation (the relay cannot ask); one whose recording
    call a person approved (the policy asked then) carries who approved it and is delivered."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    async with Client(f"sqlite:///{tmp_path}/gov.db", workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        unasked = await c.start(wf, 1)
        await unasked.result()
        await c.set_policy("checkout", Policy(approve_connectors=["slack.post"]))
        asked = await c.start(wf, 2)

        async def waiting() -> bool:
            return bool(await c.approvals(run_id=asked.id))

        await until(waiting)
        [request] = await c.approvals(run_id=asked.id)
        assert await c.decide(asked.id, request["name"], approve=True)
        await asked.result()
        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert (done.sent, done.refused) == (1, 1)
        (sent,) = await db.outbox_messages(status="sent")
        (refused,) = await db.outbox_messages(status="failed")
    assert (sent.run_id, sent.approved_by) == (asked.id, "local")
    assert refused.run_id == unasked.id and refused.approved_by is None
    assert "approve" in (refused.last_error or "")
    assert list(hook.effects) == [sent.key]
    await db.close()


async def test_an_outbox_made_by_an_earlier_release_gets_the_writer_columns(sql_url: str) -> None:
    """The migration: an outbox table without ``workflow``, ``run_id`` and ``approved_by`` (and a
    message in it) gets them on first use; the old message has none and is delivered as before."""
    engine = sa.create_engine(_url(sql_url))
    meta = sa.MetaData()
    old = sa.Table(
        "podium_outbox", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("target", sa.String(64), nullable=False), sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False), sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False), sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("next_at", sa.Double, nullable=False), sa.Column("sent_at", sa.Double, nullable=True),
        sa.Column("lease_until", sa.Double, nullable=True), sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True), sa.Column("result", sa.Text, nullable=True),
    )  # fmt: skip
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(old).values(key="k1", target="slack", operation="post", arguments="{}", status="pending",
                                           attempts=0, created_at=1.0, next_at=1.0))  # fmt: skip
    engine.dispose()
    db = SqlConnector(sql_url)
    (msg,) = await db.outbox_messages()
    assert (msg.key, msg.workflow, msg.run_id, msg.approved_by) == ("k1", None, None, None)
    await db.close()
    again = SqlConnector(sql_url)  # another process: the columns are there, nothing to add
    assert [m.key for m in await again.outbox_messages()] == ["k1"]
    await again.close()


