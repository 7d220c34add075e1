"""Runs: start, list, inspect, control, and a live event stream (server-sent events)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..ai import token_topic as live_topic
from ..engine.history import shown
from ..governance.identity import Principal
from ..records import Event
from ._run_paths import RunRoute
from ._views import MAX_SEQ, event_json, run_json, steps_json, usage_json
from .auth import Recheck, acting, acting_stream
from .errors import ApiError
from .openapi import documented
from .schemas import Run, RunEnvelope, RunEvent, Step, UsageReport, WorkflowView

router = APIRouter(prefix="/api", tags=["runs"], route_class=RunRoute)


MAX_KEY = 200
"""An idempotency key's characters at most: a batch event's ``idempotency_key``, ``POST /api/runs``'s,
and the ``Idempotency-Key`` header of a single event, a webhook and ``POST /api/runs``."""


def key_header(key: str | None) -> str | None:
    """The ``Idempotency-Key`` header as sent, or a 422 naming it and the limit."""
    if key is not None and len(key) > MAX_KEY:
        raise ApiError(
            422, "invalid_request", f"the Idempotency-Key header is {len(key):,} characters long; at most {MAX_KEY} are "
            "taken (as for a batch event's idempotency_key): send a shorter key, e.g. a SHA-256 hex digest of yours",
        )  # fmt: skip
    return key


def idempotent_run_id(*parts: str) -> str:
    """A run id derived from an idempotency key: starting twice with it starts one run."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped field (inptu) is named, not dropped

    workflow: str = Field(description="The workflow's name.")
    input: Any = Field(
        default=None, description="The run input (validated against the workflow's input type)."
    )
    version: str | None = Field(default=None, description="A registered version (default: the latest).")
    queue: str = "default"
    priority: int = Field(default=0, ge=-(2**31), le=2**31 - 1, description="Higher runs first (a 32-bit integer).")
    tenant: str | None = None
    idempotency_key: str | None = Field(
        default=None, max_length=MAX_KEY, description="Starting again with the same key returns the same run."
    )


class ForkRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_step: str
    input: Any = None
    replace_input: bool = Field(default=False, description="Use `input` as the new run input.")


class Signal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    payload: Any = None


# -- answers (described in the OpenAPI document; the JSON is built by _views.py) -------------------


class StartedRun(BaseModel):
    run: Run
    duplicate: bool = Field(description="The idempotency key had already started this run.")


