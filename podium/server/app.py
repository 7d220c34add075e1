"""The HTTP server: ``create_app(Settings(...))`` builds a FastAPI app around ONE engine client that
also executes runs (its worker loop runs in the background) and the trigger runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__

log = logging.getLogger("podium.server")


@dataclass(kw_only=True)
class Settings:
    """How ``podium serve`` runs."""

    store: str | None = None
    """Store URL (default: ``$PODIUM_DB`` or ``.podium/podium.db``)."""
    token: str | None = None
    """The server's own API token (needed once the store has users): what triggers act as."""
    workflows: Sequence[Any] = ()
    """Workflows to register: :class:`~podium.Workflow` objects or references (``module:attr``, YAML files)."""
    execute: bool = True
    """Drive runs in this process (its worker loop claims runs from the store)."""
    concurrency: int = 100
    deploy_dir: str | None = None
    """Folder that relative paths and ``uses: module:fn`` modules of YAML workflows deployed over
    the API are resolved from (default: the working directory). Their text is kept in the store."""
    timezone: str = "UTC"
    """Time zone of cron schedules that do not name one."""
    misfire: str = "run_once"
    """Schedules missed while the server was down: ``run_once`` (fire the latest), ``skip``, ``run_all``."""
    misfire_grace: float = 60.0
    """Seconds late a fire time may be and still count as on time."""
    trigger_interval: float = 1.0
    rules: Sequence[Any] = ()
    """Threshold rules (:class:`podium.server.triggers.Rule` or dicts)."""
    watch: dict[str, str] = field(default_factory=dict)
    """Watched folders: ``{folder: workflow}``; each new file starts a run."""
    triggers: bool = True
    """Run the trigger loop (schedules, watched folders, emitted events)."""
    client_options: dict[str, Any] = field(default_factory=dict)
    alerts: Any = None
    """Alert rules: an alerts file (YAML or JSON) or a :class:`podium.telemetry.Alerts` (see docs/observability.md)."""
    otel: Any = False
    """OpenTelemetry traces: True (OTLP if installed, else console), ``"otlp"``, ``"console"``, or a TracerProvider."""
    log_format: str | None = None
    """``json`` or ``text``: configure the process's logging (None leaves it alone)."""
    allow_remote_local_mode: bool = False
    """Without users (local mode), answer requests for any host name; by default only loopback names
    (127.0.0.1, ::1, localhost) are, as another site's page can point its own name at this machine."""
    max_request_bytes: int = 10 * 1024 * 1024
    """The largest request body accepted (larger ones are answered 413)."""
    max_json_depth: int = 64
    """How deep a JSON request body may nest (deeper ones are answered 422)."""
    max_batch_events: int = 1000
    """The most events one ``POST /api/events`` may carry (more are answered 413)."""
    sandbox_dir: str | None = None
    """The sandbox company's folder shown by ``GET /api/sandbox`` (default: beside the store, as
    ``podium demo`` uses it; see :func:`podium.sandbox.default_directory`)."""
    sandbox_db: str | None = None
    """The sandbox company's database URL when it is not ``company.db`` in that folder (default
    ``$PODIUM_SANDBOX_DB``): ``postgresql://...`` or ``mysql+pymysql://...``, as ``podium demo --sandbox-db``."""


