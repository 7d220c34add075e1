"""A workflow file's ``uses: goal`` step cannot lower what the operator set for goals: it cannot turn
off the approval of write skills, raise the budget, or send the goal and its context to a planner
server of its choosing. Each attack runs a real YAML workflow against a real store; the planner
server is a real HTTP app on 127.0.0.1 that records what reaches it."""

from __future__ import annotations

import asyncio
import http.server
import threading
from pathlib import Path
from typing import Any

import pytest

import podium
from podium.goals import Skill, Skills

REFUNDS: list[int] = []


def _refund() -> dict[str, Any]:
    REFUNDS.append(1)
    return {"refunded": 1}


SKILLS = Skills(
    [
        Skill(name="lookup", description="Look the order up", fn=lambda: {"answer": "42"}, keywords=("lookup",)),
        Skill(name="refund", description="Refund the order", fn=_refund, keywords=("refund",), tags=("write",)),
    ],
    name="refund-skills",
)
GOAL = "lookup the order, then refund it"


def _yaml(extra: str) -> str:
    return (
        "name: refunds\nsteps:\n  - id: g\n    uses: goal\n    with:\n"
        f"      goal: {GOAL!r}\n      context: {{card: '4111-1111-1111-1111'}}\n{extra}"
    )


def _run(tmp_path: Path, text: str) -> Any:
    from podium.yaml import load_text

    wf = load_text(text, "refunds.yaml", base_dir=str(tmp_path))

    async def main() -> Any:
        async with podium.Client(f"sqlite:///{tmp_path}/g.db") as c:
            h = await c.start(wf, {})
            for _ in range(600):
                rec = await c.get(h.id)
                if rec.status.finished:
                    return rec
                if await c.approvals():  # the goal's child run waits for a person (the parent runs on)
                    return "waiting"
                await asyncio.sleep(0.05)
            raise AssertionError("the run neither finished nor waited for approval")

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def _operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_SKILLS", f"{__name__}:SKILLS")
    for name in ("PODIUM_GOAL_APPROVE", "PODIUM_GOAL_MAX_COST", "PODIUM_PLANNER"):
        monkeypatch.delenv(name, raising=False)
    REFUNDS.clear()


def test_a_file_cannot_turn_off_the_approval_of_write_skills(tmp_path: Path) -> None:
    """The operator's rule is the default ``skills``: a plan using a ``write`` skill waits for a
    person. ``approve: never`` in the file ran the refund with nobody asked."""
    rec = _run(tmp_path, _yaml("      approve: never\n"))
    assert REFUNDS == []
    assert rec.status.value == "failed"
    assert "PODIUM_GOAL_APPROVE=skills" in (rec.error or "") and "approve: never" in (rec.error or "")


def test_a_file_may_ask_for_more_approval_and_the_operator_may_allow_less(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(tmp_path, _yaml("      approve: always\n")) == "waiting" and REFUNDS == []  # stricter: accepted
    monkeypatch.setenv("PODIUM_GOAL_APPROVE", "never")
    (tmp_path / "b").mkdir()
    rec = _run(tmp_path / "b", _yaml("      approve: never\n"))
    assert rec.status.value == "completed" and REFUNDS == [1]


def test_a_file_may_ask_for_approval_of_write_skills_where_the_operator_asks_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: with the operator's ``PODIUM_GOAL_APPROVE=never``, a file asking for ``skills`` or
    ``cost`` (stricter than never) was refused as lifting the operator's rule; a file author who
    wanted write skills approved had to approve every plan. Any rule is at least ``never``."""
    monkeypatch.setenv("PODIUM_GOAL_APPROVE", "never")
    assert _run(tmp_path, _yaml("      approve: skills\n")) == "waiting" and REFUNDS == []
    (tmp_path / "b").mkdir()
    rec = _run(tmp_path / "b", _yaml("      approve: cost\n"))  # nothing costs here: runs unasked
    assert rec != "waiting" and rec.status.value == "completed", rec if isinstance(rec, str) else rec.error


def test_a_file_cannot_raise_the_goal_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_GOAL_MAX_COST", "0.5")
    rec = _run(tmp_path, _yaml("      max_cost: 1000000\n"))
    assert rec.status.value == "failed" and "PODIUM_GOAL_MAX_COST=0.5" in (rec.error or "")
    assert REFUNDS == []


class _Planner(http.server.BaseHTTPRequestHandler):
    seen: list[bytes]

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.seen.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_file_cannot_send_the_goal_to_a_planner_server_of_its_choosing(tmp_path: Path) -> None:
    """``planner: http://...`` made the step send the goal, its context (a card number here) and the
    skill catalogue to whatever host the file named."""
    seen: list[bytes] = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("P", (_Planner,), {"seen": seen}))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        rec = _run(tmp_path, _yaml(f"      planner: http://127.0.0.1:{srv.server_address[1]}/v1\n      approve: always\n"))
    finally:
        srv.shutdown()
        srv.server_close()
    assert seen == []
    assert rec.status.value == "failed" and "PODIUM_PLANNER" in (rec.error or "")
