"""Answer caps for tools, total deadlines, and the caps' review (seventeenth session), as attacks
against a real local HTTP server.

* ``HttpTool`` read a whole answer: an endless body filled the process's memory, for every run.
* A body dripped one byte at a time stayed under every per-read timeout and was never given up.
* Two stacked gzip codings (590 bytes on the wire) decompressed to 256 MiB in one decoder call,
  before the cap counted a byte; so did a deflate body, one 64 KiB piece at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.server
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from podium import ConfigError, ConnectorError
from podium.connectors import open_connector
from podium.connectors.webhook import (
    WebhookConnector,  # the shipped one (the docs' example replaces the kind)
)
from podium.models import ToolError
from podium.tools import HttpTool
from tests.local_http import serving

MIB = 1024 * 1024


def _stacked_bomb() -> bytes:
    """gzip(gzip(256 MiB of zeros)): 590 bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    inner = b"".join([c.compress(zeros) for _ in range(256)] + [c.flush()])
    return gzip.compress(inner, 9)


def _deflate_bomb(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate, no zlib header
    return c.compress(bytes(size)) + c.flush()


STACKED = _stacked_bomb()
DEFLATE = _deflate_bomb(64 * MIB)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs
    ports: list[int] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, data: bytes, status: int = 200, encodings: tuple[str, ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for coding in encodings:
            self.send_header("Content-Encoding", coding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunked(self, status: int = 200) -> None:
        """HTTP/1.1 chunks without end (until the client hangs up)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"[" + b"0," * 16_384
        with contextlib.suppress(OSError):
            for _ in range(200_000):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def _drip(self) -> None:
        """Headers at once, then one byte every 50 ms: every read is quick, the answer never ends."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.write(b"[")
            for _ in range(1200):  # a minute at most
                self.wfile.write(b"0,")
                self.wfile.flush()
                time.sleep(0.05)

    def do_GET(self) -> None:
        _Handler.ports.append(self.client_address[1])
        url = urlsplit(self.path)
        if url.path == "/chunked":
            self._chunked()
        elif url.path == "/stacked":
            self._send(STACKED, encodings=("gzip", "gzip"))
        elif url.path == "/deflate":
            self._send(DEFLATE, encodings=("deflate",))
        elif url.path == "/drip":
            self._drip()
        elif url.path == "/unknown":  # a coding not decoded: handed on as it came
            self._send(b'"raw"', encodings=("br",))
        elif url.path == "/zipped":
            self._send(gzip.compress(json.dumps("z" * 1000).encode()), encodings=("gzip",))
        elif url.path == "/busy":
            self._send(b"secret-body " * 100_000, status=503)
        elif url.path == "/moved":  # a redirect with a page of its own (not followed)
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            body = b"<html>moved " + b"m" * int(parse_qs(url.query).get("n", ["10"])[0]) + b"</html>"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif url.path == "/gone":  # 8 MiB of one-letter words: split whole, 4 million strings
            self._send(b"a " * (4 * MIB), status=410)
        else:
            size = int(parse_qs(url.query).get("n", ["10"])[0])
            self._send(json.dumps("x" * size).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/drip"):
            self._drip()
        elif self.path.startswith("/alert"):  # an alert receiver failing with an endless answer
            self._chunked(status=500)
        else:
            self._chunked()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def system() -> Iterator[str]:
    _Handler.ports = []
    with serving(_Handler) as url:
        yield url


async def _bounded(call: Any) -> Any:
    """The call, or a failure if it reads on and on (before the fix it did not return)."""
    return await asyncio.wait_for(call, 30)


# -- HttpTool: how much it reads ------------------------------------------------------------------------------


async def test_attack_an_http_tool_reads_an_endless_answer_whole(system: str) -> None:
    tool = HttpTool("orders", system + "/chunked", method="GET", max_response_bytes=64 * 1024)
    try:
        with pytest.raises(ToolError) as err:
            await _bounded(tool.call({}))
        assert not err.value.retryable
        message = str(err.value)
        for part in ("'orders'", "65,536 bytes", "max_response_bytes", "--max-response-bytes", "HttpTool("):
            assert part in message, message
        assert "0,0," not in message  # a model reads tool errors: nothing of the body
    finally:
        await tool.aclose()
    write = HttpTool("create", system + "/things", method="POST", max_response_bytes=64 * 1024)
    try:
        with pytest.raises(ToolError) as err:
            await _bounded(write.call({"a": 1}))
        assert not err.value.retryable and "applied it" in str(err.value) and "not sent again" in str(err.value)
    finally:
        await write.aclose()


async def test_an_http_tool_reads_answers_under_its_cap(system: str) -> None:
    tool = HttpTool("sized", system + "/sized", method="GET")
    assert tool.max_response_bytes == 10 * MIB and tool.deadline == 120.0  # the defaults
    try:
        assert await tool.call({"n": "2000"}) == "x" * 2000
        zipped = HttpTool("zipped", system + "/zipped", method="GET", max_response_bytes=2000)
        assert await zipped.call({}) == "z" * 1000  # decoded, and counted decoded
        await zipped.aclose()
    finally:
        await tool.aclose()


async def test_an_http_tools_error_answer_is_cut_and_quoted_in_part(system: str) -> None:
    tool = HttpTool("busy", system + "/busy", method="GET", max_response_bytes=4096)
    try:
        with pytest.raises(ToolError) as err:
            await _bounded(tool.call({}))
        assert err.value.retryable and "HTTP 503" in str(err.value) and len(str(err.value)) < 600
    finally:
        await tool.aclose()


@pytest.mark.parametrize("setting", [{"max_response_bytes": 0}, {"max_response_bytes": "big"}, {"deadline": 0}, {"deadline": "soon"}, {"deadline": float("inf")}])
def test_an_http_tools_settings_are_checked(setting: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=f"http tool 'x': {next(iter(setting))} is a"):
        HttpTool("x", "https://api.example.com/x", **setting)


def test_an_http_tool_registered_takes_both_settings() -> None:
    from podium.governance.capabilities import make_capability

    url = "https://api.example.com/x"
    target = make_capability("x", "http", {"url": url, "max_response_bytes": "4096", "deadline": "30"}).target
    assert target["max_response_bytes"] == 4096 and target["deadline"] == 30.0
    with pytest.raises(ConfigError, match="max_response_bytes"):
        make_capability("x", "http", {"url": url, "max_response_bytes": -1})


# -- a total deadline --------------------------------------------------------------------------------------


SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Slow", "version": "1"},
    "paths": {
        "/drip": {
            "get": {"operationId": "drip", "responses": {"200": {}}},
            "post": {
                "operationId": "dripWrite",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {}},
            },
        },
        "/sized": {"get": {"operationId": "sized", "parameters": [{"name": "n", "in": "query"}], "responses": {"200": {}}}},
        "/stacked": {"get": {"operationId": "stacked", "responses": {"200": {}}}},
        "/deflate": {"get": {"operationId": "deflate", "responses": {"200": {}}}},
        "/unknown": {"get": {"operationId": "unknown", "responses": {"200": {}}}},
        "/gone": {"get": {"operationId": "gone", "responses": {"200": {}}}},
        "/moved": {"get": {"operationId": "moved", "parameters": [{"name": "n", "in": "query"}], "responses": {"200": {}}}},
    },
}


async def test_attack_an_api_that_drips_its_answer_is_never_given_up(system: str) -> None:
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, timeout=5, deadline="0.5")
    assert api.deadline == 0.5
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(api.call("drip", {}))
        assert err.value.retryable  # a read: asked again
        message = str(err.value)
        for part in ("'Slow'", "drip", "0.5 s", "deadline", "--set deadline="):
            assert part in message, message
        with pytest.raises(ConnectorError) as err:
            await _bounded(api.call("dripWrite", {"body": {}}))
        assert not err.value.retryable and "applied it" in str(err.value) and "not made again" in str(err.value)
        assert await api.call("sized", {"n": "5"}) == "x" * 5  # the pool goes on after a request given up
    finally:
        await api.close()
    assert open_connector("openapi", spec=SPEC, base_url=system, timeout=60).deadline == 240.0  # 4 x the timeout
    assert WebhookConnector(url="https://hooks.example.com/x").deadline == 120.0  # at least 120 s


async def test_attack_a_webhook_receiver_that_drips_its_answer(system: str) -> None:
    hook = WebhookConnector(url=system + "/drip", allow_private=True, deadline=0.5)
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(hook.call("post", {"text": "hi"}))
        assert not err.value.retryable
        message = str(err.value)
        assert "0.5 s" in message and "took the message (it had begun answering HTTP 200)" in message, message
        assert "deadline" in message and "/drip" not in message
    finally:
        await hook.close()


async def test_attack_an_http_tool_that_drips_its_answer(system: str) -> None:
    read = HttpTool("slow", system + "/drip", method="GET", deadline=0.5)
    write = HttpTool("slow_write", system + "/drip", method="POST", deadline=0.5)
    try:
        with pytest.raises(ToolError) as err:
            await _bounded(read.call({}))
        assert err.value.retryable and "0.5 s" in str(err.value) and "--deadline" in str(err.value)
        with pytest.raises(ToolError) as err:
            await _bounded(write.call({}))
        assert not err.value.retryable and "applied it" in str(err.value)
    finally:
        await read.aclose()
        await write.aclose()


@pytest.mark.parametrize("value", [0, -1, "soon", float("nan"), True])
def test_a_connectors_deadline_is_a_number_of_seconds(value: Any) -> None:
    with pytest.raises(ConfigError, match="deadline is a number of seconds"):
        WebhookConnector(url="https://hooks.example.com/x", deadline=value)


# -- the caps' review -------------------------------------------------------------------------------------


async def _peak(call: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        try:
            result: Any = await _bounded(call)
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("operation", "limit", "said", "most"),
    [
        ("stacked", MIB, "1,048,576 bytes", 16 * MIB),  # 590 bytes on the wire
        ("deflate", MIB, "1,048,576 bytes", 16 * MIB),  # 64 MiB of zeros
        ("gone", 10 * MIB, "HTTP 410 Gone", 24 * MIB),  # its body (cut at 10 MiB) was split whole into 4 million words
    ],
)
async def test_attack_an_answer_held_far_past_the_cap(system: str, operation: str, limit: int, said: str, most: int) -> None:
    """Two stacked gzip codings decoded in one call, before the cap counted a byte; a deflate body
    64 KiB at a time; an error body split into words whole."""
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, max_response_bytes=limit)
    try:
        result, peak = await _peak(api.call(operation, {}))
        assert isinstance(result, ConnectorError) and said in str(result), result
        assert peak < most, f"{peak:,} bytes held to read {operation}"
    finally:
        await api.close()


async def test_a_coding_podium_does_not_decode_is_refused(system: str) -> None:
    """br (or zstd) is not asked for; handed on with its header, the client would decode it again,
    without a bound, once a brotli package is installed."""
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True)
    try:
        with pytest.raises(ConnectorError, match=r"Content-Encoding 'br' is not one Podium decodes"):
            await api.guarded_call("unknown", {})
    finally:
        await api.close()
    tool = HttpTool("unknown", system + "/unknown", method="GET")
    try:
        with pytest.raises(ToolError, match=r"tool 'unknown'.*Content-Encoding 'br' is not one Podium decodes") as err:
            await tool.call({})
        assert not err.value.retryable
    finally:
        await tool.aclose()


