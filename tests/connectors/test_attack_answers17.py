"""Answers read whole (the sixteenth session's left item), as attacks against real local services.

An HTTP connector read a system's whole answer into memory: an API's, a webhook receiver's, an OAuth2
token endpoint's. A system that answers without end (or with a small gzip body that decompresses to
gigabytes) filled the process's memory, for every run of the process. A broker message had no size
cap either: a Redis stream takes any size, and the whole body became a run's input. Now each HTTP
connector reads up to its ``max_response_bytes`` (10 MiB by default; a token endpoint's answer up to
1 MiB), and a broker trigger takes messages up to its ``max_message_bytes`` (1 MiB by default); a
larger message is kept as a dead letter saying why, and the messages after it start their runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.server
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from podium import ConfigError, ConnectorError
from podium.connectors import open_connector
from podium.connectors.webhook import (
    WebhookConnector,  # the shipped one (the docs' example replaces the kind)
)
from tests.local_http import serving

MIB = 1024 * 1024
BOMB = gzip.compress(b'"' + b"0" * (20 * MIB) + b'"')  # about 20 KB on the wire, 20 MiB read


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _endless(self, status: int) -> None:
        """An answer without a length that never ends (until the client hangs up)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b"[" + b"0," * 32_768
        with contextlib.suppress(OSError):
            for _ in range(100_000):  # 6 GB at most: the test fails long before, if it is read whole
                self.wfile.write(chunk)

    def _json(self, data: bytes, status: int = 200, encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/endless":
            self._endless(200)
        elif url.path == "/busy":
            self._endless(503)
        elif url.path == "/bomb":
            self._json(BOMB, encoding="gzip")
        else:
            size = int(parse_qs(url.query).get("n", ["10"])[0])
            self._json(json.dumps("x" * size).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/small":
            self._json(b'{"ok": true}')
        else:  # the token endpoint, the webhook receiver, a write
            self._endless(200)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def system() -> Iterator[str]:
    with serving(_Handler) as url:
        yield url


def _op(op_id: str, method: str = "get", query: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "responses": {"200": {}}}
    if query:
        op["parameters"] = [{"name": "n", "in": "query", "schema": {"type": "integer"}}]
    if method == "post":
        op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {method: op}


SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Big answers", "version": "1"},
    "paths": {
        "/sized": _op("sized", query=True),
        "/endless": _op("endless"),
        "/bomb": _op("bomb"),
        "/busy": _op("busy"),
        "/things": _op("createThing", "post"),
    },
}


async def _bounded(call: Any) -> Any:
    """The call, or a failure if it reads on and on (before the fix it never returned)."""
    return await asyncio.wait_for(call, 60)


async def test_attack_an_api_that_answers_without_end_fills_the_memory(system: str) -> None:
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, max_response_bytes=64 * 1024)
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(api.guarded_call("endless", {}))
        assert not err.value.retryable and err.value.operation == "endless"
        message = str(err.value)
        for part in ("'Big answers'", "endless", "65,536 bytes", "max_response_bytes", "podium connectors add NAME openapi"):
            assert part in message, message
        assert api.stats.retries == 0 and api.breaker.state == "closed"
        assert await api.guarded_call("sized", {"n": 1000}) == "x" * 1000  # an answer under the limit is read
        with pytest.raises(ConnectorError, match="answered with more than"):
            await api.guarded_call("sized", {"n": 70_000})
        with pytest.raises(ConnectorError) as err:  # a write: applied, and said so
            await _bounded(api.guarded_call("createThing", {"body": {"a": 1}}))
        assert "applied it" in str(err.value) and "not made again" in str(err.value)
    finally:
        await api.close()


async def test_attack_a_small_gzip_answer_that_decompresses_to_gigabytes(system: str) -> None:
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True)
    assert api.max_response_bytes == 10 * MIB  # the default
    try:
        with pytest.raises(ConnectorError, match=r"more than 10,485,760 bytes") as err:
            await _bounded(api.guarded_call("bomb", {}))
        assert not err.value.retryable
        assert await api.guarded_call("sized", {"n": 5 * MIB}) == "x" * (5 * MIB)
    finally:
        await api.close()
    roomy = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, max_response_bytes=str(32 * MIB))
    try:  # raised as the error says (a registry's setting is text)
        assert await roomy.guarded_call("bomb", {}) == "0" * (20 * MIB)
    finally:
        await roomy.close()


async def test_an_error_answer_without_end_is_cut_and_still_retried(system: str) -> None:
    """A 503's body is quoted only in part: it is cut at the limit, and the call is retryable still."""
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, max_response_bytes=64 * 1024)
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(api.call("busy", {}))
        assert err.value.retryable and err.value.status == 503
    finally:
        await api.close()


async def test_attack_a_webhook_receiver_that_answers_without_end(system: str) -> None:
    hook = WebhookConnector(url=system + "/hook", allow_private=True, max_response_bytes=64 * 1024)
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(hook.guarded_call("post", {"text": "hi"}))
        assert not err.value.retryable and err.value.operation == "post"
        message = str(err.value)
        for part in ("webhook connector", "65,536 bytes", "max_response_bytes", "not sent again", "webhook --set"):
            assert part in message, message
        assert "/hook" not in message  # the URL's path is the webhook's secret
    finally:
        await hook.close()
    small = WebhookConnector(url=system + "/small", allow_private=True)
    try:
        assert await small.guarded_call("post", {"text": "hi"}) == {"status": 200, "response": {"ok": True}}
    finally:
        await small.close()


