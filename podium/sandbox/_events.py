"""The sandbox company's event bus: the business events its systems publish (``ticket.opened``,
``order.created``, ``price.changed``...; see ``EVENTS``) leave the outbox table for a bus, and
events other parties put on that bus are recorded as received by the company (system ``event_bus``).

The bus is one of:

* NATS, when the sandbox is given ``event_bus="nats://..."`` (default ``$PODIUM_EVENT_BUS``): the
  subjects and stream of Podium's own :class:`~podium.storage.NatsBus`, so every Podium process on
  that NATS server (``podium serve``, a worker) sees the events, and its triggers start runs;
* else a Podium client's own bus, once the sandbox is attached to it (``await company.attach(client)``):
  on embedded defaults the client's store (this process; every process sharing a PostgreSQL store).

An event stays in the outbox until a bus has taken it (delivery is at least once; the payload's
``idempotency_key`` makes a trigger start one run per event however often it arrives).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._db import Database, connect, log, rows

logger = logging.getLogger("podium.sandbox")

#: The business events the systems publish: topic -> what it means.
EVENTS: dict[str, str] = {
    "ticket.opened": "support desk: a customer opened a ticket",
    "ticket.answered": "support desk: a reply was sent",
    "ticket.escalated": "support desk: a ticket was handed to a person",
    "task.created": "CRM: a follow-up task was created",
    "campaign.joined": "marketing: a customer was enrolled in a campaign",
    "order.created": "ERP: a customer ordered a product",
    "price.changed": "ERP: a vendor announced a price change",
    "po.flagged": "ERP: a purchase order was flagged for review",
    "mail.received": "finance mailbox: a mail arrived",
}

#: The system name under which events received from the bus are recorded.
BUS_SYSTEM = "event_bus"

#: The prefix of the topics Podium itself publishes on a bus (``podium.tokens.<run_id>``...): not business events.
PODIUM_TOPICS = "podium."


class Relay:
    """Runs in the sandbox's event loop: sends the outbox to the bus, records what the bus brings."""

    def __init__(self, db: Database, url: str | None) -> None:
        self.db = db
        self.url = url
        """The NATS URL the sandbox publishes to itself (None: an attached client's bus)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client: tuple[Any, asyncio.AbstractEventLoop] | None = None
        self._unsubscribe: Callable[[], Awaitable[None]] | None = None
        self._client_unsubscribe: Callable[[], Awaitable[Any]] | None = None
        self._nats: Any = None
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._warned = False

    def wake(self) -> None:
        """Called in the sandbox's loop after an event is put in the outbox."""
        self._wake.set()

    def wake_threadsafe(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake.set)

    # -- life ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Forward the outbox until ``stop`` is set (waking at once on new events)."""
        self.loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if self.url is not None and self._unsubscribe is None:
                    await self._listen_nats()
                pending = await self.flush()
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                # Unsent events (a bus that does not answer) are retried every second.
                await asyncio.wait([waiter, stopper], timeout=1.0 if pending else 30.0, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            if self._nats is not None:
                if self._unsubscribe is not None:
                    await self._unsubscribe()
                await self._nats.close()

    async def _listen_nats(self) -> None:
        from ..storage import NatsBus, open_store

        if self._nats is None:
            assert self.url is not None
            # The sandbox only publishes and subscribes: the store (used for work wake-ups) stays unopened.
            self._nats = NatsBus(self.url, open_store("memory://"))
        try:
            self._unsubscribe = await asyncio.wait_for(self._nats.subscribe(self._from_nats), 10)
        except Exception as exc:
            self._warn(f"NATS at {self.url} does not answer ({type(exc).__name__}: {exc})")

    def _from_nats(self, topic: str, payload: str) -> None:
        try:
            value = json.loads(payload)
        except ValueError:
            value = payload
        self.receive(topic, value)

    def _warn(self, why: str) -> None:
        if not self._warned:
            logger.warning("sandbox event bus: %s; events wait in the outbox and are sent when it answers", why)
            self._warned = True

    # -- out ----------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Send what waits in the outbox; returns how many events are still unsent."""
        async with self._flushing:  # one sender at a time: an event goes out once
            return await self._flush()

    async def _flush(self) -> int:
        with connect(self.db) as conn:
            waiting = rows(conn, "SELECT id, topic, payload FROM events WHERE sent_at IS NULL ORDER BY id LIMIT 500")
        if not waiting:
            return 0
        sent = 0
        for event in waiting:
            try:
                if self.url is not None:
                    if self._nats is None or self._unsubscribe is None:
                        break
                    await self._nats.publish(event["topic"], event["payload"])
                elif self.client is not None:
                    client, loop = self.client
                    emitted = asyncio.run_coroutine_threadsafe(client.emit(event["topic"], json.loads(event["payload"])), loop)
                    await asyncio.wait_for(asyncio.wrap_future(emitted), 30)
                else:
                    break  # no bus yet: kept until a client is attached
            except Exception as exc:
                self._warn(f"could not publish {event['topic']} ({type(exc).__name__}: {exc})")
                break
            with connect(self.db) as conn:
                conn.execute("UPDATE events SET sent_at = ? WHERE id = ?", (time.time(), event["id"]))
            sent += 1
        if sent:
            self._warned = False
        return len(waiting) - sent

    # -- in -----------------------------------------------------------------------------------
    def receive(self, topic: str, payload: Any) -> None:
        """Record an event from the bus, unless the company published it itself or it is Podium's own
        (``podium.``: a run's streamed model tokens, its progress), which no system of the company receives."""
        if topic.startswith(PODIUM_TOPICS):
            return
        key = payload.get("idempotency_key") if isinstance(payload, dict) else None
        with connect(self.db) as conn:
            if key is not None and rows(conn, "SELECT 1 FROM events WHERE event_id = ?", (str(key),)):
                return
            log(conn, BUS_SYSTEM, topic, payload)

    async def attach(self, client: Any) -> None:
        """Publish through ``client``'s bus and record the events it carries (call in its loop)."""
        await self.detach()
        loop = asyncio.get_running_loop()
        if self.url is None:
            self._client_unsubscribe = await client.on("*", lambda topic, payload: self.receive(topic, payload))
        self.client = (client, loop)
        self.wake_threadsafe()

    async def detach(self) -> None:
        """Send what waits for the attached client's bus, then stop using it (call in its loop)."""
        if self.client is not None and self.loop is not None and self.loop.is_running():
            flushed = asyncio.run_coroutine_threadsafe(self.flush(), self.loop)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(flushed), 30)
        unsubscribe = self._client_unsubscribe
        self.client = None
        self._client_unsubscribe = None
        if unsubscribe is not None:
            with contextlib.suppress(Exception):
                await unsubscribe()
