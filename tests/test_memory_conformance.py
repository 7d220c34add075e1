"""The memory conformance suite (:class:`podium.memory.MemoryBackend`): entity memory, graph,
retention and erasure on every backend (memory, SQLite, PostgreSQL). Uses the model-free ``hash``
embedder; MiniLM quality is tested in tests/test_knowledge.py."""

from __future__ import annotations

import time

import pytest

from podium.memory import Memory, Retention, RunState


@pytest.fixture
async def mem(store_url):
    async with Memory(store_url, embedder="hash:256") as m:
        yield m


async def test_remember_and_recall_by_recency(mem):
    t = time.time()
    await mem.remember("customer:42", "signed up", kind="event", at=t - 30)
    await mem.remember("customer:42", "prefers email", kind="fact", at=t - 20, metadata={"channel": "email"})
    await mem.remember("customer:42", "asked for a refund", kind="event", at=t - 10)
    await mem.remember("customer:7", "prefers phone", kind="fact", at=t - 5)
    recent = await mem.recall("customer:42")
    assert [i.text for i in recent] == ["asked for a refund", "prefers email", "signed up"]
    assert [i.text for i in await mem.recall("customer:42", kind="event", k=1)] == ["asked for a refund"]
    assert [i.text for i in await mem.recall("customer:42", since=t - 25, until=t - 15)] == ["prefers email"]
    assert [i.text for i in await mem.recall("customer:42", where={"channel": "email"})] == ["prefers email"]
    assert [i.entity for i in await mem.recall(kind="fact")] == ["customer:7", "customer:42"]
    item = recent[1]
    assert item.kind == "fact" and item.metadata == {"channel": "email"} and item.score is None
    assert await mem.get(item.id) == item


async def test_recall_by_similarity_with_filters(mem):
    await mem.remember("customer:42", "the invoice total was wrong twice", kind="event")
    await mem.remember("customer:42", "likes the mobile app", kind="fact")
    await mem.remember("customer:42", "invoice disputes go to finance", kind="summary")
    await mem.remember("vendor:acme", "the invoice arrived late", kind="event")
    hits = await mem.recall("customer:42", "wrong invoice total", k=2)
    assert hits[0].text == "the invoice total was wrong twice" and hits[0].score is not None
    assert hits[0].score >= hits[1].score and all(h.entity == "customer:42" for h in hits)
    assert [h.text for h in await mem.recall("customer:42", "invoice", kind="summary")] == [
        "invoice disputes go to finance"
    ]
    everyone = await mem.recall(None, "invoice arrived late", k=1)
    assert everyone[0].entity == "vendor:acme"
    assert await mem.recall("customer:999", "invoice") == []


async def test_same_id_replaces_and_delete(mem):
    a = await mem.remember("customer:1", "first", id="fixed")
    b = await mem.remember("customer:1", "second", id="fixed", data={"n": 2})
    assert a.id == b.id == "fixed"
    assert [(i.text, i.data) for i in await mem.recall("customer:1")] == [("second", {"n": 2})]
    assert [i.text for i in await mem.recall("customer:1", "second")] == ["second"]
    assert await mem.delete(["fixed"]) == 1
    assert await mem.recall("customer:1", "second") == [] and await mem.get("fixed") is None


async def test_get_many_and_reindex(mem):
    now = time.time()
    a = await mem.remember("customer:1", "the invoice total was wrong", kind="event")
    b = await mem.remember("customer:2", "likes the mobile app", data={"n": 1})
    gone = await mem.remember("customer:1", "short-lived", ttl=0.01, at=now - 1)
    assert await mem.get_many([b.id, "missing", a.id, a.id]) == {a.id: a, b.id: b}
    assert (await mem.get_many([gone.id]))[gone.id].text == "short-lived"  # a lookup, not a recall
    assert await mem.get_many([]) == {}
    before = await mem.recall(None, "wrong invoice total", k=1)
    assert await mem.reindex([a.id, "missing", b.id]) == 2
    assert await mem.reindex([]) == 0
    after = await mem.recall(None, "wrong invoice total", k=1)
    assert [(h.id, h.score) for h in after] == [(h.id, h.score) for h in before] and after[0].id == a.id
    assert [i.text for i in await mem.recall("customer:2", "mobile app", where={"kind": "fact"})] == [
        "likes the mobile app"
    ]  # the vector keeps its metadata


