"""Why an unfinished run stands where it is, and what moves it on: one line for ``podium run``
(when the run leaves the process unfinished) and ``podium runs show``. Read from the run's record,
its events (the last ``run_waiting``), the approvals, the kill switches on and the run's audit
entries (a worker whose token was refused records ``run.handback``); nothing is guessed."""

from __future__ import annotations

import json
import shlex
from typing import Any

from podium import EventType, PodiumError, RunStatus
from podium.engine.lineage import parent_workflows

from ._render import escape, when  # titles and reasons come from run data and switch settings


async def explain(client: Any, run: Any) -> tuple[str, str] | None:
    """``(label, line)`` for a run that waits (for a person, a switch, a signal or timer) or that no
    engine drives; None for a finished run or one an engine drives now."""
    if run.status is RunStatus.WAITING:
        if approvals := await _approvals_of(client, run):
            which = "" if len(approvals) == 1 else f" --request {escape(shlex.quote(approvals[0]['name']))}"
            titles = "; ".join(f"{a['name']}: {a.get('title') or 'approval'}" for a in approvals)
            return "waiting", (
                f"run {run.id} waits for a person's decision ({escape(titles)}); decide with: "
                f"podium approvals approve {run.id}{which}  or  podium approvals reject {run.id}{which} "
                "(the inbox: podium approvals)"
            )
        if await _parked_by_a_switch(client, run):
            return "paused", f"run {run.id} {await _switch_line(client, run)}"
        signals, wake_at = await _waits_for(client, run)
        if signals:  # named: the command to paste, one per signal it waits for
            names = " or ".join(f"podium runs signal {run.id} {escape(shlex.quote(n))} --payload JSON" for n in signals)
            timer = f" (or its timer, at {when(wake_at)})" if wake_at else ""
            return "waiting", f"run {run.id} is parked until a signal wakes it{timer}; wake it with: {names}"
        if wake_at:
            return "waiting", (
                f"run {run.id} is parked on a timer due at {when(wake_at)}: a running podium worker or podium serve "
                f"on this store takes it on then (or podium runs resume {run.id} once it is due)"
            )
        return "waiting", (
            f"run {run.id} is parked until a signal or timer wakes it; see what it waits for with: podium runs "
            f"show {run.id}; wake it with: podium runs signal {run.id} NAME --payload JSON"
        )
    if run.status is RunStatus.PENDING:  # recorded (podium run --submit, execute=False), not claimed yet
        queue = getattr(run, "queue", None) or "default"
        return "pending", (
            f"run {run.id} waits in queue {escape(queue)} for a worker: a podium worker on this store that can load "
            f"workflow {escape(run.workflow)} claims it, or run it here with: podium runs resume {run.id}"
        )
    if run.status is not RunStatus.RUNNING:
        return None
    if run.owner is not None:
        from podium.engine.worker import orphan_reason

        if orphan := orphan_reason(run):
            return "orphaned", f"run {run.id}: its engine is gone ({orphan}); continue it with: podium runs resume {run.id}"
        return None
    worker = "podium worker" + "".join(f" --label {shlex.quote(x)}" for x in (run.labels or "").split(",") if x)
    if handback := await _handed_back(client, run):
        return "handed back", (
            f"run {run.id} was handed back at {when(handback.ts)} by an engine acting as {escape(handback.actor)}, "
            f"whose token was refused ({escape(handback.details().get('reason') or 'no reason recorded')}); "
            f"no engine drives it now. It goes on where it stopped when a worker whose token is valid claims it "
            f"({escape(worker)}, with PODIUM_TOKEN of a user who may runs.resume), or at once with: podium runs resume {run.id}"
        )
    if run.labels:
        return "handed off", f"run {run.id} needs a worker with labels {escape(repr(run.labels))}: start one with: {escape(worker)}"
    return "handed off", (
        f"run {run.id} is not driven by any engine (not claimed yet, or released by an engine that stopped); "
        f"it goes on when a worker claims it (podium worker), or at once with: podium runs resume {run.id}"
    )


async def _approvals_of(client: Any, run: Any) -> list[dict[str, Any]]:
    """The approvals the run waits for (empty when it waits for something else or they cannot be read)."""
    try:
        return list(await client.approvals(run_id=run.id))
    except PodiumError:  # a caller who may not read approvals still gets the generic hint
        return []


async def _waits_for(client: Any, run: Any) -> tuple[list[str], float | None]:
    """The signals a parked run waits for (those a person may send: not approvals, quarantine
    replays or internal ones) and its next timer, from its last ``run_waiting``."""
    from podium.governance.service import RESERVED_SIGNALS

    events = await client.store.load_events(run.id)
    waiting = next((e for e in reversed(events) if e.type == EventType.RUN_WAITING and e.data), None)
    data = json.loads(waiting.data) if waiting is not None else {}
    names = [str(n) for n in data.get("signals") or [] if not str(n).startswith(RESERVED_SIGNALS)]
    wake_at = data.get("wake_at")
    return names, (float(wake_at) if isinstance(wake_at, int | float) else None)


async def timer_alone(client: Any, run: Any) -> float | None:
    """When a parked run's timer is due, if a timer (``ctx.sleep``, a YAML ``sleep`` step) is all it
    waits for: no signal, approval or switch. None otherwise."""
    events = await client.store.load_events(run.id)
    waiting = next((e for e in reversed(events) if e.type == EventType.RUN_WAITING and e.data), None)
    data = json.loads(waiting.data) if waiting is not None else {}
    names, wake_at = data.get("signals") or [], data.get("wake_at")
    if names and all(str(n).startswith("__timer__:") for n in names) and isinstance(wake_at, int | float):
        return float(wake_at)
    return None


