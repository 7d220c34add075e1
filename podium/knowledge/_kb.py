""":class:`KnowledgeBase`: ingest documents into chunks with vectors, and retrieve them with citations."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..embeddings import Embedder
from ..errors import ConfigError
from ..governance.files import Confined
from ..memory import Memory
from ..vectors import matches
from ._chunking import chunk_text
from ._loaders import Document, discover, load
from ._schema import MIGRATIONS

_WORD = re.compile(r"\w+", re.UNICODE)
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
EMBED_BATCH = 64
"""Chunks of one document embedded per call: a large file reports its progress between batches."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Passage:
    """A retrieved chunk and where it comes from."""

    id: str
    text: str
    score: float
    """Cosine similarity (vector search) or the fused rank score (hybrid)."""
    source: str
    title: str
    page: int | None = None
    heading: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def citation(self) -> str:
        """``title, p. 3`` / ``title § heading``: how a prompt or an answer names the source."""
        if self.page:
            where = f", p. {self.page}"
        elif self.heading and self.heading != self.title:
            where = f" § {self.heading}"
        else:
            where = ""
        return f"{self.title}{where}"


def format_context(passages: Sequence[Passage]) -> str:
    """Passages numbered ``[1]``, ``[2]``... with their citations, ready to put in a prompt; ask
    the model to cite the numbers."""
    return "\n\n".join(f"[{i}] ({p.citation}; {p.source})\n{p.text}" for i, p in enumerate(passages, 1))


@dataclass(kw_only=True, slots=True)
class IngestReport:
    """What one ingest did."""

    added: int = 0
    """New documents."""
    updated: int = 0
    """Documents whose content changed (only their changed chunks were embedded)."""
    unchanged: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """``(source, duplicate_of)``: same content as a document already in the base; not stored twice."""
    chunks_embedded: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds else 0.0


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _terms(query: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:32]


