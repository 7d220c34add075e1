"""Attacks on the outbox's governance columns by someone who can write the business database
(SQLite, PostgreSQL, MariaDB), in a store with users.

A message records the workflow and run that wrote it and who approved it (``workflow``, ``run_id``,
``approved_by``); the relay checks it against that workflow's policy of now. Those are columns of
the business database: a writer of that database marked a message approved (so the relay delivered
an operation the policy says a person approves), or blanked or renamed its workflow (so no policy,
or a laxer one, applied). The engine now seals the columns with the audit key when it records a
message, and the relay delivers only what its seal backs; a message no run sealed is checked under
the default policy ``*`` (and the workflow it names), its approval not taken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from podium import Client, Workflow
from podium.connectors.relay import OutboxRelay, audit_with, held_with
from podium.connectors.sql import SqlConnector, _url
from podium.governance.policy import Policy

from .standins import Hook
from .test_health import ROOT, _orders_and_slack
from .test_outbox import hook_for, orders_table, place, until


def _checkout() -> Workflow:
    wf = Workflow("checkout")

    @wf.step
    async def save(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("orders").call("transact", place(input))

    return wf


async def _governed(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A store with users: root (admin) and alice (approver), and their tokens."""
    store = f"sqlite:///{tmp_path}/gov.db"
    async with Client(store) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("alice", ["approver"])
        tokens = {u: await c.create_token(u) for u in ("root", "alice")}
    return store, tokens


def _forge(sql_url: str, key: str, **values: Any) -> None:
    """What a writer of the business database does: change a message's row (any column)."""
    engine = sa.create_engine(_url(sql_url))
    table = sa.Table("podium_outbox", sa.MetaData(), autoload_with=engine)
    values = {k: v for k, v in values.items() if k in table.c}  # 'seal' exists once the fix is in
    with engine.begin() as conn:
        assert conn.execute(sa.update(table).where(table.c.key == key).values(**values)).rowcount == 1
    engine.dispose()


def _copy(sql_url: str, key: str, new_key: str, **values: Any) -> None:
    """Insert a copy of message ``key``'s row (its seal too, if any) under ``new_key``."""
    engine = sa.create_engine(_url(sql_url))
    table = sa.Table("podium_outbox", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(table).where(table.c.key == key)).mappings().one())
        row.pop("id")
        conn.execute(sa.insert(table).values({**row, "key": new_key, **values}))
    engine.dispose()


