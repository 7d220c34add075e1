"""Whom a goal is planned for. The roles come from the principal that really started the run (the
signed audit log's ``run.start``; a child run's root), never from the run's input: the input may
only narrow them. Each attack below starts the goal workflow directly, claiming roles it does not
hold, through every door that starts a run (the Python client, POST /api/runs, a YAML workflow)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import podium
from podium import goals
from podium.goals import GoalPolicy, Skill, Skills

GOAL = "lookup the handbook, then run payroll"
SKILLS = Skills(
    [
        Skill(name="lookup", description="Look a question up in the handbook", fn=lambda: {"answer": "42"},
              keywords=("lookup",)),
        Skill(name="payroll", description="Pay everyone (finance only)", fn=lambda: {"paid": 3},
              keywords=("payroll",), roles=("finance",)),
    ],
    name="payroll-skills",
)
NEVER = GoalPolicy(approve="never")


async def _people(c: podium.Client) -> dict[str, str]:
    """Users of a store (created by the local user): tokens of an operator without and with finance."""
    await c.define_role("finance", ["runs.read"])
    await c.create_user("root", ["admin"])
    await c.create_user("olga", ["operator"])
    await c.create_user("fin", ["operator", "finance"])
    return {"olga": await c.create_token("olga"), "fin": await c.create_token("fin")}


async def _outcome(c: podium.Client, rid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rec = await c.wait(rid, timeout=120)
    assert rec.status.value == "completed", rec.error
    return await c.result(rid), await goals.plans(c, rid)


def _skills_of(records: list[dict[str, Any]]) -> set[str]:
    return {s["skill"] for r in records for s in r["plan"]["steps"]}


def test_input_roles_cannot_widen_the_starters_roles(tmp_path: Path) -> None:
    """olga (operator) starts the goal workflow with client.start and claims finance and admin."""
    db = f"sqlite:///{tmp_path}/p.db"

    async def main() -> None:
        async with podium.Client(db) as local:
            tokens = await _people(local)
        wf = goals.goal_workflow(SKILLS, policy=NEVER)
        async with podium.Client(db, token=tokens["olga"]) as c:
            h = await c.start(wf, {"goal": GOAL, "context": {}, "roles": ["finance", "admin"]})
            out, records = await _outcome(c, h.id)
            assert _skills_of(records) == {"lookup"} and "payroll" not in out["outputs"]
            assert records[0]["for"] == {"by": "olga", "roles": []}  # narrowed to what she holds: none of them
            h = await c.start(wf, {"goal": GOAL, "context": {}})
            _, records = await _outcome(c, h.id)
            assert _skills_of(records) == {"lookup"} and records[0]["for"] == {"by": "olga", "roles": ["operator"]}
        async with podium.Client(db, token=tokens["fin"]) as c:
            out, records = await _outcome(c, (await goals.pursue(c, GOAL, skills=SKILLS, policy=NEVER)).id)
            assert _skills_of(records) == {"lookup", "payroll"} and out["outputs"]["payroll"] == {"paid": 3}
            # the input narrows: fin may choose to plan without finance
            h = await goals.pursue(c, GOAL, skills=SKILLS, policy=NEVER, roles=["operator"])
            _, records = await _outcome(c, h.id)
            assert _skills_of(records) == {"lookup"}
        async with podium.Client(db, token=tokens["olga"]) as c:  # forged roles are refused outright when malformed
            h = await c.start(wf, {"goal": GOAL, "roles": "finance"})
            rec = await c.wait(h.id, timeout=120)
            assert rec.status.value == "failed" and "narrows the caller's roles" in (rec.error or "")

    asyncio.run(main())


def test_local_user_holds_every_role(tmp_path: Path) -> None:
    async def main() -> None:
        async with podium.Client(f"sqlite:///{tmp_path}/p.db") as c:
            _, records = await _outcome(c, (await goals.pursue(c, GOAL, skills=SKILLS, policy=NEVER)).id)
            assert _skills_of(records) == {"lookup", "payroll"}
            assert records[0]["for"] == {"by": "local", "roles": None}
            h = await goals.pursue(c, GOAL, skills=SKILLS, policy=NEVER, roles=[])
            _, records = await _outcome(c, h.id)
            assert _skills_of(records) == {"lookup"}

    asyncio.run(main())


def test_yaml_goal_step_plans_with_the_starters_roles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``uses: goal`` runs the goal as a child run: it plans for whoever started the workflow."""
    from podium.yaml import load_text

    monkeypatch.setenv("PODIUM_SKILLS", f"{__name__}:SKILLS")
    monkeypatch.setenv("PODIUM_GOAL_APPROVE", "never")  # the operator's rule: a file cannot lift it (test_goal_floor.py)
    text = f"name: pay\nsteps:\n  - id: g\n    uses: goal\n    with:\n      goal: {GOAL!r}\n      approve: never\n"
    wf = load_text(text, "pay.yaml", base_dir=str(tmp_path))
    db = f"sqlite:///{tmp_path}/p.db"

    async def main() -> dict[str, set[str]]:
        async with podium.Client(db) as local:
            tokens = await _people(local)
        seen = {}
        for who in ("olga", "fin"):
            async with podium.Client(db, token=tokens[who]) as c:
                out = await c.run(wf, {})
                seen[who] = set(out["g"]["outputs"]) if "g" in out else set(out["outputs"])
        return seen

    seen = asyncio.run(main())
    assert seen == {"olga": {"lookup"}, "fin": {"lookup", "payroll"}}


