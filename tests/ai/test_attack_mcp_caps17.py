"""An MCP server over streamable HTTP read whole (seventeenth session's caps).

Attack: an MCP server answering a tool call as JSON (``json_response``) was read whole by the SDK
(``response.aread()``), whatever its size; only event streams had a bound (the SDK's 1 MiB per
event). ``MCPToolset(max_response_bytes=N)`` now bounds both: a JSON answer is cut off past N bytes
with an error naming the setting, and each event of a stream is at most N bytes.

Real MCP servers (official SDK, streamable HTTP) on 127.0.0.1, one answering JSON, one events.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.models import ToolError
from podium.tools.mcp import MCPToolset

pytest.importorskip("mcp")

SERVER = """
import sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("big")


@server.tool()
def big(n: int) -> str:
    return "x" * n


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]), json_response=sys.argv[2] == "json")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["json", "events"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    script = tmp_path / "big_server.py"
    script.write_text(SERVER)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), request.param], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_attack_an_mcp_servers_answer_is_read_whole(server: str) -> None:
    tools = MCPToolset.http(server, max_response_bytes=64 * 1024, timeout=20)
    assert tools.max_response_bytes == 64 * 1024
    try:
        assert await tools.call_tool("big", {"n": 1000}) == "x" * 1000
        with pytest.raises(ToolError) as err:
            await tools.call_tool("big", {"n": 200_000})
        message = str(err.value)
        assert "'big'" in message and "65,536 bytes" in message and "max_response_bytes" in message, message[:500]
        assert "xxxx" not in message  # a model reads tool errors: nothing of the answer
        assert await tools.call_tool("big", {"n": 10}) == "x" * 10  # the session goes on
    finally:
        await tools.aclose()


def test_an_mcp_toolsets_max_response_bytes_is_checked() -> None:
    from podium import ConfigError

    with pytest.raises(ConfigError, match="max_response_bytes is a whole number"):
        MCPToolset.http("http://127.0.0.1:1/mcp", max_response_bytes=0)
