"""The webhook connector and ``HttpTool`` mask the credentials they sent when an answer echoes them
(a debugging endpoint returning the headers and path it got), as the openapi connector does: the
answer is a step's or tool's output, which is stored, sent as events and shown. What the system
made itself (a key nobody sent) and ordinary headers are kept as they came. The server is real,
on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from podium.connectors.webhook import WebhookConnector
from podium.secret import remember
from podium.tools.http import HttpTool

TOKEN = "tok-" + "t" * 24
HOOK_PATH = "/services/T0123/B0456/" + "h" * 24
TENANT = "tenant-" + "q" * 20
ISSUED = "ik-issued-" + "z" * 20


class _Echo(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "headers": dict(self.headers.items()),
                "path": self.path,
                "seen": f"called {self.path} with {self.headers.get('Authorization')}",
                "issued_key": ISSUED,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


async def test_attack_a_webhook_answer_echoing_its_url_and_token_is_masked(echo: str) -> None:
    conn = WebhookConnector(
        echo + HOOK_PATH, headers={"Authorization": f"Bearer {TOKEN}", "X-Team": "engineering-alerts"}, allow_private=True
    )
    try:
        out = await conn.call("send", {"body": {"text": "hello"}})
    finally:
        await conn.close()
    text = json.dumps(out)
    assert TOKEN not in text and HOOK_PATH not in text and HOOK_PATH.rsplit("/", 1)[1] not in text, text
    answer = out["response"]
    assert answer["path"] == "***" and "***" in answer["seen"]
    assert answer["headers"]["X-Team"] == "engineering-alerts"  # not a credential: kept
    assert answer["issued_key"] == ISSUED  # data the system made: kept


async def test_attack_an_http_tool_answer_echoing_its_credentials_is_masked(echo: str) -> None:
    remember(TENANT)  # read from the secret store (secret:NAME), as yaml_steps does for a tool's headers
    tool = HttpTool(
        "crm",
        echo + "/contacts/{cid}",
        method="GET",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Tenant": TENANT, "X-Team": "engineering-alerts"},
    )
    try:
        out = await tool.call({"cid": "42"})
    finally:
        await tool.aclose()
    text = json.dumps(out)
    assert TOKEN not in text and TENANT not in text, text
    assert out["headers"]["X-Tenant"] == "***" and "***" in out["headers"]["Authorization"]
    assert out["headers"]["X-Team"] == "engineering-alerts"
    assert out["path"] == "/contacts/42"  # the URL of an HTTP tool is not a credential
    assert out["issued_key"] == ISSUED
