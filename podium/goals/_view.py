"""A goal run's plans as people see them (``GET /api/runs/{id}/plan``, MCP ``get_plan``, the run
page of the dashboard): each plan and replan with why it was made, its approval, and how each of its
steps went in the child run that ran it."""

from __future__ import annotations

import re
from typing import Any

from ..errors import NotFound
from ._orchestrator import plans_of, render

_APPROVAL = re.compile(r"/signal:approval:plan-(\d+)$")


def _approvals(history: Any) -> dict[int, dict[str, Any]]:
    """Plan number -> its approval: waiting, approved or rejected (by whom, why, edited or not)."""
    out: dict[int, dict[str, Any]] = {}
    for v in history.steps:
        m = _APPROVAL.search(v.step)
        if m is None:
            continue
        if v.status.value != "completed":
            out[int(m.group(1))] = {"state": "waiting"}
            continue
        d = v.output if isinstance(v.output, dict) else {}
        out[int(m.group(1))] = {
            "state": "approved" if d.get("approved") else "rejected",
            "by": d.get("by"),
            "comment": d.get("comment", ""),
            "edited": bool(d.get("edited")),
        }
    return out


async def describe(client: Any, run_id: str) -> dict[str, Any]:
    """Every plan record of goal run ``run_id``, each with ``approval`` (``not needed``,
    ``waiting``, ``approved``, ``rejected``), ``run`` (its child run, once started) and
    ``step_status`` (step id -> its status there, ``kept`` for a step an earlier plan finished), plus the text graph.
    Reads as the client's acting principal (``runs.read``; payloads need ``payloads.read``)."""
    history = await client.history(run_id)
    records = plans_of(history)
    if not records:
        raise NotFound(f"run {run_id} is not a goal run (it has no plan); start one with podium goals start or POST /api/goals")
    approvals = _approvals(history)
    children = {r.id.rpartition("/")[2]: r for r in await client.list(parent_run_id=run_id, limit=1000)}
    plans = []
    for rec in records:
        child = children.get(f"plan-{rec['n']}")
        steps = {sid: "kept" for sid in (rec["plan"].get("kept") or {})}
        steps.update({s["id"]: "planned" for s in rec["plan"].get("steps", [])})
        if child is not None:
            for v in (await client.history(child.id)).steps:
                if "/" not in v.step and steps.get(v.step) == "planned":  # a kept step stays "kept"
                    steps[v.step] = v.status.value
        plans.append({
            **rec,
            "approval": approvals.get(rec["n"], {"state": "not needed"}),
            "run": None if child is None else {"id": child.id, "status": child.status.value},
            "step_status": steps,
        })  # fmt: skip
    return {"run_id": run_id, "status": history.run.status.value, "plans": plans, "graph": render(history)}
