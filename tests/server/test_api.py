"""The HTTP API on memory, SQLite and PostgreSQL: runs, approvals, errors, auth, audit, switches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from . import flows


async def wait_status(http: Any, run_id: str, *statuses: str, timeout: float = 10) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await http.get(f"/api/runs/{run_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["run"]["status"] in statuses:
            return body
        assert asyncio.get_running_loop().time() < deadline, body["run"]
        await asyncio.sleep(0.02)


async def test_runs_lifecycle(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (_app, http):
        r = await http.post("/api/runs", json={"workflow": "hello", "input": {"name": "ada"}})
        assert r.status_code == 201, r.text
        rid = r.json()["run"]["id"]
        body = await wait_status(http, rid, "completed")
        assert body["run"]["output"] == "HELLO ADA"
        assert [s["step"] for s in body["steps"]] == ["greet", "shout"]
        assert all(s["status"] == "completed" and s["attempts"] >= 1 for s in body["steps"])
        assert [s["id"] for s in body["workflow"]["steps"]] == ["greet", "shout"]
        assert body["workflow"]["steps"][1]["deps"] == ["greet"]

        # idempotency: the same key, the same run
        a = await http.post(
            "/api/runs", json={"workflow": "hello", "input": {}}, headers={"Idempotency-Key": "k1"}
        )
        b = await http.post("/api/runs", json={"workflow": "hello", "input": {}, "idempotency_key": "k1"})
        assert a.json()["run"]["id"] == b.json()["run"]["id"] and b.json()["duplicate"] is True

        runs = (await http.get("/api/runs", params={"workflow": "hello", "limit": 1})).json()
        assert len(runs["runs"]) == 1 and runs["next_offset"] == 1
        done = (await http.get("/api/runs", params={"status": "completed,failed"})).json()["runs"]
        assert all(r["status"] == "completed" for r in done) and done

        fork = await http.post(f"/api/runs/{rid}/fork", json={"from_step": "shout"})
        assert fork.status_code == 201, fork.text
        forked = await wait_status(http, fork.json()["run"]["id"], "completed")
        assert forked["run"]["forked_from"] == rid
        assert forked["steps"][0]["reused_from"] == rid

        events = (await http.get(f"/api/runs/{rid}/events")).json()["events"]
        assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_completed"


async def test_approval_decided_over_http_and_stream(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (_app, http):
        rid = (await http.post("/api/runs", json={"workflow": "review", "input": {"topic": "x"}})).json()[
            "run"
        ]["id"]
        await wait_status(http, rid, "waiting")
        inbox = (await http.get("/api/approvals")).json()["approvals"]
        assert [a["run_id"] for a in inbox] == [rid]
        name = inbox[0]["name"]
        assert inbox[0]["payload"] == {"text": "draft for x"}
        r = await http.post(
            f"/api/approvals/{rid}/{name}",
            json={"approve": True, "payload": {"text": "edited"}, "comment": "ok"},
        )
        assert r.status_code == 200, r.text
        body = await wait_status(http, rid, "completed")
        assert body["run"]["output"] == "published: edited"
        again = await http.post(f"/api/approvals/{rid}/{name}", json={"approve": False})
        assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"

        # the live stream replays the log and ends with the final status
        async with http.stream("GET", f"/api/runs/{rid}/stream") as s:
            text = ""
            async for chunk in s.aiter_text():
                text += chunk
        assert "event: step" in text and "run_completed" in text and '"status": "completed"' in text


async def test_approvals_inbox_pages_by_cursor(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (_app, http):
        rids = []
        for i in range(5):
            r = await http.post("/api/runs", json={"workflow": "review", "input": {"topic": f"t{i}"}})
            rids.append(r.json()["run"]["id"])
        for rid in rids:
            await wait_status(http, rid, "waiting")
        first = (await http.get("/api/approvals", params={"limit": 3})).json()
        assert len(first["approvals"]) == 3 and first["next_cursor"]
        second = (await http.get("/api/approvals", params={"limit": 3, "cursor": first["next_cursor"]})).json()
        assert len(second["approvals"]) == 2 and second["next_cursor"] is None
        seen = [a["run_id"] for a in first["approvals"] + second["approvals"]]
        assert sorted(seen) == sorted(rids) and len(set(seen)) == 5  # each request once, oldest first
        times = [a["requested_at"] for a in first["approvals"] + second["approvals"]]
        assert times == sorted(times)
        one = (await http.get("/api/approvals", params={"workflow": "review", "limit": 100})).json()
        assert len(one["approvals"]) == 5 and one["next_cursor"] is None
        assert (await http.get("/api/approvals", params={"workflow": "hello"})).json()["approvals"] == []

        # a decided request leaves the inbox at once
        decided = first["approvals"][0]
        r = await http.post(f"/api/approvals/{decided['run_id']}/{decided['name']}", json={"approve": True})
        assert r.status_code == 200, r.text
        left = (await http.get("/api/approvals")).json()["approvals"]
        assert decided["run_id"] not in [a["run_id"] for a in left] and len(left) == 4

        bad = await http.get("/api/approvals", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
        assert (await http.get("/api/approvals", params={"limit": 1001})).status_code == 422


async def test_errors_are_json_with_stable_codes(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        cases = [
            (await http.get("/api/runs/nope"), 404, "not_found"),
            (await http.post("/api/runs", json={"workflow": "ghost"}), 404, "not_found"),
            (
                await http.post("/api/runs", json={"workflow": "tickets", "input": {"id": "x"}}),
                422,
                "invalid_input",
            ),
            (await http.post("/api/runs", json={"nope": 1}), 422, "invalid_request"),
            (await http.get("/api/runs", params={"status": "bogus"}), 400, "bad_request"),
            (await http.get("/api/nothing-here"), 404, "not_found"),
            (await http.post("/api/switches", json={"scope": "galaxy"}), 400, "bad_request"),
            # a priority past 32 bits: named, not a generic 500 (the surfaces review, fifteenth session)
            (await http.post("/api/runs", json={"workflow": "hello", "input": {}, "priority": 2**31}), 422, "invalid_request"),
        ]
        for r, status, code in cases:
            assert r.status_code == status, (r.request.url, r.text)
            err = r.json()["error"]
            assert err["code"] == code and len(err["message"]) > 10

        # a kill switch refuses new runs with 409 and says how to clear it
        assert (
            await http.post("/api/switches", json={"scope": "workflow", "name": "hello"})
        ).status_code == 200
        r = await http.post("/api/runs", json={"workflow": "hello"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "kill_switch_active"
        assert "killswitch clear" in r.json()["error"]["message"]
        assert (await http.delete("/api/switches/workflow/hello")).status_code == 200
        no_input = await http.post("/api/runs", json={"workflow": "hello"})  # greet needs a dict
        assert no_input.status_code == 422 and "step 'greet' argument 'input'" in no_input.json()["error"]["message"]
        assert (await http.post("/api/runs", json={"workflow": "hello", "input": {}})).status_code == 201

        spec = (await http.get("/openapi.json")).json()
        assert {"/api/runs", "/api/approvals", "/api/events/{event_type}", "/metrics"} <= set(spec["paths"])


async def test_rbac_and_tokens(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (app, http):
        c = app.state.client  # the server's own client (local mode until now) creates the users
        for user, role in (("root", "admin"), ("vic", "viewer"), ("amy", "approver")):
            await c.create_user(user, [role])
        root, vic, amy = [await c.create_token(u) for u in ("root", "vic", "amy")]

        def auth(t: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {t}"}

        for headers in ({}, auth("pod_wrong"), {"Authorization": "Basic abc"}):
            r = await http.get("/api/runs", headers=headers)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/api/me", headers=auth(vic))).json()["roles"] == ["viewer"]
        r = await http.post("/api/runs", json={"workflow": "review"}, headers=auth(vic))
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
        r = await http.post(
            "/api/runs", json={"workflow": "review", "input": {"topic": "t"}}, headers=auth(root)
        )
        rid = r.json()["run"]["id"]
        await wait_status_auth(http, rid, root)
        # the viewer sees the inbox but not the payloads; only the approver decides
        inbox = (await http.get("/api/approvals", headers=auth(vic))).json()["approvals"]
        assert inbox[0]["payload"] is None
        name = inbox[0]["name"]
        assert (
            await http.post(f"/api/approvals/{rid}/{name}", json={"approve": True}, headers=auth(vic))
        ).status_code == 403
        assert (
            await http.post(f"/api/approvals/{rid}/{name}", json={"approve": True}, headers=auth(amy))
        ).status_code == 200
        assert (await http.get("/api/audit", headers=auth(amy))).status_code == 403
        entries = (await http.get("/api/audit", headers=auth(root))).json()["entries"]
        actions = [(e["actor"], e["action"]) for e in entries]
        assert ("amy", "approval.decide") in actions and ("vic", "access.denied") in actions
        await wait_status_auth(http, rid, root, "completed")
        verified = (await http.get("/api/audit/verify", headers=auth(root))).json()
        assert verified["intact"] is True, verified
        assert (await http.get("/metrics", headers=auth(vic))).status_code == 200


async def wait_status_auth(http: Any, rid: str, token: str, status: str = "waiting") -> None:
    for _ in range(500):
        r = await http.get(f"/api/runs/{rid}", headers={"Authorization": f"Bearer {token}"})
        if r.json()["run"]["status"] == status:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"the run never became {status}")


async def test_deploy_yaml_workflow(server: Any, tmp_path: Any) -> None:
    text = (
        "name: greeter\nversion: '2'\ntriggers:\n  - event: user.joined\n"
        "steps:\n  - id: say\n    uses: set\n    with:\n      text: 'hi {{ input.name }}'\n"
    )
    async with server("memory://") as (_app, http):
        bad = await http.post(
            "/api/workflows", content="name: x\nsteps: 3\n", headers={"Content-Type": "application/yaml"}
        )
        assert bad.status_code == 422, bad.text
        r = await http.post("/api/workflows", content=text, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        assert r.json()["version"] == "2"
        names = [w["name"] for w in (await http.get("/api/workflows")).json()["workflows"]]
        assert "greeter" in names
        assert (await http.get("/api/workflows/greeter")).json()["triggers"] == [{"event": "user.joined"}]
        # deployed workflows run, and are subscribed to their events
        r = await http.post("/api/events/user.joined", json={"name": "ada"})
        assert r.status_code == 202 and len(r.json()["runs"]) == 1, r.text
        body = await wait_status(http, r.json()["runs"][0], "completed")
        assert body["run"]["output"]["text"] == "hi ada" or "hi ada" in str(body["run"]["output"])
