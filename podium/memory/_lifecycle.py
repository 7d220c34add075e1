"""Erasure (``forget``), retention (``prune``) and run pruning.

``forget(entity)`` deletes the entity's memory items and vectors, its graph node and every edge
touching it, and replaces its identifying text with ``[redacted]`` wherever else it appears: other
entities' memory items (re-embedded), graph properties, run state, knowledge-base chunks
(re-embedded), and the run store's payloads (``runs.input/output/error``, ``events.data``,
``signals.payload``). Identifying text is the entity id, the values passed in, and the entity's
``name``, ``email`` and ``phone`` properties. What it cannot reach is listed in ``docs/memory.md``.
The erasure is recorded in ``mem_erasures`` with the id's SHA-256 digest, never the id itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._sqldb import Database, has_table, replace_text
from ._models import Erasure

if TYPE_CHECKING:
    from ._memory import Memory

REDACTED = "[redacted]"
IDENTIFYING = ("name", "email", "phone")
_FINISHED = ("completed", "failed", "cancelled")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _forms(values: Sequence[str]) -> list[str]:
    """Each value as it appears in plain text and inside JSON strings (escaped), longest first so
    that a value containing another is replaced whole."""
    out = set()
    for v in values:
        if v and len(v) >= 3:
            out.add(v)
            out.add(json.dumps(v)[1:-1])
    return sorted(out, key=lambda s: (-len(s), s))


async def _redact_column(
    db: Database,
    table: str,
    column: str,
    forms: Sequence[str],
    key: str | None = None,
    seen: set[Any] | None = None,
) -> int:
    changed = 0
    for f in forms:
        keys = await replace_text(db, table, column, f, REDACTED, key)
        changed += len(keys)
        if seen is not None:
            seen.update(keys)
    return changed


async def forget(mem: Memory, entity: str, values: Sequence[str], reason: str) -> Erasure:
    db = mem.db
    counts: dict[str, int] = {}
    node = await mem.get_entity(entity)
    known = [entity, *values]
    if node is not None:
        known += [str(node.properties[k]) for k in IDENTIFYING if isinstance(node.properties.get(k), str)]
    forms = _forms(known)

    ids = [r[0] for r in await db.fetchall("SELECT id FROM mem_items WHERE entity=?", (entity,))]
    counts["memory_items"] = await mem.delete(ids)
    counts["relations"] = await db.execute("DELETE FROM mem_relations WHERE src=? OR dst=?", (entity, entity))
    counts["entities"] = await db.execute("DELETE FROM mem_entities WHERE id=?", (entity,))

    # Other entities' items that mention it: redact the text, then embed it again.
    touched: set[str] = set()
    for f in forms:
        find = "strpos" if db.dialect == "postgres" else "instr"
        rows = await db.fetchall(
            f"SELECT id FROM mem_items WHERE {find}(text, ?) > 0 OR {find}(data, ?) > 0 OR {find}(metadata, ?) > 0",
            (f, f, f),
        )
        touched.update(r[0] for r in rows)
    for col in ("text", "data", "metadata"):
        await _redact_column(db, "mem_items", col, forms)
    for item in (await mem._by_ids(sorted(touched))).values():
        vec = await mem.embedder.embed([item.text])
        await mem.vectors.upsert(mem.collection, [item.id], vec, [mem._vector_meta(item)])
    counts["memory_items_redacted"] = len(touched)
    counts["entities_redacted"] = await _redact_column(db, "mem_entities", "properties", forms)
    counts["relations_redacted"] = await _redact_column(db, "mem_relations", "properties", forms)
    counts["run_state_redacted"] = await _redact_column(db, "mem_run_state", "value", forms)

    if await has_table(db, "kb_chunks"):
        from ..knowledge._redact import redact_chunks

        counts["kb_chunks_redacted"] = await redact_chunks(db, mem.vectors, forms, REDACTED)
    counts.update(await redact_runs(mem, forms))

    at = time.time()
    async with db.transaction() as tx:
        row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) + 1 FROM mem_erasures")
        erasure_id = int(row[0]) if row else 1
        await tx.execute(
            "INSERT INTO mem_erasures (id, entity_sha256, at, counts, reason) VALUES (?, ?, ?, ?, ?)",
            (erasure_id, sha256(entity), at, json.dumps(counts, sort_keys=True), reason),
        )
    return Erasure(id=erasure_id, entity_sha256=sha256(entity), at=at, counts=counts, reason=reason)


async def redact_runs(mem: Memory, forms: Sequence[str]) -> dict[str, int]:
    """Replace ``forms`` in the run store's stored payloads."""
    store = mem.run_store
    if store is not None and store.url.startswith("memory"):
        counts, runs = _redact_memory_store(store, forms)
        await _audit_redactions(store, sorted(runs), mem.actor)
        return counts
    if not await has_table(mem.db, "runs"):
        return {}
    if store is None:  # opened by URL: reach the run store's audit log through a store of our own
        from ..storage import open_store

        store = open_store(mem.db.url)
        await store.open()
        try:
            return await _redact_tables(mem.db, store, forms, mem.actor)
        finally:
            await store.close()
    return await _redact_tables(mem.db, store, forms, mem.actor)