class RunList(BaseModel):
    runs: list[Run]
    limit: int
    offset: int
    next_offset: int | None = Field(
        default=None, description="The next page's offset; null on the last page."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page (stable while runs are added; fast at any "
        "depth); null on the last page.",
    )


class RunDetail(BaseModel):
    run: Run
    steps: list[Step]
    usage: UsageReport | None = Field(default=None, description="Tokens, cost and latency of its calls (runs.read).")
    workflow: WorkflowView | None = Field(default=None, description="The graph, if its version is loaded.")
    events: int = Field(description="How many events the run's log holds.")


class EventList(BaseModel):
    events: list[RunEvent]


class Resumed(BaseModel):
    resumed: list[str] = Field(description="The runs this server took up again.")


class SignalSent(BaseModel):
    delivered: bool = Field(description="False if a signal of that name had already been delivered.")


@router.post("/runs", **documented("startRun", StartedRun, 404, 409, 422, status=201), summary="Start a run")
async def start_run(
    body: StartRun,
    request: Request,
    idempotency_key: str | None = Header(default=None),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    from .deployed import serving

    client = request.app.state.client
    wf = await serving(client, body.workflow, body.version, "runs.start")  # also one deployed since the start
    key = body.idempotency_key or key_header(idempotency_key)
    # Scoped per tenant: one tenant's key never returns (or blocks) another tenant's run.
    run_id = idempotent_run_id("run", body.tenant or "", wf.name, key) if key else None
    existed = run_id is not None and await client.store.get_run(run_id) is not None
    if existed and run_id is not None and key is not None:  # another sender's run: 409, not "duplicate"
        from .triggers import refuse_taken_keys

        await refuse_taken_keys(client, [run_id], key)
    handle = await client.start(
        wf, body.input, run_id=run_id, queue=body.queue, priority=body.priority, tenant=body.tenant
    )
    if not handle.created and not existed and run_id is not None and key is not None:
        from .triggers import refuse_taken_keys  # another start with this key won a moment ago: whose?

        await refuse_taken_keys(client, [run_id], key, {run_id})
    run = await client.get(handle.id)
    return {"run": run_json(run), "duplicate": not handle.created}


@router.get("/runs", **documented("listRuns", RunList, 422), summary="List runs, newest first")
async def list_runs(
    request: Request,
    workflow: str | None = None,
    status: str | None = Query(default=None, description="Comma-separated statuses, e.g. running,waiting"),
    limit: int = Query(default=50, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=10_000_000),
    cursor: str | None = Query(
        default=None,
        max_length=200,
        description="The `next_cursor` of the previous page: the runs after it (instead of `offset`).",
    ),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    client = request.app.state.client
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    before = decode_cursor(cursor) if cursor else None
    runs = await client.list(workflow=workflow, status=statuses, limit=limit, offset=offset, before=before)
    full = len(runs) == limit
    return {
        "runs": [run_view(r, who) for r in runs],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if full and before is None else None,
        "next_cursor": encode_cursor(runs[-1].created_at, runs[-1].id) if full else None,
    }


def encode_cursor(created_at: float, run_id: str) -> str:
    """An opaque page cursor: the position (creation time, id) of the last run of a page."""
    return base64.urlsafe_b64encode(json.dumps([created_at, run_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, run_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(created_at, int | float) and not isinstance(created_at, bool) and isinstance(run_id, str):
            return float(created_at), run_id
    except (ValueError, TypeError):
        pass
    raise ApiError(
        422, "invalid_cursor", f"cursor {cursor[:40]!r} is not a next_cursor this API gave; start again without one"
    )


def run_view(run: Any, who: Principal) -> dict[str, Any]:
    """A run as JSON, without its input, output and error message for a caller lacking ``payloads.read``."""
    out = run_json(shown(run, who))  # also a run read from the store directly (the runs stream)
    if not who.can("payloads.read"):
        out["input"] = out["output"] = HIDDEN
    return out


HIDDEN = "[hidden: needs payloads.read]"
UNFINISHED = ("pending", "running", "waiting")


@router.get(
    "/runs/stream",
    **documented("streamRuns", None, 422, content="text/event-stream"),
    summary="Live run status changes (server-sent events)",
    response_class=StreamingResponse,
)
async def stream_runs(
    request: Request,
    workflow: str | None = Query(default=None, description="Only runs of this workflow."),
    timeout: float | None = Query(
        default=None,
        gt=0,
        le=86_400,
        description="End the stream after this many seconds (clients reconnect).",
    ),
    who: Principal = Depends(acting_stream),
) -> StreamingResponse:
    """`event: ready` once connected, then `event: run` with the run (as in `GET /api/runs`) each
    time a run starts or changes status, whichever process drives it."""
    client = request.app.state.client
    await client.list(workflow=workflow, limit=1)  # checks runs.read before the stream starts
    return StreamingResponse(
        _run_changes(client, Recheck(request, who), workflow, request, timeout),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _run_changes(
    client: Any, caller: Recheck, workflow: str | None, request: Request, timeout: float | None
) -> AsyncIterator[str]:
    """Polls the store (runs driven by any process) for the newest runs and the unfinished ones,
    woken early by this process's own events; sends the runs whose status changed, as the caller
    may see them now (``caller``: a revoked token ends the stream)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None
    wake = asyncio.Event()
    unsubscribe = client.subscribe(lambda ev: wake.set())
    seen: dict[str, tuple[Any, ...]] = {}

    async def changed(who: Principal) -> list[Any]:
        with client.acting_as(who):
            runs = {r.id: r for r in await client.list(workflow=workflow, limit=100)}
            runs.update(
                (r.id, r) for r in await client.list(workflow=workflow, status=UNFINISHED, limit=1000)
            )
            for rid, mark in seen.items():  # unfinished runs that left both lists have finished
                if rid not in runs and mark[0] in UNFINISHED:
                    run = await client.store.get_run(rid)
                    if run is not None:
                        runs[rid] = run
        out = []
        for run in runs.values():
            mark = (run.status.value, run.started_at, run.finished_at)
            if seen.get(run.id) != mark:
                seen[run.id] = mark
                out.append(run)
        return sorted(out, key=lambda r: r.created_at)

    try:
        await changed(caller.who)  # what the client already has (it lists runs when the stream is ready)
        yield "retry: 1000\n\nevent: ready\ndata: {}\n\n"
        while deadline is None or loop.time() < deadline:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), 0.5)
                await asyncio.sleep(0.05)  # let a burst of events land: one query for all of them
            except TimeoutError:
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            who = await caller.now()
            if who is None:
                yield caller.refusal()
                return
            for run in await changed(who):
                yield f"id: {run.id}\nevent: run\ndata: {json.dumps(run_view(run, who))}\n\n"
    finally:
        unsubscribe()


#: Included after every other router (app.py): its path takes any run id, a child's holding '/'
#: (``PARENT.step/child``). Which run and route a path names is read from the path as sent
#: (``_run_paths.RunRoute``: ``/api/runs/P.s%2Fevents`` is the run ``P.s/events``, not the events of ``P.s``).
last = APIRouter(prefix="/api", tags=["runs"], route_class=RunRoute)


@last.get(
    "/runs/{run_id:path}", **documented("getRun", RunDetail, 404), summary="A run with its steps, calls and usage"
)
async def get_run(run_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    client = request.app.state.client
    hist = await client.history(run_id)
    usage: dict[str, Any] | None = None
    try:  # the calls' accounting (runs.read), counted from the outputs a viewer's history hides
        if who.can("payloads.read"):
            from ..ai import usage_of

            usage = usage_json(usage_of(hist))
        else:
            usage = usage_json(await client.usage(run_id=run_id))
    except Exception:  # usage is a convenience: a run without model calls has none
        usage = None
    by_step = {k: v for k, v in (usage or {}).get("by_step", {}).items()}
    graph = None
    try:
        from ._views import workflow_json

        graph = workflow_json(client.workflow(hist.run.workflow, hist.run.version))
    except Exception:
        graph = None
    return {
        "run": run_json(hist.run),
        "steps": steps_json(hist.events, by_step),
        "usage": usage,
        "workflow": graph,
        "events": len(hist.events),
    }


@router.get(
    "/runs/{run_id:path}/events", **documented("listRunEvents", EventList, 404), summary="A run's event log"
)
async def run_events(
    run_id: str,
    request: Request,
    after: int = Query(default=0, ge=0, le=MAX_SEQ),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    hist = await request.app.state.client.history(run_id)
    return {"events": [event_json(e) for e in hist.events if e.seq > after]}


@router.post("/runs/{run_id:path}/cancel", **documented("cancelRun", RunEnvelope, 404), summary="Cancel a run")
async def cancel_run(run_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    run = await request.app.state.client.cancel(run_id, wait=5.0)
    return {"run": run_json(run)}


@router.post(
    "/runs/{run_id:path}/resume",
    **documented("resumeRun", Resumed, 404),
    summary="Resume a run no live engine drives",
)
async def resume_run(run_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    client = request.app.state.client
    await client.authorize("runs.resume", run_id)
    await client.get(run_id)
    resumed = await client.resume([run_id])
    return {"resumed": resumed}


@router.post(
    "/runs/{run_id:path}/fork",
    **documented("forkRun", RunEnvelope, 404, 409, status=201),
    summary="Fork a run from a step",
)
async def fork_run(
    run_id: str, body: ForkRun, request: Request, who: Principal = Depends(acting)
) -> dict[str, Any]:
    client = request.app.state.client
    kw = {"input": body.input} if body.replace_input else {}
    handle = await client.fork(run_id, body.from_step, **kw)
    return {"run": run_json(await client.get(handle.id))}


@router.post(
    "/runs/{run_id:path}/signal",
    **documented("signalRun", SignalSent, 404),
    summary="Send a signal to a waiting run",
)
async def signal_run(
    run_id: str, body: Signal, request: Request, who: Principal = Depends(acting)
) -> dict[str, Any]:
    sent = await request.app.state.client.signal(run_id, body.name, body.payload)
    return {"delivered": sent}


@router.get(
    "/runs/{run_id:path}/stream",
    **documented("streamRun", None, 404, content="text/event-stream"),
    summary="Live events of a run (server-sent events)",
    response_class=StreamingResponse,
)
async def stream_run(
    run_id: str, request: Request, who: Principal = Depends(acting_stream)
) -> StreamingResponse:
    """`event: ready` once listening, `event: step` with each event of the run's log (the log so far
    first), `event: token` with the text of model calls as it is generated (for callers with
    `payloads.read`; not stored, see docs/models.md#streaming), and `event: end` with the final
    status."""
    client = request.app.state.client
    await client.get(run_id)  # checks runs.read and that the run exists
    return StreamingResponse(
        _stream(client, Recheck(request, who), run_id, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _stream(client: Any, caller: Recheck, run_id: str, request: Request) -> AsyncIterator[str]:
    """Events from the store (runs driven anywhere), woken early by this process's own events;
    with ``payloads.read``, the text of model calls as it is generated (``event: token``). The
    caller is checked again while the stream is open (``caller``: a revoked token ends it)."""
    wake = asyncio.Event()
    tokens: list[Any] = []

    def listener(ev: Event) -> None:
        if ev.run_id == run_id:
            wake.set()

    def token(_topic: str, payload: Any) -> None:
        tokens.append(payload)
        wake.set()

    unsubscribe = client.subscribe(listener)
    seq = 0
    who = caller.who
    data = who.can("payloads.read")
    # Token events are not stored: they reach this stream from this process, and from others
    # through the store's (PostgreSQL) or NATS event bus. See podium/ai/_stream.py.
    stop_tokens = await client.on(live_topic(run_id), token) if data else None
    try:
        yield "retry: 1000\n\nevent: ready\ndata: {}\n\n"  # listening: token events from here on reach this stream
        while True:
            now = await caller.now()
            if now is None:
                yield caller.refusal()
                return
            who = now
            if data and not who.can("payloads.read"):  # a role taken away: no more data from here on
                data, tokens[:] = False, []
                if stop_tokens is not None:
                    await stop_tokens()
                    stop_tokens = None
            with client.acting_as(who):
                events = await client.store.load_events(run_id, after=seq)
                run = await client.store.get_run(run_id)
            while tokens:
                yield f"event: token\ndata: {json.dumps(tokens.pop(0))}\n\n"
            for ev in events:
                seq = ev.seq
                yield f"id: {ev.seq}\nevent: step\ndata: {json.dumps(event_json(ev, data=data))}\n\n"
            if run is None or run.status.finished:
                yield f"event: end\ndata: {json.dumps({'status': run.status.value if run else None})}\n\n"
                return
            if await request.is_disconnected():
                return
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), 0.5)
            except TimeoutError:
                yield ": keep-alive\n\n"
    finally:
        unsubscribe()
        if stop_tokens is not None:
            await stop_tokens()


@router.get(
    "/runs/{run_id:path}/usage",
    **documented("getRunUsage", UsageReport, 404),
    summary="Tokens, cost and latency of a run's model and tool calls",
)
async def run_usage(run_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    report = await request.app.state.client.usage(run_id=run_id)
    return usage_json(report)
