"""``client.quarantine``: connector results that drifted from their contract (see
:mod:`podium.connectors._quarantine`), listed, shown, replayed through a fixed mapping, and
contracts learned from recorded results.

A replay maps the item's raw payload with the connector's current mappings and checks it against its
current contract. An item that now matches is resolved: if its run is parked on it, the run is
resumed with the mapped value; an item that still drifts stays in the quarantine with its new diff.
Nothing is lost either way."""

from __future__ import annotations

import builtins
import dataclasses
import os
import re
import time
from typing import Any

from .. import _serde
from ..connectors import _learned as learned
from ..connectors._contracts import EVENT, KV_NAMESPACE, learn_schema
from ..connectors._quarantine import OPEN, QuarantineBook, QuarantineItem, is_marker
from ..errors import ConfigError, ConnectorDrift, NotFound
from ..records import EventType


class QuarantineDesk:
    """The quarantine of a client's store (``client.quarantine``)."""

    def __init__(self, client: Any) -> None:  # a Client (not imported: it composes this)
        self.client = client

    @property
    def book(self) -> QuarantineBook:
        return QuarantineBook(self.client.store)

    async def list(
        self, *, status: str | None = "open", connector: str | None = None, limit: int = 100
    ) -> builtins.list[QuarantineItem]:
        """Items, oldest first, without their payloads (needs ``runs.read``). ``status``: ``open``
        (parked, failed or skipped), one status, or None for every item."""
        await self.client.authorize("runs.read", "quarantine")
        statuses = OPEN if status == "open" else status
        items = await self.book.list(status=statuses, connector=connector, limit=limit)
        return [dataclasses.replace(i, payload=None) for i in items]

    async def get(self, item_id: str) -> QuarantineItem:
        """One item with its raw payload (needs ``runs.read`` and ``payloads.read``: it is business data)."""
        await self.client.authorize("runs.read", f"quarantine:{item_id}")
        await self.client.authorize("payloads.read", f"quarantine:{item_id}")
        item = await self.book.get(item_id)
        if item is None:
            raise NotFound(f"no quarantined item {item_id!r}; list them with 'podium quarantine list'")
        return item

    async def depth(self, connector: str | None = None) -> int:
        """Items not resolved yet (needs ``runs.read``, as listing them does)."""
        await self.client.authorize("runs.read", "quarantine")
        return await self.book.depth(connector)

    async def replay(self, item_id: str | None = None, *, all: bool = False) -> builtins.list[dict[str, Any]]:
        """Re-drive item ``item_id`` (or every open item with ``all=True``) through the connector's
        current mapping and contract (needs ``runs.signal``). Returns one result per item:
        ``{"id", "resolved", "status", "resolution" | "diff", "run_id"}``."""
        if (item_id is None) == (not all):
            raise ConfigError("replay one item (its id) or all open items (all=True), not both or neither")
        await self.client.authorize("runs.signal", f"quarantine:{item_id or '*'}")
        book = self.book
        if item_id is not None:
            found = await book.get(item_id)
            if found is None:
                raise NotFound(f"no quarantined item {item_id!r}; list them with 'podium quarantine list'")
            items = [found]
        else:
            items = await book.list(status=OPEN, limit=10_000)
        return [await self._replay(book, item) for item in items]

    async def _replay(self, book: QuarantineBook, item: QuarantineItem) -> dict[str, Any]:
        out: dict[str, Any] = {"id": item.id, "run_id": item.run_id, "connector": item.connector, "operation": item.operation}
        if item.problem is not None:  # written or edited in the store: its payload is not delivered
            await self.client.governance.record(
                "access.denied", f"quarantine:{item.id}", reason="record not backed by the audit log", problem=item.problem
            )
            return {**out, "resolved": False, "status": item.status, "problem": item.problem}
        if item.status == "resolved":
            return {**out, "resolved": True, "status": "resolved", "resolution": item.resolution}
        connector = await self._connector(item.connector)
        contracts = connector.contracts
        contracts._learned_at.pop(item.operation, None)  # read the latest learned contract
        await contracts.refresh(self.client.store, item.connector, item.operation)
        try:
            mapped = contracts.check(connector, item.operation, item.payload, name=item.connector)
        except ConnectorDrift as exc:
            await book.update(item, status=item.status, diff=exc.diff)
            await self.client.governance.record("quarantine.replay", item.run_id or "", id=item.id, resolved=False)
            return {**out, "resolved": False, "status": item.status, "diff": exc.diff}
        resolution = f"marked resolved (policy {item.policy}: the run did not wait for it)"
        if item.operation == EVENT and item.workflow and item.run_id:  # a consumed message: start its run now
            if await self.client.store.get_run(item.run_id) is None:
                await self.client.start(item.workflow, mapped, run_id=item.run_id)
                resolution = f"started run {item.run_id}"
            else:
                resolution = f"marked resolved (run {item.run_id} exists)"
        elif item.status == "parked" and item.run_id:
            run = await self.client.store.get_run(item.run_id)
            if run is None or run.status.finished:
                resolution = f"marked resolved (run {item.run_id} is {run.status.value if run else 'gone'})"
            else:
                await self.client._deliver_signal(item.run_id, item.signal, mapped)
                resolution = f"resumed run {item.run_id}"
        await book.update(item, status="resolved", diff=[], resolution=resolution)
        await self.client.governance.record("quarantine.replay", item.run_id or "", id=item.id, resolved=True)
        return {**out, "resolved": True, "status": "resolved", "resolution": resolution}

    async def _connector(self, name: str) -> Any:
        """The connector the client holds as ``name``, else one opened from its registered settings."""
        held = self.client.connectors.get(name)
        if held is not None and hasattr(held, "contracts"):
            return held
        from ..connectors._registry import opened_registered

        opened = opened_registered().get(name)  # the one this process's triggers and steps share
        if opened is not None:
            return opened
        from ..connectors import open_connector
        from ..governance import capabilities as caps

        cap = await caps.require(self.client.store, name, ("connector",), where="podium quarantine")
        settings = {k: v for k, v in cap.target.items() if k != "kind"}
        env = settings.pop("url_env", None)
        if env:
            settings["url"] = os.environ.get(str(env), "")
        if cap.target["kind"] == "openapi":
            settings["allow_private"] = cap.allow_private
        return open_connector(cap.target["kind"], **settings)

    async def learn(
        self, connector: str, operation: str, *, samples: builtins.list[Any] | None = None, runs: int = 200
    ) -> dict[str, Any]:
        """Infer ``operation``'s contract from ``samples``, or from the results of that operation
        recorded in the latest ``runs`` runs, and keep it in the store as the operation's learned
        contract (needs ``tools.manage``, and ``payloads.read`` to read the recorded results).
        Returns ``{"schema", "samples"}``."""
        await self.client.authorize("tools.manage", f"capability:{connector}")
        if samples is None:
            await self.client.authorize("payloads.read", f"capability:{connector}")  # it reads every run's results
            samples = await self._recorded(connector, operation, runs)
        schema = learn_schema(samples)
        # the signed entry first (a row is never newer than its entry), then the row, sealed (_learned)
        await self.client.governance.record(
            "connector.learn", f"capability:{connector}", operation=operation, samples=len(samples), hash=learned.digest(schema)
        )
        await self.client.store.kv_put(KV_NAMESPACE, f"{connector}.{operation}", learned.seal(self.client.store, f"{connector}.{operation}", schema, len(samples)))
        held = self.client.connectors.get(connector)
        if held is not None and hasattr(held, "contracts"):
            held.contracts.learned[operation] = schema
            held.contracts._learned_at[operation] = time.monotonic()
            held.contracts.refused.pop(operation, None)
        return {"schema": schema, "samples": len(samples)}

    async def _recorded(self, connector: str, operation: str, runs: int) -> builtins.list[Any]:
        label = re.compile(rf"/connector:{re.escape(connector)}\.{re.escape(operation)}(-\d+)?$")
        found: builtins.list[Any] = []
        for run in await self.client.store.list_runs(limit=runs):
            for ev in await self.client.store.load_events(run.id):
                if ev.type != EventType.STEP_COMPLETED or not ev.step or not ev.data or not label.search(ev.step):
                    continue
                value = _serde.loads(ev.data).get("output")
                if value is not None and not is_marker(value):
                    found.append(value)
        return found
