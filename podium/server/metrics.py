"""Prometheus metrics, exposed with the official client (``prometheus-client``).

Counters and histograms are this process's: official ``Counter``/``Histogram`` objects fed by the
events this process's client writes (runs, steps, retries, tokens, gates, HTTP requests). What is
read at scrape time (runs per status and queue depth from the store, runs driven now, dead letters,
business figures, connector health, a worker's claims and leases) is a custom collector built for
each scrape: the reads are async, so :meth:`Metrics.render` makes them first and the collector then
yields the families. Rendering, escaping and number formatting are the client's (exact: a counter of
12,345,678 tokens prints ``1.2345678e+07``, which parses back to 12345678).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from ..records import Event, RunStatus

log = logging.getLogger("podium.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

#: The process's own instruments: name -> (kind, help, label names). Label names are sorted, so a
#: series reads the same as the hand-written format did (``{status="completed",workflow="hello"}``).
INSTRUMENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "podium_runs_total": ("counter", "Runs that ended, by workflow and status.", ("status", "workflow")),
    "podium_runs_started_total": ("counter", "Runs started or resumed by this process.", ("workflow",)),
    "podium_steps_total": (
        "counter", "Step executions that ended, by workflow, step and status.", ("status", "step", "workflow"),
    ),
    "podium_step_retries_total": ("counter", "Step attempts that failed and were retried.", ("step", "workflow")),
    "podium_run_duration_seconds": ("histogram", "Run wall time, start to end.", ("workflow",)),
    "podium_step_duration_seconds": ("histogram", "Step execution time (last attempt).", ("step", "workflow")),
    "podium_tokens_total": (
        "counter", "Model tokens, by workflow, model and direction.", ("direction", "model", "workflow"),
    ),
    "podium_cost_total": ("counter", "Model cost in the provider's currency, by workflow and model.", ("model", "workflow")),
    "podium_events_ingested_total": ("counter", "Events accepted by POST /api/events/{type}.", ("type",)),
    "podium_http_requests_total": ("counter", "HTTP requests, by method, route and status.", ("method", "route", "status")),
    "podium_gate_checks_total": (
        "counter",
        "Data-quality gate rules checked, by step, rule, outcome and result.",
        ("outcome", "result", "rule", "step", "workflow"),
    ),
    "podium_gate_quarantined_rows_total": ("counter", "Rows a gate set aside (quarantined).", ("step", "workflow")),
}  # fmt: skip

#: Business figures (``ctx.metric``) kept per process: at most this many names, and this many label
#: sets per name. Label values can come from data a run saw (a customer id), so without a cap a
#: workflow could grow the server's memory and every scrape without bound; past it, figures are
#: dropped and logged once per name.
MAX_BUSINESS_METRICS = 200
#: Event types counted by name in ``podium_events_ingested_total``: a type is any text in the URL of
#: anyone who may start runs, so past this many the others count as ``type="other"`` (else each new
#: one is a series for good, in the server's memory and every scrape).
MAX_EVENT_TYPES = 1000
MAX_BUSINESS_SERIES = 1000
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # Prometheus label names, less the reserved "__" ones
_Key = tuple[tuple[str, str], ...]


class Business:
    """The business figures reported with ``ctx.metric(...)``: gauges set, counters added."""

    def __init__(self) -> None:
        self.series: dict[str, tuple[str, str, dict[_Key, float]]] = {}
        """Family name (``podium_business_NAME``, no ``_total``) -> (kind, NAME as reported, series)."""
        self._names: dict[str, str] = {}
        """Every sample name a family exposes or reserves -> the family."""
        self._warned: set[str] = set()

    def record(self, name: str, kind: str, value: float, labels: dict[str, str]) -> None:
        family = "podium_business_" + (name.removesuffix("_total") if kind == "counter" else name)
        known = self.series.get(family)
        if known is None:
            # A counter F exposes F_total (and may expose F_created): a gauge of that name would clash.
            names = (family, family + "_total", family + "_created") if kind == "counter" else (family,)
            clash = next((self._names[n] for n in names if n in self._names), None)
            if clash is not None:
                return self._drop(family, f"its name clashes with {clash}")
            if len(self.series) >= MAX_BUSINESS_METRICS:
                return self._drop(family, f"more than {MAX_BUSINESS_METRICS} business metrics")
            known = self.series[family] = (kind, name, {})
            self._names.update(dict.fromkeys(names, family))
        if known[0] != kind:
            return self._drop(family, f"reported as a {kind} after being a {known[0]}")
        key = tuple(sorted(labels.items()))
        series = known[2]
        if key not in series and len(series) >= MAX_BUSINESS_SERIES:
            return self._drop(family, f"more than {MAX_BUSINESS_SERIES} label sets")
        series[key] = series.get(key, 0.0) + value if kind == "counter" else value
        return None

    def _drop(self, family: str, why: str) -> None:
        if family not in self._warned:
            self._warned.add(family)
            log.warning("metrics: figures of %s are dropped (%s); each reason is logged once", family, why)

    def families(self) -> Iterator[Metric]:
        for family, (kind, name, series) in sorted(self.series.items()):
            doc = f"Business figure {name!r} reported by workflows (ctx.metric)."
            fam: Metric = CounterMetricFamily(family, doc) if kind == "counter" else GaugeMetricFamily(family, doc)
            sample = family + "_total" if kind == "counter" else family
            # Samples of their own: label sets may differ between figures of one name.
            fam.samples += [Sample(sample, dict(key), value) for key, value in sorted(series.items())]
            yield fam


class _Scrape:
    """One scrape: the registry's instruments, then the families read for this scrape."""

    def __init__(self, registry: CollectorRegistry, families: Iterable[Metric]) -> None:
        self.registry, self.families = registry, list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.families


