"""Memory steps for YAML workflows: ``uses: remember``, ``recall``, ``entity``, ``relate``,
``graph_query``, ``run_state`` and ``forget``.

They are registered through the ``podium.step_types`` entry-point group (pyproject.toml), which the
YAML loader reads the first time a kind is missing; :func:`register` adds them to a registry by
hand. Each one calls the same durable helpers as Python steps (:func:`podium.memory.of`)::

    - id: history
      uses: recall
      with: {entity: "customer:{{ input.customer }}", query: "{{ input.text }}", k: 5}
    - id: note
      uses: remember
      with: {entity: "customer:{{ input.customer }}", text: "opened ticket {{ input.ticket }}", kind: event}
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from typing import Any

from ._records import MemoryItem, Reached
from ._state import run_state
from ._steps import of


def _item(i: MemoryItem) -> dict[str, Any]:
    return dataclasses.asdict(i)


def _reached(r: Reached) -> dict[str, Any]:
    return {
        "id": r.entity.id,
        "type": r.entity.type,
        "properties": r.entity.properties,
        "hops": r.hops,
        "path": [[e.src, e.relation, e.dst] for e in r.path],
    }


async def _remember(
    ctx: Any,
    entity: str,
    text: str,
    kind: str = "fact",
    data: Any = None,
    metadata: dict[str, Any] | None = None,
    ttl: float | None = None,
) -> dict[str, Any]:
    """Stores a fact, event or summary about an entity; returns the item."""
    return _item(await of(ctx).remember(entity, text, kind=kind, data=data, metadata=metadata, ttl=ttl))


async def _recall(
    ctx: Any,
    entity: str | None = None,
    query: str | None = None,
    kind: Any = None,
    k: int = 10,
    within: float | None = None,
    where: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Recalls an entity's memories, newest or (with query) most similar first; items and text."""
    since = time.time() - within if within is not None else None
    k = max(1, min(int(k), 1000))  # a template fills k from the input too: never everything
    items = await of(ctx).recall(entity, query, kind=kind, k=k, since=since, where=where)
    return {"items": [_item(i) for i in items], "text": "\n".join(f"- ({i.kind}) {i.text}" for i in items)}


async def _entity(
    ctx: Any, id: str, type: str | None = None, properties: dict[str, Any] | None = None, merge: bool = True
) -> dict[str, Any]:
    """Creates or updates an entity of the graph; returns it."""
    return dataclasses.asdict(await of(ctx).upsert_entity(id, type=type, properties=properties, merge=merge))


