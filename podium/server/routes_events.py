"""Events in (``POST /api/events/{type}``, many at once ``POST /api/events``), triggers, dead
letters, and the metrics scrape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..governance.identity import Principal
from ._views import pack_cursor, unpack_cursor
from .auth import acting
from .errors import ApiError
from .openapi import documented
from .routes_runs import HIDDEN, MAX_KEY, key_header

router = APIRouter()


# -- answers (described in the OpenAPI document) ---------------------------------------------------


class Ingested(BaseModel):
    event: str
    idempotency_key: str
    subscribers: list[str] = Field(description="The workflows (and rules' workflows) it was sent to.")
    runs: list[str] = Field(description="The runs started.")
    duplicates: list[str] = Field(description="Runs this key had already started.")
    dead_lettered: list[str] = Field(description="Runs that could not start (see /api/deadletters).")


class BatchEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped key is named, not dropped

    type: str = Field(min_length=1, max_length=200, description="The event type, e.g. `ticket.created`.")
    idempotency_key: str = Field(
        min_length=1, max_length=MAX_KEY, description="The same key (and type) never starts a second run."
    )
    payload: Any = None


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped key is named, not dropped

    events: list[BatchEvent] = Field(description="The events, each with its own idempotency key.")


class BatchItem(Ingested):
    index: int = Field(description="The event's place in the batch (from 0).")
    new: bool = Field(description="True if this post started a run; false for a key seen before.")


class BatchIngested(BaseModel):
    events: list[BatchItem] = Field(description="One answer per event, in the batch's order.")
    new: int = Field(description="Events that started runs.")
    duplicates: int = Field(description="Events whose key had started their runs already.")


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
    unreadable: bool = Field(
        default=False,
        description="A broker message that could not be read (kept without its payload): never replayed, discard it.",
    )
    problem: str | None = Field(
        default=None,
        description="Why it may not be replayed (its row is not one the engine sealed, or a signed entry "
        "dropped or replayed it since); null when it may.",
    )


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]
    total: int = Field(description="Dead letters kept now, on every page.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last."
    )


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
    result: dict[str, Any] = await app.state.triggers.ingest(event_type, payload, key_header(idempotency_key))
    app.state.metrics.inc("podium_events_ingested_total", type=app.state.metrics.event_type(event_type))
    return result


@router.post(
    "/api/events",
    tags=["events"],
    **documented("ingestEvents", BatchIngested, 409, 413, 422, status=202),
    summary="Ingest many events at once",
)
async def ingest_many(batch: EventBatch, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    """Up to ``max_batch_events`` (default 1,000; more: 413) events, each like one
    ``POST /api/events/{type}`` with its own idempotency key. The whole batch is checked first: if
    any event does not fit its workflows the batch is refused (422, ``problems`` lists each bad
    event's index and field) and nothing starts. The answer (202) comes once every run is durable;
    posting the batch again (after a timeout, say) starts nothing twice."""
    app = request.app
    limit = app.state.settings.max_batch_events
    if len(batch.events) > limit:
        raise ApiError(
            413,
            "batch_too_large",
            f"the batch has {len(batch.events)} events; this server takes at most {limit} per request "
            "(podium serve's max_batch_events): split it into smaller batches",
        )
    if not batch.events:
        raise ApiError(422, "invalid_request", "the batch has no events: send {\"events\": [{\"type\": ..., "
                       "\"idempotency_key\": ..., \"payload\": ...}]}")  # fmt: skip
    for event_type in sorted({e.type for e in batch.events}):  # refused: nothing starts
        await app.state.client.authorize("runs.start", f"event:{event_type}")
    answers = await app.state.triggers.ingest_many([(e.type, e.payload, e.idempotency_key) for e in batch.events])
    for i, (event, answer) in enumerate(zip(batch.events, answers, strict=True)):
        answer["index"], answer["new"] = i, bool(answer["runs"])
        app.state.metrics.inc("podium_events_ingested_total", type=app.state.metrics.event_type(event.type))
    return {
        "events": answers,
        "new": sum(a["new"] for a in answers),
        "duplicates": sum(1 for a in answers if a["duplicates"] and not a["runs"]),
    }


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
async def dead_letters(
    request: Request,
    limit: int = Query(default=100, ge=1, le=1000, description="At most this many, oldest first."),
    cursor: str | None = Query(
        default=None, max_length=2000, description="The `next_cursor` of the previous page: the letters after it."
    ),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    who = await request.app.state.client.authorize("runs.read")
    after = letter_after(cursor) if cursor else None
    if cursor and after is None:
        raise ApiError(
            422, "invalid_cursor", f"cursor {cursor[:40]!r} is not a next_cursor this API gave; start again without one"
        )
    every = await request.app.state.triggers.dead_letters()  # oldest first: (ts, id)
    letters = [d for d in every if after is None or (float(d["ts"] or 0), d["id"]) > after][:limit]
    more = len(letters) == limit and letters[-1] is not every[-1]
    if not who.can("payloads.read"):  # the payload is the input of the run it was to start; errors quote it
        letters = [{**d, "payload": HIDDEN, "error": HIDDEN} for d in letters]
    return {
        "dead_letters": letters,
        "total": len(every),
        "next_cursor": letter_cursor(letters[-1]) if more else None,
    }


def letter_cursor(letter: dict[str, Any]) -> str:
    """An opaque page cursor of the dead letters: the (time, id) of a page's last letter."""
    return pack_cursor([float(letter["ts"] or 0), letter["id"]])


def letter_after(cursor: str) -> tuple[float, str] | None:
    """The position a :func:`letter_cursor` holds; None for a text that is not such a cursor."""
    found = unpack_cursor(cursor, str)
    return None if found is None else (found[0], str(found[1]))


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
