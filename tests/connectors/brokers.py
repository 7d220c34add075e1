"""One harness per broker for the tests: a fresh, uniquely named destination on the real local
service, the connector's publish arguments and trigger source for it, a raw read-back with the
broker's own client (not through Podium), a raw publish, and clean-up."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from podium.connectors import BrokerConnector, open_connector


@dataclass
class Harness:
    kind: str
    name: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])
    url: str = ""
    dedups: bool = False
    """The broker drops a repeated publish with the same key (NATS, Redis with Podium's script)."""

    def connector(self, **settings: Any) -> BrokerConnector:
        conn = open_connector(self.kind, **({"url": self.url} if self.url else {}), **settings)
        assert isinstance(conn, BrokerConnector)
        return conn

    def publish_args(self, payload: Any) -> dict[str, Any]:
        raise NotImplementedError

    def source(self, **extra: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def setup(self) -> None:
        pass

    async def read_raw(self) -> list[tuple[str | None, Any]]:
        """(message id, payload) of what the broker holds, read with its own client."""
        raise NotImplementedError

    async def publish_raw(self, payload: Any, key: str | None) -> None:
        raise NotImplementedError

    async def cleanup(self) -> None:
        pass


class NatsHarness(Harness):
    def __init__(self) -> None:
        super().__init__("nats", dedups=True)
        self.stream = self.name.upper()

    def publish_args(self, payload: Any) -> dict[str, Any]:
        return {"subject": f"{self.name}.created", "payload": payload}

    def source(self, **extra: Any) -> dict[str, Any]:
        return {"stream": self.stream, "subject": f"{self.name}.>", "deliver": "all", **extra}

    async def _js(self) -> Any:
        import nats

        nc = await nats.connect("nats://127.0.0.1:4222")
        return nc, nc.jetstream()

    async def setup(self) -> None:
        nc, js = await self._js()
        await js.add_stream(name=self.stream, subjects=[f"{self.name}.>"])
        await nc.close()

    async def read_raw(self) -> list[tuple[str | None, Any]]:
        nc, js = await self._js()
        state = (await js.stream_info(self.stream)).state
        out = []
        for seq in range(max(1, state.first_seq), state.last_seq + 1):
            m = await js.get_msg(self.stream, seq)
            out.append(((m.headers or {}).get("Nats-Msg-Id"), json.loads(m.data or b"null")))
        await nc.close()
        return out

    async def publish_raw(self, payload: Any, key: str | None) -> None:
        import nats

        nc = await nats.connect("nats://127.0.0.1:4222")
        # Core publish with the header: the stream stores it (and deduplicates within its window).
        await nc.publish(f"{self.name}.created", json.dumps(payload).encode(), headers={"Nats-Msg-Id": key} if key else None)
        await nc.flush()
        await nc.close()

    async def cleanup(self) -> None:
        nc, js = await self._js()
        try:
            await js.delete_stream(self.stream)
        finally:
            await nc.close()


class RedisHarness(Harness):
    def __init__(self) -> None:
        super().__init__("redis", dedups=True)

    def publish_args(self, payload: Any) -> dict[str, Any]:
        return {"stream": self.name, "payload": payload}

    def source(self, **extra: Any) -> dict[str, Any]:
        return {"stream": self.name, "deliver": "all", "claim_idle": 0.2, **extra}

    def _r(self) -> Any:
        import redis.asyncio as aioredis

        return aioredis.from_url("redis://127.0.0.1:6379/0")

    async def read_raw(self) -> list[tuple[str | None, Any]]:
        r = self._r()
        rows = await r.xrange(self.name)
        await r.aclose()
        return [((f.get(b"message_id") or b"").decode() or None, json.loads(f[b"payload"])) for _, f in rows]

    async def publish_raw(self, payload: Any, key: str | None) -> None:
        r = self._r()
        await r.xadd(self.name, {"payload": json.dumps(payload), **({"message_id": key} if key else {})})
        await r.aclose()

    async def cleanup(self) -> None:
        r = self._r()
        keys = [k async for k in r.scan_iter(match=f"podium:dedup:{self.name}:*")]
        await r.delete(self.name, *keys)
        await r.aclose()


class AmqpHarness(Harness):
    def __init__(self) -> None:
        super().__init__("amqp")

    def publish_args(self, payload: Any) -> dict[str, Any]:
        return {"routing_key": self.name, "payload": payload}

    def source(self, **extra: Any) -> dict[str, Any]:
        return {"queue": self.name, **extra}

    async def _ch(self) -> Any:
        import aio_pika

        conn = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        return conn, await conn.channel()

    async def setup(self) -> None:
        conn, ch = await self._ch()
        await ch.declare_queue(self.name, durable=True)
        await conn.close()

    async def read_raw(self) -> list[tuple[str | None, Any]]:
        conn, ch = await self._ch()
        q = await ch.declare_queue(self.name, passive=True)
        out = []
        while (m := await q.get(no_ack=False, fail=False)) is not None:
            out.append((m.message_id, json.loads(m.body)))
        await conn.close()  # not acknowledged: back in the queue
        return out

    async def publish_raw(self, payload: Any, key: str | None) -> None:
        import aio_pika

        conn, ch = await self._ch()
        await ch.default_exchange.publish(aio_pika.Message(json.dumps(payload).encode(), message_id=key), routing_key=self.name)
        await conn.close()

    async def cleanup(self) -> None:
        conn, ch = await self._ch()
        await ch.queue_delete(self.name)
        await conn.close()


class MqttHarness(Harness):
    def __init__(self) -> None:
        super().__init__("mqtt")
        self.topic = f"podiumtest/{self.name}"
        self.sessions: list[str] = []

    def publish_args(self, payload: Any) -> dict[str, Any]:
        return {"topic": f"{self.topic}/created", "payload": payload}

    def source(self, **extra: Any) -> dict[str, Any]:
        session = f"podium-test-{uuid.uuid4().hex[:10]}"
        self.sessions.append(session)
        return {"topic": f"{self.topic}/#", "session": session, **extra}

    async def setup(self) -> None:
        import aiomqtt

        # A subscriber in a persistent session from the start: the read-back sees every publish.
        self._inbox: list[tuple[str | None, Any]] = []
        self._client = aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5)
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.topic}/#", qos=1)

        async def pump() -> None:
            async for m in self._client.messages:
                props = dict(getattr(m.properties, "UserProperty", None) or [])
                self._inbox.append((props.get("podium-message-id"), json.loads(bytes(m.payload))))  # type: ignore[arg-type]

        self._pump = asyncio.get_running_loop().create_task(pump())

    async def read_raw(self) -> list[tuple[str | None, Any]]:
        # A marker published after the messages arrives after them (one connection, QoS 1, in order).
        import aiomqtt

        marker = uuid.uuid4().hex
        async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as c:
            await c.publish(f"{self.topic}/created", json.dumps({"marker": marker}), qos=1)
        for _ in range(1000):
            if any(p == {"marker": marker} for _, p in self._inbox):
                break
            await asyncio.sleep(0.01)
        return [x for x in self._inbox if not (isinstance(x[1], dict) and "marker" in x[1])]

    async def publish_raw(self, payload: Any, key: str | None) -> None:
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        if key:
            props.UserProperty = [("podium-message-id", key)]
        async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as c:
            await c.publish(f"{self.topic}/created", json.dumps(payload), qos=1, properties=props)

    async def cleanup(self) -> None:
        import aiomqtt

        if getattr(self, "_pump", None) is not None:
            self._pump.cancel()
            await self._client.__aexit__(None, None, None)
        for session in self.sessions:  # a clean start with the same id ends the kept session
            async with aiomqtt.Client("127.0.0.1", 1883, identifier=session, protocol=aiomqtt.ProtocolVersion.V5, clean_start=True):
                pass


HARNESSES = {"nats": NatsHarness, "redis": RedisHarness, "amqp": AmqpHarness, "mqtt": MqttHarness}
