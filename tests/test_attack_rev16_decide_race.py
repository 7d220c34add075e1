"""Sixteenth session's review: a decision without a request's number goes to the request found.

``podium approvals approve RUN`` (no ``--request``, no ``--seq``) and MCP ``decide_approval``
without ``name`` look up the run's open requests and, when there is one, decide it. They then
decided it by name only: if between the lookup and the decision that request timed out and the
run asked again under the same name (a loop: "pay 10?" then "pay 50000?"), the request decided
was the later one, with its payload, which nobody looked up. The decision names the request found
(its ``seq``) now: a later one is refused (``NotFound``, "asked again"), nothing decided."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import podium
from podium import Loop, StepContext, Workflow

wf = Workflow("monthly16")


@wf.step(loop=Loop(to="ask", while_=lambda ask: ask["by"] == "sla", max_iterations=3))
async def ask(ctx: StepContext, input: Any) -> dict[str, Any]:
    amount, timeout = (10, 0.3) if ctx.iteration == 0 else (50000, 3600.0)
    decision = await ctx.approval({"amount": amount}, name="pay", timeout=timeout, default={"approved": False, "by": "sla"})
    return {"by": decision["by"], "paid": amount if decision["approved"] else 0}


async def _until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


def _stale(c: podium.Client, rid: str, real: Any) -> Any:
    """``approvals`` as it answers when the run asks again right after the lookup."""

    async def approvals(**kw: Any) -> list[dict[str, Any]]:
        found = await real(**kw)
        assert [a["payload"] for a in found] == [{"amount": 10}]

        async def asked_again() -> bool:
            return [a["payload"] for a in await c.governance.approvals(run_id=rid)] == [{"amount": 50000}]

        await _until(asked_again)  # the first request's SLA ran out; the loop asked for 50000
        return found

    return approvals


async def _first_open(c: podium.Client) -> str:
    h = await c.start(wf, {})

    async def asked() -> bool:
        return bool(await c.governance.approvals(run_id=h.id))

    await _until(asked)
    return h.id


async def _nothing_decided(c: podium.Client, rid: str) -> None:
    [left] = await c.governance.approvals(run_id=rid)
    assert left["payload"] == {"amount": 50000}, "the request asked after the lookup was decided"


async def test_mcp_decides_the_request_it_found_not_one_asked_after(store_url: str) -> None:
    from podium.server.mcp_tools import DecideArgs, PodiumTools

    async with podium.Client(store_url, workflows=[wf]) as c:
        rid = await _first_open(c)
        c.approvals = _stale(c, rid, c.approvals)  # type: ignore[method-assign]
        with pytest.raises(podium.NotFound, match="asked again"):
            await PodiumTools(c)._decide(DecideArgs(run_id=rid, approve=True, wait_seconds=0))
        await _nothing_decided(c, rid)


async def test_the_cli_decides_the_request_it_found_not_one_asked_after(tmp_path: Path, monkeypatch: Any) -> None:
    from podium.cli._gov import _decide
    from podium.engine.client import Client

    db = f"sqlite:///{tmp_path}/podium.db"
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    async with podium.Client(db, workflows=[wf]) as c:
        rid = await _first_open(c)
        real = Client.approvals
        monkeypatch.setattr(Client, "approvals", lambda self, **kw: _stale(c, rid, lambda **k: real(self, **k))(**kw))
        with pytest.raises(podium.NotFound, match="asked again"):
            await _decide(rid, None, True, "", None, db)
        await _nothing_decided(c, rid)


many = Workflow("many16")


@many.step
async def asks(ctx: StepContext, input: Any) -> list[bool]:
    decided = await asyncio.gather(*(ctx.approval({"i": i}, title="ok?", name="each") for i in range(101)))
    return [d["approved"] for d in decided]


async def test_mcp_finds_a_request_numbered_past_the_first_page() -> None:
    """MCP ``decide_approval`` with ``request`` and no ``name`` looked the number up among the run's
    first 100 open requests: the 101st was refused as one of "100 open approval requests"."""
    from podium.server.mcp_tools import DecideArgs, PodiumTools

    async with podium.Client("memory://", workflows=[many]) as c:
        h = await c.start(many, {})
        await c.driving.settled(h.id)
        asked = await c.approvals(run_id=h.id, limit=1000)
        assert len(asked) == 101
        last = asked[-1]
        got = await PodiumTools(c)._decide(DecideArgs(run_id=h.id, approve=False, request=last["seq"], wait_seconds=0))
        assert got["decided"] is True
        assert [a["seq"] for a in await c.approvals(run_id=h.id, limit=1000)] == [a["seq"] for a in asked[:-1]]
        with pytest.raises(podium.ConfigError, match="has 100 open approval requests"):  # all of them counted
            await PodiumTools(c)._decide(DecideArgs(run_id=h.id, approve=True, wait_seconds=0))
