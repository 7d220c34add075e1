"""The worker half of the engine client: the maintenance loop (leases, cancellation requests,
parked steps, kill switches), the claim loop of ``podium worker``, and application events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _serde

if TYPE_CHECKING:
    from .storage import Store

log = logging.getLogger("podium.engine")


class Working:
    """Mixed into :class:`podium.Client`."""

    store: Store
    poll_interval: float
    lease_seconds: float
    started_event_after: float
    owner: str
    _driving: dict[str, Any]
    _switches: dict[str, Any]
    _handler_tasks: set[asyncio.Task[Any]]
    _unsubscribers: list[Callable[[], Any]]

    # Provided by the client and its other halves.
    def _check_open(self) -> None:
        raise NotImplementedError

    async def _resume(self, run_ids: Any = None, *, limit: int = 10_000) -> list[str]:
        raise NotImplementedError

    async def _cancel_local(self, run_id: str) -> bool:
        raise NotImplementedError

    async def _refresh_switches(self) -> None:
        raise NotImplementedError

    async def _apply_switches(self) -> None:
        raise NotImplementedError

    # -- background work ------------------------------------------------------------------------

    async def _maintain(self) -> None:
        """Renew leases and act on cancellation requests from other processes."""
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_interval)
            ids = list(self._driving)
            if not ids:
                continue
            try:
                now = time.time()
                await self._refresh_switches()
                if self._switches:
                    await self._apply_switches()
                for ex, _ in list(self._driving.values()):
                    if ex.running:
                        await ex.mark_started(self.started_event_after)
                    if ex.parked:
                        ex.signals = await self.store.get_signals(ex.run_id)
                        if ex.due(now):
                            ex.poke()
                for rid in await self.store.cancel_requests(ids):
                    await self._cancel_local(rid)
                if time.monotonic() - last_renew >= self.lease_seconds / 3:
                    last_renew = time.monotonic()
                    kept = await self.store.renew_leases(
                        self.owner, ids, lease_seconds=self.lease_seconds, now=time.time()
                    )
                    for rid in set(ids) - kept:
                        entry = self._driving.get(rid)
                        if entry is not None and not entry[0].finished.done():
                            log.warning("run %s: lease lost to another engine; stopping here", rid)
                            entry[0].reason = "shutdown"
                            entry[1].cancel()
            except Exception:
                log.exception("engine maintenance failed; retrying")

    async def emit(self, topic: str, payload: Any = None) -> None:
        """Publish an application event (``ticket.created``...) to every subscriber of this store:
        in this process, and in every process sharing a PostgreSQL store. From step code use
        ``await ctx.emit(...)``, which is durable (not re-sent when the step is replayed)."""
        self._check_open()
        await self.store.publish(topic, _serde.dumps(payload))

    async def on(self, pattern: str, handler: Callable[[str, Any], Any]) -> Callable[[], Any]:
        """Call ``handler(topic, payload)`` for events whose topic matches ``pattern`` (``*`` and
        ``?`` wildcards, e.g. ``ticket.*``), from this process or, on PostgreSQL, any other. An async
        handler runs as a task. Returns an async unsubscribe function."""
        import fnmatch

        self._check_open()
        loop = asyncio.get_running_loop()

        def deliver(topic: str, payload: str) -> None:
            if not fnmatch.fnmatchcase(topic, pattern):
                return
            result = handler(topic, _serde.loads(payload))
            if asyncio.iscoroutine(result):
                task = loop.create_task(result)
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)

        unsubscribe = await self.store.subscribe(deliver)
        self._unsubscribers.append(unsubscribe)
        return unsubscribe

    async def work(self, stop: asyncio.Event, *, concurrency: int = 100) -> None:
        """Be a worker until ``stop`` is set: claim ready runs (new, handed back, orphaned, woken)
        from this client's queues, with its labels, and drive up to ``concurrency`` at once."""
        self._check_open()
        while not stop.is_set():
            free = concurrency - len(self._driving)
            if free > 0:
                try:
                    await self._resume(limit=free)
                except Exception:
                    log.exception("claiming runs failed; retrying")
            waiter = asyncio.ensure_future(self.store.wait_for_work(self.poll_interval))
            stopper = asyncio.ensure_future(stop.wait())
            # A run finishing frees a slot; waking on it matters only when every slot is taken
            # (claiming after every completion would flood the store with claims).
            full = len(self._driving) >= concurrency
            done = [t for _, t in list(self._driving.values())] if full else []
            await asyncio.wait([waiter, stopper, *done], return_when=asyncio.FIRST_COMPLETED)
            for t in (waiter, stopper):
                t.cancel()
