"""The entity graph in SQL: entities and typed relations, walked one hop per query.

Walks are breadth-first with one indexed query per hop (``src IN (...)`` / ``dst IN (...)``), which
is portable across SQLite and PostgreSQL and cheap for the few hops business questions need.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._sqldb import Database, Tx
from ..vectors import matches
from ._records import Entity, Reached, Relation

_ENTITY_COLS = "id, type, properties, created_at, updated_at"
_REL_COLS = "src, relation, dst, properties, created_at"


def default_type(entity_id: str) -> str:
    """``ticket:T1`` is a ``ticket``; an id without ``:`` is an ``entity``."""
    head, sep, _ = entity_id.partition(":")
    return head if sep and head else "entity"


def _entity(r: Sequence[Any]) -> Entity:
    return Entity(id=r[0], type=r[1], properties=json.loads(r[2] or "{}"), created_at=r[3], updated_at=r[4])


def _relation(r: Sequence[Any]) -> Relation:
    return Relation(src=r[0], relation=r[1], dst=r[2], properties=json.loads(r[3] or "{}"), created_at=r[4])


def _marks(n: int) -> str:
    return ",".join("?" * n)


async def ensure_entity(tx: Tx, entity_id: str, now: float) -> None:
    await tx.execute(
        "INSERT INTO mem_entities (id, type, properties, created_at, updated_at) VALUES (?, ?, '{}', ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (entity_id, default_type(entity_id), now, now),
    )


async def upsert_entity(
    db: Database, id: str, type: str | None, properties: Mapping[str, Any] | None, merge: bool
) -> Entity:
    now = time.time()
    async with db.transaction() as tx:
        row = await tx.fetchone(f"SELECT {_ENTITY_COLS} FROM mem_entities WHERE id=?", (id,))
        if row is None:
            props = dict(properties or {})
            await tx.execute(
                "INSERT INTO mem_entities (id, type, properties, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (id, type or default_type(id), json.dumps(props), now, now),
            )
        else:
            old = _entity(row)
            props = {**old.properties, **(properties or {})} if merge else dict(properties or {})
            await tx.execute(
                "UPDATE mem_entities SET type=?, properties=?, updated_at=? WHERE id=?",
                (type or old.type, json.dumps(props), now, id),
            )
        row = await tx.fetchone(f"SELECT {_ENTITY_COLS} FROM mem_entities WHERE id=?", (id,))
    assert row is not None
    return _entity(row)


async def get_entities(db: Database, ids: Sequence[str]) -> dict[str, Entity]:
    out: dict[str, Entity] = {}
    ids = list(ids)
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        rows = await db.fetchall(
            f"SELECT {_ENTITY_COLS} FROM mem_entities WHERE id IN ({_marks(len(part))})", part
        )
        out.update((r[0], _entity(r)) for r in rows)
    return out


async def find_entities(
    db: Database, type: str | None, where: Mapping[str, Any] | None, limit: int, search: str | None = None
) -> list[Entity]:
    conds: list[str] = []
    params: list[Any] = []
    if type is not None:
        conds.append("type=?")
        params.append(type)
    if search:
        # LIKE with the text's own % and _ escaped; lower() on both sides (PostgreSQL's LIKE is
        # case-sensitive, SQLite's is not for ASCII only).
        conds.append("lower(id) LIKE ? ESCAPE '!'")
        params.append("%" + _like(search.lower()) + "%")
    sql = f"SELECT {_ENTITY_COLS} FROM mem_entities"
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    # Ids by code point on both dialects (PostgreSQL's default collation orders otherwise); with a
    # search, the ids that start with it first.
    by_id = 'id COLLATE "C"' if db.dialect == "postgres" else "id"
    if search:
        sql += f" ORDER BY CASE WHEN lower(id) LIKE ? ESCAPE '!' THEN 0 ELSE 1 END, {by_id}"
        params.append(_like(search.lower()) + "%")
    else:
        sql += f" ORDER BY {by_id}"
    # A page at a time, never the whole graph: `where` is matched here, on the properties' JSON.
    page = min(max(limit, 50), 500)
    found: list[Entity] = []
    offset = 0
    while len(found) < limit:
        rows = await db.fetchall(f"{sql} LIMIT {page} OFFSET {offset}", params)
        found += [e for e in map(_entity, rows) if matches(e.properties, where)]
        if len(rows) < page:
            break
        offset += page
    return found[:limit]


def _like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


async def relate(
    db: Database, src: str, relation: str, dst: str, properties: Mapping[str, Any] | None
) -> Relation:
    now = time.time()
    async with db.transaction() as tx:
        await ensure_entity(tx, src, now)
        await ensure_entity(tx, dst, now)
        await tx.execute(
            f"INSERT INTO mem_relations ({_REL_COLS}) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (src, relation, dst) DO UPDATE SET properties = excluded.properties",
            (src, relation, dst, json.dumps(dict(properties or {})), now),
        )
        row = await tx.fetchone(
            f"SELECT {_REL_COLS} FROM mem_relations WHERE src=? AND relation=? AND dst=?",
            (src, relation, dst),
        )
    assert row is not None
    return _relation(row)


async def edges(
    db: Database, frontier: Sequence[str], direction: str, relations: Sequence[str] | None
) -> list[tuple[str, Relation]]:
    """Edges touching ``frontier``, each with the node at its far end."""
    out: list[tuple[str, Relation]] = []
    nodes = list(frontier)
    rel_sql = f" AND relation IN ({_marks(len(relations))})" if relations else ""
    for i in range(0, len(nodes), 500):
        part = nodes[i : i + 500]
        for col, far in (("src", 2), ("dst", 0)):
            if direction == ("in" if col == "src" else "out"):
                continue
            rows = await db.fetchall(
                f"SELECT {_REL_COLS} FROM mem_relations WHERE {col} IN ({_marks(len(part))}){rel_sql} "
                "ORDER BY src, relation, dst",
                [*part, *(relations or ())],
            )
            out.extend((r[far], _relation(r)) for r in rows)
    return out


def _type_ok(entity: Entity, type: str | Sequence[str] | None) -> bool:
    if type is None:
        return True
    return entity.type == type if isinstance(type, str) else entity.type in type


async def neighbors(
    db: Database,
    start: str,
    hops: int,
    relations: Sequence[str] | None,
    direction: str,
    type: str | Sequence[str] | None,
    where: Mapping[str, Any] | None,
    limit: int,
) -> list[Reached]:
    if direction not in ("out", "in", "both"):
        raise ValueError(f"direction must be 'out', 'in' or 'both', got {direction!r}")
    paths: dict[str, tuple[Relation, ...]] = {start: ()}
    frontier = [start]
    for _ in range(hops):
        nxt = []
        for far, rel in await edges(db, frontier, direction, relations):
            if far not in paths:
                near = rel.src if far == rel.dst else rel.dst
                paths[far] = (*paths[near], rel)
                nxt.append(far)
        if not nxt:
            break
        frontier = nxt
    del paths[start]
    entities = await get_entities(db, list(paths))
    found = [
        Reached(entity=entities[i], hops=len(p), path=p)
        for i, p in paths.items()
        if i in entities and _type_ok(entities[i], type) and matches(entities[i].properties, where)
    ]
    found.sort(key=lambda r: (r.hops, r.entity.id))
    return found[:limit]


async def follow(
    db: Database,
    start: str,
    path: Sequence[str],
    type: str | Sequence[str] | None,
    where: Mapping[str, Any] | None,
) -> list[Reached]:
    current: dict[str, tuple[Relation, ...]] = {start: ()}
    for step in path:
        backwards = step.startswith("<")
        relation = step.lstrip("<")
        nxt: dict[str, tuple[Relation, ...]] = {}
        for far, rel in await edges(db, list(current), "in" if backwards else "out", [relation]):
            near = rel.dst if backwards else rel.src
            nxt.setdefault(far, (*current[near], rel))
        current = nxt
        if not current:
            return []
    entities = await get_entities(db, list(current))
    found = [
        Reached(entity=entities[i], hops=len(p), path=p)
        for i, p in current.items()
        if i in entities and _type_ok(entities[i], type) and matches(entities[i].properties, where)
    ]
    return sorted(found, key=lambda r: r.entity.id)
