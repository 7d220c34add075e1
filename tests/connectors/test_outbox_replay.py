"""Replays of a message across outboxes and relays (the Podium store on SQLite and PostgreSQL).

A relay notes each delivery in the Podium store (``outbox_sent``, under the message's fingerprint:
key, target, operation, arguments), so a delivered row set back to pending, or copied into another
outbox, is not sent again. Two relays over two outboxes holding a copy of one pending message both
delivered it: each read the note before its call and wrote it after, with nothing between. A relay
now reserves the fingerprint with a compare-and-set before the call (owner and expiry); a relay that
finds a live reservation leaves its copy pending. And a row changed in the database that matches a
delivered message is refused as changed, not marked sent as a replay.

The race is made deterministic by the webhook stand-in: it holds the first relay's request on an
event until the second relay has run its pass."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from podium import Client
from podium.connectors.relay import SENT, OutboxRelay, audit_with, fingerprint, held_with
from podium.connectors.sql import SqlConnector, _url

from .standins import Hook
from .test_outbox import hook_for, orders_table, until
from .test_outbox_seal import _checkout, _forge, _governed


@pytest.fixture(params=["sqlite", "postgres"])
def podium_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The Podium store both relays share (its ledger of deliveries)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


def _two_outboxes(tmp_path: Path) -> tuple[str, str]:
    """Two business databases (SQLite files), each with an orders table."""
    urls = (f"sqlite:///{tmp_path}/orders-a.db", f"sqlite:///{tmp_path}/orders-b.db")
    for url in urls:
        orders_table(url)
    return urls


def _copy_across(source: str, dest: str, key: str) -> None:
    """What a writer of both databases does (or a restore of a backup into another one): copy
    message ``key``'s row, its seal too, into the other database's outbox."""
    engines = [sa.create_engine(_url(u)) for u in (source, dest)]
    tables = [sa.Table("podium_outbox", sa.MetaData(), autoload_with=e) for e in engines]
    with engines[0].begin() as conn:
        row = dict(conn.execute(sa.select(tables[0]).where(tables[0].c.key == key)).mappings().one())
    row.pop("id")
    with engines[1].begin() as conn:
        conn.execute(sa.insert(tables[1]).values(row))
    for e in engines:
        e.dispose()


def _relay(db: SqlConnector, slack: Any, client: Client, source: str) -> OutboxRelay:
    gov = client.governance
    return OutboxRelay(db, {"slack": slack}, held=held_with(gov), audit=audit_with(gov), source_name=source)


async def _both_hold(podium_url: str, tmp_path: Path, hook: Hook, orders: int) -> Any:
    """``orders`` messages recorded by a run (sealed) in outbox a, each copied into outbox b."""
    url_a, url_b = _two_outboxes(tmp_path)
    db_a, db_b = SqlConnector(url_a), SqlConnector(url_b)
    wf = _checkout()
    async with Client(podium_url, workflows=[wf], connectors={"orders": db_a, "slack": hook_for(hook)}) as c:
        for order in range(1, orders + 1):
            await c.run(wf, order)
    await db_b.ensure_outbox()
    keys = [m.key for m in await db_a.outbox_messages()]
    for key in keys:
        _copy_across(url_a, url_b, key)
    return db_a, db_b, keys


async def test_attack_two_relays_over_two_outboxes_deliver_one_message_twice(
    podium_url: str, hook: Hook, tmp_path: Path
) -> None:
    """The attack: a sealed message's row copied into a second outbox (same key, seal and all) is
    claimed by that outbox's relay while the first relay is delivering the original. Both read "not
    delivered" before their calls, so the webhook (which does not deduplicate: Slack) posted twice.
    Now the first relay reserves the message in the Podium store before its call; the second finds
    the reservation live and leaves its copy pending, saying why and until when; once the first has
    delivered, the copy is marked sent as a duplicate, unsent."""
    db_a, db_b, [key] = await _both_hold(podium_url, tmp_path, hook, 1)
    async with Client(podium_url) as one, Client(podium_url) as two:  # two relays, as two processes
        first = _relay(db_a, hook_for(hook), one, "orders")
        second = _relay(db_b, hook_for(hook), two, "orders-copy")
        hook.hold = threading.Event()
        try:
            delivering = asyncio.create_task(first.run_once())
            await until(_is_set(hook.arrived))  # the first relay's request is at the target, held there
            copying = asyncio.create_task(second.run_once())

            async def settled() -> bool:
                return copying.done() or len(hook.requests) > 1

            await until(settled)
            assert len(hook.requests) == 1, "the second relay delivered its copy while the first was delivering it"
            got = await copying
        finally:
            hook.hold.set()
        assert (got.sent, got.waiting, got.duplicates) == (0, 1, 0), got
        assert (await delivering).sent == 1
        [waiting] = await db_b.outbox_messages(status="pending")
        why = waiting.last_error or ""
        assert "another relay" in why and first.owner in why and "podium outbox retry --source orders-copy " + key in why, why
        assert waiting.attempts == 0 and waiting.next_at > time.time()  # until the reservation ends

        # the operator's retry (or the reservation's end) checks it again: delivered, so not sent
        assert await db_b.outbox_retry(key)
        again = await second.run_once()
        assert (again.sent, again.duplicates) == (0, 1), again
        [marked] = await db_b.outbox_messages(status="sent")
        assert "not sent again" in (marked.last_error or "")
        assert len(hook.requests) == 1
        outcomes = sorted(str(e.details().get("outcome")) for e in await two.audit_log() if e.action == "connector.relay")
        assert outcomes == ["duplicate", "sent"]  # the waiting pass is no delivery: not audited
    await db_a.close()
    await db_b.close()


def _is_set(event: threading.Event) -> Any:
    async def check() -> bool:
        return event.is_set()

    return check


async def test_a_failed_delivery_releases_its_reservation(podium_url: str, hook: Hook, tmp_path: Path) -> None:
    """A relay whose delivery fails releases its reservation: the copy in the other outbox goes at
    once (not left waiting), and the first relay's retry of its own row is then a duplicate."""
    db_a, db_b, [key] = await _both_hold(podium_url, tmp_path, hook, 1)
    async with Client(podium_url) as one, Client(podium_url) as two:
        first = _relay(db_a, hook_for(hook), one, "orders")
        second = _relay(db_b, hook_for(hook), two, "orders-copy")
        hook.failures = [(503, {})]  # retryable
        failed = await first.run_once()
        assert (failed.sent, failed.retrying) == (0, 1), failed
        copied = await second.run_once()
        assert (copied.sent, copied.waiting) == (1, 0), copied
        assert await db_a.outbox_retry(key)
        late = await first.run_once()
        assert (late.sent, late.duplicates) == (0, 1), late
        assert len(hook.requests) == 2  # refused once by the target, then delivered once
    await db_a.close()
    await db_b.close()


