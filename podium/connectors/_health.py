"""Connector health as the surfaces show it (``/metrics``, ``podium connectors status``, the
dashboard's Connectors page): every connector a client holds and every one registered in its
store, with its probe, breaker, figures, latency percentiles, credential expiry, drift and
quarantine depth."""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from ..secret import redact
from ._base import Connector
from ._registry import open_registered
from ._stats import LATENCY_BUCKETS


def percentile(buckets: dict[str, int], q: float) -> float | None:
    """The ``q`` quantile (0-1) of a cumulative latency histogram (``ConnectorStats.snapshot()``'s
    ``latency_buckets``), interpolated inside its bucket like Prometheus' ``histogram_quantile``.
    None without observations; the last finite bound when it falls in the ``+Inf`` bucket."""
    total = buckets.get("+Inf", 0)
    if not total:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound in LATENCY_BUCKETS:
        count = buckets.get(f"{bound:g}", below)
        if count >= rank:
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return LATENCY_BUCKETS[-1]


async def quarantine_depth(store: Any, connector: str) -> int:
    """Items of ``connector`` waiting in the quarantine (drifted results set aside, not resolved)."""
    from ._quarantine import QuarantineBook

    try:
        return await QuarantineBook(store).depth(connector)
    except Exception:  # a store kind without the quarantine table (memory://): nothing is quarantined
        return 0


async def connectors_of(client: Any) -> dict[str, Connector | Exception]:
    """The connectors a client holds (``Client(connectors=...)``) and those registered in its store
    (opened once per process, shared with the runs); a registered one that cannot be opened here
    (its environment variable is missing) is the error saying so."""
    found: dict[str, Connector | Exception] = {
        n: c for n, c in getattr(client, "connectors", {}).items() if isinstance(c, Connector)
    }
    try:
        caps = await client.capabilities()
    except Exception:  # no registry (or no permission to read it): the held ones only
        caps = {}
    for name, cap in sorted(caps.items()):
        if cap.kind != "connector" or name in found:
            continue
        try:
            found[name] = open_registered(cap.target, allow_private=cap.allow_private, name=name)
        except Exception as exc:
            found[name] = exc
    return found


_SHARED: weakref.WeakKeyDictionary[Connector, tuple[float, asyncio.Future[dict[str, Any]]]] = weakref.WeakKeyDictionary()
"""The probe each connector's readers share (when it began, its answer): see :func:`probe`."""


async def probe(connector: Connector, timeout: float = 5.0, *, fresh: float = 0.0) -> dict[str, Any]:
    """``connector.health()``, never raising and never taking more than ``timeout`` seconds. With
    ``fresh``, a probe begun in the last ``fresh`` seconds (by any caller in this process) answers
    instead of a new one: a surface polled by many readers reaches each system at most once per
    ``fresh`` seconds."""
    if fresh > 0:
        begun, answer = _SHARED.get(connector, (0.0, None))
        if answer is None or time.monotonic() - begun >= fresh or answer.get_loop() is not asyncio.get_running_loop():
            answer = asyncio.ensure_future(probe(connector, timeout))
            _SHARED[connector] = (time.monotonic(), answer)
        return dict(await asyncio.shield(answer))
    try:
        return dict(await asyncio.wait_for(connector.health(), timeout))
    except TimeoutError:
        return {"ok": False, "error": f"no answer in {timeout:g}s"}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {redact(str(exc))[:200]}"}


async def status(
    name: str,
    connector: Connector | Exception,
    *,
    store: Any = None,
    check: bool = True,
    timeout: float = 5.0,
    fresh: float = 0.0,
) -> dict[str, Any]:
    """One connector's health report as JSON data (what ``podium connectors status --json`` prints)."""
    if isinstance(connector, Exception):
        return {"name": name, "kind": None, "ok": False, "error": str(connector)}
    snap = connector.stats.snapshot()
    health = await probe(connector, timeout, fresh=fresh) if check else None
    expires = snap["token_expires_at"]
    out: dict[str, Any] = {
        "name": name,
        "kind": connector.kind,
        "ok": health.get("ok") if health is not None else None,
        "health": {k: v for k, v in (health or {}).items() if k not in snap} if health is not None else None,
        "breaker": connector.breaker.state,
        "calls": snap["calls"],
        "errors": snap["errors"],
        "retries": snap["retries"],
        "latency_p50": percentile(snap["latency_buckets"], 0.5),
        "latency_p95": percentile(snap["latency_buckets"], 0.95),
        "token_expires_in": round(expires - time.time(), 1) if expires is not None else None,
        "token_refreshes": snap["token_refreshes"],
        "drifted": snap["drifted"],
        "quarantine_depth": await quarantine_depth(store, name) if store is not None else 0,
    }
    return out


async def statuses(
    client: Any, *, check: bool = True, timeout: float = 5.0, fresh: float = 0.0
) -> list[dict[str, Any]]:
    """Every connector of ``client`` (held and registered), probed concurrently, sorted by name
    (``fresh``: see :func:`probe`)."""
    found = await connectors_of(client)
    store = getattr(client, "store", None)
    return list(
        await asyncio.gather(
            *(status(n, c, store=store, check=check, timeout=timeout, fresh=fresh) for n, c in sorted(found.items()))
        )
    )
