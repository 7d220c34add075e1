"""Accounting: tokens, latency and cost of every logged model, classifier and tool call, rolled up
per step, run and workflow from the run history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..models._base import Response, Usage
from .history import RunHistory, fold

if TYPE_CHECKING:
    from typing import Protocol

    from ..records import RunRecord
    from ..storage import Store

    class Client(Protocol):
        store: Store

        async def authorize(self, permission: str, target: str = "") -> Any: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class CallUsage:
    """One logged call and what it consumed."""

    run_id: str
    step: str
    """The step that made the call (``agent``, or ``agent#2[3]`` in loops and fan-outs)."""
    call: str
    """The call's name within the step (``llm``, ``agent.model-2``, ``tool.search``)."""
    kind: str
    """``model``, ``classify`` or ``tool``."""
    model: str
    usage: Usage


def _usage_of(value: Any) -> tuple[str, str, Usage] | None:
    from ..classifiers import Classification
    from ..tools import ToolResult

    if isinstance(value, Response):
        return "model", value.model, value.usage
    if isinstance(value, Classification):
        return "classify", value.model, value.usage
    if isinstance(value, ToolResult):
        return "tool", f"tool:{value.name}", Usage(latency=value.latency)
    c = getattr(value, "classification", None)
    if isinstance(c, Classification):
        return "classify", c.model, c.usage
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageReport:
    """Calls and their usage; roll them up with :attr:`total`, :meth:`by_step`, :meth:`by_model`..."""

    calls: tuple[CallUsage, ...] = ()

    @property
    def total(self) -> Usage:
        return _sum(c.usage for c in self.calls)

    @property
    def model_calls(self) -> int:
        return sum(1 for c in self.calls if c.kind == "model")

    def _group(self, key: Any) -> dict[str, Usage]:
        out: dict[str, Usage] = {}
        for c in self.calls:
            k = key(c)
            out[k] = out[k] + c.usage if k in out else c.usage
        return out

    def by_step(self) -> dict[str, Usage]:
        return self._group(lambda c: c.step)

    def by_model(self) -> dict[str, Usage]:
        return self._group(lambda c: c.model)

    def by_run(self) -> dict[str, Usage]:
        return self._group(lambda c: c.run_id)

    def by_kind(self) -> dict[str, Usage]:
        return self._group(lambda c: c.kind)

    def __add__(self, other: UsageReport) -> UsageReport:
        return UsageReport(calls=self.calls + other.calls)


def _sum(items: Iterable[Usage]) -> Usage:
    total = Usage(calls=0)
    for u in items:
        total = total + u
    return total


def usage_of(history: RunHistory) -> UsageReport:
    """The calls logged in one run's history (durable calls: ``step/call``)."""
    calls = []
    for v in history.steps:
        if "/" not in v.step or v.output is None:
            continue
        found = _usage_of(v.output)
        if found is None:
            continue
        kind, model, usage = found
        step, _, call = v.step.partition("/")
        key = v.key.replace(v.step, step, 1)
        calls.append(
            CallUsage(run_id=history.run.id, step=key, call=call, kind=kind, model=model, usage=usage)
        )
    return UsageReport(calls=tuple(calls))


async def usage(
    client: Client, *, run_id: str | None = None, workflow: str | None = None, limit: int = 1000
) -> UsageReport:
    """Usage of one run (``run_id``), or of a workflow's latest ``limit`` runs (``workflow``). Needs
    ``runs.read``: tokens, cost and latency are the calls' accounting, not their data, so they are
    read from the history as recorded (a viewer's history hides the outputs they are counted from)."""
    await client.authorize("runs.read", run_id or workflow or "")
    if run_id is not None:
        return await _recorded(client, run_id)
    if workflow is None:
        raise ValueError("usage() needs run_id=... or workflow=...")
    report = UsageReport()
    for record in await client.store.list_runs(workflow=workflow, limit=limit):
        report = report + await _recorded(client, record.id, record)
    return report


async def _recorded(client: Client, run_id: str, run: RunRecord | None = None) -> UsageReport:
    found = run if run is not None else await client.store.get_run(run_id)
    if found is None:
        raise NotFound(f"no run with id {run_id!r}; list runs with 'podium runs'")
    events = await client.store.load_events(run_id)
    return usage_of(RunHistory(run=found, steps=fold(events), events=events))


def format_usage(report: UsageReport) -> list[str]:
    """Lines for a terminal: the total, then one line per step."""
    if not report.calls:
        return []

    def line(u: Usage) -> str:
        cost = "cost unknown" if u.cost is None else f"${u.cost:.6f}"
        return (
            f"{u.calls} calls, {u.input_tokens} tokens in, {u.output_tokens} out, {cost}, {u.latency:.2f} s"
        )

    lines = [f"usage: {line(report.total)}"]
    for step, u in report.by_step().items():
        lines.append(f"  {step}: {line(u)}")
    return lines
