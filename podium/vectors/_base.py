"""The vector index interface: :class:`VectorIndex` stores vectors by collection and id, with JSON
metadata, and finds the nearest ones to a query by cosine similarity."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Hit:
    """One search result."""

    id: str
    """The item's id within its collection."""
    score: float
    """Cosine similarity to the query, from -1 to 1 (higher is closer)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The metadata stored with the vector."""


def matches(metadata: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether ``metadata`` passes a filter: every key must equal the filter's value, or be one of
    its values when the filter gives a list (``{"kind": ["fact", "summary"], "lang": "en"}``)."""
    if not where:
        return True
    for key, want in where.items():
        have = metadata.get(key)
        if isinstance(want, list | tuple | set):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class VectorIndex(abc.ABC):
    """Vectors by ``(collection, id)``, searched exactly or approximately by cosine similarity.

    A collection holds vectors of one dimension (the first upsert fixes it). Every backend passes
    ``tests/test_vector_conformance.py``.
    """

    #: ``"exact"`` (every vector scored) or ``"pgvector"``.
    method: str = "exact"

    async def open(self) -> None:
        """Create the tables if needed."""

    async def close(self) -> None:
        """Drop caches (the database connection belongs to whoever made it)."""

    @abc.abstractmethod
    async def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Insert or replace vectors (an ``(n, dim)`` array or a list of lists) under ``ids``."""

    @abc.abstractmethod
    async def delete(self, collection: str, ids: Sequence[str]) -> int:
        """Remove these ids; returns how many existed."""

    @abc.abstractmethod
    async def search(
        self,
        collection: str,
        vector: Any,
        k: int = 10,
        *,
        where: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest vectors, best first, restricted to metadata matching ``where`` (see
        :func:`matches`) and, if given, to ``ids``. An unknown collection gives ``[]``."""

    @abc.abstractmethod
    async def count(self, collection: str) -> int:
        """How many vectors the collection holds."""

    @abc.abstractmethod
    async def collections(self) -> dict[str, int]:
        """Every collection and its dimension."""

    @abc.abstractmethod
    async def drop(self, collection: str) -> None:
        """Remove a collection and its vectors."""