async def _redact_tables(db: Database, store: Any, forms: Sequence[str], actor: str) -> dict[str, int]:
    counts = {"runs_redacted": 0, "events_redacted": 0, "signals_redacted": 0}
    runs: set[str] = set()
    for col in ("input", "output", "error"):
        counts["runs_redacted"] += await _redact_column(db, "runs", col, forms, "id", runs)
    counts["events_redacted"] = await _redact_column(db, "events", "data", forms, "run_id", runs)
    if await has_table(db, "signals"):
        counts["signals_redacted"] = await _redact_column(db, "signals", "payload", forms, "run_id", runs)
    await _audit_redactions(store, sorted(runs), actor)
    return counts


async def _audit_redactions(store: Any, run_ids: Sequence[str], actor: str = "memory") -> None:
    """With governance's audit log, anchor each redacted run's new history digest (``run.redact``),
    so the log says the history was changed on purpose, and by what."""
    if store is None or not run_ids or not hasattr(store, "append_audit"):
        return
    from .._audit import AuditEntry, run_digest

    for run_id in run_ids:
        digest = run_digest(await store.load_events(run_id))
        await store.append_audit(
            AuditEntry(
                ts=time.time(),
                actor=actor,
                action="run.redact",
                target=run_id,
                data=json.dumps({"digest": digest, "reason": "podium forget"}),
            )
        )


def _scrub(text: str | None, forms: Sequence[str]) -> str | None:
    if text is None:
        return None
    for f in forms:
        text = text.replace(f, REDACTED)
    return text


def _redact_memory_store(store: Any, forms: Sequence[str]) -> tuple[dict[str, int], set[str]]:
    """The in-process run store (``memory://``) keeps records in dicts; rewrite them in place."""
    runs = events = 0
    touched: set[str] = set()
    for run in store._runs.values():
        for col in ("input", "output", "error"):
            new = _scrub(getattr(run, col), forms)
            if new != getattr(run, col):
                setattr(run, col, new)
                runs += 1
                touched.add(run.id)
    for run_id, log in store._events.items():
        for i, ev in enumerate(log):
            new = _scrub(ev.data, forms)
            if new != ev.data:
                log[i] = dataclasses.replace(ev, data=new)
                events += 1
                touched.add(run_id)
    for signals in store._signals.values():
        for name, payload in list(signals.items()):
            signals[name] = _scrub(payload, forms)
    return {"runs_redacted": runs, "events_redacted": events}, touched


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
    store, db = mem.run_store, mem.db
    if store is not None and store.url.startswith("memory"):
        ids = [
            r.id
            for r in store._runs.values()  # type: ignore[attr-defined]
            if r.status.value in _FINISHED and r.finished_at is not None and r.finished_at < cutoff
        ]
        for rid in ids:
            for table in (store._runs, store._events, store._signals):  # type: ignore[attr-defined]
                table.pop(rid, None)
    else:
        if not await has_table(db, "runs"):
            return 0
        marks = ",".join("?" * len(_FINISHED))
        rows = await db.fetchall(
            f"SELECT id FROM runs WHERE status IN ({marks}) AND finished_at IS NOT NULL AND finished_at < ?",
            (*_FINISHED, cutoff),
        )
        ids = [r[0] for r in rows]
        tables = ["events", "signals", "runs"] if await has_table(db, "signals") else ["events", "runs"]
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            async with db.transaction() as tx:
                for table in tables:
                    col = "id" if table == "runs" else "run_id"
                    await tx.execute(
                        f"DELETE FROM {table} WHERE {col} IN ({','.join('?' * len(part))})", part
                    )
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        await db.execute(f"DELETE FROM mem_run_state WHERE run_id IN ({','.join('?' * len(part))})", part)
    if ids:
        await _audit_prunes(mem, store, ids, cutoff)
    return len(ids)


async def _audit_prunes(mem: Memory, store: Any, ids: Sequence[str], cutoff: float) -> None:
    """Deleting history on purpose is recorded (``run.prune``, by ``mem.actor``), so that audit
    verify expects it. Opened by URL, the run store's audit log is reached through a store of our own."""
    from .._audit import AuditEntry

    own = store is None
    if own:
        from ..storage import open_store

        store = open_store(mem.db.url)
        await store.open()
    try:
        if not hasattr(store, "append_audit"):
            return
        for rid in ids:
            await store.append_audit(
                AuditEntry(ts=time.time(), actor=mem.actor, action="run.prune", target=rid, data=json.dumps({"cutoff": cutoff}))
            )
    finally:
        if own:
            await store.close()


async def erasures(db: Database) -> list[Erasure]:
    rows = await db.fetchall("SELECT id, entity_sha256, at, counts, reason FROM mem_erasures ORDER BY id")
    return [
        Erasure(id=int(r[0]), entity_sha256=r[1], at=r[2], counts=json.loads(r[3]), reason=r[4] or "")
        for r in rows
    ]
