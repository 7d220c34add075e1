"""Podium as an MCP server (official ``mcp`` SDK 2.x), over stdio and streamable HTTP.

>>> async with podium.Client("sqlite:///podium.db", token=token) as client:
...     await PodiumMCP(client).run_stdio()              # what `podium mcp` does

The tools themselves are in :mod:`podium.server.mcp_tools`. Who calls them:

- **stdio**: the client's own principal (``$PODIUM_TOKEN``, or the local user when the store has
  no users), like every CLI command.
- **streamable HTTP**: the caller of each HTTP request, from ``Authorization: Bearer pod_...``
  (checked on every request; a missing or bad token answers 401). An MCP session stays bound to
  the user who opened it.

``podium serve`` mounts the HTTP endpoint at ``/mcp`` (:func:`add_endpoint`, :func:`sessions`);
``podium mcp --transport http`` serves it alone (:func:`http_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from .. import PodiumError, __version__
from ..errors import AuthError, PermissionDenied, install_hint
from ..governance.identity import Principal
from .auth import GATED, _any_host, principal_for
from .errors import body
from .mcp_tools import PodiumTools, ToolFailure

log = logging.getLogger("podium.server.mcp")

#: Where the HTTP endpoint leaves the caller in the ASGI scope, for the tool handlers.
PRINCIPAL_KEY = "podium.principal"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
INSTRUCTIONS = (
    "Podium runs durable workflows. list_workflows shows what can run; each workflow has a run_<name> "
    "tool (or use start_run). A run may stop at a human approval: list_approvals shows the inbox and "
    "decide_approval approves or rejects. Follow a run with get_run."
)


def sdk() -> Any:
    try:
        import mcp.server.lowlevel
        import mcp.server.stdio
        import mcp.server.streamable_http_manager
        import mcp.server.transport_security
    except ImportError:
        raise PodiumError(f"the MCP server needs the MCP SDK: {install_hint('mcp')}") from None
    return mcp


class PodiumMCP:
    """An MCP server over one open engine client.

    :param client: the engine client (open it before serving).
    :param principal: who stdio callers act as (default: the client's own principal).
    """

    def __init__(self, client: Any, *, principal: Principal | None = None) -> None:
        mcp = sdk()
        self.client = client
        self.principal = principal
        self.tools = PodiumTools(client)
        self._undeployable: set[tuple[str, str]] = set()  # deployed versions that did not load (logged once)
        self.server = mcp.server.lowlevel.Server(
            "podium",
            version=__version__,
            title="Podium",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self.tools.input_schema,
        )

    def _caller(self, ctx: Any) -> Principal:
        request = getattr(ctx, "request", None)
        if request is None:  # stdio: the process's own identity
            return self.principal or self.client.principal
        who: Principal | None = request.scope.get(PRINCIPAL_KEY)
        if who is None:  # an HTTP request that did not come through HTTPEndpoint
            raise AuthError("this MCP request was not authenticated; send 'Authorization: Bearer pod_...'")
        return who

    async def _list_tools(self, ctx: Any, params: Any) -> Any:
        import mcp_types as types

        from . import deployed

        who = self._caller(ctx)
        try:  # workflows deployed since the session started get their tools too, for who may read them
            if who.can("workflows.read"):  # only then is deployed code loaded (as GET /api/workflows)
                await deployed.refresh(self.client, self._undeployable)
        except Exception:  # the store failed: list what is served
            log.exception("reading the workflows deployed into the store failed")
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=spec.name,
                    title=spec.title or None,
                    description=spec.description,
                    input_schema=spec.input_schema,
                    annotations=types.ToolAnnotations(
                        title=spec.title or None,
                        read_only_hint=spec.read_only,
                        destructive_hint=False,
                        open_world_hint=False,
                    ),
                )
                for spec in self.tools.specs(who)
            ]
        )

    async def _call_tool(self, ctx: Any, params: Any) -> Any:
        import mcp_types as types

        try:
            result = await self.tools.call(self._caller(ctx), params.name, params.arguments)
        except ToolFailure as exc:
            return _error(types, str(exc))
        except PodiumError as exc:  # AuthError from _caller
            return _error(types, f"unauthorized: {exc}")
        except Exception as exc:  # a bug, not the caller's mistake: logged here, one line for them
            log.exception("MCP tool %s failed", params.name)
            return _error(
                types,
                f"internal: the tool {params.name} failed unexpectedly ({type(exc).__name__}); see the server log",
            )
        text = json.dumps(result, ensure_ascii=False, default=str, indent=1)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=result
        )

    async def run_stdio(self) -> None:
        """Serve one MCP client over this process's stdin and stdout until it disconnects."""
        mcp = sdk()
        async with mcp.server.stdio.stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    def session_manager(self, *, host: str | None = None, any_host: bool = False) -> Any:
        """The SDK's streamable HTTP session manager; enter ``manager.run()`` for its lifetime.

        With a loopback ``host``, requests must name a loopback Host and Origin (DNS rebinding
        protection, as the SDK does for local servers), unless ``any_host``
        (``--allow-remote-local-mode``: :func:`podium.server.auth.refuse_other_sites` still refuses
        other sites' pages)."""
        mcp = sdk()
        security = None
        if host in LOOPBACK and not any_host:
            security = mcp.server.transport_security.TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        return mcp.server.streamable_http_manager.StreamableHTTPSessionManager(
            app=self.server, security_settings=security
        )


def _error(types: Any, message: str) -> Any:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


class HTTPEndpoint:
    """The streamable HTTP endpoint as an ASGI app: authenticates each request, then hands it to
    the session manager. A missing or bad token answers 401 with Podium's JSON error."""

    def __init__(self, client: Any, manager: Any, *, any_host: bool = False) -> None:
        self.client = client
        self.manager = manager
        self.any_host = any_host

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.datastructures import Headers
        from starlette.responses import JSONResponse

        try:
            headers = Headers(scope=scope)
            app = scope.get("app")  # inside podium serve: its --allow-remote-local-mode; alone: ours
            any_host = self.any_host or (app is not None and _any_host(app))
            gated = scope.get(GATED)  # a request with a body was checked before it was read (limits.py)
            if gated is not None and gated[0] == headers.get("authorization"):
                who = gated[1]
            else:
                who = await principal_for(self.client, headers.get("authorization"), headers=headers, any_host=any_host)
        except PermissionDenied as exc:  # local mode, from another site's page
            await JSONResponse(body("permission_denied", str(exc)), 403)(scope, receive, send)
            return
        except AuthError as exc:
            response = JSONResponse(
                body("unauthorized", str(exc)), 401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        except PodiumError as exc:
            await JSONResponse(body("store_unavailable", str(exc)), 503)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = who
        scope["user"] = _session_owner(who)
        await self.manager.handle_request(scope, receive, send)


def _session_owner(who: Principal) -> Any:
    """The SDK binds each MCP session to the identity that opened it: another user's request for
    that session answers 404, as if it did not exist."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    return AuthenticatedUser(
        AccessToken(
            token=f"podium:{who.name}", client_id=who.name, scopes=sorted(who.permissions), subject=who.name
        )
    )


# -- inside `podium serve` (app.py) ------------------------------------------------------------


def add_endpoint(app: Any, path: str = "/mcp") -> None:
    """Route ``path`` of a Podium FastAPI app to its MCP endpoint (live while :func:`sessions` runs)."""
    from starlette.routing import Route

    app.router.routes.append(Route(path, endpoint=_AppEndpoint()))


class _AppEndpoint:
    """An ASGI app (every HTTP method) that hands requests to the running app's :class:`HTTPEndpoint`."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        state = scope["app"].state
        handler = getattr(state, "mcp_endpoint", None)
        if handler is None:
            from starlette.responses import JSONResponse

            message = getattr(state, "mcp_problem", None) or "the MCP endpoint is not running"
            await JSONResponse(body("dependency_missing", message), 503)(scope, receive, send)
            return
        await handler(scope, receive, send)


@contextlib.asynccontextmanager
async def sessions(app: Any) -> AsyncIterator[None]:
    """Run the app's MCP sessions for the app's lifetime: enter it inside the app's lifespan, once
    ``app.state.client`` is open. Without the MCP SDK, ``/mcp`` answers 503 saying what to install."""
    try:
        mcp = PodiumMCP(app.state.client)
    except PodiumError as exc:
        app.state.mcp_problem = str(exc)
        yield
        return
    manager = mcp.session_manager()
    async with manager.run():
        app.state.mcp_endpoint = HTTPEndpoint(app.state.client, manager)
        try:
            yield
        finally:
            app.state.mcp_endpoint = None


# -- `podium mcp` ---------------------------------------------------------------------------


async def serve_stdio(client: Any) -> None:
    """Open ``client``, serve MCP over stdio until the MCP client disconnects, then close it.

    While serving, the client is also a worker (unless it was made with ``execute=False``): it
    drives the runs it starts, and the runs an approval decision wakes."""
    async with client, _working(client):
        await PodiumMCP(client).run_stdio()


def http_app(client: Any, *, host: str = "127.0.0.1", path: str = "/mcp", any_host: bool = False) -> Any:
    """A Starlette app serving only the MCP endpoint at ``path`` (``podium mcp --transport http``);
    ``any_host``: in local mode, answer requests for any host name (``--allow-remote-local-mode``)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    mcp = PodiumMCP(client)
    manager = mcp.session_manager(host=host, any_host=any_host)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with client, _working(client), manager.run():
            yield

    return Starlette(routes=[Route(path, endpoint=HTTPEndpoint(client, manager, any_host=any_host))], lifespan=lifespan)


@contextlib.asynccontextmanager
async def _working(client: Any) -> AsyncIterator[None]:
    stop = asyncio.Event()
    # Claiming others' runs needs runs.resume (as `podium worker`); without it the caller's own runs still run.
    task = asyncio.create_task(client.work(stop)) if client.execute and client.principal.can("runs.resume") else None
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
