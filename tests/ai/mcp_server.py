"""A real MCP server for the tests (official SDK, ``MCPServer``): ``python mcp_server.py [stdio|http PORT]``."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("podium-test-tools")
ORDERS = {42: {"status": "shipped", "carrier": "DHL"}, 7: {"status": "processing", "carrier": None}}


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def order_status(order_id: int) -> dict:
    """Look up the status of an order by its number."""
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}")  # a message meant for the caller
    return {"order_id": order_id, **ORDERS[order_id]}


@server.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
