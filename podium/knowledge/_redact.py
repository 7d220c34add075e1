"""Erasure inside knowledge bases: called by ``Memory.forget`` when the knowledge tables exist."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._sqldb import Database
from ..vectors import VectorIndex


async def redact_chunks(db: Database, vectors: VectorIndex, forms: Sequence[str], replacement: str) -> int:
    """Replace ``forms`` in chunk text and embed the changed chunks again; returns how many."""
    from ..memory._embedder import resolve_embedder

    find = "strpos" if db.dialect == "postgres" else "instr"
    changed: dict[str, tuple[str, str, str]] = {}
    for f in forms:
        for r in await db.fetchall(
            f"SELECT id, kb, text, metadata FROM kb_chunks WHERE {find}(text, ?) > 0", (f,)
        ):
            changed[r[0]] = (r[1], r[2], r[3])
    if not changed:
        return 0
    embedders = dict(await db.fetchall("SELECT name, embedder FROM kb_bases"))
    for chunk_id, (kb, text, meta) in changed.items():
        for f in forms:
            text = text.replace(f, replacement)
        async with db.transaction() as tx:
            await tx.execute("UPDATE kb_chunks SET text=? WHERE id=?", (text, chunk_id))
            if db.dialect == "sqlite":
                await tx.execute("UPDATE kb_fts SET text=? WHERE chunk_id=?", (text, chunk_id))
        embedder = resolve_embedder(embedders[kb])
        vec = await embedder.embed([text])
        await vectors.upsert(f"kb:{kb}", [chunk_id], vec, [json.loads(meta or "{}")])
    return len(changed)
