"""RabbitMQ (AMQP 0-9-1), through aio-pika (``pip install 'podium[connectors]'``).

Operations:

* ``publish``: ``payload`` (JSON) to ``exchange`` (default: the default exchange) with
  ``routing_key``, persistent, ``mandatory`` (a message no queue takes is an error, not lost
  silently), ``message_id`` set to the call's idempotency key, and waited for with publisher
  confirms. RabbitMQ does not deduplicate: a publish repeated after a crash between the broker's
  confirm and the step's log entry is sent twice, with the same ``message_id``: **at-least-once**;
  consumers deduplicate on ``message_id`` (Podium's triggers do).
* ``inspect`` (safe): a queue's message and consumer counts (a passive declare).

As a trigger, a consumer with manual acknowledgement and a prefetch limit: a message is
acknowledged after its run has started; the run id is derived from ``message_id`` (else a digest
of the exchange, routing key and body).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aio_pika
from aio_pika import exceptions as amqp_errors
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from ..errors import ConfigError, ConnectorError
from ._base import Operation
from ._broker import BrokerConnector, Delivery, Message, decode, digest, encode, headers_arg, text_arg

_LOST = (amqp_errors.AMQPConnectionError, amqp_errors.ConnectionClosed, ConnectionError, OSError, asyncio.TimeoutError)


class AmqpConnector(BrokerConnector):
    """A RabbitMQ server (``url``: ``amqp://user:password@host:5672/vhost``; register it as ``url_env``)."""

    kind = "amqp"

    def __init__(
        self, url: str = "amqp://guest:guest@127.0.0.1:5672/", *, allow: list[str] | str | None = None, timeout: float = 10.0
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("amqp://", "amqps://")):
            raise ConfigError("an amqp connector needs an amqp:// URL (register it with url_env when it holds a password)")
        self.url = url
        self.allow = self.allow_list(allow)
        self.timeout = timeout
        self._conn: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._queues: dict[str, tuple[AbstractChannel, asyncio.Queue[AbstractIncomingMessage]]] = {}

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="publish",
                description="Publish a persistent JSON message (publisher confirms; message_id = the idempotency key).",
                input={
                    "type": "object",
                    "properties": {
                        "exchange": {"type": "string", "default": "", "description": "'' is the default exchange"},
                        "routing_key": {"type": "string", "description": "with the default exchange: the queue"},
                        "payload": {"description": "The message body: any JSON value."},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "required": ["routing_key"],
                },
                output={"type": "object"},
            ),
            Operation(
                name="inspect",
                description="A queue's message and consumer counts.",
                input={"type": "object", "properties": {"queue": {"type": "string"}}, "required": ["queue"]},
                output={"type": "object", "properties": {"messages": {"type": "integer"}, "consumers": {"type": "integer"}}},
                safe=True,
            ),
        ]

    # -- life cycle ------------------------------------------------------------------------------

    async def _connection(self) -> AbstractRobustConnection:
        if self._conn is None or self._conn.is_closed:
            try:
                self._conn = await aio_pika.connect_robust(self.url, timeout=self.timeout)
            except (*_LOST, amqp_errors.AMQPError) as exc:
                raise ConnectorError(f"amqp: cannot connect: {type(exc).__name__}: {exc}", retryable=True) from exc
        return self._conn

    async def _publisher(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                conn = await self._connection()
                # A message returned as unroutable raises, instead of being dropped without a word.
                self._channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
            return self._channel

    async def open(self) -> None:
        await self._publisher()

    async def close(self) -> None:
        await self.stop_receiving()
        if self._conn is not None and not self._conn.is_closed:
            conn, self._conn, self._channel = self._conn, None, None
            await conn.close()

    async def health(self) -> dict[str, Any]:
        try:
            channel = await self._publisher()
            ok = not channel.is_closed
        except ConnectorError as exc:
            return {"ok": False, "error": str(exc), "breaker": self.breaker.state}
        return {"ok": ok, "breaker": self.breaker.state}

    # -- calls -----------------------------------------------------------------------------------

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)
        args = dict(arguments or {})
        try:
            if operation == "inspect":
                queue = self.allowed("queue", text_arg(self.kind, args, "queue"))
                channel = await (await self._connection()).channel()  # a failed passive declare closes it
                try:
                    q = await channel.declare_queue(queue, passive=True, timeout=self.timeout)
                    result = q.declaration_result
                    return {"queue": queue, "messages": result.message_count, "consumers": result.consumer_count}
                finally:
                    if not channel.is_closed:
                        await channel.close()
            return await self._publish(args, idempotency_key)
        except ConnectorError:
            raise
        except amqp_errors.ChannelNotFoundEntity as exc:
            raise ConnectorError(f"amqp: {_reason(exc)}; an admin declares it first") from None
        except (amqp_errors.DeliveryError, amqp_errors.PublishError):
            raise ConnectorError(
                f"amqp: no queue took the message (routing key {args.get('routing_key')!r} on exchange "
                f"{args.get('exchange') or '(default)'!r} matches no binding); declare and bind the queue first"
            ) from None
        except amqp_errors.ChannelClosed as exc:
            raise ConnectorError(f"amqp: the broker refused it: {_reason(exc)}") from None
        except _LOST as exc:
            raise ConnectorError(f"amqp: the broker did not answer: {type(exc).__name__}: {exc}", retryable=True) from exc

    async def _publish(self, args: dict[str, Any], key: str | None) -> dict[str, Any]:
        exchange = args.get("exchange") or ""
        if not isinstance(exchange, str):
            raise ConnectorError(f"amqp: `exchange` must be text, got {exchange!r}")
        routing_key = text_arg(self.kind, args, "routing_key")
        self.allowed("routing key", f"{exchange}/{routing_key}" if exchange else routing_key)
        body = encode(self.kind, args)
        message = aio_pika.Message(
            body,
            message_id=key,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(headers_arg(self.kind, args)) or None,
        )
        channel = await self._publisher()
        target = await channel.get_exchange(exchange, ensure=True) if exchange else channel.default_exchange
        await target.publish(message, routing_key=routing_key, mandatory=True, timeout=self.timeout)
        return {"exchange": exchange, "routing_key": routing_key, "msg_id": key, "confirmed": True}

    # -- consuming -------------------------------------------------------------------------------

    async def receive(self, source: dict[str, Any], *, max_messages: int, timeout: float) -> list[Delivery]:
        name = self.allowed("queue", source["queue"])
        held = self._queues.get(name)
        if held is None or held[0].is_closed:
            held = await self._consume(name, source["prefetch"])
            self._queues[name] = held
        inbox = held[1]
        out: list[Delivery] = []
        try:
            first = await asyncio.wait_for(inbox.get(), timeout)
        except TimeoutError:
            return out
        out.append(self._delivery(name, first, source.get("max_message_bytes")))
        while len(out) < max_messages and not inbox.empty():
            out.append(self._delivery(name, inbox.get_nowait(), source.get("max_message_bytes")))
        return out

    async def _consume(self, name: str, prefetch: int) -> tuple[AbstractChannel, asyncio.Queue[AbstractIncomingMessage]]:
        try:
            channel = await (await self._connection()).channel()
            await channel.set_qos(prefetch_count=prefetch)
            queue: AbstractQueue = await channel.declare_queue(name, passive=True, timeout=self.timeout)
        except amqp_errors.ChannelNotFoundEntity:
            raise ConfigError(f"amqp: there is no queue {name!r}; an admin declares it (durable) first") from None
        except _LOST as exc:
            raise ConnectorError(f"amqp: cannot consume {name!r}: {type(exc).__name__}: {exc}", retryable=True) from exc
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

        async def take(message: AbstractIncomingMessage) -> None:
            await inbox.put(message)

        await queue.consume(take, no_ack=False)
        return channel, inbox

    @staticmethod
    def _delivery(queue: str, m: AbstractIncomingMessage, limit: int | None = None) -> Delivery:
        headers = {str(k): str(v) for k, v in (m.headers or {}).items()}
        key = m.message_id or digest(m.exchange or "", m.routing_key or "", m.body)
        message = Message(key=key, source=queue, payload=decode(m.body, limit), headers=headers, redelivered=bool(m.redelivered))

        async def retry() -> None:
            await m.nack(requeue=True)

        return Delivery(message=message, ack=m.ack, retry=retry)

    async def stop_receiving(self) -> None:
        held, self._queues = list(self._queues.values()), {}
        for channel, _ in held:  # unacknowledged messages go back to the queue
            if not channel.is_closed:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await channel.close()


def _reason(exc: BaseException) -> str:
    return str(exc.args[-1] if exc.args else exc)[:300]