async def test_a_connection_is_kept_after_a_whole_answer_and_closed_after_a_cut(system: str) -> None:
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, max_response_bytes=1000)
    try:
        assert await api.call("sized", {"n": "10"}) == "x" * 10
        assert await api.call("sized", {"n": "10"}) == "x" * 10
        assert len(set(_Handler.ports)) == 1, _Handler.ports  # keep-alive: one connection
        with pytest.raises(ConnectorError, match="more than 1,000 bytes"):
            await api.call("sized", {"n": "5000"})
        assert await api.call("sized", {"n": "10"}) == "x" * 10  # a fresh connection, not the cut one
        assert len(set(_Handler.ports)) == 2, _Handler.ports
        assert (await api.health())["ok"] is True
    finally:
        await api.close()


async def test_an_http_tool_allowed_private_addresses_still_goes_through_the_environments_proxy(
    system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its proxy (``HTTP_PROXY``) is kept, and capped too: a client's own proxy transports would not be."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", system)  # the test server answers the proxied request itself
    tool = HttpTool("proxied", "http://api.example.invalid/sized", method="GET", max_response_bytes=1000)
    try:
        assert await tool.call({"n": "10"}) == "x" * 10
        with pytest.raises(ToolError, match="more than 1,000 bytes"):
            await _bounded(tool.call({"n": "5000"}))
    finally:
        await tool.aclose()
    private = HttpTool("direct", "http://api.example.invalid/sized", method="GET", allow_private=False)
    try:  # checked hosts are reached directly, never through a proxy
        with pytest.raises(ToolError, match="cannot resolve"):
            await private.call({"n": "10"})
    finally:
        await private.aclose()


async def test_a_registered_http_tool_reads_up_to_its_registered_cap(system: str, tmp_path: Any) -> None:
    """``podium tools add NAME --http URL --max-response-bytes N --deadline S`` reaches the tool a
    workflow file calls."""
    import podium
    from podium import yaml as podium_yaml
    from podium.ai import yaml_steps as ai_steps
    from podium.yaml import _registry
    from tests.test_capabilities import podium_cli

    db = f"sqlite:///{tmp_path}/p.db"
    proc = podium_cli("tools", "add", "sized", "--http", system + "/sized", "--method", "GET", "--allow-private",
                      "--max-response-bytes", "1000", "--deadline", "30", env={"PODIUM_DB": db})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kinds = _registry.StepTypes([*_registry.builtin_step_types(), *ai_steps.step_types()], entry_points=False)
    flow = "name: call\nsteps:\n  - id: call\n    uses: tool\n    with: {http: sized, arguments: {n: '%s'}}\n"
    async with podium.Client(db) as client:
        target = (await client.capabilities())["sized"].target
        assert target["max_response_bytes"] == 1000 and target["deadline"] == 30.0
        assert await client.run(podium_yaml.load_text(flow % 10, registry=kinds), {}) == "x" * 10
        with pytest.raises(podium.RunFailed, match="more than 1,000 bytes, its max_response_bytes"):
            await client.run(podium_yaml.load_text(flow % 5000, registry=kinds), {})


async def test_attack_an_alert_receiver_that_answers_without_end(system: str) -> None:
    """The alerts' webhook channel read a failing receiver's whole answer (to quote 200 characters)."""
    from podium.telemetry import DeliveryError, Webhook
    from podium.telemetry._channels import Alert

    channel = Webhook(url=system + "/alert", retries=0, timeout=5)
    alert = Alert(rule="r", kind="run_failed", severity="error", title="t", text="x")
    with pytest.raises(DeliveryError) as err:
        await _bounded(channel.send(alert))
    assert "HTTP 500" in str(err.value) and len(str(err.value)) < 400


async def test_attack_a_token_endpoint_that_drips_its_answer(system: str) -> None:
    from podium.secret import Secret

    auth = {
        "type": "oauth2_client_credentials", "token_url": system + "/drip", "client_id": "podium",
        "client_secret": Secret("s3cret-value"),
    }  # fmt: skip
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, auth=auth, deadline=0.5)
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(api.call("sized", {"n": "1"}))
        assert err.value.retryable and "OAuth2 token endpoint" in str(err.value) and "0.5 s" in str(err.value)
    finally:
        await api.close()


async def test_attack_a_redirects_page_is_taken_as_the_answer(system: str) -> None:
    """A redirect is not followed; its page was the operation's result (or, past the cap, "a success
    over the limit": "the system applied it"). It is an error now, saying where it pointed to is
    not followed; its page is cut like an error's."""
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, max_response_bytes=1000)
    tool = HttpTool("moved", system + "/moved", method="GET", max_response_bytes=1000)
    try:
        for n in ("10", "5000"):
            with pytest.raises(ConnectorError) as err:
                await api.guarded_call("moved", {"n": n})
            message = str(err.value)
            assert not err.value.retryable and err.value.status == 302, message
            assert "HTTP 302" in message and "redirect" in message and "not followed" in message, message
            assert "applied" not in message and "max_response_bytes" not in message, message
            with pytest.raises(ToolError) as terr:
                await tool.call({"n": n})
            assert not terr.value.retryable and "HTTP 302" in str(terr.value) and "not followed" in str(terr.value)
    finally:
        await api.close()
        await tool.aclose()