async def test_attack_a_token_endpoint_that_answers_without_end(system: str) -> None:
    from podium.secret import Secret

    auth = {
        "type": "oauth2_client_credentials", "token_url": system + "/token", "client_id": "podium",
        "client_secret": Secret("s3cret-value"),
    }  # fmt: skip
    api = open_connector("openapi", spec=SPEC, base_url=system, allow_private=True, auth=auth)
    try:
        with pytest.raises(ConnectorError) as err:
            await _bounded(api.guarded_call("sized", {"n": 1}))
        assert not err.value.retryable
        message = str(err.value)
        assert "OAuth2 token endpoint" in message and "1,048,576 bytes" in message and "token_url" in message, message
    finally:
        await api.close()


@pytest.mark.parametrize("value", [0, -1, "ten", 1.5, True])
def test_max_response_bytes_is_a_whole_number_of_bytes(value: Any) -> None:
    with pytest.raises(ConfigError, match="max_response_bytes is a whole number of bytes"):
        WebhookConnector(url="https://hooks.example.com/x", max_response_bytes=value)


# -- broker messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "nats", "amqp", "mqtt"])
async def test_attack_a_broker_message_of_any_size_becomes_a_runs_input(kind: str, tmp_path: Any) -> None:
    """A message over the trigger's ``max_message_bytes`` is kept as a dead letter saying why (its
    body unread, not stored), acknowledged, and the message after it starts its run."""
    from podium import Client, Workflow
    from podium.connectors import Consumer
    from podium.connectors.consumer import DEADLETTERS

    from .brokers import HARNESSES
    from .conftest import need_broker

    need_broker(kind)
    h = HARNESSES[kind]()
    wf = Workflow(f"sized17{kind}")

    @wf.step
    async def handle(ctx: Any, input: Any) -> Any:
        return input

    await h.setup()
    conn = h.connector()
    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf]) as client:
            consumer = Consumer(client, conn, workflow=wf.name, source=h.source(max_message_bytes=2000), name="bus")
            await consumer.poll(timeout=0.2)  # subscribed (MQTT, NATS: from now on)
            await h.publish_raw({"order": 1, "notes": "n" * 5000}, "big-1")
            await h.publish_raw({"order": 2}, "good-2")
            started: list[str] = []
            for _ in range(30):
                started += await consumer.poll(timeout=0.3)
                if started:
                    break
            assert len(started) == 1
            assert json.loads((await client.store.get_run(started[0])).input) == {"order": 2}
            letters = await client.store.kv_list(DEADLETTERS)
            assert len(letters) == 1, letters
            text = next(iter(letters.values()))
            assert "too large" in text and "max_message_bytes (2,000)" in text and "n" * 100 not in text, text
            assert consumer.dead_lettered == 1
            for _ in range(3):  # acknowledged: it does not come back
                assert await consumer.poll(timeout=0.3) == []
            assert consumer.dead_lettered == 1
    finally:
        await conn.close()
        await h.cleanup()


def test_a_triggers_max_message_bytes_is_checked() -> None:
    from podium.connectors._sources import check_source

    assert check_source("redis", {"stream": "s"}, name="w")["max_message_bytes"] == MIB
    assert check_source("redis", {"stream": "s", "max_message_bytes": 4096}, name="w")["max_message_bytes"] == 4096
    for bad in (0, "big", 2.5, True):
        with pytest.raises(ConfigError, match="max_message_bytes"):
            check_source("amqp", {"queue": "q", "max_message_bytes": bad}, name="w")


async def test_attack_a_read_operation_returns_a_message_of_any_size() -> None:
    """A step's ``read`` of a Redis stream returned each entry whole (an entry may be 512 MB, and a
    read takes up to 1000): one larger than what Podium publishes (1 MiB) is now a note saying so,
    and the entries around it are read. (NATS refuses such a message itself: its server's
    max_payload is 1 MB unless raised; its ``fetch`` applies the same bound.)"""
    kind = "redis"
    from .brokers import HARNESSES
    from .conftest import need_broker

    need_broker(kind)
    h = HARNESSES[kind]()
    await h.setup()
    conn = h.connector()
    try:
        await h.publish_raw({"order": 1}, "small-1")
        await h.publish_raw({"notes": "n" * (2 * MIB)}, "big-2")
        await h.publish_raw({"order": 3}, "small-3")
        got = await conn.call("read", {"stream": h.name, "limit": 10})
        payloads = [m["payload"] for m in got["messages"]]
        assert payloads[0] == {"order": 1} and payloads[2] == {"order": 3}, payloads[:1]
        note = payloads[1]
        assert isinstance(note, str), type(note)
        assert isinstance(note, str) and "too large" in note and "1,048,576" in note and len(note) < 600, note[:600]
    finally:
        await conn.close()
        await h.cleanup()
