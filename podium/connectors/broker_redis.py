"""Redis Streams, through redis-py's asyncio client (``pip install 'podium[connectors]'``).

Operations:

* ``publish``: ``XADD`` of ``payload`` (JSON, field ``payload``) with the call's idempotency key
  (field ``message_id``) to ``stream``. A Lua script records the key (``SET NX`` with an expiry,
  ``dedup_seconds``, one day by default) in the same atomic step as the ``XADD``, so a repeat inside
  that window returns the first entry's id and adds nothing: **effectively-once**.
* ``read`` (safe): the last ``limit`` entries of ``stream``, or those after the entry id ``after``.

As a trigger, a consumer group: an entry is acknowledged (``XACK``) after its run has started; an
entry left unacknowledged (a crashed engine) is claimed again after ``claim_idle`` seconds
(``XAUTOCLAIM``). The run id is derived from ``message_id`` (else the entry id).
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from ..errors import ConfigError, ConnectorError
from ._base import Operation
from ._broker import BrokerConnector, Delivery, Message, decode, encode, headers_arg, int_arg, text_arg

# KEYS: stream, dedup key. ARGV: expiry seconds, maxlen (0: none), then field, value pairs.
_PUBLISH = """
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 1} end
local id
if tonumber(ARGV[2]) > 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
end
redis.call('SET', KEYS[2], id, 'EX', ARGV[1])
return {id, 0}
"""
_ENTRY_ID = r"^\d+-\d+$"


class RedisConnector(BrokerConnector):
    """A Redis server (``url``: ``redis://host:6379/0``; a password goes in ``url_env``)."""

    kind = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        allow: list[str] | str | None = None,
        dedup_seconds: int = 86_400,
        maxlen: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"a redis connector needs a redis:// URL, got {url!r}")
        self.url = url
        self.allow = self.allow_list(allow)
        self.dedup_seconds = int(dedup_seconds)
        self.maxlen = int(maxlen) if maxlen else 0
        self.timeout = timeout
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._groups: set[tuple[str, str]] = set()
        self.consumer_name = f"{socket.gethostname()}-{os.getpid()}"
        """This process's name inside consumer groups (another process's pending entries are claimed when idle)."""

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="publish",
                description="Append a JSON message to a stream (XADD), deduplicated by the call's idempotency key.",
                input={
                    "type": "object",
                    "properties": {
                        "stream": {"type": "string"},
                        "payload": {"description": "The message body: any JSON value."},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "required": ["stream"],
                },
                output={"type": "object", "properties": {"id": {"type": "string"}, "duplicate": {"type": "boolean"}}},
            ),
            Operation(
                name="read",
                description="Read entries of a stream: the last `limit`, or those after entry id `after`.",
                input={
                    "type": "object",
                    "properties": {
                        "stream": {"type": "string"},
                        "after": {"type": "string", "description": "an entry id, e.g. 1700000000000-0"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    },
                    "required": ["stream"],
                },
                output={"type": "object", "properties": {"messages": {"type": "array"}, "cursor": {}}},
                safe=True,
            ),
        ]

    async def open(self) -> aioredis.Redis:  # type: ignore[override]
        if self._redis is None:
            self._redis = aioredis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout, decode_responses=False
            )
            self._script = self._redis.register_script(_PUBLISH)
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            r, self._redis = self._redis, None
            await r.aclose()

    async def health(self) -> dict[str, Any]:
        try:
            await self._guard((await self.open()).ping())
        except ConnectorError as exc:
            return {"ok": False, "error": str(exc), "breaker": self.breaker.state}
        return {"ok": True, "breaker": self.breaker.state}

    async def _guard(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raise ConnectorError(f"redis: the server did not answer: {type(exc).__name__}: {exc}", retryable=True) from exc
        except redis_errors.ResponseError as exc:
            raise ConnectorError(f"redis: the server refused the command: {exc}") from None

    # -- calls -----------------------------------------------------------------------------------

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)
        args = dict(arguments or {})
        stream = self.allowed("stream", text_arg(self.kind, args, "stream"))
        r = await self.open()
        if operation == "publish":
            fields: list[Any] = ["payload", encode(self.kind, args)]
            if idempotency_key:
                fields += ["message_id", idempotency_key]
            for k, v in headers_arg(self.kind, args).items():
                fields += [f"h:{k}", v]
            if not idempotency_key:  # nothing to deduplicate on: a plain XADD
                entry = await self._guard(r.xadd(stream, dict(zip(fields[::2], fields[1::2], strict=True))))
                return {"stream": stream, "id": _text(entry), "duplicate": False}
            dedup = f"podium:dedup:{stream}:{idempotency_key}"
            entry, duplicate = await self._guard(
                self._script(keys=[stream, dedup], args=[self.dedup_seconds, self.maxlen, *fields])
            )
            return {"stream": stream, "id": _text(entry), "duplicate": bool(duplicate), "msg_id": idempotency_key}
        limit = int_arg(self.kind, args, "limit", 10, high=1000)
        after = args.get("after")
        if after is None:
            rows = list(reversed(await self._guard(r.xrevrange(stream, count=limit))))
        else:
            if not isinstance(after, str) or not re.match(_ENTRY_ID, after):
                raise ConnectorError(f"redis: `after` must be an entry id like 1700000000000-0, got {after!r}")
            rows = await self._guard(r.xrange(stream, min=f"({after}", count=limit))
        messages = [_entry(stream, i, f, read=True) for i, f in rows]  # each at most MAX_PAYLOAD
        return {"messages": messages, "cursor": messages[-1]["id"] if messages else after}

    # -- consuming -------------------------------------------------------------------------------

    async def receive(self, source: dict[str, Any], *, max_messages: int, timeout: float) -> list[Delivery]:
        stream, group = self.allowed("stream", source["stream"]), source["group"]
        me = source.get("consumer") or self.consumer_name
        r = await self.open()
        if (stream, group) not in self._groups:
            try:
                start = "0" if source.get("deliver") == "all" else "$"
                await self._guard(r.xgroup_create(stream, group, id=start, mkstream=True))
            except ConnectorError as exc:
                if "BUSYGROUP" not in str(exc):  # it exists already: join it
                    raise
            self._groups.add((stream, group))
        # Entries another consumer (or this one) took and never acknowledged, idle long enough.
        claimed = await self._guard(
            r.xautoclaim(stream, group, me, min_idle_time=int(source["claim_idle"] * 1000), count=max_messages)
        )
        rows = [(i, f, True) for i, f in claimed[1] if f]
        if not rows:
            try:
                got = await self._guard(
                    r.xreadgroup(group, me, {stream: ">"}, count=max_messages, block=max(1, int(timeout * 1000)))
                )
            except ConnectorError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted under us: create the group again
                    self._groups.discard((stream, group))
                raise
            rows = [(i, f, False) for _, entries in (got or []) for i, f in entries]
        out = []
        for entry_id, fields, again in rows:
            e = _entry(stream, entry_id, fields, source.get("max_message_bytes"))
            message = Message(
                key=e["msg_id"] or f"{stream}:{e['id']}",
                source=stream,
                payload=e["payload"],
                headers=e["headers"],
                redelivered=again,
            )

            async def ack(entry: Any = entry_id) -> None:
                await self._guard(r.xack(stream, group, entry))

            async def retry() -> None:  # left pending: claimed again after claim_idle
                return None

            out.append(Delivery(message=message, ack=ack, retry=retry))
        return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _entry(stream: str, entry_id: Any, fields: dict[Any, Any], limit: int | None = None, *, read: bool = False) -> dict[str, Any]:
    f = {_text(k): v for k, v in (fields or {}).items()}
    return {
        "id": _text(entry_id),
        "stream": stream,
        "payload": decode(f.get("payload", b"null"), limit, read=read),
        "msg_id": _text(f["message_id"]) if "message_id" in f else None,
        "headers": {k[2:]: _text(v) for k, v in f.items() if k.startswith("h:")},
    }
