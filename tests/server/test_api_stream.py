"""The runs list's live stream (``GET /api/runs/stream``) and payload hiding in the list."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import podium

from . import flows


def sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) of every event in a server-sent event stream."""
    out = []
    for block in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if "event" in lines:
            out.append((lines["event"], json.loads(lines.get("data", "null"))))
    return out


async def test_run_list_stream_sends_status_changes(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (app, http):
        before = (await http.post("/api/runs", json={"workflow": "hello", "input": {}})).json()["run"]["id"]
        await app.state.client.wait(before, timeout=10)
        listening = asyncio.create_task(http.get("/api/runs/stream", params={"timeout": 2}))
        await asyncio.sleep(0.4)
        rid = (await http.post("/api/runs", json={"workflow": "hello", "input": {"name": "x"}})).json()[
            "run"
        ]["id"]
        r = await listening
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(r.text)
        assert events[0][0] == "ready"
        mine = [d for e, d in events if e == "run" and d["id"] == rid]
        assert mine and mine[-1]["status"] == "completed" and mine[-1]["output"] == "HELLO X"
        assert not [d for e, d in events if e == "run" and d["id"] == before]  # unchanged: not sent


async def test_stream_sees_runs_started_by_another_process(server: Any, tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path}/shared.db"
    async with server(db, workflows=flows.ALL, execute=False) as (_app, http):
        listening = asyncio.create_task(
            http.get("/api/runs/stream", params={"timeout": 2, "workflow": "review"})
        )
        await asyncio.sleep(0.3)
        # another process's client: the server hears none of its events, only the store
        async with podium.Client(db, execute=False) as other:
            handle = await other.start(flows.review, {"topic": "t"})
            await other.start(flows.hello, {})
        events = sse((await listening).text)
        runs = [d for e, d in events if e == "run"]
        assert [d["id"] for d in runs] == [handle.id] and runs[0]["status"] == "pending"


async def test_viewer_sees_runs_without_payloads(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        await c.run(flows.hello, {"name": "secret"})
        await c.create_user("vic", ["viewer"])
        auth = {"Authorization": f"Bearer {await c.create_token('vic')}"}
        run = (await http.get("/api/runs", headers=auth)).json()["runs"][0]
        assert run["status"] == "completed" and "secret" not in json.dumps(run).lower()
        assert run["input"] == run["output"] == "[hidden: needs payloads.read]"
        denied = await http.get("/api/runs/stream", headers={"Authorization": "Bearer pod_nope"})
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