def create_app(settings: Settings | None = None, *, client: Any = None) -> Any:
    """The FastAPI application. Pass ``client`` to serve an existing (unopened or open) client."""
    from fastapi import FastAPI

    from . import (
        errors,
        openapi,
        routes_connectors,
        routes_events,
        routes_goals,
        routes_gov,
        routes_hooks,
        routes_insights,
        routes_memory,
        routes_policy,
        routes_runs,
        routes_sandbox,
        routes_trace,
    )
    from .dashboard import mount
    from .mcp import add_endpoint as add_mcp_endpoint
    from .metrics import Metrics

    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ..engine.client import Client
        from ..engine.loading import load_workflow
        from ..governance.service import USERS
        from ..telemetry import start_telemetry
        from .auth import had_users
        from .mcp import sessions as mcp_sessions
        from .triggers import Triggers

        c = client or Client(
            settings.store, token=settings.token, execute=settings.execute, **settings.client_options
        )
        for wf in settings.workflows:
            c.register(load_workflow(wf) if isinstance(wf, str) else wf)
        app.state.metrics.attach(c)
        app.state.telemetry = await start_telemetry(c, settings)
        await c.open()
        app.state.client = c
        if not c.governance.users_exist and await had_users(c):
            c.governance.users_exist = True  # a caller without a token is refused (401), never the local admin
            if not await c.store.kv_list(USERS):
                log.error(
                    "the store's audit log records users but its users table is empty (rows deleted behind the "
                    "engine?): every API call is refused (401) until they are back; an admin restores them from "
                    "the CLI (podium users add NAME --role ROLE --token) and checks the log: podium audit verify"
                )
        await _load_deployed(c, settings)
        trig = Triggers(c, settings)
        app.state.triggers = trig
        stop = asyncio.Event()
        tasks = []
        if settings.execute:
            await c.authorize("runs.resume", "worker")  # refused here, not in a task nobody awaits
            tasks.append(asyncio.create_task(c.work(stop, concurrency=settings.concurrency)))
        if settings.triggers:
            await trig.start()
        try:
            async with mcp_sessions(app):  # the /mcp endpoint's MCP sessions (mcp.py)
                yield
        finally:
            stop.set()
            await trig.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            await app.state.telemetry.stop()
            if client is None:
                await c.close()

    app = FastAPI(
        title="Podium",
        version=__version__,
        description="Durable AI orchestration: runs, approvals, events, audit and kill switches. "
        "Authenticate with 'Authorization: Bearer pod_...' once the store has users. Every error "
        'answers {"error": {"code", "message"}} (ErrorBody). Generate a typed client from this '
        "document (docs/server.md, 'A typed client').",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served offline by openapi.install
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.deploy_failures = set()  # deployed versions that did not load here (logged once each)
    errors.install(app)
    # Routes are matched in order: the hot ones (event ingest, health checks) first.
    app.include_router(routes_events.router)
    app.include_router(routes_runs.router)
    app.include_router(routes_trace.router)
    app.include_router(routes_gov.router)
    app.include_router(routes_memory.router)
    app.include_router(routes_policy.router)
    app.include_router(routes_goals.router)
    app.include_router(routes_connectors.router)
    app.include_router(routes_sandbox.router)
    app.include_router(routes_insights.router)
    app.include_router(routes_hooks.router)
    app.include_router(routes_runs.last)  # GET /api/runs/{run_id:path}: after every /api/runs/{id}/... route
    mount(app)
    openapi.install(app)  # the finished /openapi.json; /docs and /redoc without a CDN
    add_mcp_endpoint(app)  # /mcp: workflows and approvals as MCP tools (mcp.py)
    from functools import partial

    from .auth import body_gate
    from .limits import RequestLimits

    # Body size, JSON depth, NaN/Infinity and lone surrogates: refused before any route runs (limits.py).
    # A body is read only once its caller is known (auth.body_gate): no token, no 10 MB read for it.
    app.add_middleware(
        RequestLimits, max_bytes=settings.max_request_bytes, max_depth=settings.max_json_depth,
        gate=partial(body_gate, app),
    )  # fmt: skip

    app.add_middleware(SafeHeaders)
    app.add_middleware(CountRequests, metrics=app.state.metrics)
    return app


class SafeHeaders:
    """Headers every answer needs, set in one plain ASGI middleware (as :class:`CountRequests`):

    - ``Cache-Control: no-store`` on every ``/api/`` answer that sets no cache policy of its own (the
      event streams send ``no-cache``): runs, payloads and audit entries are read with a token, and
      no browser or proxy should keep a copy on disk.
    - No page of another site may show this server's pages in a frame (``X-Frame-Options: DENY``,
      ``frame-ancestors 'none'``): framed, the dashboard acts for whoever looks at it (local mode
      needs no token, and its requests are the dashboard's own), so another site could lay it under
      a decoy and have a click approve a request or switch a kill switch back on (clickjacking).
    - ``X-Content-Type-Options: nosniff``: an answer is read as the type it says it is."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def sent(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                if api and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", b"frame-ancestors 'none'"))
                headers += [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sent)


class CountRequests:
    """Counts requests by method, route and status (``podium_http_requests_total``): a plain ASGI
    middleware, as cheap as can be on every request (an ``@app.middleware("http")`` function costs a
    task and a stream per request)."""

    def __init__(self, app: Any, *, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sent(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.inc("podium_http_requests_total", method=scope["method"], route=route, status=str(status))


async def _load_deployed(client: Any, settings: Settings) -> None:
    """Serve the active version of every deployed workflow, and label the workflows given on the
    command line with the deployed version they are (a definition that changed without a deploy is
    not served: runs must never be recorded as a version they are not)."""
    from ..engine.versions import ACTIVE

    for name in sorted(await client.store.kv_list(ACTIVE)):
        try:
            await client.deployments.load_deployed(name)
        except Exception as exc:
            log.error("deployed workflow %s no longer loads: %s", name, exc)
    for wf in client.registry:
        try:
            await client.deployments.resolve(wf)
        except Exception as exc:
            log.error("not serving %s: %s", wf.name, exc)
            client.registry.remove(wf)
