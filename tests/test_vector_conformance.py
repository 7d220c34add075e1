"""The vector index conformance suite: every backend (memory, SQLite, PostgreSQL) must pass it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from podium._sqldb import open_database
from podium.errors import ConfigError
from podium.vectors import ExactVectorIndex, open_index


@pytest.fixture
async def index(store_url):
    db = open_database(store_url)
    await db.open()
    idx = await open_index(db)
    yield idx
    await idx.close()
    await db.close()


def _vecs(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _brute(vecs: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    return list(np.argsort(-(unit @ (q / np.linalg.norm(q))), kind="stable")[:k])


async def test_search_is_exact_and_ordered(index):
    vecs = _vecs(300)
    ids = [f"v{i}" for i in range(300)]
    await index.upsert("c", ids, vecs, [{"i": i, "even": i % 2 == 0} for i in range(300)])
    q = _vecs(1, seed=9)[0]
    hits = await index.search("c", q, k=10)
    assert [h.id for h in hits] == [ids[i] for i in _brute(vecs, q, 10)]
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert hits[0].metadata["i"] == int(hits[0].id[1:])
    assert -1.0 <= hits[-1].score <= hits[0].score <= 1.0
    assert await index.count("c") == 300
    assert (await index.collections()) == {"c": 16}


async def test_metadata_filter_and_id_restriction(index):
    vecs = _vecs(200)
    await index.upsert("c", [f"v{i}" for i in range(200)], vecs, [{"group": i % 10} for i in range(200)])
    q = vecs[7]
    hits = await index.search("c", q, k=5, where={"group": 7})
    assert hits[0].id == "v7" and len(hits) == 5
    assert all(h.metadata["group"] == 7 for h in hits)
    hits = await index.search("c", q, k=50, where={"group": [1, 2]})
    assert len(hits) == 40 and {h.metadata["group"] for h in hits} == {1, 2}
    hits = await index.search("c", q, k=3, ids=["v1", "v2", "v7", "nope"])
    assert hits[0].id == "v7" and {h.id for h in hits} == {"v1", "v2", "v7"}
    assert await index.search("c", q, k=3, where={"group": 99}) == []


async def test_upsert_replaces_and_delete_removes(index):
    vecs = _vecs(20)
    await index.upsert("c", [f"v{i}" for i in range(20)], vecs)
    assert (await index.search("c", vecs[3], k=1))[0].id == "v3"
    await index.upsert("c", ["v3"], vecs[4:5], [{"moved": True}])
    top = await index.search("c", vecs[4], k=2)
    assert {h.id for h in top} == {"v3", "v4"} and await index.count("c") == 20
    assert await index.delete("c", ["v3", "v4", "missing"]) == 2
    assert {h.id for h in await index.search("c", vecs[4], k=20)} == {f"v{i}" for i in range(20)} - {
        "v3",
        "v4",
    }
    await index.upsert("c", ["v3"], vecs[3:4])  # re-added after its deletion
    assert (await index.search("c", vecs[3], k=1))[0].id == "v3"


async def test_collections_are_separate_and_dimension_is_fixed(index):
    await index.upsert("a", ["x"], _vecs(1, 8))
    await index.upsert("b", ["x"], _vecs(1, 4))
    assert await index.collections() == {"a": 8, "b": 4}
    with pytest.raises((ConfigError, ValueError)):
        await index.upsert("a", ["y"], _vecs(1, 4))
    assert await index.search("unknown", _vecs(1, 8)[0]) == []
    await index.drop("a")
    assert await index.collections() == {"b": 4}
    await index.upsert("a", ["z"], _vecs(1, 4))  # made again with another dimension
    assert [h.id for h in await index.search("a", _vecs(1, 4)[0])] == ["z"]


async def test_a_second_process_sees_writes(store_url, index):
    """Two indexes on one database (two processes): each search catches up on the other's writes."""
    if store_url.startswith("memory"):
        pytest.skip("a memory:// database lives in one process")
    db2 = open_database(store_url)
    await db2.open()
    other = ExactVectorIndex(db2) if index.method == "exact" else await open_index(db2)
    await other.open()
    try:
        vecs = _vecs(50)
        await index.upsert("c", [f"v{i}" for i in range(50)], vecs)
        assert (await other.search("c", vecs[5], k=1))[0].id == "v5"
        await index.delete("c", ["v5"])
        await index.upsert("c", ["new"], vecs[5:6])
        assert (await other.search("c", vecs[5], k=1))[0].id == "new"
        assert await other.count("c") == 50
        await index.drop("c")
        await index.upsert("c", ["only"], vecs[:1])
        assert [h.id for h in await other.search("c", vecs[0], k=5)] == ["only"]
    finally:
        await other.close()
        await db2.close()
