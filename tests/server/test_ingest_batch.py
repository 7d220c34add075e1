"""``POST /api/events``: many events in one request. One run per idempotency key within a batch,
across batches and across batches posted at the same moment; a batch with bad events is refused
whole, naming each bad event; too many events is a 413; the same permissions as single events."""

from __future__ import annotations

import asyncio
from typing import Any

from . import flows


def _event(key: str, subject: Any = None, type: str = "ticket.created") -> dict[str, Any]:
    return {"type": type, "idempotency_key": key, "payload": {"id": 1, "subject": subject or f"ticket {key}"}}


async def _runs(http: Any) -> list[str]:
    listed = (await http.get("/api/runs", params={"workflow": "tickets", "limit": 500})).json()["runs"]
    return [r["id"] for r in listed]


async def test_one_run_per_key_within_across_and_between_concurrent_batches(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.TRIGGERS) as (_, http):
        batch = [_event("a"), _event("b"), _event("a"), _event("c")]
        r = await http.post("/api/events", json={"events": batch})
        assert r.status_code == 202, r.text
        got = r.json()
        assert [e["index"] for e in got["events"]] == [0, 1, 2, 3]
        assert [e["new"] for e in got["events"]] == [True, True, False, True]
        assert got["new"] == 3 and got["duplicates"] == 1
        a = got["events"][0]["runs"]
        assert len(a) == 1 and got["events"][2]["runs"] == [] and got["events"][2]["duplicates"] == a
        first = {e["idempotency_key"]: e["runs"] for e in got["events"] if e["new"]}

        again = (await http.post("/api/events", json={"events": batch})).json()  # a sender retrying
        assert again["new"] == 0 and again["duplicates"] == 4
        assert [e["duplicates"] for e in again["events"]] == [first["a"], first["b"], first["a"], first["c"]]

        keys = [f"k{i}" for i in range(30)]  # three batches over the same keys, in different orders, at once
        orders = [keys, keys[::-1], keys[10:] + keys[:10]]
        answers = await asyncio.gather(
            *(http.post("/api/events", json={"events": [_event(k) for k in order]}) for order in orders)
        )
        assert all(r.status_code == 202 for r in answers), [r.text[:300] for r in answers]
        started: dict[str, list[str]] = {}
        for r in answers:
            for e in r.json()["events"]:
                assert len(e["runs"] + e["duplicates"]) == 1, e
                if e["new"]:
                    started.setdefault(e["idempotency_key"], []).append(e["runs"][0])
        assert sorted(started) == sorted(keys) and all(len(v) == 1 for v in started.values()), started
        single = (await http.post("/api/events/ticket.created", json=_event("k7")["payload"],
                                  headers={"Idempotency-Key": "k7"})).json()  # fmt: skip
        assert single["duplicates"] == started["k7"]  # the single endpoint shares the keys
        ids = await _runs(http)
        assert len(ids) == len(set(ids)) == 33 and set(ids) == {*started_ids(started), *first["a"], *first["b"], *first["c"]}


def started_ids(started: dict[str, list[str]]) -> list[str]:
    return [v[0] for v in started.values()]


async def test_a_batch_with_bad_events_is_refused_whole(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.TRIGGERS) as (_, http):
        bad = [_event("ok1"), {"type": "ticket.created", "idempotency_key": "x", "payload": {"id": "no"}},
               _event("ok2"), {"type": "ticket.created", "idempotency_key": "y", "payload": None}]  # fmt: skip
        r = await http.post("/api/events", json={"events": bad})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_input" and "none was started" in err["message"]
        assert [(p["index"], p["field"]) for p in err["problems"]] == [(1, "payload"), (3, "payload")]
        assert "tickets" in err["problems"][0]["message"] and "event 1 (payload)" in err["message"]
        assert await _runs(http) == []  # not even the good ones

        r = await http.post("/api/events", json={"events": [_event("ok1"), {"type": "ticket.created"}]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        assert "events.1.idempotency_key" in r.json()["error"]["message"]
        r = await http.post("/api/events", json={"events": []})
        assert r.status_code == 422 and "no events" in r.json()["error"]["message"]
        assert await _runs(http) == []


async def test_too_many_events_is_a_413(server: Any) -> None:
    async with server("memory://", workflows=flows.TRIGGERS, max_batch_events=3) as (_, http):
        r = await http.post("/api/events", json={"events": [_event(f"k{i}") for i in range(4)]})
        assert r.status_code == 413, r.text
        err = r.json()["error"]
        assert err["code"] == "batch_too_large" and "at most 3" in err["message"] and "split" in err["message"]
        r = await http.post("/api/events", json={"events": [_event(f"k{i}") for i in range(3)]})
        assert r.status_code == 202 and r.json()["new"] == 3


async def test_the_same_permissions_as_single_events(server: Any) -> None:
    async with server("memory://", workflows=flows.TRIGGERS) as (app, http):
        c = app.state.client
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        await c.create_user("olga", ["operator"])
        viewer, operator = await c.create_token("vic"), await c.create_token("olga")
        body = {"events": [_event("a"), _event("b")]}
        r = await http.post("/api/events", json=body)
        assert r.status_code == 401
        r = await http.post("/api/events", json=body, headers={"Authorization": f"Bearer {viewer}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
        assert await c.list(workflow="tickets") == []
        r = await http.post("/api/events", json=body, headers={"Authorization": f"Bearer {operator}"})
        assert r.status_code == 202 and r.json()["new"] == 2, r.text
