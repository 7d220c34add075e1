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

from ._embedder import governed
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
    """:class:`Memory` for one step execution: the same methods, each a durable sub-step. Texts are
    embedded behind the run's policy (a remote embedder is a model provider: allowed providers,
    kill switches, ``pii_local_only``, ``redact: [prompts]``), whoever chose the embedder."""

    def __init__(self, ctx: StepContext, memory: Memory) -> None:
        self.ctx = ctx
        self.memory = memory
        self._writes = 0
        self._governed: Memory | None = None

    async def _call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        await self.memory.open()
        target = self.memory
        if method in ("remember", "recall"):  # the calls that embed a step's text
            if self._governed is None:
                what = f"memory {method}"
                self._governed = self.memory.with_embedder(governed(self.memory.embedder, self.ctx, what))
            target = self._governed
        return await self.ctx.call(getattr(target, method), *args, name=name, **kwargs)

    def _id(self) -> str:
        self._writes += 1
        key = f"{self.ctx.idempotency_key}/remember/{self._writes}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    async def remember(self, entity: str, text: str, **options: Any) -> MemoryItem:
        options.setdefault("id", self._id())
        options.setdefault("run_id", self.ctx.run_id)
        options.setdefault("step", self.ctx.step_id)
        result: MemoryItem = await self._call("remember", "remember", entity, text, **options)
        return result

    async def recall(
        self, entity: str | None = None, query: str | None = None, **options: Any
    ) -> list[MemoryItem]:
        result: list[MemoryItem] = await self._call("recall", "recall", entity, query, **options)
        return result

    async def upsert_entity(self, id: str, **options: Any) -> Entity:
        result: Entity = await self._call("upsert_entity", "upsert_entity", id, **options)
        return result

    async def relate(
        self, src: str, relation: str, dst: str, properties: Mapping[str, Any] | None = None
    ) -> Relation:
        result: Relation = await self._call("relate", "relate", src, relation, dst, properties)
        return result

    async def neighbors(self, id: str, **options: Any) -> list[Reached]:
        result: list[Reached] = await self._call("neighbors", "neighbors", id, **options)
        return result

    async def follow(self, id: str, *path: str, **options: Any) -> list[Reached]:
        result: list[Reached] = await self._call("follow", "follow", id, *path, **options)
        return result

    async def forget(self, entity: str, *, values: Sequence[str] = (), reason: str = "") -> Erasure:
        # Erasure re-embeds texts the memory's embedder already had (with the entity taken out): it
        # is not stopped half way by a policy on that embedder.
        result: Erasure = await self._call("forget", "forget", entity, values=values, reason=reason)
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