async def test_a_stale_reservation_is_taken_over_and_said_so(podium_url: str, hook: Hook, tmp_path: Path) -> None:
    """A reservation whose time is past (its relay stopped during the call, so whether the target
    got the message is unknown) is taken over by the next relay: it delivers, with the same
    idempotency key, and says so on the row and in the audit log; the other copy is a duplicate."""
    db_a, db_b, [key] = await _both_hold(podium_url, tmp_path, hook, 1)
    async with Client(podium_url) as one, Client(podium_url) as two:
        first = _relay(db_a, hook_for(hook), one, "orders")
        second = _relay(db_b, hook_for(hook), two, "orders-copy")
        [msg] = await db_a.outbox_messages()
        crashed = await held_with(one.governance).sent.reserve(msg, owner="crashed-host:4242", lease=0.0)
        assert crashed.mine is not None

        took = await second.run_once()
        assert took.sent == 1, took
        [row] = await db_b.outbox_messages(status="sent")
        note = row.last_error or ""
        assert "stale reservation" in note and "crashed-host:4242" in note and "Idempotency-Key" in note, note
        notes = [e.details().get("note", "") for e in await two.audit_log() if e.action == "connector.relay"]
        assert sum("crashed-host:4242" in n for n in notes) == 1, notes

        late = await first.run_once()
        assert (late.sent, late.duplicates) == (0, 1), late
        assert len(hook.requests) == 1 and list(hook.effects) == [key]
        assert await one.store.kv_get(SENT, fingerprint(msg)) is not None
    await db_a.close()
    await db_b.close()


