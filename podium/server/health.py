"""Liveness, readiness and metrics for a process that serves no API: ``podium worker --health-port``.

* ``GET /healthz``: liveness, 200 while the process's event loop answers (a wedged loop answers
  nothing, and the orchestrator restarts the pod).
* ``GET /readyz``: readiness, 200 when the store answers a read within the timeout, 503 with the
  JSON error shape otherwise (and while the worker is shutting down).
* ``GET /metrics``: the worker's own Prometheus metrics (prometheus-client): runs it drove, step
  outcomes, retries, tokens, its claims and lease renewals, runs it drives now, its connectors.

The endpoints carry no run data and take no token, like ``/healthz`` of ``podium serve``: listen on
a pod-internal port (the chart's probes and Prometheus reach it; no Service exposes it outside).
``podium serve`` answers the same ``/healthz`` and ``/readyz`` (routes_events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from ..errors import StoreError

READY_TIMEOUT = 5.0


async def check_ready(client: Any, timeout: float = READY_TIMEOUT) -> None:
    """Raise :class:`~podium.StoreError` unless ``client`` is open and its store answers a read."""
    store = getattr(client, "store", None)
    if store is None:
        raise StoreError("not ready: the engine client has no store yet")
    # Answered to anyone (probes take no token): the store URL's password, and any credential the
    # driver's message echoes, are masked.
    where = _shown(store.url)
    try:
        await asyncio.wait_for(store.kv_get("podium.health", "ready"), timeout)
    except TimeoutError:
        raise StoreError(f"not ready: the store ({where}) did not answer a read in {timeout:g}s") from None
    except Exception as exc:
        said = _shown(f"{type(exc).__name__}: {exc}", store.url)
        raise StoreError(f"not ready: the store ({where}) failed a read: {said}") from None


def _shown(text: str, url: str | None = None) -> str:
    """``text`` with the password of store URL ``url`` (``text`` itself when it is the URL) masked."""
    from .._sqldb import shown_url, without_password

    return shown_url(str(text)) if url is None else shown_url(without_password(str(text), str(url)))


async def worker_families(client: Any) -> list[Any]:
    """A worker's own series: its claims and leases (``client.claims``), and who it is."""
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

    claims = client.claims
    info = InfoMetricFamily("podium_worker", "This worker: its owner id, queues and labels.")
    info.add_metric(
        [],
        {
            "owner": str(client.owner),
            "queues": ",".join(client.queues or ()) or "*",
            "labels": ",".join(sorted(client.labels or ())),
        },
    )
    return [
        info,
        CounterMetricFamily("podium_worker_claims", "Runs this worker claimed (new, handed back, orphaned, woken).", value=claims.claimed),
        CounterMetricFamily("podium_worker_claim_failures", "Claim rounds that failed (the store refused or was down).", value=claims.claim_failures),
        CounterMetricFamily("podium_worker_lease_renewals", "Leases this worker renewed on the runs it drives.", value=claims.renewed),
        CounterMetricFamily("podium_worker_leases_lost", "Runs whose lease another engine took over while this one drove them.", value=claims.lost),
        GaugeMetricFamily("podium_worker_concurrency", "Runs this worker drives at most at once.", value=client.max_concurrent_runs or 0),
    ]  # fmt: skip


def health_app(client: Any, metrics: Any, stopping: asyncio.Event) -> Any:
    """The ASGI app of a worker's health port (Starlette, which the server extra brings)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        if stopping.is_set():
            return _unready("not ready: the worker is shutting down")
        try:
            await check_ready(client)
        except StoreError as exc:
            return _unready(str(exc))
        return JSONResponse({"ok": True})

    async def scrape(request: Request) -> Response:
        body, content_type = await metrics.exposition(accept=request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", scrape)]
    return Starlette(routes=routes)


def _unready(message: str) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"code": "store_unavailable", "message": message}}, status_code=503)


@contextlib.asynccontextmanager
async def serving(app: Any, host: str, port: int) -> Any:
    """Serve ``app`` on ``host:port`` with uvicorn in this event loop while the block runs; the
    block gets the port bound (``port=0``: a free one).

    The process's own signal handlers stay in charge (a worker drains its runs on SIGTERM before it
    stops): uvicorn's are not installed. Raises OSError when the port cannot be bound."""
    import socket

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the worker handles SIGTERM/SIGINT itself

    # Bound here, so that a port in use is an OSError for the caller to report (uvicorn would
    # log it and raise SystemExit out of the event loop).
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises what stopped it
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()
