"""Memory: run state, long-term memory keyed by entity, and the entity graph.

::

    from podium import memory

    async with memory.Memory("sqlite:///podium.db") as mem:          # or a Store, or memory://
        await mem.remember("customer:42", "prefers email", kind="fact")
        await mem.relate("ticket:T1", "affects", "renewal:R9")
        facts = await mem.recall("customer:42", "how to contact them?", k=3)

    @wf.step
    async def triage(ctx, input):
        mem = memory.of(ctx)                  # the run store's memory; every call is durable
        state = memory.run_state(ctx)         # key-value state shared by the run's steps

The tables live beside the run store's (same file or database) with their own migrations. See
``docs/memory.md``.
"""

from __future__ import annotations

from ._base import MemoryBackend
from ._memory import Memory, resolve_embedder
from ._records import Entity, Erasure, MemoryItem, Reached, Relation, Retention
from ._state import RunState, run_state
from ._steps import StepMemory, attach, memory_for, of

__all__ = [
    "Entity",
    "Erasure",
    "Memory",
    "MemoryBackend",
    "MemoryItem",
    "Reached",
    "Relation",
    "Retention",
    "RunState",
    "StepMemory",
    "attach",
    "memory_for",
    "of",
    "resolve_embedder",
    "run_state",
]
