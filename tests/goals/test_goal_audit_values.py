"""The signed audit log is never erased, so it holds no business values. A goal's ``goal.replan``
entry carried the plan record's reason, which quotes the failed step's error (whose message may
hold the data it failed on: an e-mail address here) and the planner's own words (a model's free
text); the run's error messages are hidden from whoever lacks ``payloads.read``, the audit entry
was not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import podium
from podium import goals
from podium.goals import GoalPolicy, Skill, Skills

EMAIL = "alice.private@example.com"


def _notify(email: str) -> dict:
    raise ValueError(f"the mailbox of {email} is full")


SKILLS = Skills(
    [
        Skill(name="lookup", description="Look the customer up", fn=lambda: {"email": EMAIL}, keywords=("lookup",),
              output={"type": "object", "properties": {"email": {"type": "string"}}}),
        Skill(name="notify", description="E-mail the customer", fn=_notify, keywords=("notify",), fallback="notify_alt",
              input={"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}),
        Skill(name="notify_alt", description="Write to the customer", fn=lambda: {"sent": True}),
    ],
    name="notify-skills",
)


def test_a_replan_is_audited_without_the_failed_steps_message(tmp_path: Path) -> None:
    async def main() -> tuple[list, list]:
        async with podium.Client(f"sqlite:///{tmp_path}/a.db") as c:
            h = await goals.pursue(c, "lookup the customer and notify them", skills=SKILLS,
                                   policy=GoalPolicy(approve="never"))
            out = await h.result(timeout=120)
            assert out["status"] == "completed" and out["replans"] == 1
            entries = [e.details() for e in await c.audit_log() if e.action in ("goal.plan", "goal.replan")]
            return entries, await goals.plans(c, h.id)

    entries, records = asyncio.run(main())
    assert [e["n"] for e in entries] == [1, 2]
    assert EMAIL in records[1]["reason"]  # the plan record (a payload) keeps the whole reason
    assert EMAIL not in json.dumps(entries)
    assert entries[1]["reason"] == "replan after notify failed"


def test_a_plans_approval_title_does_not_quote_the_goal(tmp_path: Path) -> None:
    """The goal is the run's input (a payload); an approval's title is read with ``approvals.read``
    alone (a viewer), whose requests show no payload. The title quoted the goal."""
    goal = f"lookup the customer {EMAIL} and notify them"

    async def main() -> dict:
        db = f"sqlite:///{tmp_path}/t.db"
        async with podium.Client(db) as c:
            await c.create_user("root", ["admin"])
            await c.create_user("vic", ["viewer"])
            admin, token = await c.create_token("root"), await c.create_token("vic")
        async with podium.Client(db, token=admin) as c:
            h = await goals.pursue(c, goal, skills=SKILLS, policy=GoalPolicy(approve="always"))
            await goals.settle(c, h.id)
            async with podium.Client(db, token=token) as viewer:
                [seen] = await viewer.approvals(run_id=h.id)
            await c.cancel(h.id)
            return seen

    seen = asyncio.run(main())
    assert seen["payload"] is None
    assert EMAIL not in seen["title"] and "alice" not in seen["title"]
    assert seen["title"].startswith("approve plan 1") and "lookup" in seen["title"] and "notify" in seen["title"]