def test_http_start_run_cannot_claim_roles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /api/runs of the goal workflow with forged roles, and POST /api/goals: both plan for the
    caller the token says, and the MCP tool pursue_goal does the same."""
    pytest.importorskip("fastapi")
    import httpx

    from podium.goals.default import build
    from podium.governance.identity import Principal
    from podium.server import Settings, create_app
    from podium.server.mcp_tools import PodiumTools, ToolFailure

    monkeypatch.setenv("PODIUM_SKILLS", f"{__name__}:SKILLS")
    monkeypatch.setenv("PODIUM_GOAL_APPROVE", "never")

    async def main() -> None:
        app = create_app(Settings(store=f"sqlite:///{tmp_path}/p.db", deploy_dir=str(tmp_path / "d")))
        async with app.router.lifespan_context(app):
            client = app.state.client
            tokens = await _people(client)
            client.register(build())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                olga = {"Authorization": f"Bearer {tokens['olga']}"}
                r = await http.post("/api/runs", headers=olga, json={
                    "workflow": "goal", "input": {"goal": GOAL, "roles": ["finance", "admin"]}})
                assert r.status_code in (200, 201), r.text
                _, records = await _outcome(client, r.json()["run"]["id"])
                assert _skills_of(records) == {"lookup"} and records[0]["for"]["by"] == "olga"
                r = await http.post("/api/goals", headers={"Authorization": f"Bearer {tokens['fin']}"},
                                    json={"goal": GOAL})
                _, records = await _outcome(client, r.json()["run_id"])
                assert _skills_of(records) == {"lookup", "payroll"}
            tools = PodiumTools(client)
            olga_p, fin_p = await client.authenticate(tokens["olga"]), await client.authenticate(tokens["fin"])
            out = await tools.call(olga_p, "pursue_goal", {"goal": GOAL, "wait_seconds": 60})
            assert out["status"] == "completed" and set(out["output"]["outputs"]) == {"lookup"}
            assert "1. lookup: lookup" in out["plan"] and "payroll: payroll" not in out["plan"]
            out = await tools.call(fin_p, "pursue_goal", {"goal": GOAL, "wait_seconds": 60})
            assert set(out["output"]["outputs"]) == {"lookup", "payroll"}
            viewer = Principal(name="vic", roles=("viewer",), permissions=frozenset({"runs.read"}))
            with pytest.raises(ToolFailure, match="permission_denied"):
                await tools.call(viewer, "pursue_goal", {"goal": GOAL})

    asyncio.run(main())


def test_a_fork_plans_for_whoever_forked(tmp_path: Path) -> None:
    """olga forks fin's goal run (runs.fork): the fork is hers, so it is planned for her roles, not
    for the roles of the run she forked."""
    db = f"sqlite:///{tmp_path}/p.db"

    async def main() -> None:
        async with podium.Client(db) as local:
            tokens = await _people(local)
        wf = goals.goal_workflow(SKILLS, policy=NEVER)
        async with podium.Client(db, token=tokens["fin"]) as c:
            c.register(wf)
            first = await c.start(wf, {"goal": GOAL})
            _, records = await _outcome(c, first.id)
            assert _skills_of(records) == {"lookup", "payroll"}
        async with podium.Client(db, token=tokens["olga"]) as c:
            c.register(wf)
            fork = await c.fork(first.id, "pursue")
            out, records = await _outcome(c, fork.id)
            assert _skills_of(records) == {"lookup"} and "payroll" not in out["outputs"]
            assert records[0]["for"] == {"by": "olga", "roles": ["operator"]}

    asyncio.run(main())


def test_cli_goal_waits_for_approval_then_approves_and_replans(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``podium goal`` plans for the caller, stops at the plan's approval (exit 3), and with
    ``--approve`` approves it, runs it and shows the replan after the injected failure."""
    from click.testing import CliRunner

    from examples import margins
    from podium.cli import cli

    margins.use_db(str(tmp_path / "shop.db"), faults=("pricing_update",))
    for var in ("PODIUM_TOKEN", "PODIUM_SKILLS", "PODIUM_PLANNER", "PODIUM_GOAL_APPROVE"):
        monkeypatch.delenv(var, raising=False)
    env = {"PODIUM_DB": f"sqlite:///{tmp_path}/p.db"}
    args = ["goal", margins.GOAL, "--skills", "examples.margins:skills", "--context",
            '{"vendor": "Acme Foods", "increase_pct": 14}']
    waiting = CliRunner().invoke(cli, args, env=env)
    assert waiting.exit_code == 3, waiting.output
    assert "waiting for approval (approval:plan-1)" in waiting.output and "pricing_update" in waiting.output
    done = CliRunner().invoke(cli, [*args, "--approve"], env=env)
    assert done.exit_code == 0, done.output
    assert "replan 2" in done.output and "pricing_update_alt" in done.output


