"""Attacker's review of the connectors (sixteenth session): attacks against real local services.

1. An OpenAPI header parameter is an argument (a model's tool call, an event's field): a value with
   a line break (or a character HTTP headers cannot carry) failed as "could not be reached", was
   retried, and counted against the connector's circuit breaker, so a few such calls from one run
   stopped the connector for every run of the process.
2. The OAuth2 token endpoint's host was checked, then Authlib's client resolved the name again
   when it connected: a DNS answer that changed in between (DNS rebinding) sent the client secret
   to an internal host nobody checked. The token request now goes to the address that was checked.
3. A token endpoint that was down for a moment (refused connections, a 503) failed the call for
   good: Authlib's client raises ``httpx2`` errors, which ``except httpx.TransportError`` did not
   catch, so the error was not retryable and said only ``ConnectError: All connection attempts
   failed``. It is retryable now and names the token endpoint.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from podium import ConnectorError
from podium.connectors import open_connector
from podium.connectors.webhook import WebhookConnector
from podium.secret import Secret
from podium.tools import _network

from .conftest import SPEC, Crm

# -- 1. header arguments -----------------------------------------------------------------------------

HEADER_SPEC = copy.deepcopy(SPEC)
HEADER_SPEC["paths"]["/contacts"]["get"]["parameters"].append(
    {"name": "X-Tenant", "in": "header", "schema": {"type": "string"}}
)


@pytest.mark.parametrize(
    "value", ["acme\r\nX-Admin: yes", "acme\nX-Admin: yes", "acme\x00", "acmé"], ids=["crlf", "lf", "nul", "non-ascii"]
)
async def test_attack_a_header_argument_with_a_line_break_opens_the_breaker_for_every_run(crm: Crm, value: str) -> None:
    api = open_connector("openapi", spec=HEADER_SPEC, base_url=crm.url, allow_private=True)
    try:
        for _ in range(api.breaker_policy.failures + 2):
            with pytest.raises(ConnectorError) as err:
                await api.guarded_call("listContacts", {"X-Tenant": value})
            assert not err.value.retryable
            message = str(err.value)
            assert "X-Tenant" in message and "listContacts" in message and "nothing was sent" in message, message
        assert api.breaker.state == "closed"  # one run's bad argument does not stop the connector for others
        assert api.stats.retries == 0
        assert await api.guarded_call("listContacts", {"X-Tenant": "acme"}) == []  # a good value goes through
    finally:
        await api.close()
    assert [r["headers"].get("X-Tenant") for r in crm.requests] == ["acme"]
    assert not any("X-Admin" in r["headers"] for r in crm.requests)


# -- 2. the token endpoint, rebinding ------------------------------------------------------------------

NAME = "tokens.podium.test"


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)
    busy: int = 0
    """Token requests to answer 503 first."""


def _server(ip: str, port: int, seen: Seen) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.requests.append({"path": self.path, "headers": dict(self.headers), "body": raw.decode()})
            if seen.busy:
                seen.busy -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._answer({"access_token": f"at-from-{ip}", "token_type": "Bearer", "expires_in": 3600})

        def do_GET(self) -> None:
            seen.requests.append({"path": self.path, "headers": dict(self.headers), "body": ""})
            self._answer([])

    srv = http.server.ThreadingHTTPServer((ip, port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


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
def two_hosts() -> Iterator[tuple[int, Seen, Seen]]:
    """A token endpoint and API on 127.0.0.2 (the "public" host) and an internal service on 127.0.0.3,
    on the same port."""
    port = _port_free_on_both()
    public, internal = Seen(), Seen()
    servers = [_server("127.0.0.2", port, public), _server("127.0.0.3", port, internal)]
    yield port, public, internal
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``tokens.podium.test`` resolves to 127.0.0.2 at its first lookup and to 127.0.0.3 after it;
    the address check lets only 127.0.0.2 through (as if it were public)."""
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


class _Secrets:
    async def get(self, name: str) -> Secret:
        return Secret({"CS": "cs-do-not-leak"}[name])

    def forget(self, name: str | None = None) -> None:
        pass


