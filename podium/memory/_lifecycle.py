"""Erasure (``forget``), retention (``prune``) and run pruning.

The memory layer owns its tables (``mem_*``); run data it reaches only through the run store's
public interface (:class:`~podium.storage.Store`), whatever the backend.

``forget(entity)`` deletes the entity's memory items and vectors, its graph node and every edge
touching it, and replaces its identifying text with ``[redacted]`` wherever else it appears: other
entities' memory items (re-embedded), graph properties, run state, knowledge-base chunks
(re-embedded), and the run store's payloads (``runs.input/output/error``, ``events.data``,
``signals.payload``, through :meth:`Store.redact_payloads`). Identifying text is the entity id, the
values passed in, and the entity's ``name``, ``email`` and ``phone`` properties. What it cannot reach is listed in ``docs/memory.md``.
The erasure is recorded in ``mem_erasures`` with the id's SHA-256 digest, never the id itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._sqldb import Database, has_table, redact_json, replace_text
from ..governance.policy import SPEND
from ._records import Erasure

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..records import Event, RunRecord
    from ..storage import Store
    from ..storage._base import PruneRecord, RedactRecord
    from ..vectors import VectorIndex
    from ._records import Entity, Retention


class Memory(Protocol):
    """What the life-cycle rules (erasure, retention, pruning) ask of the memory they run on."""

    db: Database
    run_store: Store | None
    retention: dict[str, Retention]
    actor: str
    """Who the changes are recorded as (the caller of ``podium memory forget``, ``podium memory prune``)."""

    @property
    def vectors(self) -> VectorIndex: ...

    async def get_entity(self, id: str) -> Entity | None: ...

    async def delete(self, item_ids: Sequence[str]) -> int: ...

    async def reindex(self, item_ids: Sequence[str]) -> int: ...

REDACTED = "[redacted]"

#: Erasure (``podium memory forget``) reaches the tables of the layers built on memory through these: table
#: -> ``"module:function(db, vectors, forms, replacement) -> rows changed"``. Named, not imported, so
#: memory does not depend on the layers above it; a layer that adds tables adds its entry.
ERASERS: dict[str, str] = {"kb_chunks": "podium.knowledge._redact:redact_chunks"}
IDENTIFYING = ("name", "email", "phone")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _forms(values: Sequence[str]) -> list[str]:
    """Each value as it is and JSON-escaped once and twice (as it appears in plain text that quotes
    JSON, and in JSON text held in a JSON string), longest first so that a value containing another
    is replaced whole. JSON columns are decoded before
    replacing (:func:`podium._redact.redact_stored`): there the plain form matches."""
    out = set()
    for v in values:
        if v and len(v) >= 3:
            out.add(v)
            out.add(once := json.dumps(v)[1:-1])
            out.add(json.dumps(once)[1:-1])  # JSON text inside JSON text (a model API's tool arguments)
    return sorted(out, key=lambda s: (-len(s), s))


async def _redact_json(db: Database, table: str, column: str, key: str, forms: Sequence[str]) -> int:
    """Redact ``forms`` inside one JSON column of the memory layer's own tables; returns the rows
    changed (a row holding two forms counts twice, as in :meth:`Store.redact_payloads`)."""
    return sum((await redact_json(db, table, column, key, forms, REDACTED)).values())


async def forget(mem: Memory, entity: str, values: Sequence[str], reason: str) -> Erasure:
    db = mem.db
    counts: dict[str, int] = {}
    if db.dialect == "sqlite":  # what is deleted or rewritten is overwritten, not left in free space
        await db.execute("PRAGMA secure_delete=ON")
    node = await mem.get_entity(entity)
    known = [entity, *values]
    if node is not None:
        known += [str(node.properties[k]) for k in IDENTIFYING if isinstance(node.properties.get(k), str)]
    forms = _forms(known)

    # First what lives in other tables and stores (the run store may be another database): if it
    # fails, nothing is deleted yet, and forget can be run again with the entity's properties. The
    # runs first: their store may refuse (runs waiting in a stopped engine's start log), and a
    # refused erasure then changed nothing.
    counts.update(await redact_runs(mem, forms))
    for table, ref in ERASERS.items():  # layers built on memory that keep their own tables
        if await has_table(db, table):
            module, _, attr = ref.partition(":")
            redact_rows = getattr(importlib.import_module(module), attr)
            counts[f"{table}_redacted"] = await redact_rows(db, mem.vectors, forms, REDACTED)

    ids = [r[0] for r in await db.fetchall("SELECT id FROM mem_items WHERE entity=?", (entity,))]
    counts["memory_items"] = await mem.delete(ids)
    counts["relations"] = await db.execute("DELETE FROM mem_relations WHERE src=? OR dst=?", (entity, entity))
    counts["entities"] = await db.execute("DELETE FROM mem_entities WHERE id=?", (entity,))

    # Other entities' items that mention it: redact the text (plain text) and the data and metadata
    # (JSON), then embed the item again.
    touched: set[str] = set()
    for f in forms:
        touched.update(await replace_text(db, "mem_items", "text", f, REDACTED, key="id"))
    for col in ("data", "metadata"):
        touched.update(await redact_json(db, "mem_items", col, "id", forms, REDACTED))
    await mem.reindex(sorted(touched))
    counts["memory_items_redacted"] = len(touched)
    counts["entities_redacted"] = await _redact_json(db, "mem_entities", "properties", "id", forms)
    counts["relations_redacted"] = await _redact_json(db, "mem_relations", "properties", "src, relation, dst", forms)
    counts["run_state_redacted"] = await _redact_json(db, "mem_run_state", "value", "run_id, key", forms)

    await _leave_no_copy(db)
    at = time.time()
    async with db.transaction() as tx:
        row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) + 1 FROM mem_erasures")
        erasure_id = int(row[0]) if row else 1
        await tx.execute(
            "INSERT INTO mem_erasures (id, entity_sha256, at, counts, reason) VALUES (?, ?, ?, ?, ?)",
            (erasure_id, sha256(entity), at, json.dumps(counts, sort_keys=True), reason),
        )
    return Erasure(id=erasure_id, entity_sha256=sha256(entity), at=at, counts=counts, reason=reason)


async def _leave_no_copy(db: Database) -> None:
    """SQLite keeps old text where ``forget`` cannot see it: deleted entries of a full-text index
    stay in its segments until they are merged, and the WAL file holds the pages as they were
    until a checkpoint. Merge the index (its freed pages are overwritten: ``secure_delete``) and
    checkpoint the WAL, truncating it (best effort: a reader holding an old snapshot keeps its
    frames until the next checkpoint)."""
    if db.dialect != "sqlite":
        return
    if await has_table(db, "kb_fts"):
        await db.execute("INSERT INTO kb_fts(kb_fts) VALUES ('optimize')")
    await db.fetchall("PRAGMA wal_checkpoint(TRUNCATE)")


async def redact_runs(mem: Memory, forms: Sequence[str]) -> dict[str, int]:
    """Replace ``forms`` in the run store's stored payloads, through its public interface."""
    async with _run_store(mem) as store:
        if store is None:
            return {}
        done = await store.redact_payloads(forms, REDACTED, record=_redaction_record(mem.actor))
        # per-entity spend counters written before they were keyed by a digest named the entity
        legacy = _naming(list(await store.kv_list(SPEND)), forms)  # the whole value, not a part
        for key in legacy:
            await store.kv_put(SPEND, key, None)
    return {
        "runs_changed": len(done.run_ids), "runs_redacted": done.runs, "events_redacted": done.events,
        "signals_redacted": done.signals, "spend_counters_deleted": len(legacy),
    }  # fmt: skip


