"""Events in (``POST /api/events/{type}``), triggers, dead letters, and the metrics scrape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from ..governance.identity import Principal
from .auth import acting
from .openapi import documented

router = APIRouter()


# -- answers (described in the OpenAPI document) ---------------------------------------------------


class Ingested(BaseModel):
    event: str
    idempotency_key: str
    subscribers: list[str] = Field(description="The workflows (and rules' workflows) it was sent to.")
    runs: list[str] = Field(description="The runs started.")
    duplicates: list[str] = Field(description="Runs this key had already started.")
    dead_lettered: list[str] = Field(description="Runs that could not start (see /api/deadletters).")


class ScheduleState(BaseModel):
    workflow: str
    cron: str
    timezone: str
    last: float | None = None
    next: float | None = None
    error: str | None = None


class Subscription(BaseModel):
    event: str
    workflow: str


class RuleView(BaseModel):
    name: str
    when: str = Field(description="`FIELD OP NUMBER`, e.g. `churn_score > 0.8`.")
    event: str = Field(description="The event types it looks at (`*` and `?` wildcards).")
    workflow: str


class WatchedFolder(BaseModel):
    folder: str
    workflow: str


class TriggerList(BaseModel):
    schedules: list[ScheduleState]
    subscriptions: list[Subscription]
    rules: list[RuleView]
    watch: list[WatchedFolder]


class DeadLetter(BaseModel):
    id: str = Field(description="The run id it would have started.")
    source: str
    event: str
    key: str
    workflow: str
    payload: Any = None
    error: str
    error_type: str
    ts: float


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]


class Replayed(BaseModel):
    run_id: str
    replayed: bool


class Discarded(BaseModel):
    discarded: str


class Health(BaseModel):
    ok: bool


@router.post(
    "/api/events/{event_type}",
    tags=["events"],
    **documented("ingestEvent", Ingested, 409, 422, status=202),
    summary="Ingest an event",
)
async def ingest(
    event_type: str,
    request: Request,
    payload: Any = Body(default=None),
    idempotency_key: str | None = Header(default=None, description="The same key never starts a second run."),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Starts one run of every workflow subscribed to ``event_type`` (``on: ticket.created``) and of
    every threshold rule the payload crosses. The payload is checked against each workflow's input
    first (422 if it does not fit any). Runs that cannot start are dead-lettered."""
    app = request.app
    # Check first: a refused start inside the trigger runner would only be dead-lettered.
    await app.state.client.authorize("runs.start", f"event:{event_type}")
    result: dict[str, Any] = await app.state.triggers.ingest(event_type, payload, idempotency_key)
    app.state.metrics.inc("podium_events_ingested_total", type=event_type)
    return result


@router.get(
    "/api/triggers",
    tags=["events"],
    **documented("listTriggers", TriggerList),
    summary="Schedules, event subscriptions, rules, watched folders",
)
async def triggers(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    app = request.app
    await app.state.client.authorize("workflows.read")
    t = app.state.triggers
    return {
        "schedules": await t.schedule_states(),
        "subscriptions": [{"event": e, "workflow": w} for e, w, _ in t.subscriptions],
        "rules": [
            {"name": r.name, "when": r.when, "event": r.event, "workflow": r.workflow} for r in t.rules
        ],
        "watch": [{"folder": f, "workflow": w} for f, w in app.state.settings.watch.items()],
    }


@router.get(
    "/api/deadletters",
    tags=["events"],
    **documented("listDeadLetters", DeadLetterList),
    summary="Events that could not start their run",
)
async def dead_letters(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    await request.app.state.client.authorize("runs.read")
    return {"dead_letters": await request.app.state.triggers.dead_letters()}


@router.post(
    "/api/deadletters/{letter_id}/replay",
    tags=["events"],
    **documented("replayDeadLetter", Replayed, 404, 409, 422),
    summary="Try a dead letter again",
)
async def replay(letter_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    await request.app.state.client.authorize("runs.start", f"deadletter:{letter_id}")
    result: dict[str, Any] = await request.app.state.triggers.replay(letter_id)
    return result


@router.delete(
    "/api/deadletters/{letter_id}",
    tags=["events"],
    **documented("discardDeadLetter", Discarded, 404),
    summary="Drop a dead letter",
)
async def discard(letter_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    await request.app.state.client.authorize("runs.cancel")
    await request.app.state.triggers.discard(letter_id)
    return {"discarded": letter_id}


@router.get(
    "/metrics",
    tags=["observability"],
    **documented("getMetrics", None, content="text/plain"),
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
)
async def metrics(request: Request, who: Principal = Depends(acting)) -> Response:
    """This server's metrics in the Prometheus text format (OpenMetrics when the scraper's
    ``Accept`` asks for it), rendered by prometheus-client (docs/observability.md lists them)."""
    app = request.app
    await app.state.client.authorize("runs.read")
    body, content_type = await app.state.metrics.exposition(
        app.state.triggers, accept=request.headers.get("accept", "")
    )
    return Response(body, media_type=content_type)


@router.get(
    "/healthz", tags=["observability"], **documented("getHealth", Health, auth=False), summary="Liveness"
)
async def healthz() -> dict[str, Any]:
    return {"ok": True}


@router.get(
    "/readyz",
    tags=["observability"],
    **documented("getReady", Health, 503, auth=False),
    summary="Readiness",
)
async def readyz(request: Request) -> dict[str, Any]:
    """200 when the store answers a read within 5 s; 503 (``store_unavailable``) otherwise."""
    from .health import check_ready

    await check_ready(getattr(request.app.state, "client", None))
    return {"ok": True}
