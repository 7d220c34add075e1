"""One approval, several requests: a step that asks under one name about two questions at once has
two requests open, ``NAME`` and ``NAME@DIGEST`` (one per question, engine/context.py). A decision
naming the approval without the request's number decided whichever was named first, silently, on
every surface (``podium approvals approve --request NAME``, ``POST /api/approvals/RUN/NAME``,
MCP ``decide_approval``). It is refused now, listing the open requests with their number (``#``,
the inbox's ``seq``) and how to pick one; with exactly one open it is decided as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import podium
from podium.errors import ConfigError

FLOW = (
    "import asyncio\n"
    "import podium\n"
    "wf = podium.Workflow('pay-two')\n\n"
    "@wf.step\n"
    "async def both(ctx: podium.StepContext, input):\n"
    "    small, large = await asyncio.gather(\n"
    "        ctx.approval({'amount': 10}, title='pay?', name='pay'),\n"
    "        ctx.approval({'amount': 50000}, title='pay?', name='pay'),\n"
    "    )\n"
    "    return [small['approved'], large['approved']]\n"
)


def _flow() -> podium.Workflow:
    scope: dict[str, Any] = {}
    exec(compile(FLOW, "flows.py", "exec"), scope)
    wf: podium.Workflow = scope["wf"]
    return wf


async def _two_open(c: podium.Client) -> tuple[str, list[dict[str, Any]]]:
    h = await c.start("pay-two", {})
    await c.driving.settled(h.id)
    asked = await c.approvals(run_id=h.id)
    assert [(a["name"].split("@")[0], a["payload"]["amount"]) for a in asked] == [("approval:pay", 10), ("approval:pay", 50000)]
    return h.id, asked


def _refusal_lists(message: str, asked: list[dict[str, Any]]) -> None:
    for a in asked:
        assert f"#{a['seq']} {a['name']}" in message, message
    assert "nothing was decided" in message and "--seq" in message and '"request"' in message, message


async def test_the_client_refuses_to_pick_one_of_two_requests_of_an_approval(store_url: str) -> None:
    async with podium.Client(store_url, workflows=[_flow()]) as c:
        rid, asked = await _two_open(c)
        with pytest.raises(ConfigError) as refused:
            await c.decide(rid, "approval:pay", approve=True)
        _refusal_lists(str(refused.value), asked)
        assert len(await c.approvals(run_id=rid)) == 2  # nothing decided
        large = asked[1]
        assert await c.decide(rid, "approval:pay", approve=False, request=large["seq"])  # picked by its number
        assert [a["seq"] for a in await c.approvals(run_id=rid)] == [asked[0]["seq"]]
        assert await c.decide(rid, "approval:pay", approve=True)  # exactly one open: decided, as before
        assert await c.result(rid) == [True, False]


async def test_a_request_named_whole_is_decided_and_a_number_of_another_approval_is_not(store_url: str) -> None:
    async with podium.Client(store_url, workflows=[_flow()]) as c:
        rid, asked = await _two_open(c)
        small, large = asked
        assert await c.decide(rid, large["name"], approve=False)  # NAME@DIGEST names one request
        with pytest.raises(podium.NotFound):  # a number that is not one of this approval's open requests
            await c.decide(rid, "approval:pay", approve=True, request=large["seq"])
        with pytest.raises(podium.NotFound):
            await c.decide(rid, "approval:other", approve=True, request=small["seq"])
        assert await c.decide(rid, "approval:pay", approve=True, request=small["seq"])
        assert await c.result(rid) == [True, False]


async def test_only_a_later_question_open_is_not_decided_under_the_first_ones_name(store_url: str) -> None:
    """``NAME`` decided, ``NAME@DIGEST`` (another question) open: naming ``NAME`` decides nothing
    (the approver saw the first question) and says which request is open and how to pick it."""
    async with podium.Client(store_url, workflows=[_flow()]) as c:
        rid, asked = await _two_open(c)
        small, large = asked
        assert await c.decide(rid, "approval:pay", approve=True, request=small["seq"])
        with pytest.raises(podium.NotFound) as missing:
            await c.decide(rid, "approval:pay", approve=True)
        assert f"#{large['seq']} {large['name']}" in str(missing.value), missing.value
        assert [a["seq"] for a in await c.approvals(run_id=rid)] == [large["seq"]]


async def test_the_api_and_mcp_refuse_alike(tmp_path: Path) -> None:
    mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'podium[mcp]')")
    from podium.server import Settings
    from podium.server.mcp import PodiumMCP
    from tests.server.conftest import serve

    async with serve(Settings(store="memory://", workflows=[_flow()], deploy_dir=str(tmp_path / "d"))) as (app, http):
        c = app.state.client
        rid, asked = await _two_open(c)
        r = await http.post(f"/api/approvals/{rid}/approval:pay", json={"approve": True})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text
        _refusal_lists(r.json()["error"]["message"], asked)
        async with mcp.Client(PodiumMCP(c).server) as session:
            got = await session.call_tool("decide_approval", {"run_id": rid, "name": "approval:pay", "approve": True})
            assert got.is_error
            _refusal_lists(got.content[0].text, asked)
            assert len(await c.approvals(run_id=rid)) == 2
            got = await session.call_tool(
                "decide_approval", {"run_id": rid, "name": "approval:pay", "approve": False, "request": asked[1]["seq"]}
            )
            assert not got.is_error, got.content
        r = await http.post(f"/api/approvals/{rid}/approval:pay", json={"approve": True})
        assert r.status_code == 200 and r.json()["decided"] is True, r.text
        assert await c.result(rid) == [True, False]


def _cli(tmp: Path, *args: str, check: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_DB": f"sqlite:///{tmp}/gov.db", "COLUMNS": "200"}
    env.pop("PODIUM_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == check, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def test_podium_approvals_approve_refuses_to_pick_and_takes_the_number(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    _cli(tmp_path, "run", "flows:wf", check=3)
    asked = [json.loads(line) for line in _cli(tmp_path, "approvals", "--json").stdout.splitlines()]
    rid = asked[0]["run_id"]
    for args in (("--request", "approval:pay"), ()):  # the approval named, or only the run
        refused = _cli(tmp_path, "approvals", "approve", rid, *args, check=2).stderr
        for a in asked:
            assert f"#{a['seq']} {a['name']}" in " ".join(refused.split()), refused
        assert "--seq" in refused, refused
    assert len(_cli(tmp_path, "approvals", "--json").stdout.splitlines()) == 2  # nothing decided
    large = next(a for a in asked if a["payload"]["amount"] == 50000)
    _cli(tmp_path, "approvals", "reject", rid, "--seq", str(large["seq"]))  # the number alone picks it
    assert "the run is now completed" in _cli(tmp_path, "approvals", "approve", rid, "--request", "approval:pay").stdout
    shown = _cli(tmp_path, "runs", "show", rid, "--json").stdout
    assert json.loads(shown)["run"]["output"] == [True, False]

