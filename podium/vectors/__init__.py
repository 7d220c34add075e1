"""Vector indexes: one :class:`VectorIndex` interface over the embedded and PostgreSQL stores.

>>> index = await open_index(db)            # db: a podium._sqldb.Database (see podium.memory)
>>> await index.upsert("docs", ["a", "b"], vectors, [{"lang": "en"}, {"lang": "fr"}])
>>> hits = await index.search("docs", query_vector, k=5, where={"lang": "en"})

``memory://`` and SQLite get :class:`ExactVectorIndex` (NumPy over float32 rows kept in SQL).
PostgreSQL gets :class:`PgVectorIndex` when ``CREATE EXTENSION vector`` succeeds, else the exact
index over ``bytea`` rows. ``PODIUM_VECTOR_INDEX=exact`` forces the exact index everywhere.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._base import Hit, VectorIndex, matches
from ._exact import ExactVectorIndex

if TYPE_CHECKING:
    from .._sqldb import Database

__all__ = ["ExactVectorIndex", "Hit", "VectorIndex", "matches", "open_index"]


async def _has_pgvector(db: Database) -> bool:
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return True
    except Exception:  # not installed on the server, or no privilege to create it
        return False


async def open_index(db: Database, method: str | None = None) -> VectorIndex:
    """An open vector index on ``db``: ``method`` ``"exact"``, ``"pgvector"`` or None (choose)."""
    method = method or os.environ.get("PODIUM_VECTOR_INDEX") or "auto"
    index: VectorIndex
    if db.dialect == "postgres" and method in ("auto", "pgvector") and await _has_pgvector(db):
        from ._pgvector import PgVectorIndex

        index = PgVectorIndex(db)
    elif method == "pgvector":
        from ..errors import ConfigError

        raise ConfigError(
            f"vector index 'pgvector' needs PostgreSQL with the vector extension; {db.url} has none"
        )
    else:
        index = ExactVectorIndex(db)
    await index.open()
    return index