class Metrics:
    """This process's instruments and business figures, plus what a scrape reads from the store.

    ``store_gauges``: read runs per status and queue depth from the store on each scrape (the API
    server does; workers leave it to the server, so that N workers do not make N reads a scrape).
    """

    def __init__(self, *, store_gauges: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.instruments: dict[str, Counter | Histogram] = {}
        for name, (kind, doc, labels) in INSTRUMENTS.items():
            if kind == "counter":
                self.instruments[name] = Counter(name, doc, labels, registry=self.registry)
            else:
                self.instruments[name] = Histogram(name, doc, labels, buckets=BUCKETS, registry=self.registry)
        self.business = Business()
        self.store_gauges = store_gauges
        self.extra: list[Any] = []
        """Async callables ``(client) -> list of families`` read on each scrape (a worker's claims)."""
        self._workflow: dict[str, str] = {}
        self._event_types: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.client: Any = None

    def event_type(self, name: str) -> str:
        """The ``type`` label of an ingested event: its name, or ``other`` past :data:`MAX_EVENT_TYPES`."""
        if name not in self._event_types and len(self._event_types) >= MAX_EVENT_TYPES:
            return "other"
        self._event_types.add(name)
        return name

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` to counter ``name`` (one of :data:`INSTRUMENTS`) for ``labels``."""
        instrument = self.instruments[name]
        assert isinstance(instrument, Counter), f"{name} is not a counter"
        instrument.labels(**labels).inc(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """One observation of histogram ``name`` (one of :data:`INSTRUMENTS`)."""
        instrument = self.instruments[name]
        assert isinstance(instrument, Histogram), f"{name} is not a histogram"
        instrument.labels(**labels).observe(value)

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
        elif t in ("run_waiting", "run_handed_off"):
            self._workflow.pop(ev.run_id, None)  # another process (or a later claim) ends it
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
            labels = {k: str(v) for k, v in (out.get("labels") or {}).items() if _LABEL.fullmatch(str(k))}
            kind = "counter" if out.get("kind") == "counter" else "gauge"
            self.business.record(out["metric"], kind, float(out["value"]), {**labels, "workflow": wf})
            return
        step = (ev.step or "").partition("/")[0]
        for r in out.get("rules") or ():
            self.inc(
                "podium_gate_checks_total", workflow=wf, step=step, rule=str(r.get("rule")),
                outcome=str(r.get("on")), result="pass" if r.get("ok") else "fail",
            )  # fmt: skip
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
                for direction, n in (("input", c.usage.input_tokens), ("output", c.usage.output_tokens)):
                    self.inc("podium_tokens_total", n, workflow=wf, model=c.model, direction=direction)
                if c.usage.cost:
                    self.inc("podium_cost_total", c.usage.cost, workflow=wf, model=c.model)
        except Exception:
            log.debug("metrics: no usage for run %s", run_id, exc_info=True)

    async def families(self, triggers: Any = None) -> list[Metric]:
        """What this scrape reads: the store's gauges, this process's runs, business figures,
        connectors, and the ``extra`` readers."""
        out: list[Metric] = list(self.business.families())
        client = self.client
        if client is None:
            return out
        store = client.store
        if self.store_gauges:
            unfinished = GaugeMetricFamily(
                "podium_runs_unfinished", "Runs in the store that have not ended, by status.", labels=["status"]
            )
            counts = await store.count_runs((RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING))
            for status, n in counts.items():
                unfinished.add_metric([status.value], n)
            out += [
                unfinished,
                GaugeMetricFamily("podium_queue_depth", "Runs waiting for a worker.", value=counts[RunStatus.PENDING]),
            ]
        out.append(GaugeMetricFamily("podium_runs_driving", "Runs this process drives now.", value=len(client.driving)))
        from .metrics_connectors import connector_families

        out += await connector_families(client)
        for read in self.extra:
            out += await read(client)
        if triggers is not None:
            dead = await store.kv_count("deadletters")
            out.append(GaugeMetricFamily("podium_dead_letters", "Events that could not start their run.", value=dead))
        return out

    async def render(self, triggers: Any = None, *, accept: str = "") -> str:
        """The exposition text (the Prometheus text format, or OpenMetrics when ``accept`` asks)."""
        return (await self.exposition(triggers, accept=accept))[0].decode()

    async def exposition(self, triggers: Any = None, *, accept: str = "") -> tuple[bytes, str]:
        """``(body, content type)`` of a scrape, in the format the scraper's ``Accept`` header asks for."""
        encoder, content_type = choose_encoder(accept)
        return encoder(_Scrape(self.registry, await self.families(triggers))), content_type


def _started(ev: Event) -> float | None:
    if not ev.data:
        return None
    try:
        value = json.loads(ev.data).get("started")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
