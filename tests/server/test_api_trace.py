"""GET /api/runs/{id}/trace on memory, SQLite and PostgreSQL: what the AI did, live while the run
waits, through the same authorization as reading the run; and the MCP tool get_trace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from . import trace_flows
from .test_api import wait_status

MAIL = "ana.lopez@example.com"


async def test_trace_over_http(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=[trace_flows.support]) as (app, http):
        text = f"Where is the refund for order 7? Write to {MAIL}"
        rid = (await http.post("/api/runs", json={"workflow": "support", "input": {"text": text}})).json()["run"]["id"]
        await wait_status(http, rid, "waiting", timeout=30)

        r = await http.get(f"/api/runs/{rid}/trace")
        assert r.status_code == 200, r.text
        trace = r.json()
        assert [c["kind"] for c in trace["calls"]] == ["route", "model", "tool", "model", "approval"]
        assert trace["calls"][-1]["status"] == "waiting"  # live: the request is there before the decision
        model = trace["calls"][1]
        assert model["model"] == "openai:gpt-4o-mini" and model["cached_tokens"] == 256
        assert "[EMAIL]" in model["prompt"][-1]["content"] and MAIL not in json.dumps(trace)
        assert trace["calls"][0]["confidence"] == 0.87

        name = trace["calls"][-1]["name"]
        d = await http.post(f"/api/approvals/{rid}/{name}", json={"approve": True, "comment": "fine to send"})
        assert d.status_code == 200, d.text
        await wait_status(http, rid, "completed", timeout=30)
        done = (await http.get(f"/api/runs/{rid}/trace")).json()
        approval = done["calls"][-1]
        assert (approval["approved"], approval["by"], approval["comment"]) == (True, "local", "fine to send")
        assert {r["step"] for r in done["timeline"]} == {"triage", "answer", "review"}

        missing = await http.get("/api/runs/nope/trace")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

        # The same authorization as reading the run.
        c = app.state.client
        await c.create_user("root", ["admin"])
        await c.define_role("auditor", ["audit.read"])
        for user, roles in (("ann", ["auditor"]), ("vic", ["viewer"]), ("opal", ["operator"])):
            await c.create_user(user, roles)
        tokens = {u: {"Authorization": f"Bearer {await c.create_token(u)}"} for u in ("ann", "vic", "opal")}
        for path in (f"/api/runs/{rid}", f"/api/runs/{rid}/trace"):
            refused = await http.get(path, headers=tokens["ann"])
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied", refused.text
        assert (await http.get(f"/api/runs/{rid}/trace")).status_code == 401
        shape = (await http.get(f"/api/runs/{rid}/trace", headers=tokens["vic"])).json()
        assert shape["payloads_hidden"] is True and shape["calls"][1]["prompt"] is None
        assert "refunded" not in json.dumps(shape)
        full = (await http.get(f"/api/runs/{rid}/trace", headers=tokens["opal"])).json()
        assert full["payloads_hidden"] is False and full["calls"][1]["prompt"][0]["role"] == "system"


async def test_trace_as_an_mcp_tool(server: Any) -> None:
    from podium.server.mcp_tools import PodiumTools, ToolFailure

    async with server("memory://", workflows=[trace_flows.support]) as (app, http):
        rid = (await http.post("/api/runs", json={"workflow": "support", "input": {"text": "order 7"}})).json()["run"]["id"]
        await wait_status(http, rid, "waiting", timeout=30)
        c = app.state.client
        tools = PodiumTools(c)
        assert "get_trace" in {s.name for s in tools.specs(c.principal)}
        out = await tools.call(c.principal, "get_trace", {"run_id": rid})
        assert [x["kind"] for x in out["calls"]][:2] == ["route", "model"]
        await c.create_user("root", ["admin"])
        await c.define_role("auditor", ["audit.read"])
        await c.create_user("ann", ["auditor"])
        ann = await c.authenticate(await c.create_token("ann"))
        with pytest.raises(ToolFailure) as refused:
            await tools.call(ann, "get_trace", {"run_id": rid})
        assert refused.value.code == "permission_denied" and "runs.read" in str(refused.value)
