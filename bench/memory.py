"""Benchmarks of the memory and knowledge layer.

    python bench/memory.py                       # all, as a table
    python bench/memory.py --json                # one JSON object per line
    python bench/memory.py --only recall --memories 100000 --backends sqlite,postgres

Workloads (figures in docs/benchmarks.md):
  embed     MiniLM int8 ONNX: sentences per second, batches of 32.
  recall    latency of Memory.recall with 100k memories (384-dim vectors, 10k entities): the first
            search of a process (loading the NumPy copy from SQL), entity-scoped semantic, global
            semantic, and newest-first by entity; medians of 50. The query vector is fixed, so the
            figures are the store's and the index's work; add one query embedding (see embed).
  vecindex  exact NumPy scan vs sqlite-vec's vec0 KNN at the same size (if sqlite-vec and
            pysqlite3-binary are installed).
  ingest    chunks per second of KnowledgeBase.ingest with MiniLM (60 documents, chunking, hashing,
            embedding, SQL and FTS writes, vectors).
  quality   recall@5 and recall@1 of retrieval on the labelled set shipped with the tests
            (tests/data/kb: 30 questions over 12 documents), vector and hybrid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from podium.embeddings import Embedder  # noqa: E402
from podium.knowledge import KnowledgeBase  # noqa: E402
from podium.memory import Memory  # noqa: E402

KB = ROOT / "tests" / "data" / "kb"
PG = os.environ.get("PODIUM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SENTENCES = [q["query"] for q in json.loads((KB / "queries.json").read_text())]


class FixedEmbedder(Embedder):
    """Returns one fixed unit vector per text: recall timings without the model."""

    name = "bench:fixed384"
    dimension = 384

    def __init__(self) -> None:
        v = np.random.default_rng(7).normal(size=384).astype(np.float32)
        self.v = v / np.linalg.norm(v)

    def encode(self, texts: Any) -> Any:
        return np.tile(self.v, (len(texts), 1))


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


async def bench_embed(n: int = 512) -> dict[str, Any]:
    from podium.embeddings import get_embedder

    emb = get_embedder("local:all-minilm-l6-v2")
    texts = (SENTENCES * (n // len(SENTENCES) + 1))[:n]
    emb.encode(texts[:32])  # load the model
    t = time.perf_counter()
    emb.encode(texts)
    dt = time.perf_counter() - t
    return {"bench": "embed", "sentences": n, "sentences_per_s": round(n / dt, 1)}


async def _fill(mem: Memory, n: int, entities: int) -> float:
    """Write ``n`` memories straight into the tables (remember() one by one would time the model)."""
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    now = time.time()
    batch = 5000
    for start in range(0, n, batch):
        ids = [f"m{i}" for i in range(start, min(n, start + batch))]
        rows = [(i, f"customer:{k % entities}", "fact" if k % 3 else "event", f"memory {k}", None, "{}", now - k, None, None, None)
                for k, i in zip(range(start, start + len(ids)), ids, strict=True)]  # fmt: skip
        await mem.db.executemany(
            "INSERT INTO mem_items (id, entity, kind, text, data, metadata, created_at, expires_at, run_id, step) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        vecs = rng.normal(size=(len(ids), 384)).astype(np.float32)
        await mem.vectors.upsert(mem.collection, ids, vecs, [{"entity": r[1], "kind": r[2]} for r in rows])
    return time.perf_counter() - t


async def _pg_database() -> str:
    import psycopg

    name = f"podium_bench_{os.getpid()}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG.rsplit("/", 1)[0] + "/" + name


def _drop_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


async def bench_recall(backend: str, n: int, entities: int = 10_000, reps: int = 50) -> dict[str, Any]:
    tmp = tempfile.mkdtemp()
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp}/bench.db"}.get(backend) or await _pg_database()
    try:
        async with Memory(url, embedder=FixedEmbedder()) as mem:
            fill_s = await _fill(mem, n, entities)
            getattr(
                mem.vectors, "_cache", {}
            ).clear()  # as in a new process: the NumPy copy is loaded from SQL
            t = time.perf_counter()
            await mem.recall(None, "q", k=5)
            first = time.perf_counter() - t
            timings: dict[str, list[float]] = {
                "entity_semantic": [],
                "global_semantic": [],
                "entity_recent": [],
            }
            for r in range(reps):
                entity = f"customer:{(r * 37) % entities}"
                for key, call in (
                    ("entity_semantic", mem.recall(entity, "q", k=5)),
                    ("global_semantic", mem.recall(None, "q", k=5)),
                    ("entity_recent", mem.recall(entity, k=5)),
                ):
                    t = time.perf_counter()
                    got = await call
                    timings[key].append(time.perf_counter() - t)
                    assert got, key
            method = mem.vectors.method
        return {
            "bench": "recall", "backend": backend, "index": method, "memories": n, "fill_s": round(fill_s, 1),
            "first_search_ms": round(first * 1000, 1), **{k + "_ms": _median_ms(v) for k, v in timings.items()},
        }  # fmt: skip
    finally:
        if backend == "postgres":
            _drop_pg(url)


async def bench_vecindex(n: int, reps: int = 30) -> dict[str, Any]:
    from podium.vectors._matrix import Matrix

    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(n, 384)).astype(np.float32)
    m = Matrix(384)
    m.put([str(i) for i in range(n)], vecs, [None] * n)
    q = rng.normal(size=384).astype(np.float32)
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        m.search(q, 5)
        samples.append(time.perf_counter() - t)
    out: dict[str, Any] = {"bench": "vecindex", "vectors": n, "numpy_exact_ms": _median_ms(samples)}
    try:
        import pysqlite3 as sqlite3  # type: ignore[import-not-found]
        import sqlite_vec  # type: ignore[import-not-found]
    except ImportError:
        out["sqlite_vec"] = "not installed (pip install sqlite-vec pysqlite3-binary)"
        return out
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.execute("CREATE VIRTUAL TABLE v USING vec0(embedding float[384])")
    db.executemany(
        "INSERT INTO v(rowid, embedding) VALUES (?, ?)", [(i, vecs[i].tobytes()) for i in range(n)]
    )
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        db.execute(
            "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 5", (q.tobytes(),)
        ).fetchall()
        samples.append(time.perf_counter() - t)
    out["sqlite_vec_ms"] = _median_ms(samples)
    return out


def _documents(copies: int) -> list[Any]:
    from podium.knowledge import load

    base = [load(p) for p in sorted(KB.iterdir()) if p.suffix != ".json"]
    out = []
    for c in range(copies):
        for d in base:
            sections = [(f"Edition {c}. {t}", m) for t, m in d.sections]
            out.append(type(d)(source=f"{d.source}#{c}", title=d.title, type=d.type, sections=sections))
    return out


async def bench_ingest(copies: int = 5) -> dict[str, Any]:
    docs = _documents(copies)
    async with Memory("memory://", embedder="local:all-minilm-l6-v2") as mem:
        kb = KnowledgeBase(mem, "bench", chunk_size=400, overlap=60)
        await (await kb.open()).embedder.embed(["warm up"])
        r = await kb.ingest(docs)
        again = await kb.ingest(docs)
    return {
        "bench": "ingest", "documents": len(docs), "chunks": r.chunks_embedded, "seconds": round(r.seconds, 2),
        "chunks_per_s": round(r.chunks_per_second, 1), "reingest_unchanged_s": round(again.seconds, 3),
    }  # fmt: skip


async def bench_quality(embedder: str = "local:all-minilm-l6-v2") -> list[dict[str, Any]]:
    queries = json.loads((KB / "queries.json").read_text())
    out = []
    async with Memory("memory://", embedder=embedder) as mem:
        kb = KnowledgeBase(mem, "quality", chunk_size=300, overlap=60)
        await kb.ingest([p for p in sorted(KB.iterdir()) if p.suffix != ".json"])
        for hybrid in (False, True):
            at5 = at1 = 0
            for q in queries:
                top = [Path(p.source).name for p in await kb.search(q["query"], k=5, hybrid=hybrid)]
                at5 += q["source"] in top
                at1 += top[:1] == [q["source"]]
            out.append({
                "bench": "quality", "embedder": embedder, "ranking": "hybrid" if hybrid else "vector",
                "queries": len(queries), "recall@5": round(at5 / len(queries), 3), "recall@1": round(at1 / len(queries), 3),
            })  # fmt: skip
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="embed,recall,vecindex,ingest,quality")
    ap.add_argument("--memories", type=int, default=100_000)
    ap.add_argument("--backends", default="memory,sqlite,postgres")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))
    results: list[dict[str, Any]] = []
    if "embed" in only:
        results.append(await bench_embed())
    if "recall" in only:
        for b in args.backends.split(","):
            results.append(await bench_recall(b, args.memories))
    if "vecindex" in only:
        results.append(await bench_vecindex(args.memories))
    if "ingest" in only:
        results.append(await bench_ingest())
    if "quality" in only:
        results += await bench_quality()
        results += await bench_quality("hash:256")
    for r in results:
        print(json.dumps(r) if args.json else "  ".join(f"{k}={v}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
