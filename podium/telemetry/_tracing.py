"""OpenTelemetry traces from the engine's events: a span per run, step attempt and durable call.

Spans are built as the events arrive, with the timings the events carry: a step attempt's span
starts when the attempt started (``started`` in its end event) and ends with it, so spans are exact
even though the engine records a step only once it ends. Model calls follow the OpenTelemetry GenAI
semantic conventions (``chat {model}``, ``gen_ai.*`` attributes); tool calls are ``execute_tool``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import install_hint
from ..records import Event
from ._events import RUN_ENDS, STEP_ENDS, Call, call_of, data_of, error_of, started_of, workflow_of

log = logging.getLogger("podium.telemetry")

INSTALL_HINT = f"OpenTelemetry is not installed; install it with: {install_hint('otel')}"
_MAX_RUNS = 10_000  # runs remembered at once (a process that only starts runs never ends them)


def _otel() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return trace


def _ns(ts: float) -> int:
    return int(ts * 1e9)


@dataclass(slots=True)
class _Run:
    workflow: str = "?"
    version: str = ""
    started: float | None = None
    parent_run: str | None = None
    span: Any = None
    context: Any = None  # the run's span context, kept after a segment ends (resumed runs join it)
    calls: dict[tuple[str, int, int | None], list[Event]] = field(default_factory=dict)
    """Durable calls logged by step executions that have not ended yet, by (step, iteration, index)."""
    waits: dict[tuple[str, int, int | None], float] = field(default_factory=dict)
    """When each signal wait (an approval...) began, by its (step/signal:name, iteration, index)."""


class Tracing:
    """A client listener that turns events into spans. Made by :func:`instrument`."""

    def __init__(self, client: Any, tracer_provider: Any = None) -> None:
        trace = _otel()
        self._trace = trace
        self.client = client
        self.tracer = trace.get_tracer("podium", __version__, tracer_provider=tracer_provider)
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._unsubscribe = client.subscribe(self.on_event)

    def uninstrument(self) -> None:
        """Stop listening, and end the spans of runs still open here (marked as unfinished)."""
        self._unsubscribe()
        for st in self._runs.values():
            if st.span is not None:
                st.span.set_attribute("podium.run.status", "unfinished")
                st.span.end()
        self._runs.clear()

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, ev: Event) -> None:
        """Called by the client with every event it writes (in the engine's loop: cheap, never raises)."""
        try:
            self._on_event(ev)
        except Exception:  # tracing must never break a run
            log.exception("tracing: cannot record event %s of run %s", ev.type, ev.run_id)

    def _state(self, run_id: str) -> _Run:
        st = self._runs.get(run_id)
        if st is None:
            st = self._runs[run_id] = _Run()
            if len(self._runs) > _MAX_RUNS:
                _, old = self._runs.popitem(last=False)
                if old.span is not None:
                    old.span.end()
        wf, rec = workflow_of(self.client, run_id)
        if rec is not None:
            st.workflow, st.version, st.parent_run = wf, rec.version, rec.parent_run_id
        return st

    def _on_event(self, ev: Event) -> None:
        t = ev.type
        if t in ("run_started", "run_resumed"):
            st = self._state(ev.run_id)
            st.started = ev.ts
            return
        st = self._runs.get(ev.run_id) or self._state(ev.run_id)
        step = ev.step
        if step is not None and "/" in step:
            parent = step.split("/", 1)[0]
            st.calls.setdefault((parent, ev.iteration, ev.index), []).append(ev)
            return
        if step is not None:
            if t in STEP_ENDS or t == "step_skipped":
                self._step_span(ev, st)
            return
        if t in RUN_ENDS:
            self._end_run(ev, st, t.removeprefix("run_"))
            self._runs.pop(ev.run_id, None)
        elif t in ("run_waiting", "run_handed_off"):
            for (sid, it, idx), calls in list(st.calls.items()):
                self._parked_step_span(ev, st, sid, it, idx, calls)
            st.calls.clear()
            self._end_run(ev, st, t.removeprefix("run_"))

    # -- spans -----------------------------------------------------------------------------------

    def _root(self, run_id: str, st: _Run, ts: float) -> Any:
        if st.span is None:
            trace = self._trace
            parent = None
            if st.context is not None:  # a resumed run: its new segment joins the run's trace
                parent = trace.set_span_in_context(trace.NonRecordingSpan(st.context))
            elif st.parent_run and st.parent_run in self._runs:  # a sub-workflow: under its parent run
                parent = trace.set_span_in_context(self._root(st.parent_run, self._runs[st.parent_run], ts))
            st.span = self.tracer.start_span(
                f"run {st.workflow}",
                context=parent,
                kind=trace.SpanKind.INTERNAL,
                start_time=_ns(st.started if st.started is not None else ts),
                attributes={
                    "podium.run.id": run_id,
                    "podium.workflow.name": st.workflow,
                    "podium.workflow.version": st.version,
                },
            )
            if st.context is None:
                st.context = st.span.get_span_context()
        return st.span

    def _end_run(self, ev: Event, st: _Run, status: str) -> None:
        span = self._root(ev.run_id, st, ev.ts)
        span.set_attribute("podium.run.status", status)
        if status == "failed":
            err = error_of({"error": data_of(ev)}) or {}
            self._error(span, err)
        span.end(end_time=_ns(ev.ts))
        st.span = None
        st.started = None

    def _error(self, span: Any, err: dict[str, Any]) -> None:
        trace = self._trace
        etype = str(err.get("type") or "error")
        message = str(err.get("message") or etype)
        span.set_attribute("error.type", etype)
        span.add_event("exception", {"exception.type": etype, "exception.message": message})
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))

    def _step_span(self, ev: Event, st: _Run) -> None:
        trace = self._trace
        data = data_of(ev)
        status = ev.type.removeprefix("step_")
        start = started_of(ev, data) if status != "skipped" else ev.ts
        root = self._root(ev.run_id, st, ev.ts)
        attrs: dict[str, Any] = {
            "podium.run.id": ev.run_id,
            "podium.workflow.name": st.workflow,
            "podium.step.id": ev.step,
            "podium.step.attempt": ev.attempt,
            "podium.step.status": status,
        }
        if ev.iteration:
            attrs["podium.step.iteration"] = ev.iteration
        if ev.index is not None:
            attrs["podium.step.index"] = ev.index
        if status == "skipped" and data.get("reason"):
            attrs["podium.step.skip_reason"] = str(data["reason"])
        span = self.tracer.start_span(
            f"step {ev.step}",
            context=trace.set_span_in_context(root),
            start_time=_ns(start),
            attributes=attrs,
        )
        err = error_of(data)
        if err is not None and status in ("failed", "retrying"):
            self._error(span, err)
        calls = st.calls.pop((ev.step or "", ev.iteration, ev.index), [])
        self._call_spans(st, span, calls)
        span.end(end_time=_ns(ev.ts))

    def _parked_step_span(
        self, ev: Event, st: _Run, sid: str, it: int, idx: int | None, calls: list[Event]
    ) -> None:
        """A step that waits for a signal (an approval...) ends its span when the run parks."""
        trace = self._trace
        start = min(started_of(c, data_of(c)) for c in calls)
        attrs: dict[str, Any] = {
            "podium.run.id": ev.run_id,
            "podium.workflow.name": st.workflow,
            "podium.step.id": sid,
            "podium.step.status": "waiting",
        }
        if it:
            attrs["podium.step.iteration"] = it
        if idx is not None:
            attrs["podium.step.index"] = idx
        span = self.tracer.start_span(
            f"step {sid}",
            context=trace.set_span_in_context(self._root(ev.run_id, st, ev.ts)),
            start_time=_ns(start),
            attributes=attrs,
        )
        self._call_spans(st, span, calls)
        span.end(end_time=_ns(ev.ts))

    def _call_spans(self, st: _Run, step_span: Any, calls: list[Event]) -> None:
        trace = self._trace
        ctx = trace.set_span_in_context(step_span)
        for c in calls:
            data = data_of(c)
            name = (c.step or "").split("/", 1)[1]
            if c.type == "step_waiting":
                st.waits[(c.step or "", c.iteration, c.index)] = c.ts
                step_span.add_event(
                    "podium.wait",
                    {"podium.signal": str(data.get("signal", "")), "podium.approval": "approval" in data},
                    timestamp=_ns(c.ts),
                )
                continue
            call = call_of(name, data)
            span_name, kind, attrs = _call_shape(call)
            attrs["podium.call.attempt"] = c.attempt
            if call.kind == "wait":
                began = st.waits.pop((c.step or "", c.iteration, c.index), None)
                if began is not None:
                    attrs["podium.waited_seconds"] = round(c.ts - began, 3)
                if data.get("timed_out"):
                    attrs["podium.timed_out"] = True
            span = self.tracer.start_span(
                span_name, context=ctx, kind=kind, start_time=_ns(started_of(c, data)), attributes=attrs
            )
            for item in call.trail:
                span.add_event(
                    str(item.get("event") or item.get("kind") or "podium.trail"),
                    {k: v for k, v in item.items() if isinstance(v, str | int | float | bool)},
                )
            err = error_of(data)
            if err is not None:
                self._error(span, err)
            elif not call.ok:
                self._error(span, {"type": "ToolError", "message": call.error or "tool call failed"})
            span.end(end_time=_ns(c.ts))