async def test_attack_the_token_request_goes_where_dns_points_after_the_check(
    two_hosts: tuple[int, Seen, Seen], rebinding: list[str]
) -> None:
    port, public, internal = two_hosts
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"http://{NAME}:{port}/token",
        "client_id": "podium",
        "client_secret": "secret:CS",
    }
    api = open_connector("openapi", spec=SPEC, base_url=f"http://127.0.0.2:{port}", auth=auth, secrets=_Secrets())
    try:
        assert await api.call("listContacts", {}) == []
    finally:
        await api.close()
    assert internal.requests == [], "the client secret went to a host nobody checked"
    token = [r for r in public.requests if r["path"] == "/token"]
    assert len(token) == 1 and token[0]["headers"].get("Host") == f"{NAME}:{port}"  # still names the host
    assert [r["headers"].get("Authorization") for r in public.requests if r["path"] == "/contacts"] == [
        "Bearer at-from-127.0.0.2"
    ]
    assert rebinding == ["127.0.0.2"]  # one lookup: the checked one


async def test_a_token_endpoint_whose_name_turns_internal_before_the_check_is_refused(
    two_hosts: tuple[int, Seen, Seen], rebinding: list[str]
) -> None:
    port, public, internal = two_hosts
    rebinding.append("taken")  # the next answer is the internal address
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"http://{NAME}:{port}/token",
        "client_id": "podium",
        "client_secret": "secret:CS",
    }
    api = open_connector("openapi", spec=SPEC, base_url=f"http://127.0.0.2:{port}", auth=auth, secrets=_Secrets())
    try:
        with pytest.raises(ConnectorError, match=r"token_url.*127\.0\.0\.3.*allow_private") as err:
            await api.call("listContacts", {})
    finally:
        await api.close()
    assert "cs-do-not-leak" not in str(err.value)
    assert internal.requests == [] and public.requests == []


# -- 3. a token endpoint down for a moment --------------------------------------------------------------


def _client_credentials(token_url: str) -> dict[str, Any]:
    return {"type": "oauth2_client_credentials", "token_url": token_url, "client_id": "podium", "client_secret": "secret:CS"}


async def test_attack_a_token_endpoint_down_for_a_moment_fails_the_call_for_good(two_hosts: tuple[int, Seen, Seen]) -> None:
    port, public, _ = two_hosts
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    api = open_connector(
        "openapi", spec=SPEC, base_url=f"http://127.0.0.2:{port}", allow_private=True,
        auth=_client_credentials(f"http://127.0.0.1:{closed}/token"), secrets=_Secrets(),
    )  # fmt: skip
    api.retry = type(api.retry)(max_attempts=2, initial=0.01, max_delay=0.01)
    try:
        with pytest.raises(ConnectorError) as err:
            await api.guarded_call("listContacts", {})
    finally:
        await api.close()
    assert err.value.retryable, err.value  # a step retry (or the next attempt) may find it up again
    message = str(err.value)
    assert "OAuth2 token endpoint" in message and "could not be reached" in message, message
    assert api.stats.retries == 1 and public.requests == []


async def test_a_token_endpoint_that_answers_503_once_is_asked_again(two_hosts: tuple[int, Seen, Seen]) -> None:
    port, public, _ = two_hosts
    public.busy = 1
    api = open_connector(
        "openapi", spec=SPEC, base_url=f"http://127.0.0.2:{port}", allow_private=True,
        auth=_client_credentials(f"http://127.0.0.2:{port}/token"), secrets=_Secrets(),
    )  # fmt: skip
    api.retry = type(api.retry)(max_attempts=2, initial=0.01, max_delay=0.01)
    try:
        assert await api.guarded_call("listContacts", {}) == []
    finally:
        await api.close()
    assert [r["path"] for r in public.requests] == ["/token", "/token", "/contacts"]


# -- 4. the breaker's reason, shown to every other run ---------------------------------------------------


async def test_attack_an_open_breaker_tells_every_run_another_runs_arguments(crm: Crm) -> None:
    """A connector is shared by every run of the process. Its breaker opened with the last failure's
    message as the reason (the request URL with its path arguments, the system's answer), and every
    run refused while it stays open had that reason in its error: another run's customer, for
    anyone who reads this run (another workflow's starter, a workflow without a redaction policy)."""
    from podium import ConnectorCircuitOpen

    api = open_connector("openapi", spec=SPEC, base_url=crm.url, allow_private=True)
    api.retry = type(api.retry)(max_attempts=1)
    crm.failures = [(503, {})] * api.breaker_policy.failures
    try:
        for _ in range(api.breaker_policy.failures):  # one run's calls, about alice
            with pytest.raises(ConnectorError):
                await api.guarded_call("getContact", {"id": "alice.private@example.com"})
        assert api.breaker.state == "open"
        with pytest.raises(ConnectorCircuitOpen) as other:  # another run, about bob
            await api.guarded_call("getContact", {"id": "bob@example.com"})
    finally:
        await api.close()
    message = str(other.value)
    assert "alice" not in message and "induced" not in message, message
    assert "getContact" in message and "503" in message and "open" in message, message  # still says what failed
    reason = api.breaker.transitions[-1][2]
    assert "alice" not in reason and "503" in reason, reason


