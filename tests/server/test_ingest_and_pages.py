"""Event ingest under concurrency (one run per idempotency key, each answer consistent, one audit
anchor per run, also with two servers on one store) and pages of runs by cursor over the API."""

from __future__ import annotations

import asyncio
from typing import Any

from . import flows


async def _post(http: Any, key: str) -> Any:
    r = await http.post(
        "/api/events/ticket.created", json={"id": 1, "subject": f"ticket {key}"}, headers={"Idempotency-Key": key}
    )
    assert r.status_code == 202, r.text
    return r.json()


async def test_the_same_event_posted_at_once_starts_one_run(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.TRIGGERS) as (app, http):
        keys = [f"key-{i}" for i in range(12)]
        answers = await asyncio.gather(*(_post(http, k) for k in keys for _ in range(4)))
        by_key: dict[str, list[Any]] = {}
        for a in answers:
            by_key.setdefault(a["idempotency_key"], []).append(a)
        run_ids = set()
        for key, got in by_key.items():
            started = [a["runs"] for a in got if a["runs"]]
            assert len(started) == 1 and len(started[0]) == 1, (key, got)
            rid = started[0][0]
            assert sorted(a["duplicates"] for a in got if not a["runs"]) == [[rid]] * 3, (key, got)
            run_ids.add(rid)
        listed = (await http.get("/api/runs", params={"workflow": "tickets", "limit": 100})).json()["runs"]
        assert {r["id"] for r in listed} == run_ids and len(listed) == len(keys)
        store = app.state.client.store
        for rid in run_ids:  # anchored once: a duplicate writes nothing, not even an audit entry
            assert [e.action for e in await store.audit_for(rid)].count("run.start") == 1


async def test_two_servers_on_one_store_start_one_run_per_key(server: Any, store_url: str) -> None:
    if store_url == "memory://":
        return  # a memory store lives in one process: nothing to share
    async with server(store_url, workflows=flows.TRIGGERS) as (_, one), server(
        store_url, workflows=flows.TRIGGERS
    ) as (_, two):
        answers = await asyncio.gather(*(_post(http, f"k{i}") for i in range(10) for http in (one, two, one, two)))
        for i in range(10):
            got = [a for a in answers if a["idempotency_key"] == f"k{i}"]
            assert sum(len(a["runs"]) for a in got) == 1, got
            assert sum(len(a["duplicates"]) for a in got) == 3, got
        listed = (await one.get("/api/runs", params={"workflow": "tickets", "limit": 100})).json()["runs"]
        assert len(listed) == 10


async def test_pages_by_cursor(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (_, http):
        for i in range(17):
            r = await http.post("/api/runs", json={"workflow": "hello", "input": {"name": f"n{i}"}})
            assert r.status_code == 201, r.text
        everything = [r["id"] for r in (await http.get("/api/runs", params={"limit": 100})).json()["runs"]]
        assert len(everything) == 17
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 5, "workflow": "hello"}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/api/runs", params=params)).json()
            seen += [r["id"] for r in page["runs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                assert page["next_offset"] is None
                break
        assert seen == everything
        bad = await http.get("/api/runs", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
        assert "next_cursor" in bad.json()["error"]["message"]
