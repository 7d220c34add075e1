"""The tool conformance suite: every kind of :class:`~podium.tools.Tool` in the repository must pass it.

Each case offers the same three tools (``add``, ``order_status``, ``shout``), each one real:

- ``python`` and ``python_async``: typed functions made tools with ``@tool``, sync and async;
- ``http``: :class:`~podium.tools.HttpTool` against a real HTTP server on 127.0.0.1 started here;
- ``mcp_stdio`` and ``mcp_http``: :class:`~podium.tools.MCPToolset` with the real MCP server of
  ``tests/ai/mcp_server.py``, as a child process over stdio and over streamable HTTP.

What the contract says (``podium/tools/_base.py``, ``podium/models/_errors.py``): a tool has a
``name`` that models accept, a ``description`` and a JSON Schema of its arguments object, told to
models as its ``spec``; ``call(arguments)`` returns the result as JSON data, and fails only with
:class:`~podium.models.ToolError`, ``retryable`` when trying again may help (with ``retry_after``
when the tool says when), final otherwise (invalid arguments, the tool's own refusal).

To run a new kind of tool against it, add a case to ``CASES`` and to the ``case`` fixture.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from conformance_helpers import HttpServer, closed_port, free_port, json_answer, stop, wait_for_port

from podium.models import ToolError, ToolSpec
from podium.tools import HttpTool, Tool, as_tool, tool

MCP_SERVER = str(Path(__file__).parent.parent / "ai" / "mcp_server.py")
ORDERS = {42: {"status": "shipped", "carrier": "DHL"}, 7: {"status": "processing", "carrier": None}}
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what the OpenAI and Anthropic APIs accept

VALID: list[tuple[str, dict[str, Any], Any]] = [
    ("add", {"a": 2, "b": 40}, 42),
    ("add", {"a": -5, "b": 5}, 0),
    ("shout", {"text": "hi there"}, "HI THERE"),
    ("order_status", {"order_id": 42}, {"order_id": 42, "status": "shipped", "carrier": "DHL"}),
    ("order_status", {"order_id": 7}, {"order_id": 7, "status": "processing", "carrier": None}),
]
INVALID: list[tuple[str, dict[str, Any]]] = [
    ("add", {"a": "two", "b": 40}),
    ("add", {"a": 2}),
    ("order_status", {}),
    ("order_status", {"order_id": "forty-two"}),
]


# --- the same three tools, in each kind ----------------------------------------------------------------


def _lookup(order_id: int) -> dict[str, Any]:
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}")  # a message meant for the caller
    return {"order_id": order_id, **ORDERS[order_id]}


def python_tools() -> list[Tool]:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @tool
    def order_status(order_id: int) -> dict:
        """Look up the status of an order by its number.

        :param order_id: the order number
        """
        return _lookup(order_id)

    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    return [add, order_status, shout]


def python_async_tools() -> list[Tool]:
    @tool(name="add")
    async def add_async(a: int, b: int) -> int:
        """Add two integers."""
        await asyncio.sleep(0)
        return a + b

    @tool(name="order_status")
    async def order_status_async(order_id: int) -> dict:
        """Look up the status of an order by its number."""
        return _lookup(order_id)

    @tool(name="shout", description="Upper-case a text.")
    async def shout_async(text: str) -> str:
        return text.upper()

    return [add_async, order_status_async, shout_async]


def _http_answer(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
    url = urlsplit(path)
    if url.path == "/add" and method == "POST":
        try:
            args = json.loads(body)
            a, b = args["a"], args["b"]
            if type(a) is not int or type(b) is not int:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return json_answer(422, {"detail": "a and b must be integers"})
        return json_answer(200, a + b)
    if url.path.startswith("/orders/") and method == "GET":
        raw = url.path.removeprefix("/orders/")
        if not raw.isdigit():
            return json_answer(422, {"detail": f"order_id must be an integer, not {unquote(raw)!r}"})
        order_id = int(raw)
        if order_id not in ORDERS:
            return json_answer(404, {"detail": f"no order {order_id}"})
        return json_answer(200, {"order_id": order_id, **ORDERS[order_id]})
    if url.path.startswith("/shout/") and method == "GET":
        return 200, {"content-type": "text/plain; charset=utf-8"}, unquote(url.path[7:]).upper().encode()
    if url.path == "/busy":
        return json_answer(503, {"detail": "overloaded"}, **{"retry-after": "2"})
    if url.path == "/limited":
        return json_answer(429, {"detail": "slow down"})
    if url.path == "/broken":
        return 200, {"content-type": "application/json"}, b"{not json"
    return json_answer(404, {"detail": f"no route {method} {url.path}"})


def http_tools(base: str) -> list[Tool]:
    return [
        HttpTool(
            "add",
            f"{base}/add",
            description="Add two integers.",
            parameters={
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        ),
        HttpTool(
            "order_status",
            f"{base}/orders/{{order_id}}",
            method="GET",
            description="Look up the status of an order by its number.",
            parameters={
                "type": "object",
                "properties": {"order_id": {"type": "integer"}},
                "required": ["order_id"],
            },
        ),
        # No parameters given: the schema comes from the URL's placeholders.
        HttpTool("shout", f"{base}/shout/{{text}}", method="GET", description="Upper-case a text."),
    ]


@pytest.fixture(scope="module")
def mcp_http_url() -> Iterator[str]:
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'podium[mcp]')")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, MCP_SERVER, "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc, timeout=60)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc)


@dataclass
class Case:
    kind: str
    tools: dict[str, Tool]
    closers: list[Any] = field(default_factory=list)
    server: HttpServer | None = None


CASES = ["python", "python_async", "http", "mcp_stdio", "mcp_http"]


@pytest.fixture(params=CASES)
async def case(request: pytest.FixtureRequest, http_server) -> AsyncIterator[Case]:
    kind = request.param
    closers: list[Any] = []
    server = None
    if kind == "python":
        found = python_tools()
    elif kind == "python_async":
        found = python_async_tools()
    elif kind == "http":
        server = http_server(_http_answer)
        found = http_tools(server.url)
        closers.extend(found)
    else:
        pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'podium[mcp]')")
        from podium.tools import MCPToolset

        if kind == "mcp_stdio":
            toolset = MCPToolset.stdio(sys.executable, MCP_SERVER, timeout=120)
        else:
            toolset = MCPToolset.http(request.getfixturevalue("mcp_http_url"), timeout=120)
        closers.append(toolset)
        found = await asyncio.wait_for(toolset.tools(), timeout=120)
    yield Case(kind, {t.name: t for t in found}, closers, server)
    for c in closers:
        await c.aclose()


# --- what a tool declares ------------------------------------------------------------------------------


async def test_the_three_tools_are_there(case: Case):
    assert set(case.tools) == {"add", "order_status", "shout"}
    for t in case.tools.values():
        assert isinstance(t, Tool) and as_tool(t) is t


async def test_declares_a_valid_json_schema(case: Case):
    for t in case.tools.values():
        assert NAME.match(t.name), t.name
        assert isinstance(t.description, str) and t.description.strip(), t.name
        schema = t.parameters
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(
            schema
        )
        assert schema.get("type") == "object", f"{t.name}: the arguments must be an object"
        assert set(schema.get("required", ())) <= set(schema.get("properties", {})), t.name
        json.dumps(schema)  # it is sent to models as JSON
        assert t.spec == ToolSpec(name=t.name, description=t.description, parameters=schema)
        assert t.name in repr(t)
    assert case.tools["add"].parameters["properties"]["a"]["type"] == "integer"
    assert set(case.tools["add"].parameters["required"]) == {"a", "b"}


async def test_schema_tells_valid_from_invalid_arguments(case: Case):
    """The declared schema describes what the tool takes: it accepts the valid examples, and rejects
    the invalid ones, which the tool refuses too (next test)."""
    for name, args, _ in VALID:
        jsonschema.validate(args, case.tools[name].parameters)
    for name, args in INVALID:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(args, case.tools[name].parameters)


# --- calls ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "expected"), VALID, ids=[f"{v[0]}-{i}" for i, v in enumerate(VALID)]
)
async def test_valid_arguments_give_the_result_as_json_data(case: Case, name, args, expected):
    result = await asyncio.wait_for(case.tools[name].call(dict(args)), timeout=120)
    assert result == expected and type(result) is type(expected)
    assert json.loads(json.dumps(result)) == result  # JSON data: logged and replayed unchanged


@pytest.mark.parametrize(("name", "args"), INVALID, ids=[f"{v[0]}-{i}" for i, v in enumerate(INVALID)])
async def test_invalid_arguments_are_a_final_tool_error(case: Case, name, args):
    with pytest.raises(ToolError) as err:
        await asyncio.wait_for(case.tools[name].call(dict(args)), timeout=120)
    assert not err.value.retryable, "invalid arguments stay invalid: trying again cannot help"
    assert str(err.value).strip()  # says what is wrong


async def test_the_tools_own_refusal_is_a_final_tool_error_with_its_message(case: Case):
    with pytest.raises(ToolError, match="no order 9") as err:
        await asyncio.wait_for(case.tools["order_status"].call({"order_id": 9}), timeout=120)
    assert not err.value.retryable


async def test_arguments_are_not_changed_by_the_call(case: Case):
    args = {"order_id": 42}
    await case.tools["order_status"].call(args)
    assert args == {"order_id": 42}


async def test_concurrent_calls_each_get_their_own_result(case: Case):
    add = case.tools["add"]
    results = await asyncio.wait_for(asyncio.gather(*(add.call({"a": i, "b": 100}) for i in range(8))), 120)
    assert results == [i + 100 for i in range(8)]


# --- failures of the tool's own machinery ----------------------------------------------------------------


def _only(case: Case, *kinds: str) -> None:
    if case.kind not in kinds:
        pytest.skip(f"not a {' or '.join(kinds)} tool")


async def test_a_python_tool_that_raises_gives_a_tool_error(case: Case):
    """Any exception of the function is a ToolError (its cause kept); connection and timeout errors
    are retryable, as everywhere in Podium."""
    _only(case, "python", "python_async")

    @tool
    def crash(kind: str) -> str:
        """Fail in the way asked."""
        raise {"value": ValueError, "connection": ConnectionError, "timeout": TimeoutError}[kind]("boom")

    with pytest.raises(ToolError, match="boom") as err:
        await crash.call({"kind": "value"})
    assert not err.value.retryable and isinstance(err.value.__cause__, ValueError)
    for kind in ("connection", "timeout"):
        with pytest.raises(ToolError, match="boom") as err:
            await crash.call({"kind": kind})
        assert err.value.retryable


async def test_http_failures_are_tool_errors_retryable_when_transient(case: Case):
    _only(case, "http")
    assert case.server is not None
    base = case.server.url
    busy = HttpTool("busy", f"{base}/busy", method="GET")
    limited = HttpTool("limited", f"{base}/limited")
    broken = HttpTool("broken", f"{base}/broken", method="GET")
    gone = HttpTool("gone", f"http://127.0.0.1:{closed_port()}/x", method="GET")
    try:
        with pytest.raises(ToolError, match="503") as err:
            await busy.call({})
        assert err.value.retryable and err.value.retry_after == 2.0
        with pytest.raises(ToolError, match="429") as err:
            await limited.call({})
        assert err.value.retryable
        with pytest.raises(ToolError, match="127.0.0.1") as err:
            await gone.call({})
        assert err.value.retryable
        with pytest.raises(ToolError) as err:
            await broken.call({})
        assert err.value.retryable
        with pytest.raises(ToolError, match="order_id"):
            await case.tools["order_status"].call({"id": 42})  # the URL's placeholder is missing
    finally:
        for t in (busy, limited, broken, gone):
            await t.aclose()


async def test_an_unreachable_mcp_server_is_a_retryable_tool_error(case: Case):
    _only(case, "mcp_stdio", "mcp_http")
    from podium.tools import MCPToolset

    if case.kind == "mcp_http":
        toolset = MCPToolset.http(f"http://127.0.0.1:{closed_port()}/mcp", timeout=30)
    else:
        toolset = MCPToolset.stdio(sys.executable, "-c", "raise SystemExit(3)", timeout=30)
    try:
        with pytest.raises(ToolError, match="cannot connect") as err:
            await asyncio.wait_for(toolset.tools(), timeout=120)
        assert err.value.retryable
    finally:
        await toolset.aclose()
