"""The server's broker triggers: one :class:`podium.connectors.Consumer` per ``nats:``, ``redis:``,
``amqp:`` or ``mqtt:`` trigger of the deployed workflows.

Before every batch the connector's name is looked up again in the capability registry (a removed
or re-kinded connector stops consuming at once, and its messages stay with the broker). A
connector the client holds under that name (``Client(connectors=...)``) is used as it is; otherwise
one is opened from the registered settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..connectors import BrokerConnector, Consumer
from ..connectors._sources import BROKER_KINDS
from ..errors import AuthError
from ..governance import capabilities as caps
from ..governance.deployers import Deployers

log = logging.getLogger("podium.triggers")


@dataclass(frozen=True)
class BrokerTrigger:
    kind: str
    workflow: str
    settings_json: str
    """The trigger's settings as canonical JSON (hashable: a changed setting is a new trigger)."""

    @property
    def settings(self) -> dict[str, Any]:
        return dict(json.loads(self.settings_json))

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.settings.get('connector')}:{self.workflow}"


def broker_triggers(workflow: str, triggers: list[Any]) -> list[BrokerTrigger]:
    """The broker triggers among a workflow's declared ``triggers``."""
    out = []
    for t in triggers:
        if isinstance(t, dict):
            out += [
                BrokerTrigger(k, workflow, json.dumps(t[k], sort_keys=True, default=str))
                for k in BROKER_KINDS
                if isinstance(t.get(k), dict)
            ]
    return out


class BrokerConsumers:
    """Runs the consumers of a list of broker triggers, each in its own task, until stopped."""

    def __init__(
        self,
        client: Any,
        failed: Callable[[str, str, str], Awaitable[None]],
        deployers: Deployers | None = None,
        *,
        retry_after: float = 5.0,
    ) -> None:
        self.client = client
        self.failed = failed
        self.deployers = deployers or Deployers(client.governance)
        self.retry_after = retry_after
        self.consumers: dict[str, Consumer] = {}
        self._stop = asyncio.Event()
        self._tasks: dict[BrokerTrigger, asyncio.Task[None]] = {}
        self.running = False

    def start(self, triggers: list[BrokerTrigger]) -> None:
        """Consume for ``triggers`` (and from now on follow :meth:`sync`)."""
        self.running = True
        self.sync(triggers)

    def sync(self, triggers: list[BrokerTrigger]) -> None:
        """Consume for exactly ``triggers`` (after a deploy): start the new ones, stop the gone ones."""
        if not self.running:
            return
        loop = asyncio.get_running_loop()
        for t in [t for t in self._tasks if t not in triggers]:
            self._tasks.pop(t).cancel()
            self.consumers.pop(t.key, None)
        for t in triggers:
            if t not in self._tasks:
                self._tasks[t] = loop.create_task(self._consume(t))

    async def stop(self) -> None:
        self._stop.set()
        self.running = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for c in self.consumers.values():
            with contextlib.suppress(Exception):
                await c.connector.stop_receiving()

    async def _connector(self, t: BrokerTrigger) -> BrokerConnector:
        """The trigger's connector, if it is (still) registered as that kind: else CapabilityDenied."""
        from ..errors import CapabilityDenied
        from ..yaml.connector_steps import _opener

        name = str(t.settings.get("connector"))
        cap = await caps.require(self.client.store, name, ("connector",), where=f"{t.kind} trigger of {t.workflow!r}")
        if cap.target.get("kind") != t.kind:
            raise CapabilityDenied(f"{name!r} is registered as a {cap.target.get('kind')} connector, not {t.kind}")
        conn = self.client.connectors.get(name) or _opener(cap.target, cap.allow_private)()
        if not isinstance(conn, BrokerConnector):
            raise CapabilityDenied(f"connector {name!r} is not a message broker")
        return conn

    async def _consume(self, t: BrokerTrigger) -> None:
        source = {k: v for k, v in t.settings.items() if k != "connector"}
        while not self._stop.is_set():
            try:
                conn = await self._connector(t)
                consumer = self.consumers.get(t.key)
                if consumer is None or consumer.connector is not conn:
                    consumer = Consumer(self.client, conn, workflow=t.workflow, source=source, name=str(t.settings["connector"]))
                    self.consumers[t.key] = consumer
                # as the workflow's deployer, like a schedule (governance/deployers.py); a refusal
                # leaves the messages in the broker and is reported below
                if refused := await self.client.governance.own_refusal():  # a revoked server takes nothing
                    raise AuthError(f"the messages stay in the broker: {refused}")
                who = await self.deployers(t.workflow, await self.client.deployments.active(t.workflow))
                with self.client.acting_as(who) if who is not None else contextlib.nullcontext():
                    await consumer.poll(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self.failed(f"broker:{t.key}", t.workflow, f"{t.kind} trigger: {exc}")
                consumer = self.consumers.pop(t.key, None)
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await consumer.connector.stop_receiving()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.retry_after)
