"""The run trace: what the AI did in a run, read from its event log, for people to follow.

Every durable sub-step of a step (``step/call``) becomes one entry, in the order it was logged:
model calls (provider, model, the prompt as stored, the answer, tokens, latency, cost, cached
input tokens), tool and connector calls (arguments as stored, result), classifications and routing
decisions (with their confidence), data-quality gates, goal plans and replans, approvals (who,
when, why) and other waits. Entries an agent made carry its name and iteration. A timeline lists,
per step execution, its attempts, retries, backoffs, waits and calls, as time segments.

Prompts and arguments are what the calls stored (``ctx.call(..., trace=...)``): redacted before
they were written, absent with ``trace_prompts = false``. Everything shown passes through
:func:`podium.secret.mask`. The trace reads the run through :meth:`Client.history`, so it needs
``runs.read`` on the run, and without ``payloads.read`` it has the shape of the calls but no text.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._serde import untagged
from ..records import Event, EventType, step_key

if TYPE_CHECKING:
    from .history import RunHistory

_AGENT_MODEL = re.compile(r"^(?P<agent>.+)\.model(?:-\d+)?$")
_PLAN = re.compile(r"^plan(?:-\d+)?$")
_FINAL = {EventType.STEP_COMPLETED.value, EventType.STEP_FAILED.value, EventType.STEP_CANCELLED.value}
_APPROVAL = "signal:approval:"


_plain = untagged  # stored payload JSON without type tags


def _type(value: Any) -> str:
    """The class name of a tagged stored value (``Response``, ``ToolResult``...), else ``""``."""
    if isinstance(value, dict) and "$podium" in value:
        return str(value.get("type", "")).rpartition(":")[2]
    return ""


def _data(ev: Event) -> dict[str, Any]:
    if not ev.data:
        return {}
    try:
        d = json.loads(ev.data)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


@dataclass
class _Row:
    """One step execution's line of the timeline."""

    key: str
    step: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    open_attempt: float | None = None
    open_wait: dict[str, float] = field(default_factory=dict)


def _entry(call: str, data: dict[str, Any], ev: Event) -> dict[str, Any]:
    """One trace entry from a sub-step's final event."""
    out_raw = data.get("output")
    kind_of = _type(out_raw)
    found = data.get("trace")
    note: dict[str, Any] = found if isinstance(found, dict) else {}
    output = _plain(out_raw)
    entry: dict[str, Any] = {"call": call, "status": ev.type.removeprefix("step_"), "attempts": ev.attempt}
    if "error" in data:
        entry["error"] = data["error"]
    if isinstance(note.get("omitted"), int):  # too large to keep: what was called, without its text
        entry["omitted"] = note["omitted"]
    if kind_of == "Response" or note.get("kind") == "model":
        resp = output if isinstance(output, dict) else {}
        usage = resp.get("usage") or {}
        spec = str(resp.get("model") or note.get("model") or "")
        entry.update(
            kind="model",
            model=spec,
            provider=note.get("provider") or spec.partition(":")[0],
            prompt=note.get("messages"),
            earlier=note.get("earlier", 0),
            tools=note.get("tools", []),
            settings={k: note[k] for k in ("tool_choice", "max_tokens", "temperature", "output_schema") if k in note},
            response={
                "text": resp.get("text", output if isinstance(output, str) else ""),
                "tool_calls": [{"name": c.get("name"), "arguments": c.get("arguments")} for c in resp.get("tool_calls", [])],
                "finish_reason": resp.get("finish_reason"),
                "output": resp.get("output"),
            },
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            cached_tokens=usage.get("cached_tokens", 0),
            latency=usage.get("latency"),
            cost=usage.get("cost"),
            trail=resp.get("trail", []),
        )
        if note.get("agent"):
            entry["agent"] = note["agent"]
    elif kind_of == "ToolResult" or note.get("kind") == "tool":
        res = output if isinstance(output, dict) else {}
        entry.update(
            kind="tool",
            tool=res.get("name") or note.get("tool") or call,
            arguments=note.get("arguments"),
            ok=res.get("ok", "error" not in data),
            result=res.get("value", output if not res else None),
            tool_error=res.get("error"),
            latency=res.get("latency"),
            trail=res.get("trail", []),
        )
        if note.get("agent"):
            entry["agent"] = note["agent"]
    elif call.startswith("connector:") or note.get("kind") == "connector":
        name, _, operation = call.removeprefix("connector:").partition(".")
        entry.update(
            kind="connector",
            connector=note.get("connector", name),
            operation=note.get("operation", operation.rsplit("-", 1)[0] if re.search(r"-\d+$", operation) else operation),
            arguments=note.get("arguments"),
            result=output,
        )
    elif kind_of in ("RouteDecision", "RouteResult"):
        d = output.get("decision", output) if isinstance(output, dict) else {}
        entry.update(kind="route", **{k: d.get(k) for k in ("route", "confidence", "by", "label", "reason", "escalate")})
    elif kind_of == "Classification":
        c = output if isinstance(output, dict) else {}
        entry.update(kind="classify", label=c.get("label"), confidence=c.get("confidence"), scores=c.get("scores"),
                     method=c.get("method"), model=c.get("model"))
    elif call.startswith("gate:") and isinstance(output, dict) and "rules" in output:
        entry.update(kind="gate", gate=call.removeprefix("gate:"), passed=output.get("passed"), rows=output.get("rows"),
                     rules=[{k: r.get(k) for k in ("rule", "on", "ok", "detail")} for r in output.get("rules", [])])
    elif _PLAN.match(call) and isinstance(output, dict) and "planner" in output:
        plan = output.get("plan") or {}
        entry.update(kind="plan", n=output.get("n"), planner=output.get("planner"), reason=output.get("reason"),
                     steps=[{"id": s.get("id"), "skill": s.get("skill"), "needs": s.get("needs", [])} for s in plan.get("steps", [])],
                     problems=output.get("problems", []), cost=output.get("cost"), tries=output.get("attempts"))
    elif call.startswith(_APPROVAL):
        d = output if isinstance(output, dict) else {}
        entry.update(kind="approval", name=call.removeprefix("signal:"), decided_at=ev.ts, approved=d.get("approved"),
                     by=d.get("by"), comment=d.get("comment"), edited=d.get("edited"), timed_out=bool(data.get("timed_out")))
    elif call.startswith("signal:"):
        entry.update(kind="wait", signal=call.removeprefix("signal:"), timed_out=bool(data.get("timed_out")), value=output)
    else:
        entry.update(kind="call", result=output)
    return entry


