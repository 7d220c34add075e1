""":class:`Memory`: the memory backend over SQL, for ``memory://``, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .._sqldb import Database, database_for, open_database
from ..embeddings import Embedder
from ..vectors import VectorIndex, open_index
from . import _graph, _lifecycle
from ._base import MemoryBackend
from ._embedder import resolve_embedder
from ._records import Entity, Erasure, MemoryItem, Reached, Relation, Retention
from ._schema import MIGRATIONS

_ITEM_COLS = "id, entity, kind, text, data, metadata, created_at, expires_at, run_id, step"


def _item(r: Sequence[Any], score: float | None = None) -> MemoryItem:
    return MemoryItem(
        id=r[0],
        entity=r[1],
        kind=r[2],
        text=r[3],
        data=json.loads(r[4]) if r[4] else None,
        metadata=json.loads(r[5] or "{}"),
        created_at=r[6],
        expires_at=r[7],
        run_id=r[8],
        step=r[9],
        score=score,
    )


class Memory(MemoryBackend):
    """Entity memory and the entity graph, with vectors for semantic recall.

    ::

        async with Memory("sqlite:///podium.db") as mem:        # or a Store, or memory://
            await mem.remember("customer:42", "prefers email over phone", kind="fact")
            facts = await mem.recall("customer:42", "how to contact them?", k=3)

    :param target: a store URL (the same one the run store uses; the memory tables live beside
        the run tables), an open :class:`~podium.Store` (shares its database, and for ``memory://``
        its process), or a ``Database``.
    :param embedder: ``provider:model`` or an :class:`~podium.embeddings.Embedder` for semantic
        recall (default ``local:all-minilm-l6-v2``; loaded on first use).
    :param retention: policies by kind, applied by :meth:`prune`.
    :param vector_index: ``"exact"`` or ``"pgvector"`` (default: choose; see :mod:`podium.vectors`).
    """

    def __init__(
        self,
        target: Any = None,
        *,
        embedder: str | Embedder | None = None,
        retention: Mapping[str, Retention] | None = None,
        vector_index: str | None = None,
    ) -> None:
        from ..storage import Store, default_url

        self.db: Database
        self.run_store: Store | None = None
        self._vectors: VectorIndex | None = None
        if isinstance(target, Memory):  # a view (with_embedder): its database and vectors, shared
            self.db, self.run_store, self._vectors = target.db, target.run_store, target.vectors
        elif isinstance(target, Database):
            self.db = target
        elif isinstance(target, Store):
            self.db, self.run_store = database_for(target), target
        else:
            self.db = open_database(target or default_url())
        self._embedder_spec = embedder
        self.retention: dict[str, Retention] = dict(retention or {})
        self._vector_method = vector_index
        self._open_lock = asyncio.Lock()
        #: Who the audit entries of forget and prune_runs name (a surface sets the caller's name).
        self.actor = "memory"

    def __repr__(self) -> str:
        return f"<Memory {self.db.url}>"

    @property
    def embedder(self) -> Embedder:
        return resolve_embedder(self._embedder_spec)

    def with_embedder(self, embedder: Embedder) -> Memory:
        """This memory (the same database, vectors and collection) embedding through ``embedder``:
        a step's view, whose embedder has the run's policy in front of the model. Open this memory
        first; close it, not the view."""
        view = Memory(self, embedder=embedder, retention=self.retention)
        view.actor = self.actor
        return view

    @property
    def collection(self) -> str:
        """The vector collection of memory items (one per embedding model: vectors of different
        models are not comparable)."""
        return f"memory@{self.embedder.name}"

    @property
    def vectors(self) -> VectorIndex:
        if self._vectors is None:
            raise RuntimeError("Memory is not open: use 'async with Memory(...)' or await memory.open()")
        return self._vectors

    async def open(self) -> Memory:
        async with self._open_lock:
            if self._vectors is None:
                await self.db.open()
                await self.db.migrate("memory", MIGRATIONS)
                self._vectors = await open_index(self.db, self._vector_method)
        return self

    async def close(self) -> None:
        if self._vectors is not None:
            await self._vectors.close()
            self._vectors = None
            await self.db.close()

    async def __aenter__(self) -> Memory:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- entity memory -----------------------------------------------------------------------------

    async def remember(
        self,
        entity: str,
        text: str,
        *,
        kind: str = "fact",
        data: Any = None,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
        ttl: float | None = None,
        at: float | None = None,
        run_id: str | None = None,
        step: str | None = None,
    ) -> MemoryItem:
        await self.open()
        created = time.time() if at is None else at
        item = MemoryItem(
            id=id or uuid.uuid4().hex,
            entity=entity,
            kind=kind,
            text=text,
            data=data,
            metadata=dict(metadata or {}),
            created_at=created,
            expires_at=created + ttl if ttl is not None else None,
            run_id=run_id,
            step=step,
        )
        vector = await self.embedder.embed([text])  # before the transaction: it takes a while
        async with self.db.transaction() as tx:
            await _graph.ensure_entity(tx, entity, created)
            await tx.execute(
                f"INSERT INTO mem_items ({_ITEM_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET entity=excluded.entity, kind=excluded.kind, text=excluded.text, "
                "data=excluded.data, metadata=excluded.metadata, created_at=excluded.created_at, "
                "expires_at=excluded.expires_at, run_id=excluded.run_id, step=excluded.step",
                (
                    item.id, entity, kind, text, json.dumps(data) if data is not None else None,
                    json.dumps(item.metadata), created, item.expires_at, run_id, step,
                ),
            )  # fmt: skip
        await self.vectors.upsert(self.collection, [item.id], vector, [self._vector_meta(item)])
        return item

    @staticmethod
    def _vector_meta(item: MemoryItem) -> dict[str, Any]:
        return {**item.metadata, "entity": item.entity, "kind": item.kind, "created_at": item.created_at}

    async def recall(
        self,
        entity: str | None = None,
        query: str | None = None,
        *,
        kind: str | Sequence[str] | None = None,
        k: int = 10,
        since: float | None = None,
        until: float | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[MemoryItem]:
        await self.open()
        kinds = [kind] if isinstance(kind, str) else list(kind) if kind else None
        now = time.time()
        if query is None or (entity is not None and not query.strip()):
            return await self._recent(entity, kinds, k, since, until, where, now)
        qvec = (await self.embedder.embed([query]))[0]
        vec_where = dict(where or {})
        if kinds:
            vec_where["kind"] = kinds
        ids: list[str] | None = None
        if entity is not None or since is not None or until is not None:
            # Narrow by the indexed columns first, then score only those vectors.
            ids = [i.id for i in await self._recent(entity, kinds, None, since, until, None, now)]
            if not ids:
                return []
        want = k
        while True:
            hits = await self.vectors.search(self.collection, qvec, want, where=vec_where or None, ids=ids)
            found = await self.get_many([h.id for h in hits])
            out = [
                _item_with(found[h.id], h.score)
                for h in hits
                if h.id in found and _live(found[h.id], now, since, until)
            ]
            if len(out) >= k or len(hits) < want:
                return out[:k]
            want *= 4  # some hits were expired or outside the time range: look further

    async def _recent(
        self,
        entity: str | None,
        kinds: list[str] | None,
        k: int | None,
        since: float | None,
        until: float | None,
        where: Mapping[str, Any] | None,
        now: float,
    ) -> list[MemoryItem]:
        sql = f"SELECT {_ITEM_COLS} FROM mem_items WHERE (expires_at IS NULL OR expires_at > ?)"
        params: list[Any] = [now]
        for cond, value in (("entity = ?", entity), ("created_at >= ?", since), ("created_at <= ?", until)):
            if value is not None:
                sql += f" AND {cond}"
                params.append(value)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        sql += " ORDER BY created_at DESC, id DESC"
        if not where:
            if k is not None:
                sql += f" LIMIT {int(k)}"
            return [_item(r) for r in await self.db.fetchall(sql, params)]
        from ..vectors import matches

        # `where` is matched here, on the metadata's JSON: a page at a time, never the whole store.
        items: list[MemoryItem] = []
        offset = 0
        while k is None or len(items) < k:
            rows = await self.db.fetchall(f"{sql} LIMIT 500 OFFSET {offset}", params)
            items += [i for i in map(_item, rows) if matches(i.metadata, where)]
            if len(rows) < 500:
                break
            offset += 500
        return items[:k] if k is not None else items

    async def get_many(self, item_ids: Sequence[str]) -> dict[str, MemoryItem]:
        await self.open()
        ids = list(dict.fromkeys(item_ids))
        found: dict[str, MemoryItem] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = await self.db.fetchall(
                f"SELECT {_ITEM_COLS} FROM mem_items WHERE id IN ({','.join('?' * len(part))})", part
            )
            found.update((r[0], _item(r)) for r in rows)
        return found

    async def get(self, item_id: str) -> MemoryItem | None:
        await self.open()
        return (await self.get_many([item_id])).get(item_id)

    async def reindex(self, item_ids: Sequence[str]) -> int:
        await self.open()
        items = await self.get_many(item_ids)
        for item in items.values():
            vector = await self.embedder.embed([item.text])
            await self.vectors.upsert(self.collection, [item.id], vector, [self._vector_meta(item)])
        return len(items)

    async def delete(self, item_ids: Sequence[str]) -> int:
        await self.open()
        ids = list(item_ids)
        n = 0
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            n += await self.db.execute(
                f"DELETE FROM mem_items WHERE id IN ({','.join('?' * len(part))})", part
            )
        for name in await self.vectors.collections():
            if name.startswith("memory@"):
                await self.vectors.delete(name, ids)
        return n

    # -- entity graph ------------------------------------------------------------------------------

    async def upsert_entity(
        self,
        id: str,
        *,
        type: str | None = None,
        properties: Mapping[str, Any] | None = None,
        merge: bool = True,
    ) -> Entity:
        await self.open()
        return await _graph.upsert_entity(self.db, id, type, properties, merge)

    async def get_entity(self, id: str) -> Entity | None:
        await self.open()
        return (await _graph.get_entities(self.db, [id])).get(id)

    async def find_entities(
        self,
        *,
        type: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        search: str | None = None,
    ) -> list[Entity]:
        await self.open()
        return await _graph.find_entities(self.db, type, where, limit, search)

    async def relate(
        self, src: str, relation: str, dst: str, properties: Mapping[str, Any] | None = None
    ) -> Relation:
        await self.open()
        return await _graph.relate(self.db, src, relation, dst, properties)

    async def unrelate(self, src: str, relation: str, dst: str) -> bool:
        await self.open()
        n = await self.db.execute(
            "DELETE FROM mem_relations WHERE src=? AND relation=? AND dst=?", (src, relation, dst)
        )
        return n > 0

    async def relations(self, id: str, *, direction: str = "both") -> list[Relation]:
        await self.open()
        return [rel for _, rel in await _graph.edges(self.db, [id], direction, None)]

    async def neighbors(
        self,
        id: str,
        *,
        hops: int = 1,
        relations: Sequence[str] | None = None,
        direction: str = "both",
        type: str | Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
    ) -> list[Reached]:
        await self.open()
        return await _graph.neighbors(self.db, id, hops, relations, direction, type, where, limit)

    async def follow(
        self,
        id: str,
        *path: str,
        type: str | Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> list[Reached]:
        await self.open()
        found = await _graph.follow(self.db, id, path, type, where)
        return found if limit is None else found[:limit]

    # -- lifecycle ---------------------------------------------------------------------------------

    async def forget(self, entity: str, *, values: Sequence[str] = (), reason: str = "") -> Erasure:
        await self.open()
        return await _lifecycle.forget(self, entity, values, reason)

    async def prune(self, *, now: float | None = None) -> dict[str, int]:
        await self.open()
        return await _lifecycle.prune(self, time.time() if now is None else now)

    async def prune_runs(self, *, older_than: float, now: float | None = None) -> int:
        """Delete finished runs (with their events, signals and run state) that finished more than
        ``older_than`` seconds ago; returns how many. Unfinished runs are never touched."""
        await self.open()
        return await _lifecycle.prune_runs(self, (time.time() if now is None else now) - older_than)

    async def erasures(self) -> list[Erasure]:
        await self.open()
        return await _lifecycle.erasures(self.db)


def _item_with(item: MemoryItem, score: float) -> MemoryItem:
    from dataclasses import replace

    return replace(item, score=score)


def _live(item: MemoryItem, now: float, since: float | None, until: float | None) -> bool:
    if item.expires_at is not None and item.expires_at <= now:
        return False
    return (since is None or item.created_at >= since) and (until is None or item.created_at <= until)
