"""The event bus: how engines tell each other that work may be ready (a run submitted, a signal
sent) and carry application events (``client.emit`` / ``client.on``).

By default the store is the bus (PostgreSQL's LISTEN/NOTIFY; in-process for the others). With
``PODIUM_EVENT_BUS=nats://host:4222`` (or ``Client(event_bus=...)``) a :class:`NatsBus` stands in
front of the store: wake-ups go on core NATS subject ``PREFIX.work`` (a worker parked in
``wait_for_work`` returns at once), and events on JetStream stream ``PREFIX_EVENTS`` (subscribers
use ordered consumers, which resume after a reconnect without losing events). ``?prefix=NAME``
separates deployments sharing a NATS server (default ``podium``). When NATS does not answer the
store's own mechanism (or polling) goes on: a lost wake-up costs at most one poll interval."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError

if TYPE_CHECKING:
    from ._base import Store

log = logging.getLogger("podium.events")


class EventBus(Protocol):
    """What the engine asks of a bus (a :class:`~podium.storage.Store` is one)."""

    async def wait_for_work(self, timeout: float) -> None: ...

    async def notify_work(self) -> None: ...

    async def publish(self, topic: str, payload: str) -> None: ...

    async def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], Awaitable[None]]: ...


def open_bus(url: str | None, store: Store) -> Any:
    """The bus ``url`` names (default ``$PODIUM_EVENT_BUS``), or ``store`` itself when none is set."""
    url = url or os.environ.get("PODIUM_EVENT_BUS") or None
    if url is None:
        return store
    if not url.startswith(("nats://", "tls://")):
        raise ConfigError(f"event bus {url!r}: the bus is a nats:// URL (PODIUM_EVENT_BUS=nats://127.0.0.1:4222)")
    return NatsBus(url, store)


class NatsBus:
    """Work wake-ups on core NATS and application events on JetStream, in front of ``store``."""

    def __init__(self, url: str, store: Store) -> None:
        parts = urlsplit(url)
        prefix = (parse_qs(parts.query).get("prefix") or ["podium"])[0]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", prefix):
            raise ConfigError(f"event bus prefix {prefix!r}: use 1-64 letters, digits, '_' or '-'")
        self.server = parts._replace(query="").geturl()
        self.prefix = prefix
        self.stream = f"{prefix.upper().replace('-', '_')}_EVENTS"
        self.store = store
        self._nc: Any = None
        self._lock = asyncio.Lock()
        self._work = asyncio.Event()
        self.max_payload = 1024 * 1024

    async def _connect(self) -> Any:
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                import nats

                async def quiet(exc: Exception) -> None:
                    log.debug("event bus: %s: %s", type(exc).__name__, exc)

                nc = await nats.connect(self.server, connect_timeout=5, max_reconnect_attempts=-1, error_cb=quiet, name="podium-bus")
                await nc.subscribe(f"{self.prefix}.work", cb=self._woken)
                self.max_payload = nc.max_payload
                self._nc = nc
            return self._nc

    async def _woken(self, msg: Any) -> None:
        self._work.set()

    async def notify_work(self) -> None:
        await self.store.notify_work()
        try:
            nc = await self._connect()
            await nc.publish(f"{self.prefix}.work", b"")
            await nc.flush(timeout=5)
        except Exception as exc:  # the other engines poll: late, not lost
            log.warning("event bus: could not send a wake-up (%s: %s); engines fall back to polling", type(exc).__name__, exc)

    async def wait_for_work(self, timeout: float) -> None:
        try:
            await self._connect()
        except Exception as exc:
            log.warning("event bus: NATS does not answer (%s); polling", exc)
            await self.store.wait_for_work(timeout)
            return
        woken = asyncio.ensure_future(self._work.wait())
        own = asyncio.ensure_future(self.store.wait_for_work(timeout))  # PostgreSQL's NOTIFY still counts
        try:
            await asyncio.wait([woken, own], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (woken, own):
                f.cancel()
            self._work.clear()

    async def publish(self, topic: str, payload: str) -> None:
        data = json.dumps([topic, payload]).encode()
        nc = await self._connect()
        if len(data) > self.max_payload:
            raise ConfigError(
                f"event {topic!r} is {len(data):,} bytes; the NATS server takes at most {self.max_payload:,}: "
                "store the data and send a reference to it"
            )
        js = nc.jetstream()
        await self._stream(js)
        await js.publish(f"{self.prefix}.events", data, timeout=5)

    async def _stream(self, js: Any) -> None:
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(name=self.stream, subjects=[f"{self.prefix}.events"], max_age=24 * 3600)

    async def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], Awaitable[None]]:
        from nats.js.api import DeliverPolicy

        nc = await self._connect()
        js = nc.jetstream()
        await self._stream(js)

        async def deliver(msg: Any) -> None:
            try:
                topic, payload = json.loads(msg.data)
                callback(topic, payload)
            except Exception:  # a bad subscriber must not stop the others' events
                log.exception("event subscriber failed")

        sub = await js.subscribe(
            f"{self.prefix}.events", cb=deliver, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, stream=self.stream
        )

        async def unsubscribe() -> None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

        return unsubscribe

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):
                await nc.close()
