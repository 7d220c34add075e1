"""pgvector: vectors in a ``vector`` column, ordered by the ``<=>`` cosine distance in PostgreSQL.

Used when ``CREATE EXTENSION vector`` succeeds on the server; otherwise PostgreSQL gets the exact
index (:mod:`._exact`). The column has no fixed dimension (collections differ), so searches are exact
scans inside the server; add an HNSW index on an expression for a large single-dimension collection.
Metadata filters are applied in Python over a widened candidate list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._sqldb import Database
from ..errors import ConfigError
from ._base import Hit, VectorIndex, matches
from ._matrix import unit_rows

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE vec_pgv_collections (name {id} PRIMARY KEY, dimension INTEGER NOT NULL, created_at {real});
        CREATE TABLE vec_pgv_items (
            collection {id} NOT NULL,
            id {id} NOT NULL,
            embedding vector NOT NULL,
            metadata {json},
            PRIMARY KEY (collection, id)
        )
        """,
    )
]


def _literal(vec: Any) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vec) + "]"


class PgVectorIndex(VectorIndex):
    """Vectors in pgvector columns (see the module docstring)."""

    method = "pgvector"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.migrate("vectors-pgvector", MIGRATIONS)

    async def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        if not len(ids):
            return
        rows = unit_rows(vectors)
        metas = list(metadata) if metadata is not None else [None] * len(ids)
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO vec_pgv_collections VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (collection, int(rows.shape[1]), time.time()),
            )
            row = await tx.fetchone("SELECT dimension FROM vec_pgv_collections WHERE name=?", (collection,))
            if row and row[0] != rows.shape[1]:
                raise ConfigError(
                    f"vector collection {collection!r} holds vectors of dimension {row[0]}, not {rows.shape[1]}"
                )
            await tx.executemany(
                "INSERT INTO vec_pgv_items VALUES (?, ?, ?::vector, ?) ON CONFLICT (collection, id) DO UPDATE "
                "SET embedding = excluded.embedding, metadata = excluded.metadata",
                [
                    (collection, i, _literal(v), json.dumps(m or {}))
                    for i, v, m in zip(ids, rows, metas, strict=True)
                ],
            )

    async def delete(self, collection: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return await self.db.execute(
            "DELETE FROM vec_pgv_items WHERE collection=? AND id = ANY(?)", (collection, list(ids))
        )

    async def search(
        self,
        collection: str,
        vector: Any,
        k: int = 10,
        *,
        where: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        q = _literal(unit_rows(vector)[0])
        sql = "SELECT id, 1 - (embedding <=> ?::vector), metadata FROM vec_pgv_items WHERE collection=?"
        params: list[Any] = [q, collection]
        if ids is not None:
            sql += " AND id = ANY(?)"
            params.append(list(ids))
        limit = k if not where else k * 20
        rows = await self.db.fetchall(sql + " ORDER BY embedding <=> ?::vector LIMIT ?", (*params, q, limit))
        hits = [Hit(id=r[0], score=float(r[1]), metadata=json.loads(r[2] or "{}")) for r in rows]
        return [h for h in hits if matches(h.metadata, where)][:k]

    async def count(self, collection: str) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM vec_pgv_items WHERE collection=?", (collection,))
        return int(row[0]) if row else 0

    async def collections(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT name, dimension FROM vec_pgv_collections ORDER BY name")
        return {r[0]: int(r[1]) for r in rows}

    async def drop(self, collection: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM vec_pgv_items WHERE collection=?", (collection,))
            await tx.execute("DELETE FROM vec_pgv_collections WHERE name=?", (collection,))
