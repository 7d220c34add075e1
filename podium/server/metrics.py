"""Prometheus metrics (text format 0.0.4), fed by the events this server's client writes.

Counters and histograms are this process's; gauges (queue depth, runs per status, dead letters)
are read from the store when scraped, so they hold for every process sharing it.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
from typing import Any

from ..records import Event, RunStatus

log = logging.getLogger("podium.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.n = 0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, v)] += 1
        self.sum += v
        self.n += 1


class Metrics:
    """In-process counters and histograms, plus store-read gauges at scrape time."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self.histograms: dict[str, dict[tuple[tuple[str, str], ...], Histogram]] = {}
        self.help: dict[str, str] = {
            "podium_runs_total": "Runs that ended, by workflow and status.",
            "podium_runs_started_total": "Runs started or resumed by this process.",
            "podium_steps_total": "Step executions that ended, by workflow, step and status.",
            "podium_step_retries_total": "Step attempts that failed and were retried.",
            "podium_run_duration_seconds": "Run wall time, start to end.",
            "podium_step_duration_seconds": "Step execution time (last attempt).",
            "podium_tokens_total": "Model tokens, by workflow, model and direction.",
            "podium_cost_total": "Model cost in the provider's currency, by workflow and model.",
            "podium_events_ingested_total": "Events accepted by POST /api/events/{type}.",
            "podium_trigger_runs_total": "Runs started by triggers (schedules, events, rules, files).",
            "podium_http_requests_total": "HTTP requests, by method, route and status.",
            "podium_gate_checks_total": "Data-quality gate rules checked, by step, rule, outcome and result.",
            "podium_gate_quarantined_rows_total": "Rows a gate set aside (quarantined).",
        }
        self.gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._workflow: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.client: Any = None

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self.counters.setdefault(name, {})
        series[key] = series.get(key, 0.0) + value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.histograms.setdefault(name, {}).setdefault(key, Histogram()).observe(value)

    def attach(self, client: Any) -> None:
        self.client = client
        client.subscribe(self.on_event)

    def on_event(self, ev: Event) -> None:
        """A client listener: runs and steps as they happen (called in the engine's loop, so cheap)."""
        try:
            self._on_event(ev)
        except Exception:  # metrics never break a run
            log.exception("metrics: cannot account for event %s", ev.type)

    def _on_event(self, ev: Event) -> None:
        wf = self._workflow.get(ev.run_id)
        if wf is None and self.client is not None:
            ex = self.client.driving.get(ev.run_id)
            wf = ex.wf.name if ex is not None else "?"
            self._workflow[ev.run_id] = wf
        wf = wf or "?"
        t = ev.type
        if t in ("run_started", "run_resumed"):
            self.inc("podium_runs_started_total", workflow=wf)
        elif t in ("run_completed", "run_failed", "run_cancelled"):
            status = t.removeprefix("run_")
            self.inc("podium_runs_total", workflow=wf, status=status)
            ex = self.client.driving.get(ev.run_id) if self.client is not None else None
            started = ex.run.started_at or ex.run.created_at if ex is not None else None
            if started:
                self.observe("podium_run_duration_seconds", max(0.0, ev.ts - started), workflow=wf)
            self._workflow.pop(ev.run_id, None)
            self._spawn(self._usage(ev.run_id, wf))
        elif (
            t in ("step_completed", "step_failed", "step_skipped", "step_cancelled")
            and ev.step
            and "/" not in ev.step
        ):
            self.inc("podium_steps_total", workflow=wf, step=ev.step, status=t.removeprefix("step_"))
            started = _started(ev)
            if started:
                self.observe(
                    "podium_step_duration_seconds", max(0.0, ev.ts - started), workflow=wf, step=ev.step
                )
        elif t == "step_completed" and ev.step and ev.step.partition("/")[2].startswith(("gate:", "metric:")):
            self._figures(wf, ev)
        elif t == "step_retrying":
            self.inc("podium_step_retries_total", workflow=wf, step=ev.step or "?")

    def _figures(self, wf: str, ev: Event) -> None:
        """A step's gate report (``podium.ml.Gate``) or business figure (``ctx.metric``), from its log."""
        out = json.loads(ev.data or "{}").get("output")
        if not isinstance(out, dict):
            return
        if "/metric:" in (ev.step or "") and isinstance(out.get("metric"), str):
            name = "podium_business_" + out["metric"]
            labels = {k: str(v) for k, v in (out.get("labels") or {}).items() if k.isidentifier()}
            key = tuple(sorted({**labels, "workflow": wf}.items()))
            if out.get("kind") == "counter":
                self.inc(name, float(out["value"]), **dict(key))
            else:
                self.gauges.setdefault(name, {})[key] = float(out["value"])
            self.help.setdefault(name, f"Business figure {out['metric']!r} reported by workflows (ctx.metric).")
            return
        step = (ev.step or "").partition("/")[0]
        for r in out.get("rules") or ():
            self.inc(
                "podium_gate_checks_total", workflow=wf, step=step, rule=str(r.get("rule")),
                outcome=str(r.get("on")), result="pass" if r.get("ok") else "fail",
            )
        bad = {i for r in out.get("rules") or () if r.get("on") == "quarantine" and not r.get("ok") for i in r.get("bad") or ()}
        if bad:
            self.inc("podium_gate_quarantined_rows_total", float(len(bad)), workflow=wf, step=step)

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _usage(self, run_id: str, wf: str) -> None:
        """Tokens and cost of a finished run, read from its logged model calls."""
        from ..engine.history import RunHistory, fold

        try:
            events = await self.client.store.load_events(run_id)
            if not any(e.step and "/" in e.step for e in events):
                return
            run = await self.client.store.get_run(run_id)
            from ..ai import usage_of

            report = usage_of(RunHistory(run=run, steps=fold(events), events=events))
            for c in report.calls:
                if c.kind == "tool":
                    continue
                self.inc(
                    "podium_tokens_total", c.usage.input_tokens, workflow=wf, model=c.model, direction="input"
                )
                self.inc(
                    "podium_tokens_total",
                    c.usage.output_tokens,
                    workflow=wf,
                    model=c.model,
                    direction="output",
                )
                if c.usage.cost:
                    self.inc("podium_cost_total", c.usage.cost, workflow=wf, model=c.model)
        except Exception:
            log.debug("metrics: no usage for run %s", run_id, exc_info=True)

    async def render(self, triggers: Any = None) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines += [f"# HELP {name} {self.help.get(name, name)}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(series.items())]
        for name, hs in sorted(self.histograms.items()):
            lines += [f"# HELP {name} {self.help.get(name, name)}", f"# TYPE {name} histogram"]
            for k, h in sorted(hs.items()):
                acc = 0
                for bound, c in zip((*BUCKETS, float("inf")), h.counts, strict=True):
                    acc += c
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f"{name}_bucket{_labels((*k, ('le', le)))} {acc}")
                lines += [f"{name}_sum{_labels(k)} {h.sum:g}", f"{name}_count{_labels(k)} {h.n}"]
        for name, gseries in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {self.help.get(name, name)}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(gseries.items())]
        if self.client is not None:
            store = self.client.store
            lines += [
                "# HELP podium_runs Runs in the store by status (unfinished ones).",
                "# TYPE podium_runs gauge",
            ]
            for status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):
                n = len(await store.list_runs(status=[status], limit=100_000))
                lines.append(f'podium_runs{{status="{status.value}"}} {n}')
                if status is RunStatus.PENDING:
                    pending = n
            lines += [
                "# HELP podium_queue_depth Runs waiting for a worker.",
                "# TYPE podium_queue_depth gauge",
                f"podium_queue_depth {pending}",
            ]
            lines += [
                "# HELP podium_runs_driving Runs this process drives now.",
                "# TYPE podium_runs_driving gauge",
                f"podium_runs_driving {len(self.client.driving)}",
            ]
            from .metrics_connectors import connector_lines

            lines += await connector_lines(self.client)
            if triggers is not None:
                dead = len(await store.kv_list("deadletters"))
                lines += [
                    "# HELP podium_dead_letters Events that could not start their run.",
                    "# TYPE podium_dead_letters gauge",
                    f"podium_dead_letters {dead}",
                ]
        return "\n".join(lines) + "\n"


def _started(ev: Event) -> float | None:
    if not ev.data:
        return None
    try:
        value = json.loads(ev.data).get("started")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