async def _relate(
    ctx: Any, src: str, relation: str, dst: str, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Adds (or updates) the typed relation src -relation-> dst."""
    return dataclasses.asdict(await of(ctx).relate(src, relation, dst, properties))


async def _graph_query(
    ctx: Any,
    start: str,
    hops: int = 1,
    relations: list[str] | None = None,
    direction: str = "both",
    path: list[str] | None = None,
    type: Any = None,
    where: dict[str, Any] | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Entities near start (hops, relations, direction) or at the end of a relation path."""
    mem = of(ctx)
    limit = max(1, min(int(limit), 1000))  # a template fills it from the input too: never everything
    if path:  # bounded like neighbors: a path from a hub reaches every entity of a kind
        found = await mem.follow(start, *path, type=type, where=where, limit=limit)
    else:
        found = await mem.neighbors(
            start, hops=hops, relations=relations, direction=direction, type=type, where=where, limit=limit
        )
    return {"entities": [_reached(r) for r in found], "ids": [r.entity.id for r in found]}


async def _run_state(
    ctx: Any, set: dict[str, Any] | None = None, get: list[str] | None = None
) -> dict[str, Any]:
    """Sets and/or reads this run's shared state; returns the keys asked for (default: all)."""
    state = run_state(ctx)
    if set:
        await state.update(set)
    everything = await state.all()
    return {k: everything.get(k) for k in get} if get is not None else everything


async def _forget(ctx: Any, entity: str, values: list[str] | None = None, reason: str = "") -> dict[str, Any]:
    """Erases an entity from memory, vectors, graph and run payloads; returns the erasure record."""
    await _may_erase(ctx)
    return dataclasses.asdict(await of(ctx).forget(entity, values=values or (), reason=reason))


async def _may_erase(ctx: Any) -> None:
    """Erasure rewrites every run's stored payloads and deletes an entity everywhere: ``podium memory
    forget`` needs ``memory.forget``, and so does a workflow file's ``forget`` step, from whoever
    started the run (the signed audit log says who; never the run's input). A replayed step was
    checked when it ran."""
    if ctx.replaying("forget"):
        return
    from ..governance.enforcement import audit
    from ..governance.policy import PolicyViolation

    who = await ctx.started_by()
    if who is not None and who.can("memory.forget"):
        return
    await audit(ctx, "policy.refuse", reason="memory.forget", by=who.name if who else None)
    starter = f"{who.name!r} (roles: {', '.join(who.roles) or 'none'})" if who else "nobody the audit log names"
    raise PolicyViolation(
        f"step {ctx.step_id!r} (forget): run {ctx.run_id} was started by {starter}, who does not hold "
        "memory.forget; erasure rewrites every run's stored data, so the step runs only for a starter "
        "who may erase (as podium memory forget does). Start the run as such a user (an admin, or a "
        "role with memory.forget: podium users role NAME memory.forget)"
    )


_S: dict[str, Any] = {"type": "string"}
_OBJ: dict[str, Any] = {"type": "object"}
_KINDS_ARG: dict[str, Any] = {"anyOf": [_S, {"type": "array", "items": _S}]}
KINDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "remember": (
        _remember,
        {
            "properties": {
                "entity": {**_S, "description": "type:key, e.g. customer:42"},
                "text": _S,
                "kind": {**_S, "default": "fact", "description": "fact, event, summary or any name"},
                "data": {},
                "metadata": _OBJ,
                "ttl": {"type": "number", "minimum": 0, "description": "seconds until it expires"},
            },
            "required": ["entity", "text"],
        },
    ),
    "recall": (
        _recall,
        {
            "properties": {
                "entity": _S,
                "query": {**_S, "description": "rank by similarity to this text (default: newest first)"},
                "kind": _KINDS_ARG,
                "k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                "within": {
                    "type": "number",
                    "minimum": 0,
                    "description": "only items from the last N seconds",
                },
                "where": {**_OBJ, "description": "metadata equal to these values (a list: one of)"},
            },
        },
    ),
    "entity": (
        _entity,
        {
            "properties": {
                "id": _S,
                "type": _S,
                "properties": _OBJ,
                "merge": {"type": "boolean", "default": True},
            },
            "required": ["id"],
        },
    ),
    "relate": (
        _relate,
        {
            "properties": {"src": _S, "relation": _S, "dst": _S, "properties": _OBJ},
            "required": ["src", "relation", "dst"],
        },
    ),
    "graph_query": (
        _graph_query,
        {
            "properties": {
                "start": _S,
                "hops": {"type": "integer", "minimum": 1, "maximum": 6, "default": 1},
                "relations": {"type": "array", "items": _S},
                "direction": {"type": "string", "enum": ["out", "in", "both"], "default": "both"},
                "path": {
                    "type": "array",
                    "items": _S,
                    "description": "relations to follow; '<rel' goes backwards",
                },
                "type": _KINDS_ARG,
                "where": _OBJ,
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000,
                    "default": 100,
                    "description": "at most this many entities (with path too)",
                },
            },
            "required": ["start"],
        },
    ),
    "run_state": (
        _run_state,
        {"properties": {"set": _OBJ, "get": {"type": "array", "items": _S}}},
    ),
    "forget": (
        _forget,
        {
            "properties": {"entity": _S, "values": {"type": "array", "items": _S}, "reason": _S},
            "required": ["entity"],
        },
    ),
}


def step_types(kinds: dict[str, tuple[Any, dict[str, Any]]] | None = None) -> list[Any]:
    """The step types, as ``podium.yaml.StepType``s (the YAML package is imported here)."""
    registry = importlib.import_module("podium.yaml._registry")
    return [
        registry.StepType(
            name=name,
            fn=fn,
            args={"type": "object", **schema, "additionalProperties": False},
            description=(fn.__doc__ or "").split("\n")[0],
        )
        for name, (fn, schema) in (kinds or KINDS).items()
    ]


def register(registry: Any = None, *, replace: bool = False) -> None:
    """Add these kinds to ``registry`` (default: ``podium.yaml.default_registry``) by hand."""
    target = registry or importlib.import_module("podium.yaml").default_registry
    for t in step_types():
        if replace or t.name not in target.names():
            target.add(t, replace=replace)


def __getattr__(name: str) -> Any:
    # Entry points name podium.memory.yaml_steps:remember_step and so on.
    kind = name.removesuffix("_step")
    if name.endswith("_step") and kind in KINDS:
        return next(t for t in step_types() if t.name == kind)
    raise AttributeError(name)