def trace_of(history: RunHistory, *, hidden: bool = False, now: float | None = None) -> dict[str, Any]:
    """The trace of one run from its history (see the module docstring). ``hidden``: the reader
    lacks ``payloads.read`` (the history holds no values; the trace says so)."""
    from ..secret import mask

    run = history.run
    now = time.time() if now is None else now
    rows: dict[str, _Row] = {}
    calls: list[dict[str, Any]] = []
    waiting: dict[tuple[str, int, int | None], dict[str, Any]] = {}
    turns: dict[tuple[str, str], int] = {}
    prompts: dict[tuple[str, str], list[Any] | None] = {}

    def row(ev: Event, step: str) -> _Row:
        key = step_key(step, ev.iteration, ev.index)
        if key not in rows:
            rows[key] = _Row(key=key, step=step)
        return rows[key]

    for ev in history.events:
        if not ev.step or ev.type == EventType.LOOP_ITERATION.value:
            continue
        step, _, call = ev.step.partition("/")
        r = row(ev, step)
        data = _data(ev)
        started = data.get("started") if isinstance(data.get("started"), int | float) else None
        if not call:  # the step itself: attempts, retries, the wait it parks in
            if ev.type == EventType.STEP_STARTED.value:
                r.open_attempt = ev.ts
            elif ev.type in (EventType.STEP_RETRYING.value, *_FINAL):
                start = started or r.open_attempt or ev.ts
                status = "retry" if ev.type == EventType.STEP_RETRYING.value else ev.type.removeprefix("step_")
                r.segments.append({"kind": "attempt", "start": start, "end": ev.ts, "attempt": ev.attempt, "status": status,
                                   "error": (data.get("error") or {}).get("message") if isinstance(data.get("error"), dict) else None})
                r.open_attempt = None
                delay = (data.get("error") or {}).get("retry_in") if isinstance(data.get("error"), dict) else None
                if ev.type == EventType.STEP_RETRYING.value and isinstance(delay, int | float):
                    r.segments.append({"kind": "backoff", "start": ev.ts, "end": ev.ts + delay, "attempt": ev.attempt})
            continue
        key = (ev.step, ev.iteration, ev.index)
        if ev.type == EventType.STEP_WAITING.value:
            r.open_wait[call] = ev.ts
            info = data.get("approval") if isinstance(data.get("approval"), dict) else None
            pending = {"call": call, "step": r.key, "seq": ev.seq, "ts": ev.ts, "status": "waiting",
                       "kind": "approval" if call.startswith(_APPROVAL) else "wait", "requested_at": ev.ts,
                       "deadline": data.get("deadline")}
            if info is not None:
                pending.update(name=call.removeprefix("signal:"), title=info.get("title"), role=info.get("role"),
                               request=_plain(info.get("payload")))
            waiting[key] = pending
            calls.append(pending)
            continue
        if ev.type == EventType.STEP_RETRYING.value:
            r.segments.append({"kind": "call", "label": call, "start": started or ev.ts, "end": ev.ts, "status": "retry", "attempt": ev.attempt})
            continue
        if ev.type not in _FINAL:
            continue
        entry = _entry(call, data, ev)
        entry.update(step=r.key, seq=ev.seq, ts=ev.ts, started=started)
        earlier = entry.pop("earlier", 0)
        if entry["kind"] == "model" and _AGENT_MODEL.match(call):
            agent = entry.get("agent") or _AGENT_MODEL.match(call).group("agent")  # type: ignore[union-attr]
            n = turns[(r.key, agent)] = turns.get((r.key, agent), 0) + 1
            entry.update(agent=agent, iteration=n)
            if entry.get("prompt") is not None:  # an agent's call stored only its new messages
                before = prompts.get((r.key, agent))
                entry["prompt"] = None if earlier and (before is None or len(before) < earlier) else (before or [])[:earlier] + entry["prompt"]
                prompts[(r.key, agent)] = entry["prompt"]
        elif entry.get("agent"):
            entry["iteration"] = turns.get((r.key, entry["agent"]), 1)
        if key in waiting:  # a wait that ended: its entry becomes the outcome, in the request's place
            pending = waiting.pop(key)
            pending.update({k: v for k, v in entry.items() if k not in ("seq",)})
            pending["waited"] = ev.ts - pending["requested_at"]
        else:
            calls.append(entry)
        opened = r.open_wait.pop(call, None)
        if opened is not None:
            r.segments.append({"kind": "wait", "label": call, "start": opened, "end": ev.ts, "status": entry["status"]})
        elif started is not None and not call.startswith("signal:"):
            r.segments.append({"kind": "call", "label": call, "start": started, "end": ev.ts, "status": entry["status"], "attempt": ev.attempt})
    for r in rows.values():  # still going: open to now
        if r.open_attempt is not None:
            r.segments.append({"kind": "attempt", "start": r.open_attempt, "end": None, "attempt": 0, "status": "running"})
        for call, opened in r.open_wait.items():
            r.segments.append({"kind": "wait", "label": call, "start": opened, "end": None, "status": "waiting"})
    models = [c for c in calls if c["kind"] == "model"]

    def total(field_: str) -> float:
        return sum(c.get(field_) or 0 for c in models)

    doc: dict[str, Any] = {
        "run": {k: getattr(run, k) for k in ("id", "workflow", "version", "created_at", "started_at", "finished_at")}
        | {"status": run.status.value},
        "now": now,
        "payloads_hidden": hidden,
        "prompts_stored": any(c.get("prompt") for c in models),
        "totals": {
            "model_calls": len(models),
            "tool_calls": sum(1 for c in calls if c["kind"] in ("tool", "connector")),
            "input_tokens": int(total("input_tokens")),
            "output_tokens": int(total("output_tokens")),
            "cached_tokens": int(total("cached_tokens")),
            "cost": round(total("cost"), 8) if any(c.get("cost") is not None for c in models) else None,
            "latency": round(total("latency"), 4),
        },
        "calls": calls,
        "timeline": [{"step": r.key, "segments": sorted(r.segments, key=lambda s: s["start"])} for r in rows.values() if r.segments],
    }
    shown: dict[str, Any] = mask(json.loads(json.dumps(doc, default=str)))
    return shown


async def run_trace(client: Any, run_id: str) -> dict[str, Any]:
    """The trace of run ``run_id`` as ``client``'s principal may see it (``runs.read``; the text
    of prompts, answers and arguments needs ``payloads.read``), with the runs it started
    (``children``: a routed workflow, a goal's plans), each with its own trace."""
    history = await client.history(run_id)
    doc = trace_of(history, hidden=not client.principal.can("payloads.read"))
    children = await client.list(parent_run_id=run_id, limit=1000)
    doc["children"] = [
        {"id": r.id, "workflow": r.workflow, "status": r.status.value, "created_at": r.created_at}
        for r in sorted(children, key=lambda r: r.created_at)
    ]
    return doc


__all__ = ["run_trace", "trace_of"]