def test_a_scoped_token_plans_only_with_the_roles_its_scopes_leave_whole(tmp_path: Path) -> None:
    """Attack: fin's token narrowed to starting runs (without runs.read, finance's one permission)
    still had the goal planned with finance's skills: the plan went by the user's roles, not the
    token's. A role counts for the plan only if the token's scopes leave all of it."""
    db = f"sqlite:///{tmp_path}/p.db"

    async def main() -> None:
        async with podium.Client(db) as local:
            await _people(local)
            scoped = await local.create_token("fin", name="starter", scopes=["runs.start", "workflows.read"])
            whole = await local.create_token("fin", name="finance", scopes=["runs.start", "workflows.read", "runs.read"])
            root = await local.create_token("root")
        wf = goals.goal_workflow(SKILLS, policy=NEVER)
        async with podium.Client(db, token=scoped, workflows=[wf]) as c:
            narrowed = (await c.start(wf, {"goal": GOAL, "context": {}})).id
            await c.drain()  # driven to its end here: the token may not read it
        async with podium.Client(db, token=whole, workflows=[wf]) as c:
            kept = (await c.start(wf, {"goal": GOAL, "context": {}})).id
            await c.drain()
        async with podium.Client(db, token=root, workflows=[wf]) as c:
            _, records = await _outcome(c, narrowed)
            assert _skills_of(records) == {"lookup"} and records[0]["for"] == {"by": "fin", "roles": []}
            _, records = await _outcome(c, kept)
            assert _skills_of(records) == {"lookup", "payroll"}
            assert records[0]["for"] == {"by": "fin", "roles": ["finance"]}

    asyncio.run(main())