# -- 5. the HTTP library's request log -------------------------------------------------------------------

HOOK = "hooks.podium.test"
HOOK_PATH = "/services/T0001/B0001/xoxSECRETpathDoNotLog"


@pytest.fixture
def public_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hooks.podium.test`` resolves to 127.0.0.2, which the address check lets through."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.2" if host in (HOOK, HOOK.encode()) else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_network, "blocked_reason", lambda ip: None if ip == "127.0.0.2" else "a private or reserved address")


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_attack_a_webhooks_secret_path_goes_to_the_log_with_every_post(
    two_hosts: tuple[int, Seen, Seen], public_name: None, fmt: str
) -> None:
    """A Slack webhook's URL path is its credential (docs/connectors.md). Podium's logging (INFO, as
    ``podium serve`` and ``podium worker`` set it up) let the HTTP library log every request line:
    ``HTTP Request: POST http://127.0.0.2:PORT/services/.../SECRET``, the URL as sent, with the checked
    address in place of the host, so that the URL the secret store knows did not match and nothing
    was masked. The same line carried an OpenAPI call's path arguments (a customer's email)."""
    import io
    import logging

    from podium.telemetry import configure_logging

    port, public, _ = two_hosts
    out = io.StringIO()
    root = logging.getLogger()
    before = root.level, list(root.handlers)
    handler = configure_logging(fmt, "INFO", stream=out)
    try:
        # the shipped kind itself: tests/connectors/webhook_connector.py (the docs' example), once imported,
        # replaces the "webhook" kind in this process (test_custom_connector.py), so it is not opened by name
        hook = WebhookConnector(url=Secret(f"http://{HOOK}:{port}{HOOK_PATH}"))
        api = open_connector("openapi", spec=SPEC, base_url=f"http://{HOOK}:{port}")
        try:
            await hook.call("post", {"text": "hello"})
            await api.call("getContact", {"id": "alice.private@example.com"})
        finally:
            await hook.close()
            await api.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
    assert [r["path"] for r in public.requests] == [HOOK_PATH, "/contacts/alice.private%40example.com"]
    logged = out.getvalue()
    assert "xoxSECRET" not in logged and "alice.private" not in logged, logged


# -- 6. a credential in a registered URL's query -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("http", {"url": "https://maps.example.com/geocode/json?address={address}&key=AIzaSyD-not-a-real-key-123"}),
        ("http", {"url": "https://api.example.com/v1/orders/{order_id}?api_key=sk_live_51Hnotreal", "method": "GET"}),
        ("mcp", {"url": "https://mcp.example.com/mcp?access_token=mcp-token-not-real-42"}),
        ("connector", {"kind": "openapi", "spec": {"openapi": "3.0.3", "paths": {}}, "base_url": "https://blob.example.com/c?sv=2024&sig=SASsignatureNotReal%3D"}),
    ],
    ids=["google-key", "api_key", "mcp-access_token", "connector-sas-sig"],
)
async def test_attack_a_credential_in_a_registered_urls_query_is_read_by_every_viewer(
    tmp_path: Any, kind: str, target: dict[str, Any]
) -> None:
    """The capability registry is readable by anyone with ``workflows.read`` (a viewer), and tool and
    connector errors quote the URL. Credentials in headers and URL passwords were refused in clear
    text; a key in the URL's query (``?key=``, ``?api_key=``, ``?access_token=``, an Azure SAS
    ``sig=``) was stored and shown. Refused now, naming the parameter and how to send it instead."""
    import podium
    from podium import ConfigError

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        with pytest.raises(ConfigError) as err:
            await client.add_capability("svc", kind, target)
        assert "svc" not in (await client.capabilities())
    message = str(err.value)
    assert "query" in message and "clear text" in message and "secret:" in message, message
    assert "not-real" not in message and "notreal" not in message.lower() and "NotReal" not in message, message


async def test_a_registered_urls_query_may_hold_placeholders_and_plain_values(tmp_path: Any) -> None:
    import podium

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("geo", "http", {"url": "https://maps.example.com/geocode?q={q}&key={key}&lang=en&keyword=x"})
        await client.add_capability("hook", "http", {"url": "https://api.example.com/v1/x?monkey=1&tokens_max=5"})
        assert {"geo", "hook"} <= set(await client.capabilities())


# -- 7. a message nested too deep for the JSON reader ------------------------------------------------------


