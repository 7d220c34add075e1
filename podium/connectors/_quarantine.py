"""The quarantine: connector results that drifted from their contract, set aside before anything
used them, durable in the project's store (table ``podium_quarantine`` beside the run tables: the
same SQLite file or PostgreSQL database).

An item keeps the connector, operation, run, step, the raw payload (redacted when the workflow's
policy redacts payloads: it is business data), the diff and its times. Its status says what its run
did: ``parked`` (the run waits for it: ``quarantine:ID``), ``failed`` (the step got
:class:`~podium.ConnectorDrift`), ``skipped`` (the call returned None), ``resolved`` (replayed
through a fixed mapping). ``client.quarantine`` and ``podium quarantine`` list, show and replay them.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from .._sqldb import Database, database_for
from ..errors import ConnectorDrift

log = logging.getLogger("podium.connectors")

MARK = "$podium_quarantined"
"""The key of what a drifted call logs as its result (the marker, never the payload)."""
SIGNAL_PREFIX = "quarantine:"
STATUS_OF = {"park": "parked", "fail": "failed", "skip": "skipped"}
OPEN = ("parked", "failed", "skipped")

MIGRATIONS = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS podium_quarantine (
            id {id} PRIMARY KEY,
            connector TEXT NOT NULL,
            operation TEXT NOT NULL,
            run_id TEXT,
            step_id TEXT,
            workflow TEXT,
            policy TEXT NOT NULL,
            status TEXT NOT NULL,
            payload {json},
            diff {json} NOT NULL,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            replays INTEGER NOT NULL DEFAULT 0,
            resolution TEXT
        );
        CREATE INDEX IF NOT EXISTS podium_quarantine_status ON podium_quarantine (status, created_at)
        """,
    ),
    (2, "ALTER TABLE podium_quarantine ADD COLUMN seal TEXT"),  # see seal_of
]
_COLUMNS = "id, connector, operation, run_id, step_id, workflow, policy, status, payload, diff, created_at, updated_at, replays, resolution, seal"
_MIGRATED: weakref.WeakSet[Database] = weakref.WeakSet()


