"""Memory from inside a step: durable calls (``ctx.call``) on the memory of the run's own store.

:func:`of` gives a step the :class:`Memory` that lives beside its run store (same SQLite file, same
PostgreSQL database, same process for ``memory://``). Every read and write goes through
``ctx.call``: a retried or resumed step gets the logged result instead of writing twice or reading
something newer, so replays stay deterministic. Writes carry ids derived from the step's
idempotency key, so even a crash between the write and its log entry does not duplicate them.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._memory import Memory
from ._records import Entity, Erasure, MemoryItem, Reached, Relation

if TYPE_CHECKING:
    from ..engine.context import StepContext
    from ..storage import Store

_ATTACHED: weakref.WeakKeyDictionary[Any, Memory] = weakref.WeakKeyDictionary()


def store_of(ctx: StepContext) -> Store:
    """The run store a step's run lives in."""
    store = getattr(ctx, "store", None)
    if store is None:
        raise RuntimeError("podium.memory needs a step context from a running workflow (ctx)")
    return store


def attach(target: Any, memory: Memory) -> Memory:
    """Make ``memory`` the one that steps of runs in ``target`` (a Client or a Store) use: to choose
    its embedder or retention policies. Returns ``memory``."""
    store = getattr(target, "store", target)
    _ATTACHED[store] = memory
    return memory


def memory_for(target: Any) -> Memory:
    """The memory beside a Client's or Store's run store (made on first use, with the default
    embedder: ``$PODIUM_EMBEDDER`` or ``local:all-minilm-l6-v2``)."""
    import os

    store = getattr(target, "store", target)
    mem = _ATTACHED.get(store)
    if mem is None:
        from ..settings import setting

        mem = _ATTACHED[store] = Memory(store, embedder=os.environ.get("PODIUM_EMBEDDER") or setting("embedder"))
    return mem


class StepMemory:
    """:class:`Memory` for one step execution: the same methods, each a durable sub-step."""

    def __init__(self, ctx: StepContext, memory: Memory) -> None:
        self.ctx = ctx
        self.memory = memory
        self._writes = 0

    async def _call(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        await self.memory.open()
        return await self.ctx.call(fn, *args, name=name, **kwargs)

    def _id(self) -> str:
        self._writes += 1
        key = f"{self.ctx.idempotency_key}/remember/{self._writes}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    async def remember(self, entity: str, text: str, **options: Any) -> MemoryItem:
        options.setdefault("id", self._id())
        options.setdefault("run_id", self.ctx.run_id)
        options.setdefault("step", self.ctx.step_id)
        result: MemoryItem = await self._call("remember", self.memory.remember, entity, text, **options)
        return result

    async def recall(
        self, entity: str | None = None, query: str | None = None, **options: Any
    ) -> list[MemoryItem]:
        result: list[MemoryItem] = await self._call("recall", self.memory.recall, entity, query, **options)
        return result

    async def upsert_entity(self, id: str, **options: Any) -> Entity:
        result: Entity = await self._call("upsert_entity", self.memory.upsert_entity, id, **options)
        return result

    async def relate(
        self, src: str, relation: str, dst: str, properties: Mapping[str, Any] | None = None
    ) -> Relation:
        result: Relation = await self._call("relate", self.memory.relate, src, relation, dst, properties)
        return result

    async def neighbors(self, id: str, **options: Any) -> list[Reached]:
        result: list[Reached] = await self._call("neighbors", self.memory.neighbors, id, **options)
        return result

    async def follow(self, id: str, *path: str, **options: Any) -> list[Reached]:
        result: list[Reached] = await self._call("follow", self.memory.follow, id, *path, **options)
        return result

    async def forget(self, entity: str, *, values: Sequence[str] = (), reason: str = "") -> Erasure:
        result: Erasure = await self._call("forget", self.memory.forget, entity, values=values, reason=reason)
        return result


def of(ctx: StepContext) -> StepMemory:
    """The memory of the step's run store, with durable calls::

    @wf.step
    async def triage(ctx, input):
        mem = podium.memory.of(ctx)
        history = await mem.recall(f"customer:{input['customer']}", input["text"], k=5)
        await mem.remember(f"customer:{input['customer']}", "opened a billing ticket", kind="event")
    """
    return StepMemory(ctx, memory_for(store_of(ctx)))