async def test_attack_a_database_writer_marks_a_message_approved(sql_url: str, hook: Hook, tmp_path: Path) -> None:
    """``approve_connectors`` names ``slack.post``: a message recorded before (nobody asked) is
    refused at delivery. The attacker wrote ``approved_by = 'alice'`` into its row, and copied a
    genuinely approved row under a new key with other arguments: the relay delivered both. Now the
    seal (made by the engine with the audit key over workflow, run, approval, target, operation,
    arguments and key) no longer matches: both are set aside, saying why; the genuine one goes."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    store, tokens = await _governed(tmp_path)
    async with Client(store, token=tokens["root"], workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        alice = await c.authenticate(tokens["alice"])
        unasked = await c.start(wf, 1)
        await unasked.result()
        await c.set_policy("checkout", Policy(approve_connectors=["slack.post"]))
        asked = await c.start(wf, 2)

        async def waiting() -> bool:
            return bool(await c.approvals(run_id=asked.id))

        await until(waiting)
        [request] = await c.approvals(run_id=asked.id)
        with c.acting_as(alice):
            assert await c.decide(asked.id, request["name"], approve=True)
        await asked.result()
        by_run = {m.run_id: m for m in await db.outbox_messages()}
        genuine, forged = by_run[asked.id], by_run[unasked.id]
        assert genuine.approved_by == "alice" and forged.approved_by is None
        assert genuine.to_json()["sealed"] and forged.to_json()["sealed"]  # podium outbox list --json

        _forge(sql_url, forged.key, approved_by="alice")
        _copy(sql_url, genuine.key, "copied-1", arguments=json.dumps({"text": "refund 20000 to mallory"}))

        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert list(hook.effects) == [genuine.key], "a message marked approved in the database was delivered"
        assert (done.sent, done.refused) == (1, 2)
        refused = {m.key: m for m in await db.outbox_messages(status="failed")}
        assert set(refused) == {forged.key, "copied-1"}
        for m in refused.values():
            why = m.last_error or ""
            assert why.startswith("refused: ") and "changed after" in why and "audit key" in why, why
            assert "podium outbox retry" in why or "record it again" in why, why
        reasons = [e.details().get("reason", "") for e in await c.audit_log() if e.action == "policy.refuse"]
        assert sum("changed after" in r for r in reasons) == 2

        # retried, it is checked again (and refused again: nothing made it genuine)
        assert await db.outbox_retry(forged.key)
        assert (await relay.run_once()).refused == 1
    assert list(hook.effects) == [genuine.key]
    await db.close()


async def test_attack_a_database_writer_blanks_or_renames_a_messages_workflow(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """``checkout``'s policy of now forbids Slack, ``lax``'s allows it, and the default ``*``
    forbids it. The attacker blanked the workflow of one message (no policy applied), renamed that
    of another ``lax``, and blanked every writer column (and the seal) of a third: the relay
    delivered all three. Now the first two are refused as changed, and the third, which no run
    sealed, is checked under ``*`` (not skipped) and refused."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    store, tokens = await _governed(tmp_path)
    async with Client(store, token=tokens["root"], workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        for order in (1, 2, 3):
            await c.run(wf, order)
        await c.set_policy("checkout", Policy(allowed_connectors=["orders"]))
        await c.set_policy("lax", Policy(allowed_connectors=["orders", "slack"]))
        await c.set_policy("*", Policy(allowed_connectors=["orders"]))
        blanked, renamed, stripped = await db.outbox_messages()
        _forge(sql_url, blanked.key, workflow=None)
        _forge(sql_url, renamed.key, workflow="lax")
        _forge(sql_url, stripped.key, workflow=None, run_id=None, approved_by=None, seal=None)

        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert not hook.effects, "a message whose workflow was blanked or renamed in the database was delivered"
        assert done.refused == 3
        why = {m.key: m.last_error or "" for m in await db.outbox_messages(status="failed")}
        assert "changed after" in why[blanked.key] and "changed after" in why[renamed.key]
        assert "'*'" in why[stripped.key] and "allowed_connectors" in why[stripped.key], why[stripped.key]
        assert "no run sealed" in why[stripped.key], why[stripped.key]
    await db.close()


async def test_a_message_recorded_outside_any_run_is_checked_under_the_default_policy(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """``Outbox.add`` in a trusted script (here a ``transact`` outside any run) names no workflow:
    no policy applied to it at delivery. It is now checked under ``*`` (what every workflow
    without a policy of its own is under); with ``*`` allowing it, it goes."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    store, tokens = await _governed(tmp_path)
    async with Client(store, token=tokens["root"]) as c:
        await c.set_policy("*", Policy(approve_connectors=["slack"]))
        await db.call("transact", place(5), idempotency_key="script-5")
        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert not hook.effects, "a message recorded outside any run skipped the default policy"
        assert done.refused == 1
        (msg,) = await db.outbox_messages(status="failed")
        assert msg.workflow is None and "'*'" in (msg.last_error or "") and "approve" in (msg.last_error or "")
        await c.set_policy("*", Policy(allowed_connectors=["orders", "slack"]))
        assert await db.outbox_retry(msg.key)
        assert (await relay.run_once()).sent == 1
    assert list(hook.effects) == [msg.key]
    await db.close()


async def test_a_sealed_message_is_delivered_after_the_key_rotates_and_refused_without_its_key(
    sql_url: str, hook: Hook, tmp_path: Path, audit_key: str
) -> None:
    """A seal made with a key since rotated (``podium audit rotate-key``) is verified with the
    retired key kept beside the new one; one whose key this machine does not hold is set aside,
    saying which key and where to point ``PODIUM_AUDIT_KEY``."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    async with Client(f"sqlite:///{tmp_path}/gov.db", workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        await c.run(wf, 1)
        c.store.audit_keys.rotate()  # order 1 was sealed with the key now retired
        await c.run(wf, 2)
        second_key, _ = c.store.audit_keys.rotate()
        os.remove(f"{audit_key}.{second_key}")  # the key that sealed order 2 is gone from this machine
        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert (done.sent, done.refused) == (1, 1)
        (refused,) = await db.outbox_messages(status="failed")
        why = refused.last_error or ""
        assert second_key in why and "PODIUM_AUDIT_KEY" in why, why
    assert len(hook.effects) == 1 and refused.key not in hook.effects
    await db.close()


async def test_an_outbox_of_the_previous_release_gets_the_seal_column(sql_url: str, hook: Hook, tmp_path: Path) -> None:
    """The migration: a table of the previous release (writer columns, no seal) gets ``seal`` on
    first use. Its messages are unsealed: checked under ``*`` and the workflow they name, and an
    ``approved_by`` no seal backs is not taken (one needing a person is set aside, saying to record
    it again); the others go."""
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
        sa.Column("workflow", sa.String(255), nullable=True), sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("approved_by", sa.String(255), nullable=True),
    )  # fmt: skip
    meta.create_all(engine)
    with engine.begin() as conn:
        for key, workflow, approved_by in [("k-approved", "checkout", "alice"), ("k-plain", "checkout", None)]:
            conn.execute(sa.insert(old).values(
                key=key, target="slack", operation="post", arguments='{"text": "hi"}', status="pending", attempts=0,
                created_at=1.0, next_at=1.0, workflow=workflow, run_id="r-1", approved_by=approved_by,
            ))  # fmt: skip
    engine.dispose()
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    async with Client(f"sqlite:///{tmp_path}/gov.db") as c:
        await c.set_policy("checkout", Policy(approve_connectors=["slack.post"]))
        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        done = await relay.run_once()
        assert (done.sent, done.refused) == (0, 2)  # both need a person now; neither approval is verifiable
        why = {m.key: m.last_error or "" for m in await db.outbox_messages(status="failed")}
        assert "not sealed" in why["k-approved"] and "'alice'" in why["k-approved"], why["k-approved"]
        await c.set_policy("checkout", None)
        for key in why:
            assert await db.outbox_retry(key)
        assert (await relay.run_once()).sent == 2
    engine = sa.create_engine(_url(sql_url))
    assert "seal" in {col["name"] for col in sa.inspect(engine).get_columns("podium_outbox")}
    engine.dispose()
    assert sorted(hook.effects) == ["k-approved", "k-plain"]
    await db.close()


def _podium(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command line, with ``env`` (its ``PODIUM_TOKEN`` too) over this process's environment."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    full.pop("PODIUM_DB", None)
    full.pop("PODIUM_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        env={**full, **env}, capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip


def test_the_relay_command_refuses_what_no_run_sealed_under_the_default_policy(hook: Hook, tmp_path: Path) -> None:
    """From the command line, in a store with users: a message no run recorded, for an operation
    ``*`` says a person approves, is counted ``refused=1`` (exit 1) and listed with its reason."""
    import asyncio

    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    async def write() -> str:
        async with Client(db) as c:
            await c.create_user("root", ["admin"])
            token = await c.create_token("root")
            await c.set_policy("*", Policy(approve_connectors=["slack.post"]))
        orders = SqlConnector(orders_url)
        await orders.call("transact", place(6), idempotency_key="k6")
        await orders.close()
        return token

    env["PODIUM_TOKEN"] = asyncio.run(write())
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 1, relayed.stdout + relayed.stderr
    assert "sent=0" in relayed.stdout and "refused=1" in relayed.stdout, relayed.stdout
    listed = _podium("outbox", "list", "--source", "orders", "--status", "failed", "--db", db, env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "refused: " in listed.stdout and "'*'" in listed.stdout and "Traceback" not in listed.stderr, listed.stdout
    assert not list(hook.effects)


async def test_attack_a_database_writer_replays_a_delivered_message(sql_url: str, hook: Hook, tmp_path: Path) -> None:
    """The attack: after the relay delivered a sealed message, a writer of the business database
    set its row back to ``pending`` (the seal does not cover the status, which the relay changes):
    the relay posted it again (a webhook that does not deduplicate, a payment, pays twice). Now the
    relay notes each delivery in the Podium store (which that writer cannot write) and does not send
    a message it delivered before: the row is marked sent again, with why, and audited as a
    duplicate; ``podium outbox relay --once`` counts it."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    store, tokens = await _governed(tmp_path)
    async with Client(store, token=tokens["root"], workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        await c.run(wf, 1)
        relay = OutboxRelay(db, {"slack": slack}, held=held_with(c.governance), audit=audit_with(c.governance))
        assert (await relay.run_once()).sent == 1
        [sent] = await db.outbox_messages(status="sent")
        assert len(hook.requests) == 1

        _forge(sql_url, sent.key, status="pending", sent_at=None)
        done = await relay.run_once()
        assert len(hook.requests) == 1, "a delivered message set back to pending was posted again"
        assert (done.sent, done.duplicates) == (0, 1)
        [again] = await db.outbox_messages(status="sent")
        assert "not sent again" in (again.last_error or "") and "delivered" in (again.last_error or "")
        outcomes = [e.details().get("outcome") for e in await c.audit_log() if e.action == "connector.relay"]
        assert outcomes == ["sent", "duplicate"]

        # a genuine new message still goes
        await c.run(wf, 2)
        assert (await relay.run_once()).sent == 1
        assert len(hook.requests) == 2
    await db.close()


def test_the_relay_command_warns_when_no_default_policy_bounds_unsealed_messages(hook: Hook, tmp_path: Path) -> None:
    """In a store with users, a message no run sealed (a script's, or one a writer of the business
    database inserted) is checked under ``*``; with no ``*`` policy it went out unchecked and
    nothing said so. The relay command now says it, once, with the command that sets one; with a
    ``*`` policy it says nothing."""
    import asyncio

    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    async def write() -> str:
        async with Client(db) as c:
            await c.create_user("root", ["admin"])
            token = await c.create_token("root")
        orders = SqlConnector(orders_url)
        await orders.call("transact", place(7), idempotency_key="k7")
        await orders.close()
        return token

    env["PODIUM_TOKEN"] = asyncio.run(write())
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 0 and "sent=1" in relayed.stdout, relayed.stdout + relayed.stderr
    warning = relayed.stdout + relayed.stderr
    assert "no default policy '*'" in warning and "podium policy set '*'" in warning, warning

    async def bound() -> None:
        async with Client(db, token=env["PODIUM_TOKEN"]) as c:
            await c.set_policy("*", Policy(allowed_connectors=["slack"]))

    asyncio.run(bound())
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 0 and "no default policy" not in relayed.stdout + relayed.stderr, relayed.stdout


def test_attack_a_database_writer_puts_terminal_escapes_in_the_outbox_list(hook: Hook, tmp_path: Path) -> None:
    """Seventh review: the outbox's rows are the business database's, whose writers this file's
    attacks are about; ``podium outbox list`` printed their key, target, operation and
    ``last_error`` (which the relay's refusal now fills with what the row claims) as stored, so a
    row could send the operator's terminal escape sequences (set its title, write the clipboard,
    clear the screen to hide rows). Control characters are shown as ``\\xNN`` now."""
    import asyncio

    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    async def write() -> None:
        orders = SqlConnector(orders_url)
        await orders.call("transact", place(7), idempotency_key="k7")
        await orders.close()

    asyncio.run(write())
    engine = sa.create_engine(_url(orders_url))
    table = sa.Table("podium_outbox", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(table).values(
                key="k\x1b]52;c;cm0gLXJmIH4=\x07", operation="post\x1b[2J", status="failed", last_error="x\x1b]0;pwned\x07"
            )
        )
    engine.dispose()
    listed = _podium("outbox", "list", "--source", "orders", "--db", db, env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout, repr(listed.stdout)
    assert "k\\x1b]52;c;cm0gLXJmIH4=\\x07" in listed.stdout and "x\\x1b]0;pwned\\x07" in listed.stdout, listed.stdout


def test_the_relay_command_says_commands_that_work_about_a_replayed_row(hook: Hook, tmp_path: Path) -> None:
    """A new user's run-through: a delivered row set back to pending is counted ``duplicates=1``,
    and the hint said "podium audit shows who relayed them", which prints the group's help: there
    is no such command. Each command the hint gives works when pasted, and the audit one shows the
    relay's ``duplicate`` entry."""
    import asyncio
    import shlex

    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    async def write() -> str:
        async with Client(db) as c:
            await c.create_user("root", ["admin"])
            token = await c.create_token("root")
            await c.set_policy("*", Policy(allowed_connectors=["slack"]))
        orders = SqlConnector(orders_url)
        await orders.call("transact", place(8), idempotency_key="k8")
        await orders.close()
        return token

    env["PODIUM_TOKEN"] = asyncio.run(write())
    assert _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env).returncode == 0
    _forge(orders_url, "k8/message-0", status="pending", sent_at=None)
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 1 and "duplicates=1" in relayed.stdout, relayed.stdout + relayed.stderr
    hint = " ".join(relayed.stdout.split())
    assert "podium audit shows" not in hint, hint
    listing = "podium outbox list " + hint.split("podium outbox list ", 1)[1].split(" shows", 1)[0]
    listed = _podium(*shlex.split(listing)[1:], "--db", db, env=env)
    assert listed.returncode == 0 and "not sent again" in listed.stdout, listed.stdout + listed.stderr
    assert "podium audit export | grep connector.relay shows" in hint, hint
    exported = _podium("audit", "export", "--db", db, env=env)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines() if "connector.relay" in line]
    assert [e["data"]["outcome"] for e in lines] == ["sent", "duplicate"], lines


def test_the_relay_command_says_when_a_waiting_copy_is_looked_at_again_and_how_sooner(hook: Hook, tmp_path: Path) -> None:
    """A new user's run-through (seventh session): ``waiting=1``'s hint said the copy stays pending
    "until its reservation ends", but a second ``--once`` after the other relay had delivered printed
    all zeros (the row is looked at again at the time its ``last_error`` names), and the next pass
    counted it ``duplicates=1``, exit 1, "their rows were changed in the database". The hint now
    says when it is looked at again, what then follows, and the command that looks sooner; the
    duplicates hint names a copy another outbox's relay delivered."""
    import asyncio
    import shlex
    import time

    from podium.connectors._ledger import Ledger
    from podium.connectors.relay import SENT, fingerprint

    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    async def write(held: bool, token: str | None = None) -> str:
        """Note what another relay of the store writes (sealed with the audit key, as relays do)."""
        async with Client(db, token=token) as c:
            orders = SqlConnector(orders_url)
            if held:
                await c.create_user("root", ["admin"])
                token = await c.create_token("root")
                await c.set_policy("*", Policy(allowed_connectors=["slack"]))
                await orders.call("transact", place(9), idempotency_key="k9")
            [message] = await orders.outbox_messages()
            key, ledger = fingerprint(message), Ledger(c.store, sealed=True)
            # another relay's hold, then its delivery of its copy
            note = ledger.reservation_note(key, "elsewhere:1:1", time.time() + 600) if held else ledger.delivered_note(key)
            await c.store.kv_put(SENT, key, note)
            await orders.close()
        return token or ""

    env["PODIUM_TOKEN"] = asyncio.run(write(True))
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 0 and "waiting=1" in relayed.stdout, relayed.stdout + relayed.stderr
    hint = " ".join(relayed.stdout.split())
    assert "looked at again when its hold ends" in hint and "duplicates" in hint, hint
    assert "podium outbox retry --source orders KEY" in hint, hint
    asyncio.run(write(False, env["PODIUM_TOKEN"]))  # the other relay delivered its copy
    assert "sent=0" in _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env).stdout
    retry = shlex.split(hint.split("to look again sooner: ", 1)[1].replace("KEY", "k9/message-0"))
    assert _podium(*retry[1:], "--db", db, env=env).returncode == 0
    again = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert again.returncode == 1 and "duplicates=1" in again.stdout, again.stdout + again.stderr
    assert "copies another outbox's relay delivered" in " ".join(again.stdout.split()), again.stdout
    assert hook.requests == []  # the copy was never sent


def test_the_relay_command_says_when_messages_wait_for_a_connector_the_store_does_not_have(tmp_path: Path) -> None:
    """A new user's run-through (seventh session): messages for a target that is not registered
    wait (deny by default), and ``relay --once`` printed only ``sent=0 retrying=0 failed=0
    refused=0``. It now says how many wait for which connector, and how to add it."""
    import asyncio

    db, orders_url = f"sqlite:///{tmp_path}/p.db", f"sqlite:///{tmp_path}/orders.db"
    orders_table(orders_url)
    env = {"ORDERS_URL": orders_url}
    added = _podium("connectors", "add", "orders", "sql", "--set", "url_env=ORDERS_URL", "--db", db, env=env)
    assert added.returncode == 0, added.stderr

    async def write() -> None:
        orders = SqlConnector(orders_url)
        for n in (7, 8):
            await orders.call("transact", place(n), idempotency_key=f"k{n}")
        await orders.close()

    asyncio.run(write())
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 0, relayed.stdout + relayed.stderr
    said = " ".join(relayed.stdout.split())
    assert "sent=0 retrying=0 failed=0 refused=0" in said, said
    assert "not delivered: 2 pending message(s) wait for a connector this store does not have: slack (2)" in said, said
    assert "podium connectors add NAME KIND" in said, said
