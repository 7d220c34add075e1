"""Folding a run's event log into per-step views (for ``show``, history queries and resume)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..records import Event, EventType, RunRecord, StepStatus, StepView
from ..storage._base import APPROVAL_SIGNAL

if TYPE_CHECKING:
    from ..governance.identity import Principal
    from .workflow import Workflow

_FINAL_STEP = {
    EventType.STEP_COMPLETED: StepStatus.COMPLETED,
    EventType.STEP_FAILED: StepStatus.FAILED,
    EventType.STEP_SKIPPED: StepStatus.SKIPPED,
    EventType.STEP_CANCELLED: StepStatus.CANCELLED,
}


def event_data(ev: Event) -> dict[str, Any]:
    """The event's details as plain JSON (payloads not decoded into Python types)."""
    return json.loads(ev.data) if ev.data else {}


def fold(events: Iterable[Event], *, decode: bool = True) -> list[StepView]:
    """One :class:`StepView` per step execution, in the order they first appear in the log."""
    views: dict[tuple[str, int, int | None], StepView] = {}
    for ev in events:
        if ev.step is None or ev.type == EventType.LOOP_ITERATION:
            continue
        key = (ev.step, ev.iteration, ev.index)
        view = views.get(key)
        if view is None:
            view = views[key] = StepView(step=ev.step, iteration=ev.iteration, index=ev.index)
        data = (_serde.loads(ev.data) if decode else json.loads(ev.data)) if ev.data else {}
        view.attempts = max(view.attempts, ev.attempt)
        if ev.type == EventType.STEP_STARTED:
            view.status = StepStatus.RUNNING
            view.started_at = ev.ts
            continue
        if ev.type == EventType.STEP_WAITING:
            view.status = StepStatus.WAITING
            view.started_at = ev.ts
            deadline = data.get("deadline")
            until = time.strftime(" until %Y-%m-%d %H:%M:%S", time.localtime(deadline)) if deadline else ""
            view.reason = f"waiting for signal {data.get('signal')!r}{until}"
            continue
        if ev.type == EventType.STEP_RETRYING:
            view.errors.append(data.get("error", {}))
            continue
        status = _FINAL_STEP.get(EventType(ev.type))
        if status is None:
            continue
        view.status = status
        view.finished_at = ev.ts
        view.started_at = data.get("started", view.started_at)
        view.reused_from = data.get("reused_from")
        view.reason = data.get("reason")
        if status is StepStatus.COMPLETED:
            view.output = data.get("output")
        elif status in (StepStatus.FAILED, StepStatus.CANCELLED):
            view.error = data.get("error")
            if view.error:
                view.errors.append(view.error)
    return list(views.values())


@dataclass(kw_only=True)
class RunHistory:
    """A run's full story: its row, every step execution and the raw event log."""

    run: RunRecord
    steps: list[StepView]
    events: list[Event] = field(default_factory=list)

    def step(self, step_id: str, iteration: int | None = None, index: int | None = None) -> StepView:
        """The view of one step execution (the latest iteration unless ``iteration`` is given)."""
        matches = [
            v
            for v in self.steps
            if v.step == step_id and (iteration is None or v.iteration == iteration) and v.index == index
        ]
        if not matches:
            from ..errors import NotFound

            raise NotFound(f"run {self.run.id} has no record of step {step_id!r}")
        return max(matches, key=lambda v: v.iteration)

    @property
    def output(self) -> Any:
        return _serde.loads(self.run.output)

    @property
    def error(self) -> dict[str, Any] | None:
        return json.loads(self.run.error) if self.run.error else None


_HIDDEN = "[hidden: needs payloads.read]"
_TRACE_SHAPE = ("kind", "model", "provider", "tool", "connector", "operation", "agent")
_SHAPE = ("started", "owner", "format", "reason", "signals", "steps", "wake_at", "signal", "deadline", "labels")


def _without_payload(data: str | None) -> str | None:
    """An event's data for a principal without ``payloads.read``: timings and structure, no values."""
    if not data:
        return data
    try:
        d = json.loads(data)
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    kept: dict[str, Any] = {k: v for k, v in d.items() if k in _SHAPE}
    if "output" in d:
        kept["output"] = _HIDDEN
    if isinstance(d.get("trace"), dict):  # what was called (names), not with what
        kept["trace"] = {k: v for k, v in d["trace"].items() if k in _TRACE_SHAPE}
    if isinstance(d.get("error"), dict):
        kept["error"] = {"type": d["error"].get("type"), "message": _HIDDEN}
    return json.dumps(kept)


