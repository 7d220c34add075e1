"""Erasure inside knowledge bases: called by ``Memory.forget`` when the knowledge tables exist."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._redact import redact_stored, stored_forms
from .._sqldb import Database, redact_json, replace_text
from ..vectors import VectorIndex


async def redact_chunks(db: Database, vectors: VectorIndex, forms: Sequence[str], replacement: str) -> int:
    """Replace ``forms`` wherever a knowledge base keeps them: chunk text and chunk metadata (title,
    heading and the metadata given at ingest, also kept with each vector), and each document's
    title and metadata. Changed chunks are embedded again, their vectors stored with the redacted
    metadata. Returns how many chunks changed (documents are counted in their chunks)."""
    from ..memory._embedder import resolve_embedder

    find = "strpos" if db.dialect == "postgres" else "instr"
    changed: dict[str, tuple[str, str, str]] = {}
    for f in stored_forms(forms):
        for r in await db.fetchall(
            f"SELECT id, kb, text, metadata FROM kb_chunks WHERE {find}(text, ?) > 0 OR {find}(metadata, ?) > 0",
            (f, f),
        ):
            changed[r[0]] = (r[1], r[2], r[3])
    for f in forms:
        await replace_text(db, "kb_documents", "title", f, replacement, key="source")
    await redact_json(db, "kb_documents", "metadata", "kb, source", forms, replacement)
    if not changed:
        return 0
    embedders = dict(await db.fetchall("SELECT name, embedder FROM kb_bases"))
    for chunk_id, (kb, text, meta) in changed.items():
        for f in forms:
            text = text.replace(f, replacement)
        meta, _ = redact_stored(meta or "{}", forms, replacement)
        async with db.transaction() as tx:
            await tx.execute("UPDATE kb_chunks SET text=?, metadata=? WHERE id=?", (text, meta, chunk_id))
            if db.dialect == "sqlite":
                await tx.execute("UPDATE kb_fts SET text=? WHERE chunk_id=?", (text, chunk_id))
        embedder = resolve_embedder(embedders[kb])
        vec = await embedder.embed([text])
        await vectors.upsert(f"kb:{kb}", [chunk_id], vec, [json.loads(meta)])
    return len(changed)
