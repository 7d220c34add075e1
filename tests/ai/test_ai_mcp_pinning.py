"""An MCP server registered by URL is reached at the address that was checked.

Attack (review): the host of a registered MCP URL was resolved and checked once, then the MCP SDK
resolved the name again when it connected. A DNS answer that changes in between (DNS rebinding: a
public address for the check, an internal one for the connection) sent the workflow's tool calls
to a host nobody checked. HTTP tools pin the checked address; MCP now does too.

Real MCP servers (official SDK, streamable HTTP) on 127.0.0.2 (the "public" host, the only address
the test's address check lets through) and 127.0.0.3 (an internal service) on the same port. The
name ``mcp.podium.test`` resolves to 127.0.0.2 for its first lookup and to 127.0.0.3 after it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import podium
from podium import yaml as podium_yaml
from podium.ai import yaml_steps as ai_steps
from podium.tools import _network
from podium.yaml import _registry

pytest.importorskip("mcp")

NAME = "mcp.podium.test"
SERVER = """
import sys
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

server = MCPServer("where")


@server.tool()
def where() -> str:
    return sys.argv[3]


# only requests that name the host (Host header) are served: the address alone is refused (421)
security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=["mcp.podium.test:*"])
server.run("streamable-http", host=sys.argv[1], port=int(sys.argv[2]), transport_security=security)
"""


def _port_free_on_both() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.2", 0))
                port = a.getsockname()[1]
                b.bind(("127.0.0.3", port))
                return int(port)
            except OSError:
                continue
    pytest.skip("no port free on both 127.0.0.2 and 127.0.0.3")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[int]:
    script = tmp_path / "where_server.py"
    script.write_text(SERVER)
    port = _port_free_on_both()
    procs = [
        subprocess.Popen([sys.executable, str(script), ip, str(port), label], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for ip, label in (("127.0.0.2", "checked"), ("127.0.0.3", "internal"))
    ]
    try:
        for ip in ("127.0.0.2", "127.0.0.3"):
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection((ip, port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"the MCP server on {ip} did not start"
                    time.sleep(0.1)
        yield port
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A resolver that answers the checked address once, then the internal one; an address check
    that lets only 127.0.0.2 through (as if it were public)."""
    answers: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (NAME, NAME.encode()):
            ip = "127.0.0.2" if not answers else "127.0.0.3"
            answers.append(ip)
            return real(ip, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_network, "blocked_reason", lambda ip: None if ip == "127.0.0.2" else "a private or reserved address")
    return answers


async def test_an_mcp_server_is_reached_at_the_address_that_was_checked(
    servers: int, rebinding: list[str], tmp_path: Path
) -> None:
    kinds = _registry.StepTypes([*_registry.builtin_step_types(), *ai_steps.step_types()], entry_points=False)
    flow = "name: call\nsteps:\n  - id: call\n    uses: tool\n    with: {mcp: where, name: where}\n"
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("where", "mcp", {"url": f"http://{NAME}:{servers}/mcp"})
        wf = podium_yaml.load_text(flow, registry=kinds, capabilities=await client.capabilities())
        assert await client.run(wf, {}) == "checked"
    assert rebinding[0] == "127.0.0.2", rebinding


async def test_an_mcp_server_whose_name_turns_internal_before_the_check_is_refused(
    servers: int, rebinding: list[str], tmp_path: Path
) -> None:
    """The check itself still refuses a name that resolves to an internal address, with the fix."""
    rebinding.append("taken")  # the next answer is the internal address
    kinds = _registry.StepTypes([*_registry.builtin_step_types(), *ai_steps.step_types()], entry_points=False)
    flow = "name: call\nsteps:\n  - id: call\n    uses: tool\n    with: {mcp: where, name: where}\n"
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("where", "mcp", {"url": f"http://{NAME}:{servers}/mcp"})
        wf = podium_yaml.load_text(flow, registry=kinds, capabilities=await client.capabilities())
        with pytest.raises(podium.RunFailed, match=r"127\.0\.0\.3.*--allow-private") as failed:
            await client.run(wf, {})
    assert "Traceback" not in str(failed.value) and "podium tools add where" in str(failed.value)