async def _parked_by_a_switch(client: Any, run: Any) -> bool:
    events = await client.store.load_events(run.id)
    waiting = next((e for e in reversed(events) if e.type == EventType.RUN_WAITING and e.data), None)
    return waiting is not None and "__killswitch__" in json.loads(waiting.data).get("signals", [])


async def _switch_line(client: Any, run: Any) -> str:
    """Which ``pause`` switches park the run and how to clear them. Those over all runs or its
    workflow certainly do; a step kind's, an agent's, a connector's or another workflow's might (the
    run's events do not say which step kind or connector its parked step has, or which sub-workflow
    it waits to start), and are named when no certain one is on."""
    try:
        on = {k: v for k, v in (await client.switches()).items() if v.get("mode") == "pause"}
    except PodiumError:  # a caller who may not read the switches gets the generic hint
        return "is parked by a kill switch; it goes on where it stopped once the switch is cleared: podium killswitch list"
    parents = [f"workflow:{w}" for w in await parent_workflows(client.store, run)]  # their switches hold a child
    sure = [k for k in ("all:*", f"workflow:{run.workflow}", *parents, "workflow:*") if k in on]
    found = sure or [k for k in sorted(on) if k.partition(":")[0] in ("kind", "agent", "connector", "workflow")]
    if not found and run.wake_at is not None:  # cleared, and woken: no engine has taken it up yet
        return (
            f"was parked by a kill switch that is cleared now, and has been woken: it goes on where it stopped when an "
            f"engine takes it up (a worker does at once), or now with: podium runs resume {run.id}"
        )
    if not found:
        return (
            f"is parked by a kill switch, and no kill switch that parks it is on now (it was cleared by a process "
            f"that stopped before waking the runs it parked); wake it with: podium killswitch clear workflow "
            f"{escape(shlex.quote(run.workflow))} (it answers that no such switch is set, and wakes every run a "
            "cleared switch left parked)"
        )
    named = ", ".join(f"{escape(k)} ({escape(on[k].get('reason') or 'no reason given')}, by {escape(on[k].get('by'))})" for k in found)
    clear = ", then ".join(f"podium killswitch clear {escape(_clear_args(k))}" for k in found)
    if len(found) == 1:
        return f"is parked by kill switch {named}; it goes on where it stopped once it is cleared: {clear}"
    if sure:
        return f"is parked by kill switches {named}; it goes on where it stopped once all are cleared: {clear}"
    return (
        f"is parked by one of the kill switches {named} (the one over its parked step, or over the sub-workflow it "
        f"waits to start); it goes on where it "
        f"stopped once that one is cleared: {clear}"
    )


def _clear_args(key: str) -> str:
    scope, _, name = key.partition(":")
    return scope if scope == "all" else f"{scope} --all" if name == "*" else f"{scope} {shlex.quote(name)}"


async def _handed_back(client: Any, run: Any) -> Any:
    """The ``run.handback`` audit entry that released the run, if no engine resumed it since and
    the caller may read the audit log (which account's engine, its token, why it was refused)."""
    if not client.governance.principal.can("audit.read"):
        return None
    entries = [e for e in await client.store.audit_for(run.id) if e.action == "run.handback"]
    if not entries:
        return None
    events = await client.store.load_events(run.id)
    resumed = max((e.ts for e in events if e.type in (EventType.RUN_RESUMED, EventType.RUN_STARTED)), default=0.0)
    return entries[-1] if entries[-1].ts >= resumed else None


async def child_lines(client: Any, run: Any) -> tuple[str, str] | None:
    """``(label, line)`` for a run an engine drives that stands still for a run under it (a switch, a
    person, a signal...): which child run holds it and why, as ``podium run`` says it while it waits."""
    if run.status is not RunStatus.RUNNING or not (held := await held_below(client, run.id)):
        return None
    lines = []
    for child, _, line in held:
        where = f" (step {escape(child.parent_step)})" if child.parent_step else ""
        lines.append(f"run {run.id} waits for its child run {child.id}{where}: {line}")
    return held[0][1], "\n  ".join(lines)


async def held_below(client: Any, run_id: str) -> list[tuple[Any, str, str]]:
    """The runs under ``run_id`` (its children, theirs...) that stand still while it waits for them:
    ``(run, label, line)`` as :func:`explain` says it, for a child that waits (a switch, a person, a
    signal) or that no engine drives. Empty when the caller may not list runs."""
    from podium.engine.lineage import MAX_NESTING

    out: list[tuple[Any, str, str]] = []
    if not client.principal.can("runs.read"):  # asked again and again while a run waits: no refusal audited each time
        return out
    level, depth = [run_id], 0
    while level and depth < MAX_NESTING:
        below = []
        for rid in level:
            try:
                children = await client.list(parent_run_id=rid, status=[RunStatus.WAITING, RunStatus.RUNNING], limit=1000)
            except PodiumError:
                return out
            for child in children:
                if (why := await explain(client, child)) is not None:
                    out.append((child, *why))
                elif child.status is RunStatus.RUNNING:
                    below.append(child.id)
        level, depth = below, depth + 1
    return out
