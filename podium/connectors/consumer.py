"""A broker as a trigger: :class:`Consumer` starts one run of a workflow per message::

    bus = open_connector("nats", url="nats://127.0.0.1:4222")
    async with Client("sqlite:///podium.db", workflows=[wf]) as client:
        consumer = Consumer(client, bus, workflow="orders", source={"stream": "ORDERS", "subject": "orders.created"})
        await consumer.run(stop)          # or: await consumer.poll() for one batch

Delivery is at-least-once, run start effectively-once: the run id is derived from the message's key
(the publisher's message id, else the broker's position), so a message delivered twice finds its
run and starts nothing; a message is acknowledged only after its run is stored. A message that can
never start a run (the input does not fit the workflow, the workflow is switched off) is kept as a
dead letter (``GET /api/deadletters``, replayable) and acknowledged; a store that does not answer
leaves the message unacknowledged, for the broker to deliver again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from typing import Any

from ..errors import AuthError, ConnectorDrift, ConnectorError, PodiumError, StoreError
from ..secret import redact_known
from ..storage._letters import DEADLETTERS, seal
from ._broker import BrokerConnector, Delivery, Message, Unreadable
from ._contracts import EVENT

log = logging.getLogger("podium.triggers")

def run_id_for(connector: str, workflow: str, key: str) -> str:
    """The id of the run a message starts: the same message, the same run."""
    return hashlib.sha256("\x00".join(("broker", connector, workflow, key)).encode()).hexdigest()[:24]


class Consumer:
    """Starts one run of ``workflow`` per message of ``source`` (see :mod:`podium.connectors._sources`
    for each kind's fields). ``client`` is a :class:`podium.Client`; ``name`` is the connector's
    name (it goes into run ids and dead letters)."""

    def __init__(
        self,
        client: Any,
        connector: BrokerConnector,
        *,
        workflow: str,
        source: dict[str, Any],
        name: str = "",
        poll_timeout: float = 5.0,
    ) -> None:
        if not isinstance(connector, BrokerConnector):
            raise TypeError(f"a Consumer needs a broker connector (nats, redis, amqp, mqtt), got {connector!r}")
        self.client = client
        self.connector = connector
        self.workflow = workflow
        self.name = name or connector.kind
        self.source = connector.check_source(dict(source), name=workflow)
        self.envelope = bool(self.source.get("envelope"))
        self.poll_timeout = poll_timeout
        self.started = 0
        """Runs started."""
        self.duplicates = 0
        """Messages whose run already existed (redelivered, or published twice)."""
        self.dead_lettered = 0
        self.quarantined = 0
        """Messages set aside because they did not match the event contract."""

    async def poll(self, timeout: float | None = None) -> list[str]:
        """Receive one batch and handle it; the ids of the runs started (duplicates excluded)."""
        deliveries = await self.connector.receive(
            self.source, max_messages=self.source["batch"], timeout=self.poll_timeout if timeout is None else timeout
        )
        started = []
        for d in deliveries:
            rid = await self.handle(d)
            if rid is not None:
                started.append(rid)
        return started

    async def handle(self, delivery: Delivery) -> str | None:
        """Start the message's run (once), then acknowledge it. The new run's id, or None."""
        m = delivery.message
        rid = run_id_for(self.name, self.workflow, m.key)
        store = self.client.store
        if await store.get_run(rid) is not None:
            self.duplicates += 1
            await delivery.ack()
            return None
        if isinstance(m.payload, Unreadable):  # kept, acknowledged: it must not hold up the messages after it
            error = ConnectorError(f"{self.name}: message {m.key!r} from {m.source!r}: {m.payload.strip('[]')}")
            await self._dead_letter(rid, m.key, m.source, None, error, unreadable=True)
            await delivery.ack()
            return None
        contracts = self.connector.contracts
        if problem := await contracts.refresh(store, self.name, EVENT, sealed=self.client.governance.audit_enabled):
            log.warning("%s", problem)
            await self.client.governance.record(
                "access.denied", f"contract:{self.name}.{EVENT}", actor="engine",
                reason="record not backed by the audit log", problem=problem,
            )
        try:
            payload = contracts.check(self.connector, EVENT, m.payload, name=self.name)
        except ConnectorDrift as exc:  # set aside before it starts anything; replayed once mapped
            await self._quarantine(rid, m, exc)
            await delivery.ack()
            return None
        try:
            await self.client.start(self.workflow, {**m.envelope(), "payload": payload} if self.envelope else payload, run_id=rid)
        except AuthError:
            await delivery.retry()
            raise
        except StoreError:
            await delivery.retry()  # the store did not answer: the broker delivers it again
            raise
        except PodiumError as exc:  # it can never start as it is: keep it, and let the broker forget it
            await self._dead_letter(rid, m.key, m.source, m.payload, exc)
            await delivery.ack()
            return None
        except Exception:
            await delivery.retry()
            raise
        self.started += 1
        await delivery.ack()
        return rid

    async def _quarantine(self, rid: str, m: Message, exc: ConnectorDrift) -> None:
        """Keep a drifted message in the quarantine (``podium quarantine``); a replay that passes the
        contract starts its run, with the same run id."""
        from ._quarantine import QuarantineBook, QuarantineItem, quarantine_id

        now = time.time()
        item = QuarantineItem(
            id=quarantine_id(f"event/{rid}"), connector=self.name, operation=EVENT, run_id=rid, step_id=None,
            workflow=self.workflow, policy="park", status="parked", payload=await self._stored(m.payload), diff=exc.diff,
            created_at=now, updated_at=now,
        )  # fmt: skip
        if await QuarantineBook(self.client.store).put(item):
            self.connector.stats.quarantined += 1
            self.quarantined += 1
        kinds = sorted({d.get("kind", "") for d in exc.diff})
        await self.client.governance.record(
            "connector.drift", rid, connector=self.name, operation=EVENT, quarantine=item.id, policy="park", kinds=kinds,
            paths=[d.get("path") for d in exc.diff],
        )  # fmt: skip
        log.warning("%s message %s drifted from its event contract; quarantined as %s", self.name, m.key, item.id)

    async def _stored(self, payload: Any) -> Any:
        """``payload`` as the workflow's run input would be stored: redacted when its policy (as it is
        now in the store) redacts payloads (a drifted or dead-lettered event is business data all the same)."""
        gov = self.client.governance
        await gov.refresh()
        return json.loads(gov.stored_payload(self.workflow, json.dumps(payload, default=str, ensure_ascii=False)))

    async def _dead_letter(
        self, rid: str, key: str, source: str, payload: Any, exc: Exception, *, unreadable: bool = False
    ) -> None:
        """Keep the message as a dead letter; ``unreadable``: one that could not be read, kept without
        its payload, which a replay refuses (it would start the workflow with no input)."""
        letter = {
            "id": rid,
            "source": f"{self.connector.kind}:{self.name}",
            "event": source,
            "key": key,
            "workflow": self.workflow,
            "payload": await self._stored(payload),
            "error": redact_known(str(exc)),
            "error_type": type(exc).__name__,
            "ts": time.time(),
            **({"unreadable": True} if unreadable else {}),
        }
        await self.client.store.kv_put(DEADLETTERS, rid, seal(self.client.store, letter))
        self.dead_lettered += 1
        log.warning("%s message %s could not start %s: %s (dead-lettered)", self.name, key, self.workflow, exc)

    async def run(self, stop: asyncio.Event | None = None, *, max_backoff: float = 30.0) -> None:
        """Poll until ``stop`` is set. A broker or store that does not answer is retried with
        backoff (the messages stay with the broker); a bad source raises at once."""
        delay = 0.5
        while stop is None or not stop.is_set():
            try:
                await self.poll()
                delay = 0.5
            except (ConnectorError, StoreError, OSError) as exc:
                if isinstance(exc, ConnectorError) and not exc.retryable:
                    raise
                log.warning("consumer %s of %s: %s; trying again in %.1fs", self.name, self.workflow, exc, delay)
                await self.connector.stop_receiving()
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, max_backoff)
        await self.connector.stop_receiving()