def shown(run: RunRecord, who: Principal) -> RunRecord:
    """A run's record as ``who`` may see it: without ``payloads.read``, its input, output and error
    message are hidden (a copy; the record itself is left as it is)."""
    if who.can("payloads.read"):
        return run
    hidden = json.dumps(_HIDDEN)
    return dataclasses.replace(
        run, input=hidden, output=None if run.output is None else hidden, error=_without_message(run.error)
    )


def _without_message(error: str | None) -> str | None:
    """A run's error without its message (step code's exception text quotes the data it failed on):
    the step and the type of error stay."""
    if not error:
        return error
    try:
        d = json.loads(error)
    except ValueError:
        d = {}
    kept = {k: d[k] for k in ("type", "step") if isinstance(d, dict) and k in d}
    return json.dumps({**kept, "message": _HIDDEN})


def without_payloads(events: Iterable[Event]) -> list[Event]:
    """A run's events as a principal without ``payloads.read`` sees them: timings and structure, no values."""
    return [dataclasses.replace(e, data=_without_payload(e.data)) for e in events]


def _reach(wf: Workflow, steps: set[str], links: Callable[[Any], Iterable[str]]) -> set[str]:
    """``steps`` and every step reached from them through ``links`` (a step's deps or dependents)."""
    out = set(steps)
    stack = list(out)
    while stack:
        for d in links(wf.steps[stack.pop()]):
            if d not in out:
                out.add(d)
                stack.append(d)
    return out


def _after(wf: Workflow, steps: set[str]) -> set[str]:
    """``steps`` and every step that depends on one of them (a loop's body goes whole)."""
    redo = _reach(wf, steps, lambda s: s.dependents)
    for loop_step, body in wf.loop_bodies.items():
        if redo & set(body):
            redo |= set(body) | {loop_step}
    return redo


def reusable_events(
    wf: Workflow, events: Iterable[Event], from_step: str, run_id: str, *, new_input: bool = False, reask: bool = False
) -> list[Event]:
    """The events of run ``run_id`` that a fork re-executing ``from_step`` keeps: every finished step
    that neither is ``from_step`` nor depends on it (a loop's body goes whole), marked as reused.
    With ``new_input``, a step that asked a person (an approval, an escalation) is executed again
    too: a decision about one input is not a decision about another. With ``reask`` (four eyes: the
    fork's starter may not decide its approvals), a step that asked a person and that a re-executed
    step comes after is executed again: one decision does not let someone else act twice."""
    if from_step not in wf.steps:
        import difflib

        from ..errors import NotFound

        close = difflib.get_close_matches(from_step, list(wf.steps), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"steps are: {', '.join(wf.steps)}"
        raise NotFound(f"workflow {wf.name!r} has no step {from_step!r}; {hint}")
    events = list(events)
    # A step that asked a person: its request (STEP_WAITING), or its decision kept as a sub-step
    # result (a fork of a fork: the reused step left its decision, not its request).
    asked = {
        ev.step.split("/", 1)[0]
        for ev in events
        if ev.step
        and (
            (ev.type == EventType.STEP_WAITING and ev.data and '"approval"' in ev.data)
            or (ev.type == EventType.STEP_COMPLETED and f"/signal:{APPROVAL_SIGNAL}" in ev.step)
        )
    }
    redo = _after(wf, {from_step} | (asked if new_input else set()))
    if reask:  # the steps that asked a person before a re-executed one ask again
        redo = _after(wf, redo | (asked & _reach(wf, redo, lambda s: s.deps)))
    keep = []
    for ev in events:
        if ev.step is None or ev.step.split("/", 1)[0] in redo:  # "step/call" sub-steps follow their step
            continue
        if ev.type in (EventType.STEP_COMPLETED, EventType.STEP_SKIPPED, EventType.LOOP_ITERATION):
            data = json.loads(ev.data) if ev.data else {}
            if ev.type != EventType.LOOP_ITERATION:
                data["reused_from"] = run_id
            keep.append(dataclasses.replace(ev, data=json.dumps(data)))
    return keep
