"""Roll-ups across runs: model cost per workflow and UTC day, and the business figures
(``ctx.metric``) workflows reported over time. The API and the dashboard's Costs and KPIs pages
read them; so can Python::

    from podium.engine.insights import daily_costs, kpis

    report = await daily_costs(client, days=30)
    for day in report.days:
        print(day.day, day.workflow, day.cost)

Both read the runs created in the window from the store, newest first and at most ``limit`` of them
(``truncated`` says when more were left out), and only the logged calls of those runs: no payload
leaves the store, only tokens, costs and the figures, as ``/metrics`` shows them. Both need
``runs.read``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..records import Event, EventType
from .usage import _usage_of

if TYPE_CHECKING:
    from ..records import RunRecord

DAY = 86_400.0
_PAGE = 200


def utc_day(ts: float) -> str:
    """``2026-12-04`` for an epoch time (UTC, as daily budgets count)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    """Which runs a roll-up read."""

    since: float
    until: float
    runs: int
    """Runs read (created in the window, at most the limit)."""
    truncated: bool
    """More runs were created in the window than the limit let it read."""


@dataclass(kw_only=True, slots=True)
class DayCost:
    """What one workflow's model calls consumed on one UTC day."""

    day: str
    workflow: str
    runs: int = 0
    """Runs with at least one model call that day."""
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0
    """Calls whose cost is unknown (a model without a price): their tokens count, their cost not."""
    _run_ids: set[str] = field(default_factory=set, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class CostReport:
    window: Window
    days: list[DayCost]
    """By day, then workflow."""

    @property
    def total(self) -> float:
        return sum(d.cost for d in self.days)


@dataclass(frozen=True, kw_only=True, slots=True)
class KpiPoint:
    """One figure a step reported with ``ctx.metric``."""

    metric: str
    kind: str
    """``gauge`` (a value) or ``counter`` (an amount added)."""
    value: float
    ts: float
    workflow: str
    run_id: str
    step: str
    labels: dict[str, str]


@dataclass(frozen=True, kw_only=True, slots=True)
class KpiReport:
    window: Window
    points: list[KpiPoint]
    """Oldest first."""


async def _runs(client: Any, since: float, workflow: str | None, limit: int) -> tuple[list[RunRecord], bool]:
    """Runs created at or after ``since``, newest first, at most ``limit`` (and whether more were)."""
    out: list[RunRecord] = []
    offset = 0
    while True:
        page = await client.store.list_runs(workflow=workflow, limit=_PAGE, offset=offset)
        for run in page:
            if run.created_at < since:
                return out, False
            if len(out) == limit:
                return out, True
            out.append(run)
        if len(page) < _PAGE:
            return out, False
        offset += _PAGE


def _calls(events: Iterable[Event], marker: str) -> Iterable[tuple[Event, Any]]:
    """Completed durable calls (``step/call`` sub-steps) whose logged data holds ``marker``, with
    their decoded output (the data is only decoded for those)."""
    for ev in events:
        if ev.type != EventType.STEP_COMPLETED or not ev.step or "/" not in ev.step or not ev.data:
            continue
        if marker not in ev.data:
            continue
        try:
            yield ev, _serde.loads(ev.data).get("output")
        except Exception:  # a record this version cannot decode is left out of the roll-up
            continue


async def _window(
    client: Any, days: float, workflow: str | None, limit: int, now: float | None
) -> tuple[Window, list[RunRecord]]:
    await client.authorize("runs.read", f"workflow:{workflow}" if workflow else "")
    if not days > 0 or limit < 1:
        from ..errors import ConfigError

        raise ConfigError(f"a roll-up needs days > 0 and limit >= 1, got days={days}, limit={limit}")
    until = time.time() if now is None else now
    since = until - days * DAY
    runs, truncated = await _runs(client, since, workflow, limit)
    return Window(since=since, until=until, runs=len(runs), truncated=truncated), runs


async def daily_costs(
    client: Any,
    *,
    days: float = 30,
    workflow: str | None = None,
    limit: int = 2000,
    now: float | None = None,
) -> CostReport:
    """Tokens and cost of model and classifier calls per workflow and UTC day (the day each call
    finished), over the runs created in the last ``days`` days."""
    window, runs = await _window(client, days, workflow, limit, now)
    rows: dict[tuple[str, str], DayCost] = {}
    for run in runs:
        for ev, output in _calls(await client.store.load_events(run.id), '"input_tokens"'):
            found = _usage_of(output)
            if found is None or found[0] == "tool":
                continue
            usage = found[2]
            key = (utc_day(ev.ts), run.workflow)
            row = rows.get(key) or rows.setdefault(key, DayCost(day=key[0], workflow=key[1]))
            row._run_ids.add(run.id)
            row.calls += 1
            row.input_tokens += usage.input_tokens
            row.output_tokens += usage.output_tokens
            if usage.cost is None:
                row.unpriced += 1
            else:
                row.cost += usage.cost
    for row in rows.values():
        row.runs = len(row._run_ids)
    return CostReport(window=window, days=[rows[k] for k in sorted(rows)])


async def kpis(
    client: Any,
    *,
    days: float = 30,
    workflow: str | None = None,
    metric: str | None = None,
    limit: int = 2000,
    now: float | None = None,
) -> KpiReport:
    """The business figures (``ctx.metric``) reported by the runs created in the last ``days`` days,
    oldest first; ``metric`` keeps one name."""
    window, runs = await _window(client, days, workflow, limit, now)
    points: list[KpiPoint] = []
    for run in runs:
        for ev, out in _calls(await client.store.load_events(run.id), '"metric"'):
            assert ev.step is not None
            step, _, call = ev.step.partition("/")
            if (
                not call.startswith("metric:")
                or not isinstance(out, dict)
                or not isinstance(out.get("metric"), str)
            ):
                continue
            if metric is not None and out["metric"] != metric:
                continue
            try:
                value = float(out["value"])
            except (KeyError, TypeError, ValueError):
                continue
            points.append(
                KpiPoint(
                    metric=out["metric"],
                    kind="counter" if out.get("kind") == "counter" else "gauge",
                    value=value,
                    ts=ev.ts,
                    workflow=run.workflow,
                    run_id=run.id,
                    step=step,
                    labels={str(k): str(v) for k, v in (out.get("labels") or {}).items()},
                )
            )
    points.sort(key=lambda p: (p.ts, p.run_id))
    return KpiReport(window=window, points=points)


__all__ = ["CostReport", "DayCost", "KpiPoint", "KpiReport", "Window", "daily_costs", "kpis", "utc_day"]
