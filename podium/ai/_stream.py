"""Live text of a model call while it is generated: token events on the run's topic.

A streamed call publishes on ``podium.tokens.<run_id>`` (an application event, so it reaches every
subscriber of the store: this process, and on PostgreSQL or NATS every other one):

- ``{"kind": "start", "stream": S, ...}`` when the call starts generating;
- ``{"kind": "text", "stream": S, "seq": N, "text": "..."}`` pieces of text, coalesced (at most one
  event per ``INTERVAL`` seconds or ``MAX_CHARS`` characters);
- ``{"kind": "restart", "stream": S}``: forget the text of ``S`` so far (an attempt failed and was
  retried, or the next model of a fallback chain took over);
- ``{"kind": "end", "stream": S, "finish": "stop"}`` (or ``"error"``).

Every event also carries ``run_id``, ``step``, ``iteration``, ``index``, ``call`` (the durable
call's label, e.g. ``llm-2``) and ``attempt`` (the step's attempt). These events are a preview: they
are not stored, and the durable record of the call is its logged answer, written once when the call
ends. A replayed call (a resumed run, a retried step) returns its logged answer without streaming;
a call that was cut by a crash had logged nothing, so it runs again and streams again from the
start under a new ``stream`` id (a consumer keys the text by ``stream`` and starts afresh on a
``start``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..models import Model, Request, Response, TextSink

if TYPE_CHECKING:
    from ..engine.context import StepContext

TOPIC = "podium.tokens"
INTERVAL = 0.05
"""Seconds between two text events of one call (pieces in between are joined)."""
MAX_CHARS = 2000
"""A text event is sent early when it holds this many characters (PostgreSQL's NOTIFY takes 8 kB)."""

OnText = Callable[[str], Any] | TextSink
"""What ``llm(..., on_text=...)`` hands the text to: a function of each piece (sync or async), or a
:class:`~podium.models.TextSink` (which is also told of restarts)."""


def topic(run_id: str) -> str:
    """The topic of a run's token events: ``podium.tokens.<run_id>``."""
    return f"{TOPIC}.{run_id}"


class LiveText:
    """The sink of one streamed call: publishes it to the run's topic and/or hands it to ``on_text``."""

    def __init__(self, ctx: StepContext | None, call: str, on_text: OnText | None) -> None:
        self.ctx = ctx
        self.on_text = on_text
        self.stream = uuid.uuid4().hex[:16]
        self.head: dict[str, Any] = {}
        if ctx is not None:
            self.head = {
                "run_id": ctx.run_id,
                "step": ctx.step_id,
                "iteration": ctx.iteration,
                "index": ctx.index,
                "call": call,
                "attempt": ctx.attempt,
                "stream": self.stream,
            }
        self.seq = 0
        self.pending: list[str] = []
        self.size = 0
        self.sent_at = 0.0

    async def _publish(self, kind: str, **fields: Any) -> None:
        if self.ctx is not None:
            await self.ctx.publish_live(topic(self.ctx.run_id), {**self.head, "kind": kind, **fields})

    async def _flush(self) -> None:
        if self.pending:
            text, self.pending, self.size = "".join(self.pending), [], 0
            self.seq += 1
            self.sent_at = time.monotonic()
            await self._publish("text", seq=self.seq, text=text)

    async def text(self, delta: str) -> None:
        if not delta:
            return
        if self.on_text is not None:
            await _maybe_await(
                self.on_text.text(delta) if hasattr(self.on_text, "text") else self.on_text(delta)
            )
        if self.ctx is None:
            return
        self.pending.append(delta)
        self.size += len(delta)
        if self.size >= MAX_CHARS or time.monotonic() - self.sent_at >= INTERVAL:
            await self._flush()

    async def restart(self) -> None:
        self.pending, self.size = [], 0
        if self.on_text is not None and hasattr(self.on_text, "restart"):
            await _maybe_await(self.on_text.restart())
        await self._publish("restart")

    async def run(self, model: Model, request: Request) -> Response:
        """``model.stream(request)`` between a ``start`` and an ``end`` event."""
        await self._publish("start")
        try:
            response = await model.stream(request, self)
        except BaseException:
            self.pending, self.size = [], 0
            await asyncio.shield(self._publish("end", finish="error"))
            raise
        await self._flush()
        await self._publish("end", finish=response.finish_reason)
        return response


async def _maybe_await(value: Awaitable[Any] | Any) -> None:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        await value


def wanted(ctx: StepContext | None, request: Request, stream: bool | None, on_text: OnText | None) -> bool:
    """Whether a call streams: ``stream=True`` always, False never; None (the default) when there is
    someone to stream to (a run, or ``on_text``) and the answer is plain text (a structured answer
    or a tool call is JSON for the program, not text for people).

    A run whose policy redacts or checks the model's answers, or redacts its payloads (what is
    stored and handed on), never streams: the text would reach the consumers before the redaction
    or the validators saw it."""
    from ..governance.enforcement import policy_of

    policy = policy_of(ctx)
    if policy is not None and (policy.has_output_checks or {"outputs", "payloads"} & set(policy.redact)):
        return False
    if stream is not None:
        return stream
    return (ctx is not None or on_text is not None) and not request.tools and request.output_schema is None