async def test_ttl_expiry_and_retention_policies(mem):
    now = time.time()
    await mem.remember("customer:1", "short-lived", ttl=0.01, at=now - 1)
    await mem.remember("customer:1", "kept fact")
    for i in range(5):
        await mem.remember("customer:1", f"event {i}", kind="event", at=now - 100 + i)
    await mem.remember("customer:1", "ancient summary", kind="summary", at=now - 10_000)
    await mem.remember("customer:1", "fresh summary", kind="summary", at=now)
    assert "short-lived" not in [i.text for i in await mem.recall("customer:1", k=50)]
    assert "short-lived" not in [i.text for i in await mem.recall("customer:1", "short-lived")]
    mem.retention = {"event": Retention(max_items=2), "summary": Retention(max_age=3600)}
    counts = await mem.prune()
    assert counts == {"event": 3, "fact": 1, "summary": 1}
    left = await mem.recall("customer:1", k=50)
    assert sorted(i.text for i in left) == ["event 3", "event 4", "fresh summary", "kept fact"]


async def test_entities_and_relations(mem):
    e = await mem.upsert_entity("customer:42", properties={"name": "Ann", "tier": "gold"})
    assert e.type == "customer" and e.properties == {"name": "Ann", "tier": "gold"}
    e = await mem.upsert_entity("customer:42", properties={"tier": "platinum"})
    assert e.properties == {"name": "Ann", "tier": "platinum"}
    e = await mem.upsert_entity("customer:42", type="client", properties={"x": 1}, merge=False)
    assert (e.type, e.properties) == ("client", {"x": 1})
    r = await mem.relate("customer:42", "owns", "account:7", {"since": 2020})
    assert (r.src, r.relation, r.dst, r.properties) == ("customer:42", "owns", "account:7", {"since": 2020})
    assert (await mem.get_entity("account:7")).type == "account"  # created by the edge
    assert [x.dst for x in await mem.relations("customer:42", direction="out")] == ["account:7"]
    assert [x.src for x in await mem.relations("account:7", direction="in")] == ["customer:42"]
    assert await mem.unrelate("customer:42", "owns", "account:7")
    assert not await mem.unrelate("customer:42", "owns", "account:7")
    assert await mem.relations("customer:42") == []
    await mem.upsert_entity("account:8", properties={"status": "open"})
    assert [x.id for x in await mem.find_entities(type="account", where={"status": "open"})] == ["account:8"]


async def test_find_entities_by_id_text(mem):
    for eid in ("customer:42", "customer:420", "Vendor:ACME_1", "vendor:acmex1", "order:100%", "acme"):
        await mem.upsert_entity(eid)
    assert [e.id for e in await mem.find_entities(search="ACME")] == ["acme", "Vendor:ACME_1", "vendor:acmex1"]
    # % and _ are literal text, not LIKE wildcards
    assert [e.id for e in await mem.find_entities(search="acme_")] == ["Vendor:ACME_1"]
    assert [e.id for e in await mem.find_entities(search="0%")] == ["order:100%"]
    assert [e.id for e in await mem.find_entities(search="42", type="customer", limit=1)] == ["customer:42"]
    assert await mem.find_entities(search="nobody") == []


async def _business_graph(mem):
    await mem.upsert_entity("customer:42", properties={"name": "Ann Lee"})
    await mem.upsert_entity("ticket:T1", properties={"status": "delayed"})
    await mem.upsert_entity("renewal:R9", properties={"due": "2026-12-01", "status": "upcoming"})
    await mem.relate("ticket:T1", "raised_by", "customer:42")
    await mem.relate("renewal:R9", "of", "customer:42")
    await mem.relate("customer:42", "owns", "account:7")
    await mem.relate("ticket:T1", "affects", "account:7")
    for p in ("product:bolt", "product:nut", "product:gear"):
        await mem.upsert_entity(p)
    await mem.relate("product:bolt", "supplied_by", "vendor:acme")
    await mem.relate("product:nut", "supplied_by", "vendor:acme")
    await mem.relate("product:gear", "supplied_by", "vendor:other")
    await mem.upsert_entity("purchase_order:PO1", properties={"status": "open"})
    await mem.upsert_entity("purchase_order:PO2", properties={"status": "closed"})
    await mem.upsert_entity("purchase_order:PO3", properties={"status": "open"})
    await mem.relate("purchase_order:PO1", "contains", "product:bolt")
    await mem.relate("purchase_order:PO2", "contains", "product:nut")
    await mem.relate("purchase_order:PO3", "contains", "product:gear")
    await mem.relate("purchase_order:PO1", "contains", "product:nut")


