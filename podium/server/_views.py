"""Engine records as JSON for the API: runs, steps, events, workflow graphs."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from typing import Any

from .._serde import untagged
from ..engine.history import fold
from ..engine.workflow import Workflow
from ..records import Event, EventType, RunRecord

#: The largest integer a store's integer columns hold (SQLite INTEGER, PostgreSQL BIGINT): bounds
#: sequence-number parameters, so a huge one is a 422, not an overflow in the driver.
MAX_SEQ = 2**63 - 1


def payload(text: str | None) -> Any:
    """A stored payload as plain JSON: dataclasses and pydantic models become their fields; secret
    fields (``api_key``, ``password``...) show as ``***`` (podium.secret)."""
    from ..secret import mask, redact

    if text is None:
        return None
    try:
        return mask(plain(json.loads(text)))
    except ValueError:
        return redact(text)


plain = untagged


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow": run.workflow,
        "version": run.version,
        "status": run.status.value,
        "input": payload(run.input),
        "output": payload(run.output),
        "error": payload(run.error),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "parent_run_id": run.parent_run_id,
        "forked_from": run.forked_from,
        "fork_step": run.fork_step,
        "queue": run.queue,
        "priority": run.priority,
        "tenant": run.tenant,
    }


def event_json(ev: Event, *, data: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": ev.seq,
        "type": ev.type,
        "ts": ev.ts,
        "step": ev.step,
        "iteration": ev.iteration,
        "index": ev.index,
        "attempt": ev.attempt,
    }
    if data:
        out["data"] = payload(ev.data)
    return out


def steps_json(events: list[Event], usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per step execution, with its calls (``step/call`` sub-steps: prompts, model
    responses, tool results) and their usage."""
    from ..secret import mask

    calls: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        if ev.step and "/" in ev.step:
            calls.setdefault(ev.step.split("/", 1)[0], []).append(event_json(ev))
    # A step parked in ctx.wait_for/approval logs its wait on a "step/signal:..." sub-step: show
    # the step itself as waiting.
    own = [
        dataclasses.replace(e, step=e.step.split("/", 1)[0])
        if e.type == EventType.STEP_WAITING and e.step
        else e
        for e in events
        if not (e.step and "/" in e.step) or e.type == EventType.STEP_WAITING
    ]
    out = []
    for v in fold(own, decode=False):
        out.append(
            {
                "step": v.step,
                "key": v.key,
                "iteration": v.iteration,
                "index": v.index,
                "status": v.status.value,
                "attempts": v.attempts,
                "started_at": v.started_at,
                "finished_at": v.finished_at,
                "duration": v.duration,
                "output": mask(plain(v.output)),
                "error": mask(v.error),
                "errors": mask(v.errors),
                "reason": v.reason,
                "reused_from": v.reused_from,
                "calls": calls.get(v.step, []),
                "usage": (usage or {}).get(v.key),
            }
        )
    return out


def usage_json(report: Any) -> dict[str, Any]:
    return {
        "total": dataclasses.asdict(report.total),
        "by_step": {k: dataclasses.asdict(u) for k, u in report.by_step().items()},
        "calls": [
            {"step": c.step, "call": c.call, "kind": c.kind, "model": c.model, **dataclasses.asdict(c.usage)}
            for c in report.calls
        ],
    }


def workflow_json(wf: Workflow, *, versions: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": wf.name,
        "version": wf.version,
        "versions": versions or [wf.version],
        "description": wf.description,
        "ref": wf.ref,
        "triggers": list(getattr(wf, "triggers", []) or []),
        "steps": [
            {
                "id": s.id,
                "kind": s.kind,
                "deps": list(s.deps),
                "description": s.description,
                "map": s.map,
                "loop": s.loop is not None,
            }
            for s in (wf.steps[i] for i in (wf.order or tuple(wf.steps)))
        ],
    }


def pack_cursor(where: list[Any]) -> str:
    """An opaque page cursor holding ``where`` (a page's last position)."""
    return base64.urlsafe_b64encode(json.dumps(where).encode()).decode().rstrip("=")


def unpack_cursor(cursor: str, *kinds: type) -> tuple[Any, ...] | None:
    """The position a :func:`pack_cursor` holds: a finite time, then texts (``kinds`` after the time:
    ``str``); None for a text that is not such a cursor (nor NaN, nor a NUL byte no store keeps)."""
    try:
        at, *rest = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        return None
    if len(rest) != len(kinds) or not isinstance(at, int | float) or isinstance(at, bool):
        return None
    if not all(isinstance(v, k) for v, k in zip(rest, kinds, strict=True)) or any("\x00" in v for v in rest):
        return None
    try:
        when = float(at)
    except OverflowError:  # an integer no float holds: no cursor this API gave
        return None
    return (when, *rest) if math.isfinite(when) else None


def approval_cursor(request: dict[str, Any]) -> str:
    """An opaque page cursor of the approvals inbox: the position (request time, run id, name) of a
    page's last request."""
    return pack_cursor([request["requested_at"], request["run_id"], request["name"]])


def approval_after(cursor: str) -> dict[str, Any] | None:
    """The position an :func:`approval_cursor` holds, as ``client.approvals(after=)`` takes it; None
    for a text that is not such a cursor."""
    found = unpack_cursor(cursor, str, str)
    if found is None:
        return None
    when, run_id, name = found
    return {"requested_at": when, "run_id": run_id, "name": name}
