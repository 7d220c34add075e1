"""What the memory layer stores and returns: frozen dataclasses (they survive ``ctx.call`` logging)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class MemoryItem:
    """One thing remembered about an entity: a fact, an event, a summary, or any kind you name."""

    id: str
    entity: str
    """Whom it is about, as ``type:key`` (``customer:42``, ``vendor:acme``)."""
    kind: str
    """``fact``, ``event``, ``summary`` or any other name; retention policies are per kind."""
    text: str
    """What is remembered, in words (embedded for semantic recall)."""
    data: Any = None
    """Optional structured payload (JSON)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Filterable fields (``recall(where={...})``)."""
    created_at: float = 0.0
    expires_at: float | None = None
    run_id: str | None = None
    """The run that wrote it, if a step did."""
    step: str | None = None
    score: float | None = None
    """Similarity to the query of a semantic recall (None otherwise)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Entity:
    """A node of the entity graph."""

    id: str
    type: str
    """Defaults to the part of the id before ``:`` (``ticket:T1`` is a ``ticket``)."""
    properties: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Relation:
    """A typed, directed edge: ``src -relation-> dst`` (``customer:42 owns account:7``)."""

    src: str
    relation: str
    dst: str
    properties: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Reached:
    """An entity found by a graph query, with how it was reached."""

    entity: Entity
    hops: int
    path: tuple[Relation, ...] = ()
    """The edges from the start to this entity, in order."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Retention:
    """How long one kind of memory is kept (applied by ``Memory.prune``)."""

    max_age: float | None = None
    """Seconds after which an item is deleted."""
    max_items: int | None = None
    """Items kept per entity, newest first."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Erasure:
    """The record ``forget`` leaves: what was erased, not the erased data. The entity id is kept
    only as a SHA-256 digest, so the record shows that an erasure happened without naming whom."""

    id: int
    entity_sha256: str
    at: float
    counts: dict[str, int]
    """Rows removed or redacted, by table (memory items, vectors, entities, relations, runs, events...)."""
    reason: str = ""
