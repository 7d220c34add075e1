"""Memory, the entity graph, knowledge bases and policies over HTTP."""

from __future__ import annotations

import json
from typing import Any

from podium.memory import Memory, attach

from . import flows


def _offline_memory(app: Any) -> None:
    """The server's memory with the model-free embedder (no model download in tests)."""
    client = app.state.client
    attach(client, Memory(client.store, embedder="hash:256"))


async def test_entity_memory_recall_and_remember(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (app, http):
        _offline_memory(app)
        r = await http.post(
            "/api/memory/customer:42",
            json={"text": "prefers email over phone", "metadata": {"channel": "email"}},
        )
        assert r.status_code == 201, r.text
        assert r.json()["item"]["entity"] == "customer:42" and r.json()["item"]["kind"] == "fact"
        r = await http.post("/api/memory/customer:42", json={"text": "renewal call booked", "kind": "event"})
        assert r.status_code == 201, r.text

        items = (await http.get("/api/memory/customer:42")).json()["items"]
        assert [i["text"] for i in items] == ["renewal call booked", "prefers email over phone"]
        events = (await http.get("/api/memory/customer:42", params={"kind": "event"})).json()["items"]
        assert [i["kind"] for i in events] == ["event"]
        email = await http.get("/api/memory/customer:42", params={"where": json.dumps({"channel": "email"})})
        assert [i["text"] for i in email.json()["items"]] == ["prefers email over phone"]
        ranked = await http.get("/api/memory/customer:42", params={"query": "email over phone", "limit": 1})
        top = ranked.json()["items"]
        assert len(top) == 1 and top[0]["text"] == "prefers email over phone" and top[0]["score"] > 0
        assert (await http.get("/api/memory/nobody:1")).json()["items"] == []

        bad = await http.get("/api/memory/customer:42", params={"where": "[1, 2]"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        assert "JSON object" in bad.json()["error"]["message"]
        empty = await http.post("/api/memory/customer:42", json={"text": ""})
        assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_request"


async def test_entity_graph_hops_and_paths(server: Any) -> None:
    async with server("memory://") as (app, http):
        _offline_memory(app)
        for src, rel, dst in (
            ("ticket:T1", "raised_by", "customer:42"),
            ("renewal:R9", "of", "customer:42"),
            ("customer:42", "owns", "account:7"),
        ):
            r = await http.post("/api/graph/relations", json={"src": src, "relation": rel, "dst": dst})
            assert r.status_code == 201, r.text

        node = (await http.get("/api/graph/customer:42")).json()
        assert node["entity"]["type"] == "customer" and len(node["relations"]) == 3
        out = (await http.get("/api/graph/customer:42", params={"direction": "out"})).json()
        assert [r["relation"] for r in out["relations"]] == ["owns"]

        reached = (
            await http.get("/api/graph/ticket:T1/neighbors", params={"hops": 2, "type": "renewal"})
        ).json()["reached"]
        assert [x["entity"]["id"] for x in reached] == ["renewal:R9"]
        assert reached[0]["hops"] == 2 and [e["relation"] for e in reached[0]["path"]] == ["raised_by", "of"]
        one = (await http.get("/api/graph/ticket:T1/neighbors")).json()["reached"]
        assert [x["entity"]["id"] for x in one] == ["customer:42"]
        back = (await http.get("/api/graph/customer:42/neighbors", params={"path": "<of"})).json()["reached"]
        assert [x["entity"]["id"] for x in back] == ["renewal:R9"]

        missing = await http.get("/api/graph/nobody:1")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = await http.get("/api/graph/ticket:T1/neighbors", params={"hops": 99})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_knowledge_base_list_add_and_search(server: Any, store_url: str) -> None:
    async with server(store_url) as (app, http):
        _offline_memory(app)
        assert (await http.get("/api/kb")).json() == {"knowledge_bases": []}
        missing = await http.get("/api/kb/handbook/search", params={"query": "refunds"})
        assert missing.status_code == 404 and "podium kb ingest" in missing.json()["error"]["message"]
        assert (await http.get("/api/kb")).json() == {"knowledge_bases": []}  # searching created nothing

        docs = [
            {
                "source": "refunds.md",
                "type": "markdown",
                "text": "# Refunds\n\nA refund is granted within 30 days of purchase, on the original card.",
            },
            {
                "source": "shipping.txt",
                "text": "Parcels ship within two days by courier.",
                "title": "Shipping",
            },
        ]
        for doc in docs:
            r = await http.post("/api/kb/handbook/documents", json=doc)
            assert r.status_code == 201, r.text
            assert r.json()["report"]["added"] == 1
        again = await http.post("/api/kb/handbook/documents", json=docs[1])
        assert again.json()["report"]["unchanged"] == 1

        bases = (await http.get("/api/kb")).json()["knowledge_bases"]
        assert [(b["name"], b["documents"], b["embedder"]) for b in bases] == [("handbook", 2, "hash:256")]
        found = (
            await http.get("/api/kb/handbook/search", params={"query": "refund within 30 days", "k": 1})
        ).json()
        assert found["passages"][0]["source"] == "refunds.md" and found["passages"][0]["ref"] == "[1]"
        assert found["citations"] == ["[1] Refunds (refunds.md)"] and "[1] (Refunds" in found["context"]
        typed = await http.get(
            "/api/kb/handbook/search",
            params={"query": "days", "where": json.dumps({"type": "text"}), "hybrid": "false"},
        )
        assert {p["source"] for p in typed.json()["passages"]} == {"shipping.txt"}
        bad = await http.get("/api/kb/hand book/search", params={"query": "x"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_memory_permissions(server: Any) -> None:
    async with server("memory://") as (app, http):
        _offline_memory(app)
        c = app.state.client
        for user, role in (("root", "admin"), ("vic", "viewer"), ("amy", "approver")):
            await c.create_user(user, [role])
        tokens = {u: {"Authorization": f"Bearer {await c.create_token(u)}"} for u in ("root", "vic", "amy")}
        r = await http.post("/api/memory/customer:1", json={"text": "vip"}, headers=tokens["root"])
        assert r.status_code == 201, r.text
        assert (await http.get("/api/memory/customer:1", headers=tokens["amy"])).status_code == 200
        for path in ("/api/memory/customer:1", "/api/graph/customer:1", "/api/kb"):
            denied = await http.get(path, headers=tokens["vic"])
            assert denied.status_code == 403, (path, denied.text)
            assert "memory.read" in denied.json()["error"]["message"]
        denied = await http.post("/api/memory/customer:1", json={"text": "x"}, headers=tokens["amy"])
        assert denied.status_code == 403 and "memory.write" in denied.json()["error"]["message"]
        entries = (await http.get("/api/audit", headers=tokens["root"])).json()["entries"]
        actions = {(e["actor"], e["action"]) for e in entries}
        assert ("root", "memory.remember") in actions and ("vic", "access.denied") in actions


async def test_policies_crud_and_validation(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (app, http):
        assert (await http.get("/api/policies")).json() == {"policies": {}}
        body = {"allowed_tools": ["lookup_order"], "max_run_tokens": 20000, "on_exceed": "approval"}
        r = await http.put("/api/policies/hello", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["policy"]["allowed_tools"] == ["lookup_order"]
        assert app.state.client.policy_for("hello").max_run_tokens == 20000  # in force at once
        r = await http.put("/api/policies/*", json={"allowed_providers": ["local"]})
        assert r.status_code == 200, r.text
        listed = (await http.get("/api/policies")).json()["policies"]
        assert set(listed) == {"*", "hello"} and listed["*"]["allowed_providers"] == ["local"]
        got = (await http.get("/api/policies/hello")).json()
        assert got["policy"]["on_exceed"] == "approval" and got["policy"]["max_run_cost"] is None

        cases = [
            ({"bogus": 1}, "'bogus'"),
            ({"max_run_tokens": "lots"}, "max_run_tokens"),
            ({"on_exceed": "explode"}, "on_exceed"),
            ({"allowed_tools": "lookup"}, "allowed_tools"),
            ([1, 2], "JSON object"),
        ]
        nan = await http.put(
            "/api/policies/hello",
            content='{"max_run_cost": NaN}',
            headers={"Content-Type": "application/json"},
        )
        assert nan.status_code == 422 and "finite" in nan.json()["error"]["message"], nan.text
        for bad, needle in cases:
            r = await http.put("/api/policies/hello", json=bad)
            assert r.status_code == 422, (bad, r.text)
            err = r.json()["error"]
            assert err["code"] == "invalid_policy" and needle in err["message"], err
            assert "'hello'" in err["message"]
        assert (await http.get("/api/policies/hello")).json()["policy"]["max_run_tokens"] == 20000

        assert (await http.delete("/api/policies/hello")).json() == {"workflow": "hello", "deleted": True}
        assert (await http.delete("/api/policies/hello")).json()["deleted"] is False
        gone = await http.get("/api/policies/hello")
        assert gone.status_code == 404 and "PUT /api/policies/hello" in gone.json()["error"]["message"]
        assert app.state.client.policy_for("hello").allowed_providers == ["local"]  # the default now
        actions = [e["action"] for e in (await http.get("/api/audit")).json()["entries"]]
        assert actions.count("policy.set") == 3


async def test_the_audit_log_names_no_entity_in_clear(server: Any) -> None:
    """Attack (erasure): the audit log is never erased, so ``podium memory forget`` records only the
    entity id's digest; but the HTTP memory routes wrote the id itself (``entity:person:ann@...``)
    in every ``memory.remember``, ``memory.relate`` and ``access.denied`` entry, where no erasure
    reaches it."""
    async with server("memory://") as (app, http):
        _offline_memory(app)
        c = app.state.client
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        root = {"Authorization": f"Bearer {await c.create_token('root')}"}
        vic = {"Authorization": f"Bearer {await c.create_token('vic')}"}
        who = "person:ann@example.com"
        assert (await http.post(f"/api/memory/{who}", json={"text": "vip"}, headers=root)).status_code == 201
        rel = {"src": who, "relation": "has", "dst": "email:ann.lee@example.com"}
        assert (await http.post("/api/graph/relations", json=rel, headers=root)).status_code == 201
        assert (await http.get(f"/api/memory/{who}", headers=vic)).status_code == 403
        assert (await http.get(f"/api/graph/{who}/neighbors", headers=vic)).status_code == 403
        entries = (await http.get("/api/audit", headers=root)).json()["entries"]
    actions = {e["action"] for e in entries}
    assert {"memory.remember", "memory.relate", "access.denied"} <= actions
    assert "ann@example.com" not in json.dumps(entries) and "ann.lee@example.com" not in json.dumps(entries)


async def test_a_provider_kill_switch_stops_the_apis_embedding_calls(server: Any) -> None:
    """Attack: during an incident an admin switches the provider off (``podium killswitch set
    provider openai``); runs stop calling it, but the HTTP memory and knowledge routes went on sending
    every remembered text, query and document to the memory's openai: embedder."""
    from podium.embeddings.hashing import HashEmbedder

    class Remote(HashEmbedder):
        def __init__(self) -> None:
            super().__init__(64)
            self.name = "openai:text-embedding-3-small"
            self.texts: list[str] = []

        def encode(self, texts: Any) -> Any:
            self.texts.extend(texts)
            return super().encode(texts)

    remote = Remote()
    async with server("memory://") as (app, http):
        c = app.state.client
        attach(c, Memory(c.store, embedder=remote))
        doc = {"source": "a.txt", "text": "Refunds take five days."}
        assert (await http.post("/api/kb/handbook/documents", json=doc)).status_code == 201
        await c.set_switch("provider", "openai", reason="incident 42")
        remote.texts.clear()
        calls = [
            await http.post("/api/memory/customer:1", json={"text": "ann@example.com is VIP"}),
            await http.get("/api/memory/customer:1", params={"query": "who is VIP"}),
            await http.get("/api/kb/handbook/search", params={"query": "refund for ann@example.com"}),
            await http.post("/api/kb/handbook/documents", json={"source": "b.txt", "text": "Ann's complaint"}),
        ]
        plain = await http.get("/api/memory/customer:1")  # no query: nothing is embedded
    for r in calls:
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "kill_switch_active" and "incident 42" in err["message"]
        assert "podium killswitch clear provider openai" in err["message"]
    assert remote.texts == [] and plain.status_code == 200