class KnowledgeBase:
    """A named collection of documents for retrieval (RAG).

    ::

        kb = KnowledgeBase(memory, "handbook")        # a Memory gives the database and vectors
        await kb.ingest("docs/")                      # .txt .md .html .pdf; changed files only
        for p in await kb.search("refund policy", k=5, where={"type": "markdown"}):
            print(p.citation, p.score, p.text)

    :param embedder: fixed when the base is created (default: the memory's embedder); opening an
        existing base with another one is an error, since their vectors would not be comparable.
    :param chunk_size: characters per chunk (at most); ``overlap``: characters repeated between chunks.
    """

    def __init__(
        self,
        memory: Memory,
        name: str,
        *,
        embedder: str | Embedder | None = None,
        chunk_size: int = 1000,
        overlap: int = 150,
    ) -> None:
        if not name or not re.fullmatch(r"[\w.-]+", name):
            raise ConfigError(f"knowledge base name {name!r}: use letters, digits, '_', '-' and '.'")
        self.memory = memory
        self.name = name
        self._embedder_spec = embedder
        self._embedder: Embedder | None = None
        self.chunk_size = chunk_size
        self.overlap = overlap

    @property
    def db(self) -> Any:
        return self.memory.db

    @property
    def collection(self) -> str:
        return f"kb:{self.name}"

    async def open(self) -> KnowledgeBase:
        if self._embedder is not None:
            return self
        await self.memory.open()
        await self.db.migrate("knowledge", MIGRATIONS[self.db.dialect])
        from ..memory import resolve_embedder

        row = await self.db.fetchone("SELECT embedder FROM kb_bases WHERE name=?", (self.name,))
        wanted = self._embedder_spec
        if row is not None:
            if wanted is not None and resolve_embedder(wanted).name != row[0]:
                raise ConfigError(
                    f"knowledge base {self.name!r} was built with embedder {row[0]!r}, not "
                    f"{resolve_embedder(wanted).name!r}: use that one, or delete the base and ingest again"
                )
            self._embedder = resolve_embedder(wanted or row[0])
        else:
            self._embedder = resolve_embedder(wanted) if wanted is not None else self.memory.embedder
            await self.db.execute(
                "INSERT INTO kb_bases (name, embedder, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (self.name, self._embedder.name, time.time()),
            )
        return self

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise RuntimeError("open the knowledge base first: await kb.open()")
        return self._embedder

    async def through(self, wrap: Callable[[Embedder], Embedder]) -> KnowledgeBase:
        """This base (opened) embedding through ``wrap(its embedder)``: a step's view, whose
        embedder has the run's policy in front of the model; the vectors are the same."""
        await self.open()
        view = KnowledgeBase(
            self.memory, self.name, embedder=wrap(self.embedder), chunk_size=self.chunk_size, overlap=self.overlap
        )
        return await view.open()

    # -- ingest ------------------------------------------------------------------------------------

    async def ingest(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str] | Document],
        *,
        metadata: Mapping[str, Any] | None = None,
        progress: Callable[[int, int, str], None] | None = None,
        chunk_progress: Callable[[int, int, str], None] | None = None,
    ) -> IngestReport:
        """Ingest files, folders (every supported file inside) or :class:`Document`s. A document
        whose content is unchanged since its last ingest is skipped; a changed one gets only its
        new chunks embedded and its vanished chunks removed. ``progress(done, total, source)`` is
        called before each document (for a progress bar); ``chunk_progress(done, total, source)``
        after each batch of a document's new chunks is embedded (:data:`EMBED_BATCH` a batch: a
        large file's progress), from ``(0, total, source)`` to ``(total, total, source)``."""
        await self.open()
        started = time.perf_counter()
        report = IngestReport()
        items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        files: list[Any] = []
        for item in items:
            files += [item] if isinstance(item, Document | Confined) else discover(item)
        for i, f in enumerate(files):
            if progress is not None:
                progress(i, len(files), str(f.source if isinstance(f, Document) else f))
            doc = f if isinstance(f, Document) else load(f)
            await self._ingest_one(doc, dict(metadata or {}), report, chunk_progress)
        if progress is not None:
            progress(len(files), len(files), "")
        report.seconds = time.perf_counter() - started
        return report

    async def _ingest_one(
        self,
        doc: Document,
        extra: dict[str, Any],
        report: IngestReport,
        chunk_progress: Callable[[int, int, str], None] | None = None,
    ) -> None:
        digest = _sha(doc.type, doc.title, doc.text, json.dumps(extra, sort_keys=True, default=str))
        db = self.db
        row = await db.fetchone(
            "SELECT content_hash FROM kb_documents WHERE kb=? AND source=?", (self.name, doc.source)
        )
        if row is not None and row[0].partition(":")[0] == digest:
            report.unchanged += 1
            return
        content = _sha(doc.text)
        twin = await db.fetchone(
            "SELECT source FROM kb_documents WHERE kb=? AND content_hash LIKE ? AND source <> ?",
            (self.name, f"%:{content}", doc.source),
        )
        if twin is not None:
            report.duplicates.append((doc.source, twin[0]))
            return
        chunks: dict[str, tuple[str, dict[str, Any]]] = {}
        for text, section_meta in doc.sections:
            for c in chunk_text(text, size=self.chunk_size, overlap=self.overlap):
                meta = {**extra, "source": doc.source, "title": doc.title, "type": doc.type, **section_meta}
                if c.heading:
                    meta["heading"] = c.heading
                chunks.setdefault(
                    _sha(self.name, doc.source, c.text, json.dumps(meta, sort_keys=True)), (c.text, meta)
                )
        old = {
            r[0]
            for r in await db.fetchall(
                "SELECT id FROM kb_chunks WHERE kb=? AND source=?", (self.name, doc.source)
            )
        }
        new_ids = [i for i in chunks if i not in old]
        gone = sorted(old - set(chunks))
        vectors = await self._embed([chunks[i][0] for i in new_ids], doc.source, chunk_progress) if new_ids else None
        async with db.transaction() as tx:
            for seq, (chunk_id, (text, meta)) in enumerate(chunks.items()):
                if chunk_id in old:
                    await tx.execute("UPDATE kb_chunks SET seq=? WHERE id=?", (seq, chunk_id))
                    continue
                await tx.execute(
                    "INSERT INTO kb_chunks (id, kb, source, seq, text, metadata) VALUES (?, ?, ?, ?, ?, ?)",
                    (chunk_id, self.name, doc.source, seq, text, json.dumps(meta)),
                )
                if db.dialect == "sqlite":
                    await tx.execute(
                        "INSERT INTO kb_fts (text, chunk_id, kb) VALUES (?, ?, ?)",
                        (text, chunk_id, self.name),
                    )
            for chunk_id in gone:
                await tx.execute("DELETE FROM kb_chunks WHERE id=?", (chunk_id,))
                if db.dialect == "sqlite":
                    await tx.execute("DELETE FROM kb_fts WHERE chunk_id=?", (chunk_id,))
            await tx.execute(
                "INSERT INTO kb_documents (kb, source, content_hash, title, type, metadata, chunks, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kb, source) DO UPDATE SET "
                "content_hash=excluded.content_hash, title=excluded.title, type=excluded.type, "
                "metadata=excluded.metadata, chunks=excluded.chunks, updated_at=excluded.updated_at",
                (self.name, doc.source, f"{digest}:{content}", doc.title, doc.type, json.dumps(extra),
                 len(chunks), time.time()),
            )  # fmt: skip
        if new_ids:
            await self.memory.vectors.upsert(
                self.collection, new_ids, vectors, [chunks[i][1] for i in new_ids]
            )
        await self.memory.vectors.delete(self.collection, gone)
        report.chunks_embedded += len(new_ids)
        report.chunks_removed += len(gone)
        if row is None:
            report.added += 1
        else:
            report.updated += 1

    async def _embed(self, texts: list[str], source: str, progress: Callable[[int, int, str], None] | None) -> Any:
        """The vectors of ``texts`` (one document's new chunks), in batches told to ``progress``."""
        if progress is None or len(texts) <= EMBED_BATCH:
            if progress is not None:
                progress(0, len(texts), source)
            vectors = await self.embedder.embed(texts)
            if progress is not None:
                progress(len(texts), len(texts), source)
            return vectors
        rows: list[Any] = []
        progress(0, len(texts), source)
        for at in range(0, len(texts), EMBED_BATCH):
            rows.extend(await self.embedder.embed(texts[at : at + EMBED_BATCH]))
            progress(len(rows), len(texts), source)
        return rows

    async def remove(self, source: str) -> bool:
        """Delete a document and its chunks."""
        await self.open()
        ids = [
            r[0]
            for r in await self.db.fetchall(
                "SELECT id FROM kb_chunks WHERE kb=? AND source=?", (self.name, source)
            )
        ]
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM kb_chunks WHERE kb=? AND source=?", (self.name, source))
            if self.db.dialect == "sqlite":
                for i in ids:
                    await tx.execute("DELETE FROM kb_fts WHERE chunk_id=?", (i,))
            n = await tx.execute("DELETE FROM kb_documents WHERE kb=? AND source=?", (self.name, source))
        await self.memory.vectors.delete(self.collection, ids)
        return n > 0

    async def documents(self) -> list[dict[str, Any]]:
        """Every document: source, title, type, chunks, updated_at."""
        await self.open()
        rows = await self.db.fetchall(
            "SELECT source, title, type, chunks, updated_at FROM kb_documents WHERE kb=? ORDER BY source",
            (self.name,),
        )
        return [dict(zip(("source", "title", "type", "chunks", "updated_at"), r, strict=True)) for r in rows]

    # -- retrieval ---------------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        k: int = 5,
        where: Mapping[str, Any] | None = None,
        hybrid: bool = False,
    ) -> list[Passage]:
        """The ``k`` chunks closest to ``query``, best first, among those whose metadata matches
        ``where`` (source, title, type, page, heading and the metadata given at ingest). With
        ``hybrid``, keyword matches (BM25 on SQLite, ``ts_rank`` on PostgreSQL) are fused with the
        vector ranking by reciprocal rank fusion."""
        await self.open()
        qvec = (await self.embedder.embed([query]))[0]
        depth = k * 4 if hybrid else k
        hits = await self.memory.vectors.search(self.collection, qvec, depth, where=where)
        if not hybrid:
            rows = await self._chunks([h.id for h in hits])
            return [self._passage(rows[h.id], h.score) for h in hits if h.id in rows]
        keyword = await self._keyword(query, depth * 2)
        kw_rows = await self._chunks(keyword)
        keyword = [i for i in keyword if i in kw_rows and matches(json.loads(kw_rows[i][3] or "{}"), where)][
            :depth
        ]
        fused: dict[str, float] = {}
        for ranking in ([h.id for h in hits], keyword):
            for rank, chunk_id in enumerate(ranking, 1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=lambda i: -fused[i])[:k]
        rows = await self._chunks(best)
        return [self._passage(rows[i], fused[i]) for i in best if i in rows]

    async def _keyword(self, query: str, limit: int) -> list[str]:
        terms = _terms(query)
        if not terms:
            return []
        if self.db.dialect == "sqlite":
            match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
            rows = await self.db.fetchall(
                "SELECT chunk_id FROM kb_fts WHERE kb_fts MATCH ? AND kb=? ORDER BY bm25(kb_fts) LIMIT ?",
                (match, self.name, limit),
            )
        else:
            tsq = " | ".join("'" + t.replace("'", "") + "'" for t in terms)
            rows = await self.db.fetchall(
                "SELECT id FROM kb_chunks, to_tsquery('english', ?) q WHERE kb=? AND tsv @@ q "
                "ORDER BY ts_rank(tsv, q) DESC, id LIMIT ?",
                (tsq, self.name, limit),
            )
        return [r[0] for r in rows]

    async def _chunks(self, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        if not ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT id, source, text, metadata FROM kb_chunks WHERE id IN ({','.join('?' * len(ids))})",
            list(ids),
        )
        return {r[0]: r for r in rows}

    @staticmethod
    def _passage(row: Sequence[Any], score: float) -> Passage:
        meta = json.loads(row[3] or "{}")
        return Passage(
            id=row[0],
            text=row[2],
            score=score,
            source=row[1],
            title=meta.get("title", row[1]),
            page=meta.get("page"),
            heading=meta.get("heading"),
            metadata=meta,
        )


async def knowledge_bases(memory: Memory) -> list[dict[str, Any]]:
    """Every knowledge base in the memory's database: name, embedder, documents, chunks."""
    await memory.open()
    await memory.db.migrate("knowledge", MIGRATIONS[memory.db.dialect])
    rows = await memory.db.fetchall(
        "SELECT b.name, b.embedder, count(d.source), COALESCE(sum(d.chunks), 0) FROM kb_bases b "
        "LEFT JOIN kb_documents d ON d.kb = b.name GROUP BY b.name, b.embedder ORDER BY b.name"
    )
    return [dict(zip(("name", "embedder", "documents", "chunks"), r, strict=True)) for r in rows]