def _call_shape(call: Call) -> tuple[str, Any, dict[str, Any]]:
    """Span name, kind and attributes of one durable call (GenAI semantic conventions)."""
    from opentelemetry.trace import SpanKind

    attrs: dict[str, Any] = {"podium.call.name": call.name}
    if call.kind in ("model", "classify"):
        op = "chat" if call.kind == "model" else "classify"
        attrs["gen_ai.operation.name"] = op
        if call.provider:
            attrs["gen_ai.provider.name"] = call.provider
            attrs["gen_ai.system"] = call.provider  # the older name of the same attribute
        if call.model:
            attrs["gen_ai.request.model"] = call.model
            attrs["gen_ai.response.model"] = call.model
        if call.input_tokens is not None:
            attrs["gen_ai.usage.input_tokens"] = call.input_tokens
        if call.output_tokens is not None:
            attrs["gen_ai.usage.output_tokens"] = call.output_tokens
        if call.finish_reason:
            attrs["gen_ai.response.finish_reasons"] = [call.finish_reason]
        if call.cost is not None:
            attrs["podium.usage.cost_usd"] = call.cost
        kind = SpanKind.INTERNAL if call.provider in ("local", "scripted") else SpanKind.CLIENT
        return (f"{op} {call.model}" if call.model else op), kind, attrs
    if call.kind == "tool":
        attrs["gen_ai.operation.name"] = "execute_tool"
        attrs["gen_ai.tool.name"] = call.tool
        if call.tool_call_id:
            attrs["gen_ai.tool.call.id"] = call.tool_call_id
        return f"execute_tool {call.tool}", SpanKind.INTERNAL, attrs
    if call.kind == "wait":
        signal = call.name.removeprefix("signal:")
        attrs["podium.signal"] = signal
        return f"wait {signal}", SpanKind.INTERNAL, attrs
    return f"call {call.name}", SpanKind.INTERNAL, attrs


def instrument(client: Any, tracer_provider: Any = None) -> Tracing:
    """Trace ``client``'s runs with OpenTelemetry: a root span per run (``run {workflow}``), a child
    per step attempt (``step {id}``), and under it a span per model call (``chat {model}``, GenAI
    semantic conventions) and tool call (``execute_tool {tool}``). Failures get an ERROR status.

    Uses the global tracer provider unless ``tracer_provider`` is given. Returns the listener; call
    its :meth:`~Tracing.uninstrument` to stop. Needs ``pip install 'podium[otel]'``.
    """
    return Tracing(client, tracer_provider)
