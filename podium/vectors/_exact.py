"""Exact search over vectors kept in SQL (SQLite, ``memory://``, or PostgreSQL without pgvector).

The database is the source of truth; each process keeps a NumPy copy of a collection
(:class:`~._matrix.Matrix`) and brings it up to date before a search. Every write to a collection
takes the next number of that collection's revision counter, in the transaction that writes, and
deletions leave a tombstone with their revision. Holding the counter's row lock until commit
serialises a collection's writers, so revisions become visible in order, and catching up is one
query for the rows and tombstones newer than the copy: a search after a write elsewhere costs the
changed rows, not a reload.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._sqldb import Database, Tx
from ..errors import ConfigError
from ._base import Hit, VectorIndex
from ._matrix import Matrix, unit_rows

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE vec_collections (
            name {id} PRIMARY KEY,
            dimension INTEGER NOT NULL,
            rev {bigint} NOT NULL DEFAULT 0,
            created_at {real} NOT NULL
        );
        CREATE TABLE vec_items (
            collection {id} NOT NULL,
            id {id} NOT NULL,
            rev {bigint} NOT NULL,
            vector {blob} NOT NULL,
            metadata {json},
            PRIMARY KEY (collection, id)
        );
        CREATE INDEX vec_items_rev ON vec_items (collection, rev);
        CREATE TABLE vec_tombstones (
            collection {id} NOT NULL,
            id {id} NOT NULL,
            rev {bigint} NOT NULL,
            PRIMARY KEY (collection, id)
        );
        CREATE INDEX vec_tombstones_rev ON vec_tombstones (collection, rev)
        """,
    )
]


class ExactVectorIndex(VectorIndex):
    """Vectors as float32 bytes in SQL, searched exactly in NumPy (see the module docstring)."""

    method = "exact"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, Matrix] = {}

    async def open(self) -> None:
        await self.db.migrate("vectors", MIGRATIONS)

    async def close(self) -> None:
        self._cache.clear()

    async def _bump(self, tx: Tx, collection: str, dimension: int | None) -> int:
        """Take the collection's next revision (creating it with ``dimension`` if new)."""
        row = await tx.fetchone(
            "UPDATE vec_collections SET rev = rev + 1 WHERE name=? RETURNING rev, dimension", (collection,)
        )
        if row is None:
            if dimension is None:
                return 0
            await tx.execute(
                "INSERT INTO vec_collections (name, dimension, rev, created_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (name) DO UPDATE SET rev = vec_collections.rev + 1",
                (collection, dimension, time.time()),
            )
            row = await tx.fetchone("SELECT rev, dimension FROM vec_collections WHERE name=?", (collection,))
            assert row is not None
        if dimension is not None and row[1] != dimension:
            raise ConfigError(
                f"vector collection {collection!r} holds vectors of dimension {row[1]}, not {dimension}: "
                "use one embedder per collection (or drop the collection and index it again)"
            )
        return int(row[0])

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
        if len(rows) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(rows)} vectors")
        metas = list(metadata) if metadata is not None else [None] * len(ids)
        async with self.db.transaction() as tx:
            rev = await self._bump(tx, collection, int(rows.shape[1]))
            await tx.executemany(
                "INSERT INTO vec_items (collection, id, rev, vector, metadata) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, id) DO UPDATE SET rev = excluded.rev, vector = excluded.vector, "
                "metadata = excluded.metadata",
                [
                    (collection, i, rev, v.tobytes(), json.dumps(m or {}))
                    for i, v, m in zip(ids, rows, metas, strict=True)
                ],
            )
            await tx.executemany(
                "DELETE FROM vec_tombstones WHERE collection=? AND id=?", [(collection, i) for i in ids]
            )

    async def delete(self, collection: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        async with self.db.transaction() as tx:
            rev = await self._bump(tx, collection, None)
            if not rev:
                return 0
            gone = 0
            for item_id in ids:
                n = await tx.execute(
                    "DELETE FROM vec_items WHERE collection=? AND id=?", (collection, item_id)
                )
                if n:
                    gone += n
                    await tx.execute(
                        "INSERT INTO vec_tombstones (collection, id, rev) VALUES (?, ?, ?) "
                        "ON CONFLICT (collection, id) DO UPDATE SET rev = excluded.rev",
                        (collection, item_id, rev),
                    )
        return gone

    async def _synced(self, collection: str) -> Matrix | None:
        """The collection's NumPy copy, brought up to date (None for an unknown collection)."""
        row = await self.db.fetchone(
            "SELECT rev, dimension, created_at FROM vec_collections WHERE name=?", (collection,)
        )
        if row is None:
            self._cache.pop(collection, None)
            return None
        rev, dimension, created = int(row[0]), int(row[1]), float(row[2])
        m = self._cache.get(collection)
        if (
            m is None or (m.dimension, m.created) != (dimension, created) or m.rev > rev
        ):  # dropped, made again
            m = self._cache[collection] = Matrix(dimension)
            m.created = created
        if m.rev == rev:
            return m
        from ..embeddings._base import numpy

        np = numpy()
        items = await self.db.fetchall(
            "SELECT id, vector, metadata FROM vec_items WHERE collection=? AND rev > ? AND rev <= ?",
            (collection, m.rev, rev),
        )
        if items:
            vecs = np.frombuffer(b"".join(bytes(r[1]) for r in items), dtype=np.float32).reshape(
                -1, dimension
            )
            m.put([r[0] for r in items], vecs, [json.loads(r[2]) if r[2] else {} for r in items])
        if m.rev:  # a fresh copy has nothing to remove
            gone = await self.db.fetchall(
                "SELECT id FROM vec_tombstones WHERE collection=? AND rev > ? AND rev <= ?",
                (collection, m.rev, rev),
            )
            m.remove([r[0] for r in gone])
        m.rev = rev
        return m

    async def search(
        self,
        collection: str,
        vector: Any,
        k: int = 10,
        *,
        where: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        m = await self._synced(collection)
        return m.search(vector, k, where, ids) if m is not None else []

    async def count(self, collection: str) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM vec_items WHERE collection=?", (collection,))
        return int(row[0]) if row else 0

    async def collections(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT name, dimension FROM vec_collections ORDER BY name")
        return {r[0]: int(r[1]) for r in rows}

    async def drop(self, collection: str) -> None:
        async with self.db.transaction() as tx:
            for table, col in (
                ("vec_items", "collection"),
                ("vec_tombstones", "collection"),
                ("vec_collections", "name"),
            ):
                await tx.execute(f"DELETE FROM {table} WHERE {col}=?", (collection,))
        self._cache.pop(collection, None)
