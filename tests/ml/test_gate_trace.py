"""A gate's verdict in the run trace: its rules and their results, the rows set aside, and the
person asked when it halts the step (waiting, then who decided)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("scipy", reason="gates need the ml extra: pip install 'podium[ml]'")

import podium
from podium.engine.trace import run_trace
from tests.server.gate_flows import batch


async def test_gate_results_in_the_trace() -> None:
    async with podium.Client("memory://") as c:
        rid = (await c.start(batch, {"broken": True})).id
        for _ in range(500):
            if (await c.get(rid)).status.value == "waiting":
                break
            await asyncio.sleep(0.02)
        trace = await run_trace(c, rid)
        [gate] = [x for x in trace["calls"] if x["kind"] == "gate"]
        assert (gate["gate"], gate["passed"], gate["rows"]) == ("customers", False, 12)
        schema = next(r for r in gate["rules"] if r["rule"] == "schema")
        assert schema["ok"] is False and schema["on"] == "halt" and "monthly_charges" in schema["detail"]
        [asked] = [x for x in trace["calls"] if x["kind"] == "approval"]
        assert asked["status"] == "waiting" and "halted step 'load'" in asked["title"]
        await c.decide(rid, asked["name"], approve=False, comment="ask for the old export")
        await c.wait(rid, timeout=30)
        [done] = [x for x in (await run_trace(c, rid))["calls"] if x["kind"] == "approval"]
        assert (done["approved"], done["comment"]) == (False, "ask for the old export")
