"""``podium capabilities list``, ``podium goals start`` and ``podium plan show``: goal-driven orchestration.

The skill registry is the operator's (``--skills MODULE:ATTR`` or ``$PODIUM_SKILLS``); the planner
``--planner`` (``rules``, ``local``, ``model:SPEC`` or an OpenAI-compatible URL, or ``$PODIUM_PLANNER``).
"""

from __future__ import annotations

import json
import os

import click

from ._app import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WAITING,
    cli,
    console,
    db_option,
    fail,
    goals_group,
    make_client,
    parse_input,
    requires,
    run_async,
)

skills_option = click.option(
    "--skills", "skills_ref", envvar="PODIUM_SKILLS", metavar="MODULE:ATTR",
    help="The skill registry planners use (default: $PODIUM_SKILLS), e.g. examples.margins:skills.",
)


def _skills(ref: str | None) -> object:
    from podium.goals import load_skills

    if not ref:
        fail("name the skill registry: --skills MODULE:ATTR (or set PODIUM_SKILLS), e.g. --skills examples.margins:skills")
    assert ref is not None
    os.environ["PODIUM_SKILLS"] = ref  # the goal workflow is loaded by reference when a run resumes
    return load_skills(ref)


@cli.group()
def capabilities() -> None:
    """What planners may put in a plan: specialists, workflows, connector operations and tools."""


@capabilities.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per skill.")
@skills_option
@db_option
@run_async
@requires("workflows.read", lambda kw: "skills")
async def capabilities_list(as_json: bool, skills_ref: str | None, db: str | None) -> int:
    """Every plannable skill: name, kind, cost and latency hints, roles, and its input -> output fields."""
    skills = _skills(skills_ref)
    for s in skills:  # type: ignore[attr-defined]
        if as_json:
            click.echo(json.dumps(s.info(), sort_keys=True))
            continue
        ins = ", ".join(f"{k}{'' if k in s.required else '?'}" for k in s.properties)
        roles = ",".join(s.roles) or "any role"
        click.echo(f"{s.name}\t{s.kind}\t({ins}) -> ({', '.join(s.produces)})\t${s.cost:.4f} ~{s.latency:.1f}s\t{roles}\t{s.description}")
    return EXIT_OK


@goals_group.command("start")
@click.argument("goal")
@click.option("--context", "context_text", metavar="JSON|@FILE", help="Facts the plan may use, as JSON.")
@click.option("--approve", is_flag=True, help="Approve the plan yourself (needs approvals.decide) instead of waiting.")
@click.option("--planner", envvar="PODIUM_PLANNER", default="rules", show_default=True,
              help="rules, local (the embedded model), model:PROVIDER:MODEL, or an OpenAI-compatible URL.")
@skills_option
@db_option
@run_async
@requires("runs.start", lambda kw: "goal")
async def goal_cmd(goal: str, context_text: str | None, approve: bool, planner: str, skills_ref: str | None, db: str | None) -> int:
    """Pursue GOAL: plan it over the skills, show the plan, wait for its approval, run it."""
    from podium import goals

    context = parse_input(context_text, "--context") if context_text else {}
    if not isinstance(context, dict):
        fail("--context must be a JSON object, e.g. --context '{\"vendor\": \"Acme Foods\"}'")
    # Another process resumes the run once the plan is approved (podium approvals approve): it loads
    # the goal workflow from $PODIUM_SKILLS, which --skills sets for this command only.
    by_flag = bool(skills_ref) and os.environ.get("PODIUM_SKILLS") != skills_ref
    _skills(skills_ref)
    os.environ["PODIUM_PLANNER"] = planner
    from podium.goals.default import start

    async with make_client(db) as c:
        handle = await start(c, goal, context)
        run = await goals.settle(c, handle.id)
        console().print(await goals.show_plan(c, handle.id), markup=False, highlight=False)
        while not run.status.finished:
            open_ = await c.approvals(run_id=handle.id)
            if not approve:
                names = ", ".join(r["name"] for r in open_)
                env = f"PODIUM_SKILLS={skills_ref} " if by_flag else ""
                console().print(f"\nwaiting for approval ({names}): {env}podium approvals approve {handle.id}  "
                                f"(or {env}podium approvals reject {handle.id})", markup=False, highlight=False)
                if env:
                    console().print("the process that decides resumes the goal run: it needs the same skill registry, "
                                    "PODIUM_SKILLS (export it, or start the workers and podium serve with it)",
                                    markup=False, highlight=False)
                return EXIT_WAITING
            await c.authorize("approvals.decide", handle.id)
            for r in open_:
                await c.decide(handle.id, r["name"], approve=True, comment="approved with podium goal --approve")
            run = await goals.settle(c, handle.id)
        console().print("\n" + await goals.show_plan(c, handle.id), markup=False, highlight=False)
        if run.status.value != "completed":
            message = json.loads(run.error).get("message", "") if run.error else ""
            console().print(f"\nrun {handle.id} {run.status.value}: {message}", markup=False, highlight=False)
            return EXIT_RUN_FAILED
        click.echo(json.dumps(await c.result(handle.id), default=str, indent=2))
    return EXIT_OK


@cli.group()
def plan() -> None:
    """The plans of goal runs."""


@plan.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Every plan record as JSON.")
@db_option
@run_async
@requires("runs.read", lambda kw: kw.get("run_id", ""))
async def plan_show(run_id: str, as_json: bool, db: str | None) -> int:
    """Every plan and replan of a goal run as a graph: steps, why, problems, estimate, context given."""
    from podium import goals

    async with make_client(db, execute=False, recover=False) as c:
        if as_json:
            for rec in await goals.plans(c, run_id):
                click.echo(json.dumps(rec, sort_keys=True, default=str))
            return EXIT_OK
        console().print(await goals.show_plan(c, run_id), markup=False, highlight=False)
    return EXIT_OK