def _naming(keys: list[str], forms: Sequence[str]) -> list[str]:
    """The legacy spend counters (``entity:WORKFLOW:ENTITY:DAY:KIND``) whose entity is one of
    ``forms``, whole: a form that is part of a workflow's name, a day, a kind or another entity
    deletes nobody else's counters. A workflow's name may hold a ``:``; the names come from the
    day counters (``day:WORKFLOW:DAY:KIND``) written beside them, else any ``:`` may end it."""
    workflows = {k.removeprefix("day:").rsplit(":", 2)[0] for k in keys if k.startswith("day:") and k.count(":") >= 3}
    wanted, out = set(forms), []
    for key in keys:
        if not key.startswith("entity:") or key.count(":") < 4:
            continue
        both = key.removeprefix("entity:").rsplit(":", 2)[0]  # WORKFLOW:ENTITY
        splits = [(both[:i], both[i + 1 :]) for i, ch in enumerate(both) if ch == ":" and i > 0]
        entities = [e for w, e in splits if w in workflows] or [e for _, e in splits]
        if wanted.intersection(entities):
            out.append(key)
    return out


@contextlib.asynccontextmanager
async def _run_store(mem: Memory) -> AsyncIterator[Store | None]:
    """The run store beside the memory tables: the one the memory was opened with, else one opened
    on the same URL for the duration (and closed after). None when that database holds no runs: a
    store opened here never creates the run tables."""
    if mem.run_store is not None:
        yield mem.run_store
        return
    from ..storage import open_store

    store = open_store(mem.db.url)
    store.auto_migrate = False
    await store.open()
    try:
        yield store if await store.schema_version() > 0 else None
    finally:
        await store.close()


