"""The memory interface: long-term memory keyed by entity, and the entity graph."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from ._records import Entity, Erasure, MemoryItem, Reached, Relation


class MemoryBackend(abc.ABC):
    """What steps remember about entities, and how entities relate. Every backend passes
    ``tests/test_memory_conformance.py``; :class:`~podium.memory.Memory` implements it over SQL
    for ``memory://``, SQLite and PostgreSQL. (Not to be confused with the run store of
    ``memory://``, :class:`podium.storage.memory.MemoryStore`.)"""

    # -- entity memory -----------------------------------------------------------------------------

    @abc.abstractmethod
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
        """Store one item about ``entity`` (same ``id`` again: replaced). ``ttl`` seconds make it
        expire; ``at`` backdates it (default: now)."""

    @abc.abstractmethod
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
        """Items, newest first; with ``query``, the most similar first (``score`` set). Filters:
        entity, kind(s), creation time range, metadata ``where`` (equality, or one-of for a list).
        Expired items are never returned."""

    @abc.abstractmethod
    async def get(self, item_id: str) -> MemoryItem | None:
        """One item by id."""

    @abc.abstractmethod
    async def get_many(self, item_ids: Sequence[str]) -> dict[str, MemoryItem]:
        """The items of these ids that exist, by id (expired ones included: this is a lookup, not
        a recall)."""

    @abc.abstractmethod
    async def reindex(self, item_ids: Sequence[str]) -> int:
        """Embed these items' text again and replace their vectors (after their text changed in
        place, as :meth:`forget` does to items that mention the forgotten entity); returns how
        many items were found."""

    @abc.abstractmethod
    async def delete(self, item_ids: Sequence[str]) -> int:
        """Remove items (and their vectors); returns how many existed."""

    # -- entity graph ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def upsert_entity(
        self,
        id: str,
        *,
        type: str | None = None,
        properties: Mapping[str, Any] | None = None,
        merge: bool = True,
    ) -> Entity:
        """Create or update an entity; ``merge`` keeps properties not given (False replaces them)."""

    @abc.abstractmethod
    async def get_entity(self, id: str) -> Entity | None: ...

    @abc.abstractmethod
    async def find_entities(
        self,
        *,
        type: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        search: str | None = None,
    ) -> list[Entity]:
        """Entities of a type whose properties match ``where``, ordered by id; with ``search``, only
        those whose id contains that text (any case), ids starting with it first."""

    @abc.abstractmethod
    async def relate(
        self, src: str, relation: str, dst: str, properties: Mapping[str, Any] | None = None
    ) -> Relation:
        """Upsert the edge ``src -relation-> dst`` (both entities are created if unknown)."""

    @abc.abstractmethod
    async def unrelate(self, src: str, relation: str, dst: str) -> bool: ...

    @abc.abstractmethod
    async def relations(self, id: str, *, direction: str = "both") -> list[Relation]:
        """The edges leaving (``out``), entering (``in``) or touching (``both``) an entity."""

    @abc.abstractmethod
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
        """Entities within ``hops`` edges of ``id`` (following only ``relations`` if given), nearest
        first, each with the shortest path that reached it; filtered by type and properties."""

    @abc.abstractmethod
    async def follow(
        self,
        id: str,
        *path: str,
        type: str | Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> list[Reached]:
        """Entities at the end of a relation path: each step names a relation followed forwards
        (``"contains"``) or backwards (``"<contains"``), by id, at most ``limit`` of them. Which open
        purchase orders contain products of vendor V: ``follow("vendor:V", "<supplied_by",
        "<contains", type="purchase_order", where={"status": "open"})``."""

    # -- lifecycle ---------------------------------------------------------------------------------

    @abc.abstractmethod
    async def forget(self, entity: str, *, values: Sequence[str] = (), reason: str = "") -> Erasure:
        """Erase an entity everywhere and record the erasure (see ``docs/memory.md``)."""

    @abc.abstractmethod
    async def prune(self, *, now: float | None = None) -> dict[str, int]:
        """Apply the retention policies and drop expired items; returns counts by kind."""

    @abc.abstractmethod
    async def erasures(self) -> list[Erasure]:
        """Every erasure recorded, oldest first."""
