"""Attacks on the relays' ledger of reservations (podium/connectors/_ledger.py), seventh session's
attacker review.

The ledger lives in the Podium store (``outbox_sent``), so whoever can write that database can write
a note of any shape under a message's fingerprint (which anyone reading the outbox can compute). A
relay must not fall over: a note it cannot read (not a time, not a reservation; a time out of range)
raised in the middle of a batch, so that the other messages of that batch were delivered but never
marked sent nor audited, batch after batch. And (eighth session: "the ledger is unsealed") such a
writer held a message back for good with a note of a delivery that never happened (the message was
marked sent, a "duplicate", and never delivered) or a reservation far ahead: the notes are sealed
with the audit key now, and one whose seal does not match is taken over like an unreadable one.
Deleting a note still lets a copy go again (a target that deduplicates by key applies it once)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from podium import Client
from podium.connectors._ledger import Ledger
from podium.connectors.relay import SENT, fingerprint
from podium.connectors.sql import SqlConnector

from .standins import Hook
from .test_outbox import hook_for
from .test_outbox_replay import _relay, _two_outboxes, podium_url  # noqa: F401 (a fixture)
from .test_outbox_seal import _checkout

#: Notes a writer of the Podium store may leave under a message's fingerprint, and what the relay
#: must then do with that message: deliver it (taking the note over, saying so), or leave it pending.
NOTES = {
    "not a note": ("garbage", "sent"),
    "a reservation that is not JSON": ("{owner", "sent"),
    "a reservation with a text expiry": (json.dumps({"owner": "x", "until": "soon"}), "sent"),
    "a reservation that is a list": ("[1, 2]", "sent"),
    "a delivered time that is not a number": ("nan", "sent"),
    "a delivered time past the calendar": ("1e300", "sent"),
    "a reservation never ending": (json.dumps({"owner": "x", "until": 1e300}), "sent"),
    "a reservation until infinity": ('{"owner": "x", "until": Infinity}', "sent"),
    "a reservation until NaN": ('{"owner": "x", "until": NaN}', "sent"),
    # failed before (the message was held back: marked a duplicate, or left waiting a day at a time)
    "a delivery that never happened": (repr(time.time()), "sent"),
    "a reservation far ahead": (json.dumps({"owner": "x:1:1", "until": time.time() + 86_400}), "sent"),
    "a genuine note's seal under a time of one's own": ("SEALED-DELIVERY", "sent"),
    # a relay's own (sealed) reservation far ahead: its clock set wrong; looked at within a lease
    "a relay's reservation far ahead": ("SEALED-RESERVATION", "waiting"),
}


@pytest.mark.parametrize("what", list(NOTES))
async def test_attack_a_note_the_relay_cannot_read_fails_the_whole_batch_unrecorded(
    podium_url: str, hook: Hook, tmp_path: Path, what: str  # noqa: F811
) -> None:
    """A writer of the Podium store puts a note of the wrong shape under the fingerprint of one of
    two pending messages. The relay raised on it (``float('garbage')``, ``time.gmtime(1e300)``): the
    batch failed after the other message had been delivered, which was then neither marked sent nor
    audited, and the same happened at every pass. Now the unreadable note is taken over as a stale
    reservation (delivered, and said so) or, for a reservation that never ends, the message is left
    pending and looked at again within the relay's lease; the other message is sent and audited."""
    url_a, _ = _two_outboxes(tmp_path)
    db = SqlConnector(url_a)
    wf = _checkout()
    async with Client(podium_url, workflows=[wf], connectors={"orders": db, "slack": hook_for(hook)}) as c:
        await c.run(wf, 1)
        await c.run(wf, 2)
        first, second = await db.outbox_messages()
        note, outcome = NOTES[what]
        key, ledger = fingerprint(first), Ledger(c.store, sealed=True)
        if note == "SEALED-DELIVERY":  # a genuine note's seal, its time changed
            sealed = ledger.delivered_note(key)
            note = f"{time.time() - 3600!r};{sealed.partition(';')[2]}"
        elif note == "SEALED-RESERVATION":
            note = ledger.reservation_note(key, "x:1:1", 1e300)
        await c.store.kv_put(SENT, key, note)
        relay = _relay(db, hook_for(hook), c, "orders")
        done = await relay.run_once()
        assert done.sent == (2 if outcome == "sent" else 1) and done.waiting == (outcome == "waiting"), done
        [row] = [m for m in await db.outbox_messages() if m.key == second.key]
        assert row.status == "sent", row
        audited = [e.details() for e in await c.audit_log() if e.action == "connector.relay"]
        assert sum(d.get("message") == second.id and d.get("outcome") == "sent" for d in audited) == 1, audited
        [held] = [m for m in await db.outbox_messages() if m.key == first.key]
        if outcome == "sent":
            assert held.status == "sent" and "stale reservation" in (held.last_error or ""), held
            assert len(hook.requests) == 2  # each message once
        else:
            assert held.status == "pending" and "another relay" in (held.last_error or ""), held
            assert len(hook.requests) == 1
            assert held.next_at <= time.time() + relay.lease, held.next_at  # looked at again within a lease
    await db.close()


async def test_a_message_whose_reservation_raises_leaves_the_rest_of_its_batch_recorded(
    podium_url: str, hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """The Podium store fails while one message of a batch is reserved: the batch raised as a whole,
    so the other message, delivered meanwhile and noted in the ledger, was never marked sent nor
    audited; at the next pass it was marked a mere ``duplicate`` (its delivery never audited as
    one). Now the failing message is left to its lease, the others are recorded and audited, and
    the pass still raises (the relay logs it, ``--once`` fails)."""
    from podium.connectors._ledger import Ledger

    url_a, _ = _two_outboxes(tmp_path)
    db = SqlConnector(url_a)
    wf = _checkout()
    async with Client(podium_url, workflows=[wf], connectors={"orders": db, "slack": hook_for(hook)}) as c:
        await c.run(wf, 1)
        await c.run(wf, 2)
        first, second = await db.outbox_messages()
        reserve = Ledger.reserve

        async def flaky(self: Ledger, msg: object, **kw: object) -> object:
            if getattr(msg, "key", None) == first.key:
                raise ConnectionError("the Podium store went away")
            return await reserve(self, msg, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(Ledger, "reserve", flaky)
        relay = _relay(db, hook_for(hook), c, "orders")
        with pytest.raises(ConnectionError):
            await relay.run_once()
        rows = {m.key: m for m in await db.outbox_messages()}
        assert rows[second.key].status == "sent" and rows[first.key].status == "pending", rows
        audited = [e.details() for e in await c.audit_log() if e.action == "connector.relay"]
        assert [(d.get("message"), d.get("outcome")) for d in audited] == [(second.id, "sent")], audited
        assert len(hook.requests) == 1
    await db.close()
