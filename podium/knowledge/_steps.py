"""Knowledge from inside a step: ``retrieve`` and ``ingest`` as durable calls on the run store's
knowledge bases."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..memory import Memory, memory_for
from ..memory._steps import store_of
from ._kb import KnowledgeBase, format_context

if TYPE_CHECKING:
    from ..engine.context import StepContext

_BASES: weakref.WeakKeyDictionary[Memory, dict[str, KnowledgeBase]] = weakref.WeakKeyDictionary()


def knowledge_base(memory: Memory, name: str) -> KnowledgeBase:
    """The knowledge base ``name`` in ``memory``'s database (one object per memory and name)."""
    bases = _BASES.setdefault(memory, {})
    if name not in bases:
        bases[name] = KnowledgeBase(memory, name)
    return bases[name]


def _memory(ctx: StepContext | None, memory: Memory | None) -> Memory:
    if memory is not None:
        return memory
    if ctx is None:
        raise ValueError("retrieve/ingest need a step context (ctx) or memory=")
    return memory_for(store_of(ctx))


async def _governed(ctx: StepContext, base: KnowledgeBase) -> KnowledgeBase:
    """``base`` as a step uses it: its embedder (a model provider, chosen when the base was built)
    behind the run's policy."""
    from ..memory._embedder import governed

    return await base.through(lambda e: governed(e, ctx, f"knowledge base {base.name!r}"))


async def _search(kb: KnowledgeBase, query: str, k: int, where: Any, hybrid: bool) -> dict[str, Any]:
    passages = await kb.search(query, k=k, where=where, hybrid=hybrid)
    return {
        "passages": [
            {**dataclasses.asdict(p), "citation": p.citation, "ref": f"[{i}]"}
            for i, p in enumerate(passages, 1)
        ],
        "context": format_context(passages),
        "citations": [f"[{i}] {p.citation} ({p.source})" for i, p in enumerate(passages, 1)],
    }


async def retrieve(
    ctx: StepContext | None,
    kb: str,
    query: str,
    *,
    k: int = 5,
    where: Mapping[str, Any] | None = None,
    hybrid: bool = False,
    memory: Memory | None = None,
) -> dict[str, Any]:
    """Retrieve passages from knowledge base ``kb`` as a durable sub-step (``step/retrieve``).

    Returns ``passages`` (text, score, source, title, page, heading, metadata, citation, ref),
    ``context`` (the passages numbered ``[1]``... with their citations, for a prompt) and
    ``citations`` (the numbered source list, for an answer)."""
    base = knowledge_base(_memory(ctx, memory), kb)
    if ctx is None:
        return await _search(base, query, k, dict(where) if where else None, hybrid)
    base = await _governed(ctx, base)
    args = (base, query, k, dict(where) if where else None, hybrid)
    result: dict[str, Any] = await ctx.call(_search, *args, name="retrieve")
    return result


async def _ingest(kb: KnowledgeBase, paths: list[str], metadata: Any) -> dict[str, Any]:
    report = await kb.ingest(paths, metadata=metadata)
    out = dataclasses.asdict(report)
    out["duplicates"] = [list(d) for d in report.duplicates]
    return out


async def ingest(
    ctx: StepContext | None,
    kb: str,
    paths: str | Sequence[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    memory: Memory | None = None,
) -> dict[str, Any]:
    """Ingest files or folders into ``kb`` as a durable sub-step; returns the ingest report."""
    base = knowledge_base(_memory(ctx, memory), kb)
    listed = [paths] if isinstance(paths, str) else list(paths)
    if ctx is None:
        return await _ingest(base, listed, metadata)
    base = await _governed(ctx, base)
    result: dict[str, Any] = await ctx.call(
        _ingest, base, listed, dict(metadata) if metadata else None, name="kb_ingest"
    )
    return result