async def test_attack_a_deeply_nested_message_stops_the_trigger_for_every_later_message(tmp_path: Any) -> None:
    """A broker message's body is parsed by Python's JSON reader, which raises RecursionError (not
    ValueError) for a body nested some thousands deep: the whole batch failed to be received, the
    message was never acknowledged, and every poll met it again first, so no later message started
    its run. (The HTTP API refuses such a body with 422; a broker has no such gate.) Now it is kept
    as a dead letter, naming the depth, and the messages after it start their runs."""
    import redis.asyncio as aioredis

    from podium import Client, Workflow
    from podium.connectors import Consumer
    from podium.connectors.consumer import DEADLETTERS

    from .conftest import need_broker

    need_broker("redis")
    stream = f"attack16-{id(tmp_path)}"
    wf = Workflow("orders16")

    @wf.step
    async def handle(ctx: Any, input: Any) -> Any:
        return input

    r = aioredis.from_url("redis://127.0.0.1:6379/0")
    conn = open_connector("redis", url="redis://127.0.0.1:6379/0")
    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf]) as client:
            source = {"stream": stream, "deliver": "all", "claim_idle": 0.2}
            consumer = Consumer(client, conn, workflow=wf.name, source=source, name="bus")
            await consumer.poll(timeout=0.2)
            await r.xadd(stream, {"payload": "[" * 50_000 + "]" * 50_000, "message_id": "deep-1"})
            await r.xadd(stream, {"payload": json.dumps({"order": 2}), "message_id": "good-2"})
            started: list[str] = []
            for _ in range(20):  # a few polls: the good message must get through
                with contextlib.suppress(RecursionError):  # before the fix: every poll raised
                    started += await consumer.poll(timeout=0.3)
                if started:
                    break
            assert len(started) == 1, "the message after the deep one never started its run"
            assert json.loads((await client.store.get_run(started[0])).input) == {"order": 2}
            letters = await client.store.kv_list(DEADLETTERS)
            assert len(letters) == 1 and "nested deeper" in next(iter(letters.values())), letters
    finally:
        await conn.close()
        await r.delete(stream)
        await r.aclose()


# -- 8. an outbox row whose arguments cannot be read -----------------------------------------------------


@pytest.mark.parametrize("written", ["not json {", "[" * 30_000 + "]" * 30_000], ids=["not-json", "too-deep"])
async def test_attack_an_outbox_row_that_cannot_be_read_stops_the_relay_for_every_message(
    sql_url: str, written: str
) -> None:
    """The outbox lives in the business database, which other programs write too. A row whose
    ``arguments`` are not JSON (or JSON nested deeper than the reader allows) failed the relay's
    whole claim (ValueError, RecursionError), every pass: it is the oldest, so every claim met it
    first, and no message after it was delivered. It is set aside as failed now, saying which column
    of which row cannot be read, and the others go out."""
    import sqlalchemy as sa

    from podium.connectors import Connector, Operation
    from podium.connectors.relay import OutboxRelay
    from podium.connectors.sql import SqlConnector, _url
    from podium.resilience import Backoff

    paid: list[int] = []

    class Bank(Connector):
        kind = "bank"
        retry = Backoff(max_attempts=1)

        def operations(self) -> list[Operation]:
            return [Operation(name="pay")]

        async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
            paid.append(arguments["n"])
            return {"ok": True}

    db = SqlConnector(sql_url)
    messages = [{"target": "bank", "operation": "pay", "arguments": {"n": n}} for n in (1, 2)]
    await db.call("transact", {"messages": messages}, idempotency_key="run-16/step/connector:db.transact")
    engine = sa.create_engine(_url(sql_url))
    with engine.begin() as conn:  # another program (or a person) writes the first row's arguments
        t = db.outbox.messages
        first = conn.execute(sa.select(sa.func.min(t.c.id))).scalar_one()
        conn.execute(sa.update(t).where(t.c.id == first).values(arguments=written))
    engine.dispose()
    relay = OutboxRelay(db, {"bank": Bank()}, lease=0.05)
    try:
        errors = []
        for _ in range(2):
            try:  # as OutboxRelay.run does: log a failed batch, go on
                await relay.run_once()
            except Exception as exc:
                errors.append(type(exc).__name__)
        assert paid == [2] and errors == [], (paid, errors)
        with sa.create_engine(_url(sql_url)).begin() as conn:
            row = conn.execute(sa.select(t.c.status, t.c.last_error).where(t.c.id == first)).one()
        assert row.status == "failed", row
        assert "arguments" in row.last_error and str(first) in row.last_error and "JSON" in row.last_error, row
    finally:
        await db.close()
