"""NATS with JetStream, through nats-py (``pip install 'podium[connectors]'``).

Operations:

* ``publish``: ``subject``, ``payload`` (JSON), ``headers``; stored by the JetStream stream that
  listens on the subject, with ``Nats-Msg-Id`` set to the call's idempotency key, so the server
  drops a repeat inside the stream's duplicate window (2 minutes by default): **effectively-once**.
  ``core: true`` publishes on core NATS instead (no stream, no acknowledgement: at-most-once).
* ``fetch`` (safe): the stored messages of ``stream`` (optionally only ``subject``) from
  ``start_seq`` (default: the last ``limit``), read one by one by sequence: no consumer is created.

As a trigger, a durable pull consumer per workflow: a message is acknowledged after its run has
started, and the run id is derived from ``Nats-Msg-Id`` (else the stream sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats
from nats import errors as nats_errors
from nats.aio.client import Client as NatsClient
from nats.js import api
from nats.js import errors as js_errors

from ..errors import ConfigError, ConnectorError
from ._base import Operation
from ._broker import BrokerConnector, Delivery, Message, decode, encode, headers_arg, int_arg, text_arg

log = logging.getLogger("podium.connectors")
_PAYLOAD = {"description": "The message body: any JSON value."}
_RETRYABLE = (OSError, asyncio.TimeoutError, nats_errors.Error, js_errors.ServiceUnavailableError)


class NatsConnector(BrokerConnector):
    """A NATS server (``url``: ``nats://host:4222``, several separated by commas)."""

    kind = "nats"

    def __init__(
        self, url: str = "nats://127.0.0.1:4222", *, allow: list[str] | str | None = None, timeout: float = 5.0
    ) -> None:
        servers = [u.strip() for u in str(url).split(",") if u.strip()]
        if not servers or not all(u.startswith(("nats://", "tls://", "ws://", "wss://")) for u in servers):
            raise ConfigError(f"a nats connector needs a nats:// URL, got {url!r}")
        self.servers = servers
        self.allow = self.allow_list(allow)
        self.timeout = timeout
        self._nc: NatsClient | None = None
        self._lock = asyncio.Lock()
        self._subs: dict[tuple[str, str], Any] = {}

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="publish",
                description="Publish a JSON message on a subject (stored by its JetStream stream; "
                "deduplicated by the call's idempotency key).",
                input={
                    "type": "object",
                    "properties": {
                        "subject": {"type": "string", "description": "orders.created (no wildcards)"},
                        "payload": _PAYLOAD,
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                        "core": {"type": "boolean", "default": False, "description": "core NATS: no stream, at-most-once"},
                    },
                    "required": ["subject"],
                },
                output={"type": "object", "properties": {"stream": {}, "seq": {}, "duplicate": {"type": "boolean"}}},
            ),
            Operation(
                name="fetch",
                description="Read stored messages of a stream (the last `limit`, or from `start_seq`).",
                input={
                    "type": "object",
                    "properties": {
                        "stream": {"type": "string"},
                        "subject": {"type": "string", "description": "only messages on this subject"},
                        "start_seq": {"type": "integer", "minimum": 1},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    },
                    "required": ["stream"],
                },
                output={"type": "object", "properties": {"messages": {"type": "array"}, "next_seq": {}}},
                safe=True,
            ),
        ]

    # -- life cycle ------------------------------------------------------------------------------

    async def open(self) -> NatsClient:  # type: ignore[override]
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                try:
                    self._nc = await nats.connect(
                        servers=self.servers,
                        connect_timeout=self.timeout,
                        allow_reconnect=True,
                        # Few attempts, also for the first connection: a lost server fails calls
                        # (retryable) instead of hanging them; the next call connects again.
                        max_reconnect_attempts=3,
                        reconnect_time_wait=0.5,
                        error_cb=_quiet,
                        name="podium",
                    )
                except Exception as exc:
                    raise ConnectorError(
                        f"nats: cannot connect to {', '.join(self.servers)}: {type(exc).__name__}: {exc}", retryable=True
                    ) from exc
            return self._nc

    async def close(self) -> None:
        await self.stop_receiving()
        if self._nc is not None and not self._nc.is_closed:
            nc, self._nc = self._nc, None
            await nc.drain() if nc.is_connected else await nc.close()

    async def health(self) -> dict[str, Any]:
        try:
            nc = await self.open()
            await nc.flush(timeout=int(max(1, self.timeout)))  # a round trip to the server
            info = await nc.jetstream().account_info()
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "breaker": self.breaker.state}
        return {"ok": True, "jetstream_streams": info.streams, "breaker": self.breaker.state}

    # -- calls -----------------------------------------------------------------------------------

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)
        args = dict(arguments or {})
        try:
            if operation == "publish":
                return await self._publish(args, idempotency_key)
            return await self._fetch(args)
        except ConnectorError:
            raise
        except js_errors.NoStreamResponseError:
            raise ConnectorError(
                f"nats: no JetStream stream stores subject {args.get('subject')!r}; create one "
                "(nats stream add) or publish with core: true"
            ) from None
        except js_errors.NotFoundError:
            raise ConnectorError(f"nats: there is no stream {args.get('stream')!r}") from None
        except nats_errors.MaxPayloadError as exc:
            raise ConnectorError(f"nats: the message is too large for the server: {exc}") from None
        except nats_errors.BadSubjectError:
            raise ConnectorError(f"nats: {args.get('subject')!r} is not a valid subject") from None
        except js_errors.APIError as exc:
            raise ConnectorError(f"nats: JetStream refused the request: {exc}", retryable=(exc.code or 0) >= 500) from None
        except _RETRYABLE as exc:
            raise ConnectorError(f"nats: the server did not answer: {type(exc).__name__}: {exc}", retryable=True) from exc

    async def _publish(self, args: dict[str, Any], key: str | None) -> dict[str, Any]:
        subject = self.allowed("subject", _subject(args))
        data = encode(self.kind, args)
        headers = headers_arg(self.kind, args)
        nc = await self.open()
        if args.get("core"):
            await nc.publish(subject, data, headers=headers or None)
            await nc.flush(timeout=int(max(1, self.timeout)))  # the server has it (no stream: nothing more is known)
            return {"subject": subject, "core": True}
        if key:
            headers = {**headers, "Nats-Msg-Id": key}
        ack = await nc.jetstream().publish(subject, data, timeout=self.timeout, headers=headers or None)
        return {"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate), "msg_id": key}

    async def _fetch(self, args: dict[str, Any]) -> dict[str, Any]:
        stream = self.allowed("stream", text_arg(self.kind, args, "stream"))
        subject = args.get("subject")
        if subject is not None:
            subject = self.allowed("subject", text_arg(self.kind, args, "subject"))
        limit = int_arg(self.kind, args, "limit", 10, high=1000)
        js = (await self.open()).jetstream()
        state = (await js.stream_info(stream)).state
        start = args.get("start_seq")
        if start is None:
            start = max(state.first_seq, state.last_seq - limit + 1)
        elif isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise ConnectorError(f"nats: `start_seq` must be a whole number from 1, got {start!r}")
        out: list[dict[str, Any]] = []
        seq = max(start, state.first_seq, 1)
        while len(out) < limit and seq <= state.last_seq:
            try:
                raw = await js.get_msg(stream, seq=seq, subject=subject, next=subject is not None)
            except js_errors.NotFoundError:  # deleted, or nothing more on the subject
                if subject is not None:
                    break
                seq += 1
                continue
            headers = dict(raw.headers or {})
            out.append(
                {
                    "seq": raw.seq,
                    "subject": raw.subject,
                    "payload": decode(raw.data or b"", read=True),  # at most MAX_PAYLOAD
                    "headers": headers,
                    "msg_id": headers.get("Nats-Msg-Id"),
                }
            )
            seq = (raw.seq or seq) + 1
        return {"messages": out, "next_seq": seq}

    # -- consuming -------------------------------------------------------------------------------

    async def receive(self, source: dict[str, Any], *, max_messages: int, timeout: float) -> list[Delivery]:
        stream, durable = source["stream"], source["durable"]
        sub = self._subs.get((stream, durable))
        try:
            if sub is None:
                sub = await self._subscribe(source)
                self._subs[(stream, durable)] = sub
            try:
                msgs = await sub.fetch(max_messages, timeout=timeout)
            except (TimeoutError, nats_errors.TimeoutError):
                return []
        except js_errors.NotFoundError:
            raise ConfigError(f"nats: there is no stream {stream!r}; create it (nats stream add {stream})") from None
        except ConnectorError:
            raise
        except _RETRYABLE as exc:
            self._subs.pop((stream, durable), None)
            raise ConnectorError(f"nats: receiving failed: {type(exc).__name__}: {exc}", retryable=True) from exc
        return [self._delivery(stream, m, source.get("max_message_bytes")) for m in msgs]

    async def _subscribe(self, source: dict[str, Any]) -> Any:
        js = (await self.open()).jetstream()
        stream, durable, subject = source["stream"], source["durable"], source.get("subject")
        self.allowed("stream", stream)
        try:
            await js.consumer_info(stream, durable)  # it exists: bind to it as it is
            return await js.pull_subscribe_bind(durable=durable, stream=stream)
        except js_errors.NotFoundError:
            pass
        policy = api.DeliverPolicy.ALL if source.get("deliver") == "all" else api.DeliverPolicy.NEW
        config = api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=source["ack_wait"],
            deliver_policy=policy,
            filter_subject=subject or None,
            max_ack_pending=1000,
        )
        await js.add_consumer(stream, config)
        return await js.pull_subscribe_bind(durable=durable, stream=stream)

    @staticmethod
    def _delivery(stream: str, m: Any, limit: int | None = None) -> Delivery:
        headers = dict(m.headers or {})
        meta = m.metadata
        key = headers.get("Nats-Msg-Id") or f"{stream}:{meta.sequence.stream}"
        message = Message(
            key=key, source=m.subject, payload=decode(m.data or b"", limit), headers=headers, redelivered=meta.num_delivered > 1
        )
        return Delivery(message=message, ack=m.ack_sync, retry=m.nak)

    async def stop_receiving(self) -> None:
        subs, self._subs = list(self._subs.values()), {}
        for sub in subs:
            with contextlib.suppress(Exception):  # the connection may be gone; the durable consumer stays
                await sub.unsubscribe()


async def _quiet(exc: Exception) -> None:
    """nats-py reports connection errors here (its default logs a traceback for each attempt)."""
    log.debug("nats: %s: %s", type(exc).__name__, exc)


def _subject(args: dict[str, Any]) -> str:
    subject = text_arg("nats", args, "subject")
    if any(c in subject for c in " \t*>") or subject.startswith(".") or subject.endswith(".") or ".." in subject:
        raise ConnectorError(
            f"nats: {subject!r} is not a subject to publish on: no spaces, no wildcards (* >), no empty tokens"
        )
    return subject