@dataclass(frozen=True, kw_only=True, slots=True)
class QuarantineItem:
    """One drifted result in the quarantine."""

    id: str
    """``q-`` and 20 hex digits, derived from the call's idempotency key (a repeated call finds it)."""
    connector: str
    """The name the run reached the connector by (``ctx.connector(NAME)``)."""
    operation: str
    run_id: str | None
    step_id: str | None
    workflow: str | None
    policy: str
    """``park``, ``fail`` or ``skip``, as it was when the result drifted."""
    status: str
    """``parked``, ``failed``, ``skipped`` or ``resolved``."""
    payload: Any
    """The raw result (redacted per the workflow's policy). Shown only to ``payloads.read``."""
    diff: list[dict[str, Any]]
    """The latest diff (a replay that still fails updates it)."""
    created_at: float
    updated_at: float
    replays: int = 0
    resolution: str | None = None
    """How it was resolved (``resumed run ...``, ``marked resolved``)."""
    problem: str | None = None
    """Why it may not be replayed: its row does not hold the seal the engine gave it (written or
    edited in the store behind the engine's back, or kept by a release before items were sealed).
    None: it holds."""

    @property
    def signal(self) -> str:
        """The signal a parked run waits for."""
        return SIGNAL_PREFIX + self.id

    def to_json(self, *, payload: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not payload:
            data.pop("payload")
        return data


def _sealed_text(item: QuarantineItem) -> str:
    fields = [item.id, item.connector, item.operation, item.run_id, item.step_id, item.workflow, item.policy,
              item.status, item.payload, repr(float(item.created_at)), item.resolution]  # fmt: skip
    return "quarantine\x1f" + json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def seal_of(store: Any, item: QuarantineItem) -> str:
    """The seal of ``item`` under the store's audit key: over what a replay acts on (its connector,
    operation, run, workflow, payload, policy) and its status and resolution (a resolved item put
    back to parked, or a parked one marked resolved to hide it, does not hold it)."""
    return str(store.audit_keys.seal(_sealed_text(item)))


def not_sealed(item_id: str) -> str:
    return (
        f"quarantined item {item_id} is not sealed with this store's audit key: it was written or edited in the "
        "store behind the engine's back (its payload, run or workflow may be anyone's), or kept by a release before "
        "quarantined items were sealed, so it is not replayed; look at it (podium quarantine show "
        f"{item_id}) and, once you trust the store, seal the items kept before the upgrade: podium quarantine seal"
    )


def quarantine_id(key: str) -> str:
    """The id of the item a call with idempotency key ``key`` sets aside."""
    return "q-" + hashlib.sha256(key.encode()).hexdigest()[:20]


class QuarantineBook:
    """The quarantine table of one store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.db = database_for(store)

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[Database]:
        await self.db.open()
        try:
            if self.db not in _MIGRATED:
                await self.db.migrate("quarantine", MIGRATIONS)
                _MIGRATED.add(self.db)
            yield self.db
        finally:
            await self.db.close()

    async def put(self, item: QuarantineItem) -> bool:
        """Add ``item``, sealed; False when an item of that id is there already (a repeated call)."""
        row = (*_row(item), seal_of(self.store, item))
        async with self._open() as db:
            n = await db.execute(
                f"INSERT INTO podium_quarantine ({_COLUMNS}) VALUES ({', '.join('?' * len(row))}) ON CONFLICT (id) DO NOTHING",
                row,
            )
        return n > 0

    async def get(self, item_id: str) -> QuarantineItem | None:
        async with self._open() as db:
            found = await db.fetchone(f"SELECT {_COLUMNS} FROM podium_quarantine WHERE id = ?", (item_id,))
        return self._checked(found) if found else None

    def _checked(self, row: tuple[Any, ...]) -> QuarantineItem:
        item = _item(row[:-1])
        holds = isinstance(row[-1], str) and self.store.audit_keys.verify_seal(_sealed_text(item), row[-1]) is True
        return item if holds else replace(item, problem=not_sealed(item.id))

    async def list(
        self, *, status: str | tuple[str, ...] | None = None, connector: str | None = None, limit: int = 100
    ) -> builtins.list[QuarantineItem]:
        """Items, oldest first (``status`` one or several; None: every status)."""
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if connector is not None:
            where.append("connector = ?")
            params.append(connector)
        sql = f"SELECT {_COLUMNS} FROM podium_quarantine"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self._open() as db:
            rows = await db.fetchall(sql + " ORDER BY created_at, id LIMIT ?", (*params, int(limit)))
        return [self._checked(r) for r in rows]

    async def depth(self, connector: str | None = None) -> int:
        """Items not resolved yet."""
        sql = "SELECT count(*) FROM podium_quarantine WHERE status IN ('parked', 'failed', 'skipped')"
        async with self._open() as db:
            row = await db.fetchone(sql + (" AND connector = ?" if connector else ""), (connector,) if connector else ())
        return int(row[0]) if row else 0

    async def update(
        self, item: QuarantineItem, *, status: str, diff: builtins.list[dict[str, Any]] | None = None, resolution: str | None = None
    ) -> None:
        """Record a replay of ``item`` (as read, its seal holding): its new status, the diff it still
        has, how it was resolved; sealed again."""
        now = replace(item, status=status, resolution=resolution if resolution is not None else item.resolution)
        sets = ["status = ?", "updated_at = ?", "replays = replays + 1", "resolution = ?", "seal = ?"]
        params: builtins.list[Any] = [status, time.time(), now.resolution, seal_of(self.store, now)]
        if diff is not None:
            sets.append("diff = ?")
            params.append(json.dumps(diff))
        async with self._open() as db:
            await db.execute(f"UPDATE podium_quarantine SET {', '.join(sets)} WHERE id = ?", (*params, item.id))

    async def seal_all(self) -> int:
        """Seal every item whose seal does not hold, as stored now (after an upgrade, in a store that is
        trusted: ``podium quarantine seal``); how many."""
        n = 0
        for item in await self.list(limit=1_000_000):
            if item.problem is not None:
                async with self._open() as db:
                    await db.execute("UPDATE podium_quarantine SET seal = ? WHERE id = ?", (seal_of(self.store, replace(item, problem=None)), item.id))
                n += 1
        return n


def _row(item: QuarantineItem) -> tuple[Any, ...]:
    return (
        item.id, item.connector, item.operation, item.run_id, item.step_id, item.workflow, item.policy,
        item.status, json.dumps(item.payload, default=str), json.dumps(item.diff), item.created_at,
        item.updated_at, item.replays, item.resolution,
    )  # fmt: skip


def _item(row: tuple[Any, ...]) -> QuarantineItem:
    (qid, connector, operation, run_id, step_id, workflow, policy, status, payload, diff, created, updated, replays, resolution) = row
    return QuarantineItem(
        id=qid, connector=connector, operation=operation, run_id=run_id, step_id=step_id, workflow=workflow,
        policy=policy, status=status, payload=json.loads(payload) if payload else None, diff=json.loads(diff),
        created_at=float(created), updated_at=float(updated), replays=int(replays), resolution=resolution,
    )  # fmt: skip


# -- inside a run (called by BoundConnector) ------------------------------------------------------


async def set_aside(bound: Any, operation: str, key: str, exc: ConnectorDrift) -> dict[str, Any]:
    """Put a drifted live result in the quarantine, audit ``connector.drift`` (kinds and paths, never
    values) and return the marker the durable call logs instead of the payload."""
    scope, connector = bound.scope, bound.connector
    policy = connector.contracts.policy(operation)
    qid = quarantine_id(key)
    text = json.dumps(exc.payload, default=str, ensure_ascii=False)
    gov = getattr(scope, "governance", None)
    service = getattr(gov, "service", None)
    if gov is not None and service is not None and hasattr(service, "stored_payload"):  # redacted if the workflow's policy says so
        text = service.stored_payload(gov.workflow, text, deployed=getattr(gov, "deploy", None) is None)
    now = time.time()
    item = QuarantineItem(
        id=qid, connector=bound.name, operation=operation, run_id=getattr(scope, "run_id", None),
        step_id=getattr(scope, "step_id", None), workflow=getattr(scope, "workflow", None), policy=policy,
        status=STATUS_OF[policy], payload=json.loads(text), diff=exc.diff, created_at=now, updated_at=now,
    )  # fmt: skip
    if await QuarantineBook(scope.store).put(item):
        connector.stats.quarantined += 1
    log.warning(
        "connector %s: %s drifted from its contract; quarantined as %s (policy %s): %s",
        bound.name, operation, qid, policy, "; ".join(d["message"] for d in exc.diff),
    )  # fmt: skip
    if gov is not None:
        await gov.audit(
            "connector.drift",
            workflow=gov.workflow,
            step=scope.step_id,
            connector=bound.name,
            operation=operation,
            quarantine_id=qid,
            policy=policy,
            drift=[{"kind": d["kind"], "path": d["path"], **({"to": d["to"]} if "to" in d else {})} for d in exc.diff],
        )
    return {MARK: {"id": qid, "policy": policy, "diff": exc.diff}}


async def settle(bound: Any, operation: str, marker: dict[str, Any]) -> Any:
    """What the step sees of a quarantined result: ``park`` waits for the replayed value, ``skip``
    returns None, ``fail`` raises :class:`~podium.ConnectorDrift`."""
    info = marker[MARK]
    qid, policy = info["id"], info["policy"]
    if policy == "park":
        return await bound.scope.wait_for(SIGNAL_PREFIX + qid)
    if policy == "skip":
        return None
    lines = "\n".join(f"  {d['kind']:<13} {d['message']}" for d in info["diff"])
    raise ConnectorDrift(
        f"connector {bound.name!r}: the result of {operation} in step {bound.scope.step_id!r} does not match its "
        f"contract and was quarantined as {qid}:\n{lines}\nAdd a field mapping, then: podium quarantine replay {qid}",
        diff=info["diff"],
        quarantine_id=qid,
        connector=bound.name,
        operation=operation,
    )


def is_marker(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and MARK in value
