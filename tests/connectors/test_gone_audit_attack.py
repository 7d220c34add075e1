"""The signed audit log holds no business values (a connector call is audited with a hash of its
arguments): it can never be erased. A retired API version (HTTP 410) was audited as
``connector.gone`` with the request's URL (the path holds the call's arguments: an e-mail address
here) and what the server said (a remote system's answer, which may echo them), and failure alerts
sent that text on. Against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from podium import Client, RunFailed, Workflow
from podium.connectors import open_connector

from .drift_app import SPEC

EMAIL = "alice.private@example.com"


class _Retired(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"error": f"v1 is retired; {self.path} belongs to {EMAIL}"}).encode()
        self.send_response(410)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def test_a_retired_api_is_audited_without_the_values_of_the_call(tmp_path: Path) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Retired)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    crm = open_connector("openapi", spec=SPEC, base_url=f"http://127.0.0.1:{srv.server_address[1]}", allow_private=True)
    wf = Workflow("lookup")

    @wf.step
    async def fetch(ctx: Any, input: Any) -> Any:
        return await ctx.connector("crm").call("getContact", {"id": input})

    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"crm": crm}) as client:
            with pytest.raises(RunFailed, match="HTTP 410 Gone") as failed:
                await client.run(wf, EMAIL)
            gone = [e.details() for e in await client.audit_log() if e.action == "connector.gone"]
            assert len(gone) == 1 and gone[0]["operation"] == "getContact" and gone[0]["status"] == 410
            text = json.dumps(gone)
            assert "alice" not in text and "private" not in text
            assert "update the connector's OpenAPI document" in gone[0]["message"]
            # the step's error (payloads.read) names the route, and still quotes the server
            assert "GET /contacts/{id}" in str(failed.value) and "retrying will not help" in str(failed.value)
    finally:
        await crm.close()
        srv.shutdown()
        srv.server_close()
