"""The integration tax, against real local services: business APIs rate-limit, answer writes with
bodies that cannot be read, drift from their contracts, rotate refresh tokens under several
processes, and echo credentials back in their errors. Each test is an attack or a failure a
regulated business meets, and checks that no business write is made twice, no run fails for a
token another process rotated, and no live credential lands in a stored error.

The stand-ins: the webhook endpoint and the CRM of ``standins``/``conftest`` (HTTP on 127.0.0.1),
Authlib's OAuth2 server of ``oauth_server``, and an order API (below) that applies every POST it
gets, as most business APIs do, whatever its ``Idempotency-Key``. The credential cases are in
``test_integration_tax_oauth``."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from podium import Client, Workflow
from podium.connectors import ConnectorError, open_connector
from podium.connectors.relay import OutboxRelay
from podium.connectors.sql import SqlConnector
from podium.connectors.webhook import WebhookConnector
from podium.resilience import Backoff

from .conftest import Crm
from .standins import Hook
from .test_outbox import orders_table, place


@dataclass
class Orders:
    """An order API that applies each POST it receives (it ignores ``Idempotency-Key``) and answers
    201 with a body that is not the JSON its ``Content-Type`` announces (a proxy's error page, a
    body cut short)."""

    port: int = 0
    applied: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "openapi": "3.0.3",
            "info": {"title": "Orders", "version": "1"},
            "servers": [{"url": self.url}],
            "paths": {
                "/orders": {
                    "post": {
                        "operationId": "createOrder",
                        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                        "responses": {"201": {}},
                    },
                    "get": {"operationId": "listOrders", "responses": {"200": {}}},
                }
            },
        }


class _OrdersHandler(http.server.BaseHTTPRequestHandler):
    orders: Orders

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int) -> None:
        data = b'{"id": 17, "status": "acc'  # cut short
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.orders.lock:
            self.orders.applied.append(json.loads(raw or b"null"))
        self._answer(201)

    def do_GET(self) -> None:
        self._answer(200)


@pytest.fixture
def orders() -> Iterator[Orders]:
    state = Orders()
    handler = type("OrdersHandler", (_OrdersHandler,), {"orders": state})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    state.port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield state
    srv.shutdown()
    srv.server_close()


async def _lease_over(db: SqlConnector) -> bool:
    (row,) = await db.call("query", {"sql": "SELECT status, lease_until FROM podium_outbox"})
    return bool(row["status"] != "pending" or row["lease_until"] is None or row["lease_until"] < time.time())


async def test_attack_a_retry_after_longer_than_the_lease_lets_a_second_relay_deliver_a_copy(
    tmp_path: Path, hook: Hook
) -> None:
    """Before: the relay made the connector's own retries inside its lease, waiting out a 429's
    Retry-After there (up to 120 s by default, against a 60 s lease). The lease ran out in the wait,
    a second relay of the same outbox claimed the message and delivered it, and the first then
    delivered it too: two posts at a target that does not deduplicate (a Slack webhook)."""
    url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(url)
    db = SqlConnector(url)
    await db.call("transact", place(1), idempotency_key="k1")
    hook.failures = [(429, {"Retry-After": "3"})]
    slack = WebhookConnector(hook.url, allow_private=True)  # its default retries, as registered
    first = OutboxRelay(db, {"slack": slack}, lease=0.5)
    second = OutboxRelay(db, {"slack": slack}, lease=0.5)
    task = asyncio.create_task(first.run_once())
    deadline = time.monotonic() + 60
    while not (task.done() or (hook.requests and await _lease_over(db))):
        assert time.monotonic() < deadline, "the first relay never called the target"
        await asyncio.sleep(0.02)
    await second.run_once()
    await task
    successes = [r for r in hook.requests[1:]]  # the first request was answered 429
    assert len(successes) <= 1, f"the message was posted {len(successes)} times"
    (msg,) = await db.outbox_messages()
    if msg.status == "pending":  # the wait is the relay's backoff: the row says when it goes
        assert msg.next_at >= time.time() + 1 and await _lease_over(db)
        assert msg.attempts == 1 and "HTTP 429" in (msg.last_error or "")
    await db.close()


async def test_attack_a_delivery_whose_answer_drifted_is_not_parked_as_failed(
    tmp_path: Path, crm: Crm, crm_spec: dict[str, Any]
) -> None:
    """Before: the relay checked the target's answer against the operation's contract; an answer
    that drifted made the delivery `failed`, though the target had applied it, and released its
    ledger reservation. `podium outbox retry` then sent it again: a second business write."""
    url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(url)
    db = SqlConnector(url)
    message = {"target": "crm", "operation": "createContact", "arguments": {"body": {"email": "a@example.com"}}}
    await db.call("transact", {"writes": place(1)["writes"], "messages": [message]}, idempotency_key="k1")
    target = open_connector(
        "openapi", spec={**crm_spec, "servers": [{"url": crm.url}]}, allow_private=True,
        contracts={"createContact": {"type": "object", "required": ["emailAddress"]}},  # the API renamed it
    )  # fmt: skip
    done = await OutboxRelay(db, {"crm": target}).run_once()
    (msg,) = await db.outbox_messages()
    assert len(crm.of("POST")) == 1 and len(crm.contacts) == 1
    assert (msg.status, done.sent, done.failed) == ("sent", 1, 0), msg.last_error
    assert "contract" in (msg.last_error or "") and "emailAddress" in (msg.last_error or "")
    assert not await db.outbox_retry(msg.key)  # nothing to put back: it was delivered
    await target.close()
    await db.close()


async def test_attack_a_write_answered_2xx_with_a_body_that_is_not_json_is_not_made_again(orders: Orders) -> None:
    """Before: a 201 whose body was not valid JSON was a retryable error, so the POST the API had
    applied was sent again (four times with the default retries) at an API that does not honour
    Idempotency-Key: four orders for one."""
    api = open_connector("openapi", spec=orders.spec, allow_private=True)
    api.retry = Backoff(max_attempts=4, initial=0.01)
    with pytest.raises(ConnectorError) as caught:
        await api.guarded_call("createOrder", {"body": {"sku": "lamp", "qty": 1}}, idempotency_key="k-1", label="orders")
    assert len(orders.applied) == 1
    err = caught.value
    assert not err.retryable and err.operation == "createOrder" and err.status == 201
    text = str(err)
    assert "Orders" in text and "createOrder" in text and "HTTP 201" in text and "not made again" in text
    # a read is harmless to repeat: it is still retried
    with pytest.raises(ConnectorError) as read:
        await api.guarded_call("listOrders", {}, label="orders")
    assert read.value.retryable and api.stats.retries >= 3
    await api.close()


async def test_attack_a_relayed_write_answered_2xx_with_an_unreadable_body_is_not_sent_again(
    tmp_path: Path, orders: Orders
) -> None:
    """Before: the relay marked the message `failed` (the error said the target applied it), and
    `podium outbox retry` put it back: the order API, which ignores Idempotency-Key, made a second
    order. Now it is `sent`, with a note saying its answer could not be read."""
    url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(url)
    db = SqlConnector(url)
    message = {"target": "orders", "operation": "createOrder", "arguments": {"body": {"sku": "lamp", "qty": 1}}}
    await db.call("transact", {"writes": place(1)["writes"], "messages": [message]}, idempotency_key="k1")
    api = open_connector("openapi", spec=orders.spec, allow_private=True)
    relay = OutboxRelay(db, {"orders": api})
    done = await relay.run_once()
    (msg,) = await db.outbox_messages()
    assert (msg.status, done.sent, done.failed) == ("sent", 1, 0), msg.last_error
    note = msg.last_error or ""
    assert "HTTP 201" in note and "not sent again" in note and "orders" in note
    assert not await db.outbox_retry(msg.key)  # nothing to put back: it was applied
    await relay.run_once()
    assert len(orders.applied) == 1
    await api.close()
    await db.close()


async def test_attack_changes_of_a_table_with_a_composite_key_skips_rows_that_share_a_timestamp(sql_url: str) -> None:
    """Before: `changes` broke ties by the primary key only when it was one column. Order lines keyed
    by (order_id, line_no) that share an `updated_at` (one transaction's rows) lost every row after a
    page boundary inside the tie: the next page asked for a later timestamp. A table with no primary
    key lost them the same way; it is refused now, saying why."""
    import datetime as dt

    import sqlalchemy as sa

    from podium.connectors.sql import _url

    engine = sa.create_engine(_url(sql_url))
    meta = sa.MetaData()
    sa.Table(
        "order_lines", meta,
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sku", sa.String(20), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )  # fmt: skip
    sa.Table("audit_trail", meta, sa.Column("what", sa.String(20)), sa.Column("updated_at", sa.DateTime))
    meta.create_all(engine)
    engine.dispose()
    db = SqlConnector(sql_url)
    t0 = dt.datetime(2026, 12, 6, 9, 30)
    lines = [{"order_id": o, "line_no": n, "sku": f"s{o}{n}", "updated_at": t0} for o in (1, 2) for n in (1, 2, 3)]
    lines.append({"order_id": 3, "line_no": 1, "sku": "late", "updated_at": t0 + dt.timedelta(minutes=1)})
    await db.call("insert", {"table": "order_lines", "rows": lines})
    seen: list[tuple[int, int]] = []
    cursor = None
    for _ in range(20):
        page = await db.call("changes", {"table": "order_lines", "cursor": cursor, "limit": 2})
        if not page["rows"]:
            break
        seen += [(r["order_id"], r["line_no"]) for r in page["rows"]]
        cursor = json.loads(json.dumps(page["cursor"]))  # kept between runs as JSON
    assert seen == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, 1)]
    with pytest.raises(ConnectorError, match="needs a primary key") as caught:
        await db.call("changes", {"table": "audit_trail"})
    assert not caught.value.retryable and "audit_trail" in str(caught.value)
    await db.close()


@pytest.mark.parametrize("header", ["inf", "1e400"])
async def test_attack_a_retry_after_of_infinity_does_not_make_the_relay_deliver_its_batch_again(
    sql_url: str, hook: Hook, header: str
) -> None:
    """Before: `Retry-After: inf` (or a number past a float's range) was taken as infinite seconds;
    the relay wrote it as the message's next attempt, MariaDB refused the value, and the whole batch's
    outcomes went unrecorded: the messages it had delivered stayed pending and were delivered again
    once their leases ran out, at every pass, for as long as the target answered so."""
    orders_table(sql_url)
    db = SqlConnector(sql_url)
    for n in (1, 2):
        await db.call("transact", place(n), idempotency_key=f"k{n}")
    hook.failures = [(429, {"Retry-After": header})]
    relay = OutboxRelay(db, {"slack": WebhookConnector(hook.url, allow_private=True)}, concurrency=1)
    done = await relay.run_once()
    assert (done.sent, done.retrying) == (1, 1)
    sent, waiting = sorted(await db.outbox_messages(), key=lambda m: m.status != "sent")
    assert sent.status == "sent" and list(hook.effects) == [sent.key]
    assert waiting.status == "pending" and waiting.attempts == 1 and time.time() < waiting.next_at < time.time() + 3600
    await db.close()


async def test_attack_a_probe_cancelled_by_a_timeout_leaves_the_breaker_failing_fast_forever(hook: Hook) -> None:
    """A 5xx storm opens the breaker; once it half-opens, the one probe call meets an API that hangs
    and the step's timeout cancels it. Before: the probe was never settled, so the breaker refused
    every later call (ConnectorCircuitOpen) until the process restarted, however well the system
    answered by then. Now an unsettled probe gives way after ``reset_after``."""
    from podium.connectors import ConnectorCircuitOpen
    from podium.resilience import BreakerPolicy, CircuitBreaker

    now = [1000.0]
    conn = WebhookConnector(hook.url, allow_private=True)
    conn.retry = Backoff(max_attempts=1)
    conn._breaker = CircuitBreaker("connector:webhook", BreakerPolicy(failures=1, reset_after=30), clock=lambda: now[0])
    hook.failures = [(503, {})]
    with pytest.raises(ConnectorError):
        await conn.guarded_call("post", {"text": "storm"})
    assert conn.breaker.state == "open"
    now[0] += 31  # the breaker half-opens: one probe goes
    hook.arrived.clear()
    hook.hold = threading.Event()
    probe = asyncio.create_task(conn.guarded_call("post", {"text": "probe"}))
    assert await asyncio.to_thread(hook.arrived.wait, 60)
    probe.cancel()  # the step's timeout
    with pytest.raises(asyncio.CancelledError):
        await probe
    hook.hold.set()
    hook.hold = None
    with pytest.raises(ConnectorCircuitOpen):  # the probe's slot is held for reset_after
        await conn.guarded_call("post", {"text": "too soon"})
    now[0] += 31
    assert (await conn.guarded_call("post", {"text": "recovered"}))["status"] == 200
    assert conn.breaker.state == "closed"
    await conn.close()


async def test_attack_a_null_timestamp_makes_changes_read_the_table_again_at_every_call(sql_url: str) -> None:
    """Before: PostgreSQL sorts NULL last, so a page that ended on a row whose `updated_at` was NULL
    gave the cursor `after: None`, and the next call read the whole table again from its start, at
    every poll: a sync workflow processed every row again and again."""
    import datetime as dt

    import sqlalchemy as sa

    from podium.connectors.sql import _url

    engine = sa.create_engine(_url(sql_url))
    meta = sa.MetaData()
    sa.Table(
        "contacts", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    )  # fmt: skip
    meta.create_all(engine)
    engine.dispose()
    db = SqlConnector(sql_url)
    t0 = dt.datetime(2026, 12, 6, 9, 30)
    await db.call("insert", {"table": "contacts", "rows": [{"id": 1, "updated_at": t0}, {"id": 2, "updated_at": None}]})
    first = await db.call("changes", {"table": "contacts", "limit": 10})
    assert [r["id"] for r in first["rows"]] == [1] and first["cursor"]["after"] is not None
    again = await db.call("changes", {"table": "contacts", "cursor": first["cursor"], "limit": 10})
    assert again["rows"] == []
    await db.close()


async def test_attack_a_mail_server_that_drops_the_goodbye_gets_the_accepted_mail_again() -> None:
    """The mail server accepts the message (250 after DATA) and then answers QUIT with 421 (it is
    shutting down, or a load balancer cut the session). Before: the error at QUIT was a retryable
    4xx, so the message it had accepted was sent again, four times with the default retries: four
    copies in the customer's inbox. Now the goodbye's outcome changes nothing once the message was
    accepted."""
    import socket

    aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="pip install aiosmtpd (the dev extra)")
    from podium.connectors.smtp import SmtpConnector

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.original_content)
            return "250 OK"

        async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
            return "421 4.3.2 shutting down"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = SmtpConnector("127.0.0.1", port, sender="Podium <podium@example.com>")
        mail.retry = Backoff(max_attempts=4, initial=0.01)
        out = await mail.guarded_call(
            "send", {"to": "customer@example.com", "subject": "Your refund", "text": "Refunded."}, idempotency_key="run-1/refund"
        )
        assert out["recipients"] == ["customer@example.com"]
        assert len(received) == 1
    finally:
        controller.stop()


class _Gateway(http.server.BaseHTTPRequestHandler):
    """An order API behind a gateway: the order is applied, then the gateway answers 502 (its
    upstream was slow) to the first request. The API honours ``Idempotency-Key``."""

    applied: dict[str, Any]
    keys: list[str | None]

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        key = self.headers.get("Idempotency-Key")
        self.keys.append(key)
        self.applied.setdefault(key or f"#{len(self.keys)}", body)
        status, data = (502, b'{"error": "upstream timed out"}') if len(self.keys) == 1 else (201, b'{"id": 1}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


async def test_attack_an_agents_connector_tool_retries_a_write_without_an_idempotency_key(
    orders: Orders, tmp_path: Path
) -> None:
    """A connector operation given to an agent as a tool (`connector_tools`), called from a run. The
    API applies the order and its gateway answers 502; the tool layer retries. Before: the tool sent
    no Idempotency-Key at all, so the API, which honours keys, applied the order twice. Now the tool
    call's key (the step's key and the call's label, as a connector call's) goes on every attempt."""
    from podium.ai import call_tool
    from podium.connectors import connector_tools

    handler = type("Gateway", (_Gateway,), {"applied": {}, "keys": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    spec = {**orders.spec, "servers": [{"url": f"http://127.0.0.1:{srv.server_address[1]}"}]}
    api = open_connector("openapi", spec=spec, allow_private=True)
    (create,) = connector_tools(api, "orders", only=["createOrder"])
    wf = Workflow("buy")

    @wf.step
    async def order(ctx, input):  # type: ignore[no-untyped-def]
        return await call_tool(ctx, create, {"body": {"sku": "lamp", "qty": 1}})

    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf]) as client:
            handle = await client.start(wf, None)
            assert await handle.result() == {"id": 1}
        assert len(handler.keys) == 2 and handler.keys[0] is not None and handler.keys[0] == handler.keys[1]
        assert handler.keys[0].startswith(handle.id) or handle.id in handler.keys[0]
        assert list(handler.applied) == [handler.keys[0]]  # one order
    finally:
        await api.close()
        srv.shutdown()
        srv.server_close()


async def test_attack_an_http_tool_sends_a_write_again_without_a_key_or_after_a_2xx(orders: Orders, tmp_path: Path) -> None:
    """`podium.tools.HttpTool` (POST by default), called from a run. Before: it sent no
    Idempotency-Key, so a 502 after the API applied an order made two orders at an API that honours
    keys; and a 201 with a body that was not JSON was retried, three orders at one that does not."""
    from podium.ai import call_tool
    from podium.models import ToolError
    from podium.tools.http import HttpTool

    handler = type("Gateway", (_Gateway,), {"applied": {}, "keys": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    gateway = HttpTool("place_order", f"http://127.0.0.1:{srv.server_address[1]}/orders")
    broken = HttpTool("place_order_b", f"{orders.url}/orders")
    wf = Workflow("buy")

    @wf.step
    async def order(ctx, input):  # type: ignore[no-untyped-def]
        first = await call_tool(ctx, gateway, {"sku": "lamp"})
        try:
            await call_tool(ctx, broken, {"sku": "desk"})
        except ToolError as exc:
            return first, str(exc)
        return first, None

    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf]) as client:
            first, error = await client.run(wf, None)
        assert first == {"id": 1}
        assert len(handler.keys) == 2 and handler.keys[0] is not None and handler.keys[0] == handler.keys[1]
        assert len(handler.applied) == 1
        assert len(orders.applied) == 1 and error is not None and "not made again" in error
    finally:
        await gateway.aclose()
        await broken.aclose()
        srv.shutdown()
        srv.server_close()


async def test_attack_a_step_retry_ignores_the_retry_after_of_a_rate_limited_api(
    tmp_path: Path, crm: Crm, crm_spec: dict[str, Any]
) -> None:
    """The API answers 429 `Retry-After: 2`, longer than the connector waits inside a call (here
    none: one attempt), so the error goes to the step's RetryPolicy. Before: the step was retried
    after its own 10 ms, ignoring the Retry-After: the API was asked again at once (a client that
    ignores Retry-After gets blocked), the attempts were used up, and the run failed. Now a step
    retry waits what the system asked (up to 15 minutes)."""
    from podium import RetryPolicy

    crm.failures = [(429, {"Retry-After": "2"})]
    api = open_connector("openapi", spec={**crm_spec, "servers": [{"url": crm.url}]}, allow_private=True)
    api.retry = Backoff(max_attempts=1)
    wf = Workflow("sync")

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def fetch(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("crm").call("flaky", {})

    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"crm": api}) as client:
        assert await client.run(wf, None) == {"ok": True}
    first, second = (r["at"] for r in crm.requests if r["path"] == "/flaky")
    assert second - first >= 1.9, f"asked again after {second - first:.2f}s, though the API said 2s"



async def test_attack_a_drifted_or_dead_lettered_event_bypasses_the_policy_that_redacts_payloads(tmp_path: Path) -> None:
    """The workflow's policy redacts payloads (its run inputs are stored without personal data). A
    broker event that drifts from its contract goes to the quarantine, and one that cannot start a
    run (the workflow is switched off) to the dead letters. Before: both kept the event as it came,
    the customer's email included, where the run would have stored it redacted."""
    from podium import Policy
    from podium.connectors import Consumer

    from .brokers import RedisHarness
    from .conftest import need_broker

    need_broker("redis")
    broker = RedisHarness()
    wf = Workflow("orders-redacted")

    @wf.step
    async def handle(ctx, input):  # type: ignore[no-untyped-def]
        return input

    contract = {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
    conn = open_connector("redis", url="redis://127.0.0.1:6379/0", contracts={"event": contract})
    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"bus": conn}) as client:
            await client.set_policy(wf.name, Policy(redact=["payloads"]))
            consumer = Consumer(client, conn, workflow=wf.name, source=broker.source(), name="bus")
            await broker.publish_raw({"orderId": "A2", "email": "jane.doe@example.com"}, "m-drifted")

            async def quarantined() -> bool:
                await consumer.poll(timeout=0.5)
                return consumer.quarantined == 1

            deadline = time.monotonic() + 30
            while not await quarantined():
                assert time.monotonic() < deadline, "the drifted message never arrived"
            (listed,) = await client.quarantine.list()
            item = await client.quarantine.get(listed.id)  # with its payload
            await client.set_switch("workflow", wf.name, reason="month-end freeze")
            await broker.publish_raw({"order": "A3", "email": "john.roe@example.com"}, "m-frozen")
            while not consumer.dead_lettered:
                assert time.monotonic() < deadline, "the frozen message never arrived"
                await consumer.poll(timeout=0.5)
            letters = await client.store.kv_list("deadletters")
        stored = json.dumps(item.payload) + json.dumps(letters)
        assert "A2" in stored or "orderId" in stored  # kept (its keys), redacted
        assert "jane.doe@example.com" not in stored and "john.roe@example.com" not in stored
    finally:
        await broker.cleanup()
        await conn.close()