async def test_graph_queries(mem):
    await _business_graph(mem)
    # A delayed ticket surfaces the upcoming renewal of the same customer.
    found = await mem.neighbors("ticket:T1", hops=2, type="renewal")
    assert [r.entity.id for r in found] == ["renewal:R9"]
    assert found[0].hops == 2
    assert [(e.src, e.relation, e.dst) for e in found[0].path] == [
        ("ticket:T1", "raised_by", "customer:42"),
        ("renewal:R9", "of", "customer:42"),
    ]
    one = await mem.neighbors("ticket:T1", hops=1)
    assert [(r.entity.id, r.hops) for r in one] == [("account:7", 1), ("customer:42", 1)]
    out = await mem.neighbors(
        "ticket:T1", hops=2, direction="out", relations=["affects", "raised_by", "owns"]
    )
    assert [r.entity.id for r in out] == ["account:7", "customer:42"]
    # Which open purchase orders contain products from vendor acme?
    pos = await mem.follow("vendor:acme", "<supplied_by", "<contains", where={"status": "open"})
    assert [r.entity.id for r in pos] == ["purchase_order:PO1"]
    assert [r.entity.id for r in await mem.follow("vendor:acme", "<supplied_by", "<contains")] == [
        "purchase_order:PO1",
        "purchase_order:PO2",
    ]
    assert await mem.follow("vendor:none", "<supplied_by") == []


async def test_forget_erases_and_records(mem):
    await _business_graph(mem)
    await mem.remember("customer:42", "Ann Lee called about invoice 991", kind="event")
    await mem.remember("account:7", "account of customer:42 (Ann Lee)", kind="fact")
    await mem.remember("customer:8", "unrelated", kind="fact")
    erasure = await mem.forget("customer:42", values=["invoice 991"], reason="GDPR request 12")
    assert erasure.counts["memory_items"] == 1 and erasure.counts["entities"] == 1
    assert erasure.counts["relations"] == 3 and erasure.counts["memory_items_redacted"] == 1
    assert await mem.get_entity("customer:42") is None
    assert await mem.recall("customer:42") == []
    assert await mem.recall("customer:42", "invoice") == []
    [other] = await mem.recall("account:7")
    assert "Ann Lee" not in other.text and "customer:42" not in other.text and "[redacted]" in other.text
    assert await mem.neighbors("ticket:T1", hops=2, type="renewal") == []
    assert [i.text for i in await mem.recall("customer:8")] == ["unrelated"]
    [record] = await mem.erasures()
    assert record == erasure and record.reason == "GDPR request 12"
    assert "customer:42" not in repr(record) and len(record.entity_sha256) == 64


async def test_forget_leaves_the_json_of_items_graph_and_run_state_readable(mem):
    """Review (attack): an item's data and metadata, entity and relation properties and run state
    are JSON, and were redacted as plain text: forgetting ``123`` turned the number ``41234`` into
    ``4[redacted]4`` and the item, entity, relation or state failed when read back. Values are now
    replaced inside JSON strings and keys; a number that is the whole value is replaced by the
    string; other numbers and literals are left. An item's text is plain text, replaced as text."""
    doc = {"customer": "Ann 123", "amount": 41234, "flag": True, "note": "Zoë 'Z'", "ref": 123}
    want = {"customer": "[redacted]", "amount": 41234, "flag": True, "note": "[redacted] 'Z'", "ref": "[redacted]"}
    await mem.upsert_entity("customer:123", properties={"name": "Ann 123"})
    item = await mem.remember("account:7", "Ann 123 paid invoice 41234", data=doc, metadata={"n": 41234, "ref": 123})
    await mem.upsert_entity("account:7", properties=doc)
    await mem.relate("account:7", "owned_by", "vendor:9", properties=doc)
    await RunState(mem, "run-1").set("seen", doc)
    await mem.remember("vendor:9", "numbers only", data={"n": 41234, "ok": True, "none": None})

    erasure = await mem.forget("customer:123", values=["123", "true", "null", "Zoë"])
    got = await mem.get(item.id)
    assert got is not None and (got.data, got.metadata) == (want, {"n": 41234, "ref": "[redacted]"})
    assert got.text == "[redacted] paid invoice 4[redacted]4"  # plain text: replaced as text
    assert (await mem.get_entity("account:7")).properties == want
    assert [r.properties for r in await mem.relations("vendor:9")] == [want]
    assert await RunState(mem, "run-1").all() == {"seen": want}
    assert [i.data for i in await mem.recall("vendor:9")] == [{"n": 41234, "ok": True, "none": None}]
    counts = {k: erasure.counts[k] for k in ("memory_items_redacted", "entities_redacted", "relations_redacted", "run_state_redacted")}
    assert counts == {"memory_items_redacted": 1, "entities_redacted": 3, "relations_redacted": 3, "run_state_redacted": 3}
