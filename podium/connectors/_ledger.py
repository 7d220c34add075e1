"""The Podium store's ledger of outbox deliveries, shared by every relay of the store.

A message is noted under its :func:`fingerprint` (key, target, operation, arguments: the same for a
row set back to pending or copied into another outbox) in the store's kv namespace ``outbox_sent``:

* ``{"owner": ..., "until": ...}`` (JSON): a relay reserved it and is delivering it now. Another
  relay holding a copy leaves that copy pending until the reservation ends.
* a time (``repr`` of a float): delivered then. A copy, or the row set back to pending, is not sent
  again.

With auditing on (a governed relay), each note is sealed with the audit key over the message's
fingerprint (a ``;MAC`` after the time, a ``seal`` in the reservation): a note the Podium store's
writer put there by hand, or moved from another message, does not match, and is taken for a stale
reservation (the message is delivered, and its row says why) instead of holding the message back
as delivered or as another relay's for ever. Deleting a note still lets a copy go again (a
target that deduplicates by key applies it once).

A reservation is taken with a compare-and-set (:meth:`~podium.storage.Store.kv_swap`), so of two
relays that read the same note one wins. The delivery's success turns the reservation into the
delivered note; its failure removes it. A reservation whose time has passed is stale: its relay
stopped (or lost the store) in the middle of the delivery, so whether the target got the message
is unknown. The next relay takes it over and delivers again with the same idempotency key: a target
that deduplicates by key applies it once, one that does not (a chat webhook) may show it twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from ._base import arguments_hash
from .outbox import OutboxMessage

SENT = "outbox_sent"
"""The Podium store's record of the messages its relays delivered (fingerprint -> when), and of
those a relay is delivering now (fingerprint -> its reservation)."""

UNREADABLE = "none (the ledger held a note no relay writes, put into the Podium store by hand)"
"""The owner a relay names for a note it could not read, which it took over as a stale reservation."""

_TRIES = 5
"""Compare-and-set rounds before a note that keeps changing is taken for another relay's."""


def fingerprint(msg: OutboxMessage) -> str:
    """What identifies a message wherever its row is (its key, target, operation and arguments):
    a row set back to pending, or copied to another outbox, has the same one."""
    text = json.dumps([msg.key, msg.target, msg.operation, arguments_hash(msg.arguments)])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Reservation:
    """What the ledger answers a relay about to deliver a message (:meth:`Ledger.reserve`): exactly
    one of ``mine``, ``delivered_at`` and ``busy`` is set."""

    mine: str | None = None
    """This relay's reservation, as stored: deliver, then :meth:`Ledger.settle` or :meth:`Ledger.release` it."""
    delivered_at: float | None = None
    """The message was delivered then: do not send it again."""
    busy: str | None = None
    """Another relay (its owner) is delivering the message now: leave it pending until ``until``."""
    until: float = 0.0
    """When ``busy``'s reservation ends; with ``took_over``, when the stale one did."""
    took_over: str | None = None
    """With ``mine``: the owner of a stale reservation taken over (whether it delivered is unknown)."""


_LAST = 253402300800.0
"""The first second after the year 9999: a delivered note's time is before it (one after it is no
time a relay wrote, and ``time.gmtime`` cannot show it)."""


def _signed(keys: Any, text: str, seal: Any) -> bool:
    """Whether ``seal`` is the audit key's MAC of ``text`` (a key retired since included)."""
    return isinstance(seal, str) and keys.verify_seal(text, seal) is True


def _reading(value: str, key: str = "", keys: Any = None) -> tuple[str, float] | float | None:
    """A note's meaning: (owner, until) for a reservation, else the time of the delivery; None for
    a note of no shape a relay writes (not JSON, a text or NaN for a time: written into the Podium
    store by hand), or, with ``keys`` (the audit keys of a sealed ledger), one whose seal does not
    match it under fingerprint ``key``, which :meth:`Ledger.reserve` takes for a stale reservation,
    so that no such note makes a relay raise in the middle of a batch, or holds a message back."""
    try:
        if value.startswith("{"):
            held = json.loads(value)
            owner, until = held["owner"], float(held["until"])
            if keys is not None and not _signed(keys, f"{key};{owner};{until!r}", held.get("seal")):
                return None
            return (str(owner), until) if not math.isnan(until) else None
        text, _, seal = value.partition(";")
        when = float(text)
        if keys is not None and not _signed(keys, f"{key};{text}", seal):
            return None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return when if 0.0 <= when < _LAST else None


class Ledger:
    """The deliveries of the relays of ``store`` (a Podium store), and their reservations."""

    def __init__(self, store: Any, *, sealed: bool = False) -> None:
        self.store = store
        self.keys = store.audit_keys if sealed else None
        """The audit keys that seal the notes (None: a ledger of a store with auditing off)."""

    def delivered_note(self, key: str) -> str:
        """The note of a delivery now (sealed under fingerprint ``key`` where the ledger is)."""
        when = repr(time.time())
        return when if self.keys is None else f"{when};{self.keys.seal(f'{key};{when}')}"

    def reservation_note(self, key: str, owner: str, until: float) -> str:
        held: dict[str, Any] = {"owner": owner, "until": until}
        if self.keys is not None:
            held["seal"] = self.keys.seal(f"{key};{owner};{until!r}")
        return json.dumps(held)

    async def delivered(self, msg: OutboxMessage) -> float | None:
        """When a relay of this store delivered ``msg`` (or a message like it), or None (also while
        one is delivering it)."""
        key = fingerprint(msg)
        value = await self.store.kv_get(SENT, key)
        read = None if value is None else _reading(value, key, self.keys)
        return read if isinstance(read, float) else None

    async def reserve(self, msg: OutboxMessage, *, owner: str, lease: float) -> Reservation:
        """Reserve ``msg`` for ``owner`` for ``lease`` seconds, unless it was delivered or another
        relay's reservation of it is live; a stale one is taken over."""
        key = fingerprint(msg)
        for _ in range(_TRIES):
            now = time.time()
            mine = self.reservation_note(key, owner, now + lease)
            value = await self.store.kv_get(SENT, key)
            if value is None:
                if await self.store.kv_swap(SENT, key, None, mine):
                    return Reservation(mine=mine)
                continue  # another relay reserved it meanwhile: read what it wrote
            read = _reading(value, key, self.keys)
            if isinstance(read, float):
                return Reservation(delivered_at=read)
            holder, until = read if read is not None else (UNREADABLE, 0.0)
            if until > now:
                return Reservation(busy=holder, until=until)
            if await self.store.kv_swap(SENT, key, value, mine):
                return Reservation(mine=mine, took_over=holder, until=until)
        # the note changed at each look: relays are at it right now; leave the message for later
        return Reservation(busy="another relay", until=time.time() + lease)

    async def settle(self, msg: OutboxMessage, mine: str) -> bool:
        """Note ``msg`` delivered, in place of reservation ``mine``. False when the reservation was
        no longer this relay's (the delivery outlasted the lease, and another relay may have taken it
        over): the delivery is noted all the same."""
        key = fingerprint(msg)
        when = self.delivered_note(key)
        if await self.store.kv_swap(SENT, key, mine, when):
            return True
        await self.store.kv_put(SENT, key, when)
        return False

    async def release(self, msg: OutboxMessage, mine: str) -> None:
        """Give up reservation ``mine`` (the delivery failed): a copy may go. A reservation no
        longer this relay's, or a delivered note, is left as it is."""
        await self.store.kv_swap(SENT, fingerprint(msg), mine, None)
