"""Tools from any MCP server, through the official ``mcp`` SDK (2.x), over stdio or streamable HTTP.

>>> files = MCPToolset.stdio("python", "-m", "my_mcp_server")     # a server process we start
>>> search = MCPToolset.http("http://127.0.0.1:8000/mcp")          # a server already running
>>> agent = Agent(model, tools=[files, search])                    # tools are listed when first needed

The connection is opened on first use and kept by a background task of the running event loop (the
SDK's task groups must be entered and left by one task); :meth:`MCPToolset.aclose` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

from ..errors import CapabilityDenied, install_hint
from ..models._errors import ModelNotAvailable, ToolError
from ._base import Tool, Toolset
from ._reading import MAX_RESPONSE_BYTES, byte_limit


def _mcp() -> Any:
    try:
        import mcp
    except ImportError:
        raise ModelNotAvailable(f"MCP tools need the MCP SDK: {install_hint('mcp')}") from None
    return mcp


class MCPTool(Tool):
    """One tool of an MCP server."""

    def __init__(self, toolset: MCPToolset, remote_name: str, description: str, parameters: dict[str, Any]):
        self.toolset = toolset
        self.remote_name = remote_name
        self.name = toolset.prefix + remote_name
        self.description = description
        self.parameters = parameters or {"type": "object", "properties": {}}

    async def call(self, arguments: dict[str, Any]) -> Any:
        return await self.toolset.call_tool(self.remote_name, arguments)


class MCPToolset(Toolset):
    """The tools of one MCP server.

    :param server: a URL (streamable HTTP), a command list (stdio: ``["python", "-m", "srv"]``), an
        ``mcp.StdioServerParameters``, or an in-process ``MCPServer`` (for tests).
    :param prefix: prepended to every tool name (two servers may both have a ``search``).
    :param include: only these tools (by their server-side name).
    :param timeout: seconds for one tool call.
    :param allow_private: for a URL: ``False`` resolves the host when connecting, refuses loopback,
        private and link-local addresses, and connects to the address it checked (no second lookup
        by the SDK: a DNS answer that changes in between is not followed). Servers registered for
        workflow files get ``False`` unless their entry allows private addresses.
    :param registered_as: the capability registry's name for the server, for messages.
    :param max_response_bytes: for a URL: an answer that is no event stream (a JSON answer) is cut
        off past this many bytes (decoded), and each event of an event stream is at most this many
        (the SDK's ``max_sse_event_size``); 10 MiB by default.
    """

    def __init__(
        self,
        server: Any,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        prefix: str = "",
        include: Sequence[str] | None = None,
        timeout: float | None = 60.0,
        allow_private: bool = True,
        registered_as: str | None = None,
        max_response_bytes: int | str = MAX_RESPONSE_BYTES,
    ) -> None:
        self.server = server
        self.max_response_bytes = byte_limit(max_response_bytes, f"MCP server {registered_as or server!r}")
        self.allow_private = allow_private
        self.registered_as = registered_as
        self.env = env
        self.cwd = cwd
        self.prefix = prefix
        self.include = set(include) if include is not None else None
        self.timeout = timeout
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def stdio(cls, command: str, *args: str, **options: Any) -> MCPToolset:
        """A server process started as ``command args...``, spoken to over its stdin/stdout."""
        return cls([command, *args], **options)

    @classmethod
    def http(cls, url: str, **options: Any) -> MCPToolset:
        """A running server's streamable HTTP endpoint (``http://127.0.0.1:8000/mcp``)."""
        return cls(url, **options)

    def _target(self) -> Any:
        mcp = _mcp()
        if isinstance(self.server, list | tuple):
            return mcp.StdioServerParameters(
                command=self.server[0], args=list(self.server[1:]), env=self.env, cwd=self.cwd
            )
        return self.server

    async def _http(self, stack: contextlib.AsyncExitStack) -> Any:
        """The SDK's streamable HTTP transport for :attr:`server`, over an HTTP client that reads
        answers up to ``max_response_bytes`` and, unless ``allow_private``, connects to the address
        checked now."""
        import httpx2  # the MCP SDK's HTTP client library
        from mcp.client.streamable_http import streamable_http_client

        from ._network import pinned_transport, resolve_checked
        from ._reading import EnvProxies, streamed_transport

        inner: Any
        if self.allow_private:  # nothing checked: the environment's proxy, as the SDK's own client
            inner = EnvProxies(httpx2, httpx2.AsyncHTTPTransport())
        else:
            name = self.registered_as
            pinned = await resolve_checked(
                self.server,
                allow_private=False,
                what=f"MCP server {name or self.server!r}",
                fix=f"podium tools add {name or 'NAME'} --mcp-url {self.server} --allow-private",
            )
            inner = pinned_transport(httpx2, pinned)
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                transport=streamed_transport(httpx2, inner, self.max_response_bytes),
                timeout=httpx2.Timeout(30.0, read=300.0),  # the SDK's own: a response stream stays open
                trust_env=False,
            )
        )
        return streamable_http_client(self.server, http_client=http, max_sse_event_size=self.max_response_bytes)

    async def _connected(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (another asyncio.run): connect again
            self._task = None
            self._lock = asyncio.Lock()
            self._loop = loop
        assert self._lock is not None
        async with self._lock:
            if self._task is None or self._task.done():
                self._stop = asyncio.Event()
                self._ready = loop.create_future()
                self._task = loop.create_task(self._hold(self._target(), self._stop, self._ready))
            ready = self._ready
        assert ready is not None
        await asyncio.shield(ready)
        return self._client

    async def _hold(self, target: Any, stop: asyncio.Event, ready: asyncio.Future[None]) -> None:
        mcp = _mcp()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if isinstance(target, str):
                    target = await self._http(stack)
                client = await stack.enter_async_context(mcp.Client(target, read_timeout_seconds=self.timeout))
                self._client = client
                ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(
                    ToolError(str(exc), retryable=False)
                    if isinstance(exc, CapabilityDenied)
                    else ToolError(f"cannot connect to the MCP server {self.server!r}: {exc!r}", retryable=True)
                )
            if not isinstance(exc, Exception):
                raise
        finally:
            self._client = None

    async def tools(self) -> list[Tool]:
        client = await self._connected()
        out: list[Tool] = []
        cursor = None
        while True:
            listing = await client.list_tools(cursor=cursor)
            for t in listing.tools:
                if self.include is None or t.name in self.include:
                    out.append(MCPTool(self, t.name, t.description or "", dict(t.input_schema or {})))
            cursor = listing.next_cursor
            if not cursor:
                return out

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool by its server-side name; returns its structured content, or its text."""
        client = await self._connected()
        try:
            result = await client.call_tool(name, arguments or {})
        except Exception as exc:
            raise ToolError(f"MCP tool {name!r} failed: {exc}", retryable=isinstance(exc, OSError)) from exc
        texts = []
        for block in result.content or ():
            text = getattr(block, "text", None)
            texts.append(text if text is not None else f"[{getattr(block, 'type', 'content')}]")
        if result.is_error:
            raise ToolError(f"MCP tool {name!r} returned an error: {' '.join(texts)[:500]}")
        if result.structured_content is not None:
            content = result.structured_content
            # FastMCP-style servers wrap plain return values as {"result": value}.
            if isinstance(content, dict) and list(content) == ["result"]:
                return content["result"]
            return content
        if len(texts) == 1 and texts[0][:1] in ("{", "["):
            try:  # a dict or list returned without an output schema comes as its JSON text
                return json.loads(texts[0])
            except ValueError:
                pass
        return "\n".join(texts)

    async def aclose(self) -> None:
        task, stop = self._task, self._stop
        self._task = None
        if task is not None and stop is not None and not task.done():
            stop.set()
            with contextlib.suppress(Exception):
                await task