async def test_the_ledger_reserves_a_message_for_one_relay_at_a_time(store_url: str, hook: Hook, tmp_path: Path) -> None:
    """On every store kind: a live reservation is another relay's until it is settled or released;
    settled, the message is delivered; released, the next relay may take it; expired, taken over."""
    url_a, _ = _two_outboxes(tmp_path)
    db = SqlConnector(url_a)
    await db.call("transact", {"messages": [{"target": "slack", "operation": "post", "arguments": {"text": "hi"}}]}, idempotency_key="k")
    [msg] = await db.outbox_messages()
    async with Client(store_url) as c:
        ledger = held_with(c.governance).sent
        mine = await ledger.reserve(msg, owner="a", lease=60.0)
        busy = await ledger.reserve(msg, owner="b", lease=60.0)
        assert mine.mine is not None and busy.mine is None and busy.busy == "a" and busy.until > 0
        await ledger.release(msg, mine.mine)
        again = await ledger.reserve(msg, owner="b", lease=0.0)
        assert again.mine is not None and again.took_over is None
        over = await ledger.reserve(msg, owner="c", lease=60.0)  # b's has expired
        assert over.mine is not None and over.took_over == "b"
        assert await ledger.settle(msg, over.mine)
        assert not await ledger.settle(msg, again.mine)  # b's delivery overran its lease: noted all the same
        done = await ledger.reserve(msg, owner="d", lease=60.0)
        assert done.mine is None and done.delivered_at is not None
        assert await held_with(c.governance).delivered(msg) == done.delivered_at
    await db.close()


async def test_attack_a_changed_row_that_matches_a_delivered_message_is_taken_for_a_replay(
    sql_url: str, hook: Hook, tmp_path: Path
) -> None:
    """The attack: after a sealed message was delivered, a writer of the business database set its
    row back to pending and wrote ``approved_by = 'alice'`` (or another workflow) into it. Its key,
    target, operation and arguments are those of the delivered message, so the relay's replay check
    (run before the seal check) marked it ``sent`` as a mere duplicate: the change went unreported.
    The seal and policy are checked first now: it is refused as a row changed after it was recorded,
    audited ``policy.refuse``; nothing is sent."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    slack = hook_for(hook)
    wf = _checkout()
    store, tokens = await _governed(tmp_path)
    async with Client(store, token=tokens["root"], workflows=[wf], connectors={"orders": db, "slack": slack}) as c:
        await c.run(wf, 1)
        relay = _relay(db, slack, c, "orders")
        assert (await relay.run_once()).sent == 1
        [sent] = await db.outbox_messages(status="sent")

        _forge(sql_url, sent.key, status="pending", sent_at=None, approved_by="alice")
        done = await relay.run_once()
        assert (done.refused, done.duplicates, done.sent) == (1, 0, 0), done
        [changed] = await db.outbox_messages(status="failed")
        why = changed.last_error or ""
        assert why.startswith("refused: ") and "changed after it was recorded" in why and "'alice'" in why, why
        reasons = [e.details().get("reason", "") for e in await c.audit_log() if e.action == "policy.refuse"]
        assert sum("changed after" in r for r in reasons) == 1
        assert len(hook.requests) == 1
    await db.close()
