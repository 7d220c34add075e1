"""Tools from a real MCP server process (official ``mcp`` SDK 2.x), over stdio and streamable HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ai_helpers import free_port, wait_for_port

import podium
from podium import StepContext, ai
from podium.models import ToolCall, ToolError
from podium.models.testing import ScriptedModel

pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'podium[mcp]')")
from podium.tools import MCPToolset

SERVER = str(Path(__file__).with_name("mcp_server.py"))


@pytest.fixture(scope="module")
def http_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc, timeout=30)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["stdio", "http"])
async def toolset(request):
    if request.param == "stdio":
        ts = MCPToolset.stdio(sys.executable, SERVER)
    else:
        ts = MCPToolset.http(request.getfixturevalue("http_server"))
    yield ts
    await ts.aclose()


async def test_lists_and_calls_tools(toolset):
    tools = {t.name: t for t in await toolset.tools()}
    assert set(tools) == {"add", "order_status", "shout"}
    schema = tools["add"].parameters
    assert schema["properties"]["a"]["type"] == "integer" and set(schema["required"]) == {"a", "b"}
    assert tools["order_status"].description.startswith("Look up the status")
    assert await tools["add"].call({"a": 2, "b": 40}) == 42
    assert await tools["shout"].call({"text": "hi"}) == "HI"
    assert (await tools["order_status"].call({"order_id": 42}))["carrier"] == "DHL"
    with pytest.raises(ToolError, match="no order 9"):
        await tools["order_status"].call({"order_id": 9})


async def test_agent_uses_mcp_tools_durably(toolset, tmp_path):
    model = ScriptedModel(
        [
            (
                lambda r: r.messages[-1].role == "user",
                ToolCall(id="c1", name="order_status", arguments={"order_id": 42}),
            ),
            (None, "Your order 42 has shipped with DHL."),
        ]
    )
    agent = ai.Agent(model=model, instructions="Help with orders.", tools=[toolset], name="support")
    wf = podium.Workflow("mcp-agent")

    @wf.step
    async def answer(ctx: StepContext, input):
        result = await agent.run(ctx, input)
        return [result.output, result.stop_reason, len(result.tool_calls)]

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        run_id = (await client.start(wf, "where is order 42?")).id
        assert await client.result(run_id) == ["Your order 42 has shipped with DHL.", "done", 1]
        h = await client.history(run_id)
    logged = h.step("answer/support.order_status").output
    assert logged.ok and logged.value["status"] == "shipped"
    tool_msg = model.requests[1].messages[-1]
    assert tool_msg.role == "tool" and '"carrier": "DHL"' in tool_msg.content
    kinds = ai.usage_of(h).by_kind()
    assert kinds["model"].calls == 2 and kinds["tool"].calls == 1


async def test_prefix_and_include(http_server):
    ts = MCPToolset.http(http_server, prefix="shop_", include=["add"])
    try:
        tools = await ts.tools()
        assert [t.name for t in tools] == ["shop_add"]
        assert await ai.call_tool(None, tools[0], {"a": 1, "b": 2}) == 3
    finally:
        await ts.aclose()


async def test_unreachable_server_is_a_retryable_tool_error():
    ts = MCPToolset.http(f"http://127.0.0.1:{free_port()}/mcp", timeout=5)
    with pytest.raises(ToolError, match="cannot connect") as err:
        await ts.tools()
    assert err.value.retryable
    await ts.aclose()