def _redaction_record(actor: str) -> RedactRecord:
    """The entry that anchors a redacted run's new history digest and records the change
    (``run.redact``, signed with the store's audit key like every entry), so the log says the
    history was changed on purpose. Written in the redaction's own transaction."""
    from ..governance.audit import AuditEntry, payload_hash, record_hash, run_digest

    def record(run_id: str, run: RunRecord | None, events: list[Event]) -> AuditEntry:
        data: dict[str, Any] = {"digest": run_digest(events), "events": events[-1].seq if events else 0, "reason": "podium forget"}
        if run is not None and run.status.finished:
            data["record"] = record_hash(run)
        elif run is not None:  # it goes on (its status and output will change): its input alone
            data["input"] = payload_hash(run.input)
        return AuditEntry(ts=time.time(), actor=actor, action="run.redact", target=run_id, data=json.dumps(data))

    return record


async def prune(mem: Memory, now: float) -> dict[str, int]:
    db = mem.db
    doomed: dict[str, set[str]] = {}
    for r in await db.fetchall(
        "SELECT id, kind FROM mem_items WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
    ):
        doomed.setdefault(r[1], set()).add(r[0])
    for kind, policy in mem.retention.items():
        if policy.max_age is not None:
            rows = await db.fetchall(
                "SELECT id FROM mem_items WHERE kind=? AND created_at < ?", (kind, now - policy.max_age)
            )
            doomed.setdefault(kind, set()).update(r[0] for r in rows)
        if policy.max_items is not None:
            rows = await db.fetchall(
                "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY entity ORDER BY created_at DESC, id DESC) "
                "AS n FROM mem_items WHERE kind=?) ranked WHERE n > ?",
                (kind, policy.max_items),
            )
            doomed.setdefault(kind, set()).update(r[0] for r in rows)
    counts = {}
    for kind, ids in sorted(doomed.items()):
        if ids:
            counts[kind] = await mem.delete(sorted(ids))
    return counts


async def prune_runs(mem: Memory, cutoff: float) -> int:
    async with _run_store(mem) as store:
        if store is None:
            return 0
        doomed = await store.finished_run_ids(before=cutoff)
        # Their run state first (it may hold personal data): a failure after it leaves finished
        # runs without state, which pruning again deletes; the other order left state nothing finds.
        for i in range(0, len(doomed), 500):
            part = doomed[i : i + 500]
            await mem.db.execute(f"DELETE FROM mem_run_state WHERE run_id IN ({','.join('?' * len(part))})", part)
        ids = await store.delete_runs(doomed, record=_prune_record(cutoff, mem.actor))
    return len(ids)


def _prune_record(cutoff: float, actor: str) -> PruneRecord:
    """Deleting history on purpose is recorded (``run.prune``, by the actor), in the deletion's own
    transaction, so that audit verify expects it, whether the memory was opened with the store or
    by URL."""
    from ..records import AuditEntry

    data = json.dumps({"cutoff": cutoff})
    return lambda rid: AuditEntry(ts=time.time(), actor=actor, action="run.prune", target=rid, data=data)


async def erasures(db: Database) -> list[Erasure]:
    rows = await db.fetchall("SELECT id, entity_sha256, at, counts, reason FROM mem_erasures ORDER BY id")
    return [
        Erasure(id=int(r[0]), entity_sha256=r[1], at=r[2], counts=json.loads(r[3]), reason=r[4] or "")
        for r in rows
    ]
