"""Masking echoed credentials walks an answer of any depth: a tool's answer is untrusted, and one
nested 700 deep (which JSON decodes) made the masking recurse past Python's limit, so a GET through
``HttpTool`` with an ``Authorization`` header failed with a ``RecursionError`` instead of giving
the answer. Short or common header values are never masked, and a large answer is masked in one
pass. The server is real, on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from podium.tools._echo import header_credentials, mask_echoed
from podium.tools.http import HttpTool

TOKEN = "tok-" + "d" * 24
DEPTH = 700


def _deep(depth: int, leaf: Any) -> Any:
    v = leaf
    for i in range(depth):
        v = {"k": v, "echo": TOKEN} if i % 2 else [v, TOKEN]
    return v


class _Deep(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(_deep(DEPTH, f"seen {self.headers.get('Authorization')}")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def deep() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Deep)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


async def test_a_deeply_nested_answer_is_masked_not_a_recursion_error(deep: str) -> None:
    tool = HttpTool("deep", deep + "/x", method="GET", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        out = await tool.call({})
    finally:
        await tool.aclose()
    assert TOKEN not in json.dumps(out)
    depth, v = 0, out
    while isinstance(v, dict | list):
        v, depth = (v["k"] if isinstance(v, dict) else v[0]), depth + 1
    assert depth == DEPTH and v == "seen ***", (depth, v)


def test_the_masked_copy_keeps_order_types_and_unrelated_values() -> None:
    value = {"b": [1, 2.5, None, True, TOKEN], "a": {TOKEN: "x", "n": "plain"}, "c": f"x{TOKEN}y"}
    out = mask_echoed(value, [TOKEN])
    assert out == {"b": [1, 2.5, None, True, "***"], "a": {"***": "x", "n": "plain"}, "c": "x***y"}
    assert list(out) == ["b", "a", "c"] and value["b"][-1] == TOKEN  # a copy: the answer is not changed
    assert mask_echoed("plain", [TOKEN]) == "plain" and mask_echoed(7, [TOKEN]) == 7


def test_short_or_ordinary_header_values_mask_nothing() -> None:
    creds = header_credentials({"Authorization": "1", "X-Api-Key": "true", "Cookie": "a=b", "X-Team": "engineering-alerts"})
    assert creds == []
    answer = {"ok": True, "n": "1", "flag": "true", "team": "engineering-alerts"}
    assert mask_echoed(answer, creds) == answer
