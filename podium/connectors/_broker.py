"""What the four message-broker connectors share: :class:`BrokerConnector` (a ``publish`` operation,
a safe read, and :meth:`BrokerConnector.receive` for consumers), :class:`Message` and
:class:`Delivery`, payload encoding and the checks on names a workflow passes.

The broker modules are named ``broker_nats``, ``broker_redis``, ``broker_amqp`` and ``broker_mqtt``
(not ``nats``...), so that they never shadow the client libraries they import."""

from __future__ import annotations

import abc
import fnmatch
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConnectorError
from ._base import Connector
from ._sources import check_source

MAX_PAYLOAD = 1024 * 1024
"""Bytes of one encoded payload, at most (brokers default to about this: NATS 1 MiB)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One message as a consumer sees it."""

    key: str
    """What identifies the message across redeliveries and duplicate publishes: the publisher's
    message id when it set one (Podium always does), else the broker's own position (NATS stream
    sequence, Redis entry id) or, where the broker has none, a digest of the content."""
    source: str
    """The subject, stream, queue or topic it came from."""
    payload: Any
    """The body, decoded from JSON (text when it is not JSON)."""
    headers: dict[str, str] = field(default_factory=dict)
    redelivered: bool = False
    """The broker says it delivered this message before (not every broker can tell)."""

    def envelope(self) -> dict[str, Any]:
        """The message as a run input that keeps its metadata."""
        return {"key": self.key, "source": self.source, "payload": self.payload, "headers": dict(self.headers)}


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """A received message and how to settle it."""

    message: Message
    ack: Callable[[], Awaitable[None]]
    """The message is handled: the broker may forget it."""
    retry: Callable[[], Awaitable[None]]
    """Not handled: deliver it again (now or after the broker's redelivery delay)."""


class BrokerConnector(Connector):
    """A message broker. Subclasses implement :meth:`call` (``publish`` and a read) and
    :meth:`receive`; :meth:`check_source` checks a consumer's settings."""

    allow: list[str] | None = None
    """fnmatch patterns of the subjects, streams, routing keys or topics operations may touch (None: any)."""

    @staticmethod
    def allow_list(allow: list[str] | str | None) -> list[str] | None:
        """``allow`` as a list (a registered capability gives ``"orders.*,billing.*"``)."""
        if isinstance(allow, str):
            return [a.strip() for a in allow.split(",") if a.strip()]
        return list(allow) if allow is not None else None

    def allowed(self, what: str, name: str) -> str:
        """``name`` if this connector may touch it, else a non-retryable error."""
        if self.allow is not None and not any(fnmatch.fnmatchcase(name, p) for p in self.allow):
            raise ConnectorError(
                f"{self.kind}: {what} {name!r} is not one this connector may use (allowed: {', '.join(self.allow)}); "
                "an admin widens the connector's `allow` setting"
            )
        return name

    def check_source(self, source: dict[str, Any], *, name: str) -> dict[str, Any]:
        """A consumer's settings (subject, stream, queue, topic...), checked and with defaults filled
        in (``name``: the default consumer name); raises :class:`~podium.ConfigError` saying which
        field is wrong and how to fix it (see :mod:`podium.connectors._sources`)."""
        return check_source(self.kind, source, name=name)

    @abc.abstractmethod
    async def receive(self, source: dict[str, Any], *, max_messages: int, timeout: float) -> list[Delivery]:
        """Up to ``max_messages`` messages from ``source`` (checked), waiting at most ``timeout`` seconds
        for the first. Each is settled by its :class:`Delivery`; an unsettled one comes back later."""

    async def stop_receiving(self) -> None:
        """Release what :meth:`receive` holds (subscriptions, consumers)."""


# -- arguments ----------------------------------------------------------------------------------


def text_arg(kind: str, args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    """A required text argument, or a non-retryable error naming it."""
    value = args.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ConnectorError(f"{kind}: `{name}` must be non-empty text, got {value!r}")
    if any(ord(c) < 32 for c in value) or len(value) > 1024:
        raise ConnectorError(f"{kind}: `{name}` holds control characters or is over 1024 characters")
    return value


def int_arg(kind: str, args: dict[str, Any], name: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConnectorError(f"{kind}: `{name}` must be a whole number from {low} to {high}, got {value!r}")
    return value


def headers_arg(kind: str, args: dict[str, Any]) -> dict[str, str]:
    headers = args.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ConnectorError(f"{kind}: `headers` must map text to text, got {headers!r}")
    return headers


def encode(kind: str, args: dict[str, Any]) -> bytes:
    """The ``payload`` argument as JSON bytes (absent: ``null``)."""
    try:
        data = json.dumps(args.get("payload"), ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"{kind}: `payload` must be JSON data: {exc}") from None
    if len(data) > MAX_PAYLOAD:
        raise ConnectorError(f"{kind}: the payload is {len(data):,} bytes, over {MAX_PAYLOAD:,}; store it and send a reference")
    return data


class Unreadable(str):
    """A body that looks like JSON but that the JSON reader cannot take (nested deeper than its
    recursion allows): a note saying so, in place of the body. A consumer keeps such a message as a
    dead letter (:meth:`~podium.connectors.Consumer.handle`) instead of failing every batch it is in."""

    __slots__ = ()


def decode(data: bytes | str, limit: int | None = None, *, read: bool = False) -> Any:
    """A body as JSON data, or as text when it is not JSON; :class:`Unreadable` when it is JSON
    nested too deep to read (a hostile publisher's ``[[[[...``: RecursionError is no ValueError),
    or when it is over ``limit`` bytes (a trigger's ``max_message_bytes``: not read, nor started).
    ``read``: for a connector's read operation, whose messages are each at most :data:`MAX_PAYLOAD`
    (what Podium publishes at most; a larger one is a note saying so)."""
    size = len(data) if isinstance(data, bytes | bytearray) else len(data.encode("utf-8", "replace"))
    if read and size > MAX_PAYLOAD:
        return Unreadable(
            f"[message too large: its body is {size:,} bytes, over the {MAX_PAYLOAD:,} bytes a read returns of one "
            "message (what Podium publishes at most), so it was not read; have the publisher store the data and "
            "send a reference]"
        )
    if limit is not None and size > limit:
        return Unreadable(
            f"[message too large: its body is {size:,} bytes, over the trigger's max_message_bytes ({limit:,}), so it "
            "was not read and started nothing; if such messages are expected, raise the trigger's max_message_bytes, "
            "else have the publisher store the data and send a reference]"
        )
    text = data.decode("utf-8", "replace") if isinstance(data, bytes | bytearray) else data
    try:
        return json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        return Unreadable(
            f"[unreadable message: its JSON body ({len(text):,} characters) is nested deeper than the JSON reader "
            "allows; the publisher should send flatter JSON]"
        )


def digest(*parts: bytes | str) -> str:
    """A content key for a message the publisher gave no id (identical messages count as one)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return "sha256:" + h.hexdigest()[:32]
