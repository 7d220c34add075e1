"""MQTT (v5, e.g. Mosquitto), through aiomqtt (``pip install 'podium[connectors]'``).

Operations:

* ``publish``: ``payload`` (JSON) to ``topic``, QoS 1 by default (waits for the broker's PUBACK),
  with the call's idempotency key as the user property ``podium-message-id``. MQTT brokers do not
  deduplicate across connections: a publish repeated after a crash is sent twice with the same
  property: **at-least-once**; consumers deduplicate on it (Podium's triggers do).
* ``read`` (safe): the retained messages under a topic filter, collected for ``wait`` seconds.

As a trigger, a persistent session (``session`` is its client id; the broker keeps QoS 1 messages
while the engine is away) with manual acknowledgement: the PUBACK is sent after the run has started.
MQTT redelivers an unacknowledged message only when the session reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..errors import ConfigError, ConnectorError
from ._base import Operation
from ._broker import BrokerConnector, Delivery, Message, decode, digest, encode, int_arg, text_arg

KEY_PROPERTY = "podium-message-id"


class _Client(aiomqtt.Client):
    """aiomqtt's client with manual acknowledgement (paho's), so a QoS 1 message is acknowledged
    to the broker only once its run has started."""

    def __init__(self, *args: Any, manual_ack: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if manual_ack:
            self._client.manual_ack_set(True)

    def ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)


class MqttConnector(BrokerConnector):
    """An MQTT broker (``url``: ``mqtt://host:1883``; credentials go in ``url_env``)."""

    kind = "mqtt"

    def __init__(self, url: str = "mqtt://127.0.0.1:1883", *, allow: list[str] | str | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(str(url))
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ConfigError(f"an mqtt connector needs an mqtt://host:port URL, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 1883
        self.username, self.password = parts.username, parts.password
        self.allow = self.allow_list(allow)
        self.timeout = timeout
        self._client: _Client | None = None
        self._lock = asyncio.Lock()
        self._sessions: dict[str, tuple[_Client, asyncio.Task[None], asyncio.Queue[aiomqtt.Message]]] = {}

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="publish",
                description="Publish a JSON message on a topic (QoS 1: the broker acknowledges it).",
                input={
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string", "description": "plant/line1/alerts (no wildcards)"},
                        "payload": {"description": "The message body: any JSON value."},
                        "qos": {"type": "integer", "enum": [0, 1, 2], "default": 1},
                        "retain": {"type": "boolean", "default": False},
                    },
                    "required": ["topic"],
                },
                output={"type": "object"},
            ),
            Operation(
                name="read",
                description="The retained messages under a topic filter (collected for `wait` seconds).",
                input={
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string"},
                        "wait": {"type": "number", "minimum": 0.05, "maximum": 30, "default": 1},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    },
                    "required": ["topic"],
                },
                output={"type": "object", "properties": {"messages": {"type": "array"}}},
                safe=True,
            ),
        ]

    def _new(self, identifier: str | None = None, *, session: bool = False) -> _Client:
        props = None
        if session:  # the broker keeps the session (and its QoS 1 messages) for a day while we are away
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 86_400
        return _Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not session,
            properties=props,
            timeout=self.timeout,
            manual_ack=session,
        )

    async def _enter(self, client: _Client) -> _Client:
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError) as exc:
            raise ConnectorError(f"mqtt: cannot connect to {self.host}:{self.port}: {exc}", retryable=True) from exc
        return client

    async def open(self) -> _Client:  # type: ignore[override]
        async with self._lock:
            if self._client is None:
                self._client = await self._enter(self._new())
            return self._client

    async def close(self) -> None:
        await self.stop_receiving()
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def health(self) -> dict[str, Any]:
        try:
            await self.open()
        except ConnectorError as exc:
            return {"ok": False, "error": str(exc), "breaker": self.breaker.state}
        return {"ok": True, "breaker": self.breaker.state}

    # -- calls -----------------------------------------------------------------------------------

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)
        args = dict(arguments or {})
        topic = self.allowed("topic", text_arg(self.kind, args, "topic"))
        if operation == "read":
            return await self._read(topic, args)
        if "+" in topic or "#" in topic or topic.startswith("$"):
            raise ConnectorError(f"mqtt: {topic!r} is not a topic to publish on: no wildcards (+ #), not $SYS")
        qos = args.get("qos", 1)
        if qos not in (0, 1, 2):
            raise ConnectorError(f"mqtt: `qos` is 0, 1 or 2, got {qos!r}")
        data = encode(self.kind, args)
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        if idempotency_key:
            props.UserProperty = [(KEY_PROPERTY, idempotency_key)]
        client = await self.open()
        try:
            await client.publish(topic, data, qos=qos, retain=bool(args.get("retain")), properties=props)
        except aiomqtt.MqttError as exc:
            self._client = None  # reconnect on the next call
            raise ConnectorError(f"mqtt: publishing failed: {exc}", retryable=True) from exc
        return {"topic": topic, "qos": qos, "msg_id": idempotency_key}

    async def _read(self, topic: str, args: dict[str, Any]) -> dict[str, Any]:
        wait = args.get("wait", 1)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0.05 <= wait <= 30:
            raise ConnectorError(f"mqtt: `wait` is seconds from 0.05 to 30, got {wait!r}")
        limit = int_arg(self.kind, args, "limit", 100, high=1000)
        out: list[dict[str, Any]] = []
        client = await self._enter(self._new(f"podium-read-{uuid.uuid4().hex[:12]}"))
        try:
            await client.subscribe(topic, qos=1)

            async def collect() -> None:
                async for m in client.messages:
                    if m.retain:
                        out.append(_message(m, read=True).envelope())  # each at most MAX_PAYLOAD
                        if len(out) >= limit:
                            return

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), wait)
        except aiomqtt.MqttError as exc:
            raise ConnectorError(f"mqtt: reading {topic!r} failed: {exc}", retryable=True) from exc
        finally:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
        return {"messages": out}

    # -- consuming -------------------------------------------------------------------------------

    async def receive(self, source: dict[str, Any], *, max_messages: int, timeout: float) -> list[Delivery]:
        session = source["session"]
        held = self._sessions.get(session)
        if held is None or held[1].done():
            held = await self._subscribe(source)
            self._sessions[session] = held
        client, pump, inbox = held
        try:
            first = await asyncio.wait_for(inbox.get(), timeout)
        except TimeoutError:
            if pump.done():  # the connection broke: the next receive reconnects the session
                raise ConnectorError("mqtt: the session's connection was lost", retryable=True) from None
            return []
        items = [first]
        while len(items) < max_messages and not inbox.empty():
            items.append(inbox.get_nowait())
        return [self._delivery(client, m, source.get("max_message_bytes")) for m in items]

    async def _subscribe(self, source: dict[str, Any]) -> tuple[_Client, asyncio.Task[None], asyncio.Queue[aiomqtt.Message]]:
        topic = self.allowed("topic", source["topic"])
        client = await self._enter(self._new(source["session"], session=True))
        try:
            await client.subscribe(topic, qos=source["qos"])
        except aiomqtt.MqttError as exc:
            await client.__aexit__(None, None, None)
            raise ConnectorError(f"mqtt: subscribing to {topic!r} failed: {exc}", retryable=True) from exc
        inbox: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()

        async def pump() -> None:
            with contextlib.suppress(aiomqtt.MqttError):
                async for m in client.messages:
                    await inbox.put(m)

        return client, asyncio.get_running_loop().create_task(pump()), inbox

    @staticmethod
    def _delivery(client: _Client, m: aiomqtt.Message, limit: int | None = None) -> Delivery:
        async def ack() -> None:
            if m.qos > 0:
                client.ack(m.mid, m.qos)

        async def retry() -> None:  # MQTT redelivers an unacknowledged message when the session reconnects
            return None

        return Delivery(message=_message(m, limit), ack=ack, retry=retry)

    async def stop_receiving(self) -> None:
        held, self._sessions = list(self._sessions.values()), {}
        for client, pump, _ in held:
            pump.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pump
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)


def _message(m: aiomqtt.Message, limit: int | None = None, *, read: bool = False) -> Message:
    props = dict(getattr(m.properties, "UserProperty", None) or []) if m.properties is not None else {}
    raw = m.payload if isinstance(m.payload, bytes | bytearray) else str(m.payload or "").encode()
    key = props.get(KEY_PROPERTY) or digest(str(m.topic), raw)
    return Message(key=key, source=str(m.topic), payload=decode(bytes(raw), limit, read=read), headers=dict(props), redelivered=False)
