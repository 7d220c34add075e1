"""Connector health: latency percentiles from the histogram, ``/metrics`` (every connector the
server's client holds or its store registered), ``GET /api/connectors`` (with the read
permission), and ``podium connectors status`` and ``podium outbox`` from the command line."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium import Client
from podium.connectors import ConnectorStats
from podium.connectors._health import percentile, quarantine_depth
from podium.connectors.sql import SqlConnector
from podium.connectors.webhook import WebhookConnector
from podium.resilience import Backoff

from .standins import Hook
from .test_outbox import orders_table, place

ROOT = Path(__file__).resolve().parents[2]


def _podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    full.pop("PODIUM_DB", None)
    full.pop("PODIUM_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        env=full, capture_output=True, text=True, timeout=180, cwd=ROOT,
    )


def test_percentiles_from_the_histogram() -> None:
    stats = ConnectorStats()
    assert percentile(stats.snapshot()["latency_buckets"], 0.5) is None
    for _ in range(90):
        stats.observe(0.003, ok=True)  # the (0.0025, 0.005] bucket
    for _ in range(10):
        stats.observe(0.2, ok=True)  # the (0.1, 0.25] bucket
    buckets = stats.snapshot()["latency_buckets"]
    p50, p95 = percentile(buckets, 0.5), percentile(buckets, 0.95)
    assert p50 is not None and 0.0025 < p50 <= 0.005
    assert p95 is not None and 0.1 < p95 <= 0.25
    stats.observe(60.0, ok=False)  # past the last bound: reported as the last bound
    assert percentile(stats.snapshot()["latency_buckets"], 1.0) == 10.0


async def test_quarantine_depth_counts_open_items_of_the_connector(tmp_path: Any) -> None:
    import time

    from podium.connectors._quarantine import QuarantineBook, QuarantineItem
    from podium.storage import open_store

    assert await quarantine_depth(object(), "crm") == 0  # not a store: nothing to count
    store = open_store(f"sqlite:///{tmp_path}/q.db")
    await store.open()
    try:
        assert await quarantine_depth(store, "crm") == 0
        now = time.time()
        for i, (name, status) in enumerate([("crm", "parked"), ("crm", "resolved"), ("erp", "parked")]):
            await QuarantineBook(store).put(
                QuarantineItem(id=f"q-{i:020x}", connector=name, operation="getContact", run_id=None, step_id=None,
                               workflow=None, policy="park", status=status, payload={}, diff=[], created_at=now,
                               updated_at=now)
            )
        assert await quarantine_depth(store, "crm") == 1  # the resolved one is not waiting
        assert await quarantine_depth(store, "erp") == 1
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def server(store: str, **kw: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The HTTP app around a client of ``store``, driven in-process (as tests/server/conftest.py does)."""
    pytest.importorskip("fastapi", reason="the server needs the 'server' extra: pip install 'podium[server]'")
    from podium.server import Settings, create_app

    app = create_app(Settings(store=store, trigger_interval=0.05, **kw))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
            yield app, http


async def test_metrics_and_api_show_every_connector(hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_OPS_HOOK", hook.url)  # a webhook's URL is its credential: never in the registry
    slack = WebhookConnector(hook.url, allow_private=True)
    slack.retry = Backoff(max_attempts=3, initial=0.01)
    orders_url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(orders_url)
    orders = SqlConnector(orders_url)
    await orders.call("transact", place(1), idempotency_key="k1")
    hook.failures = [(503, {})]
    await slack.guarded_call("post", {"text": "hi"})
    store = f"sqlite:///{tmp_path}/p.db"
    async with Client(store) as c:  # registered (not held): opened by the server on demand
        await c.add_capability("ops", "connector", {"kind": "webhook", "url_env": "PODIUM_TEST_OPS_HOOK"}, allow_private=True)
        await c.add_capability("gone", "connector", {"kind": "sql", "url_env": "PODIUM_TEST_UNSET_URL"})
    async with server(store, client_options={"connectors": {"slack": slack, "orders": orders}}) as (_, http):
        text = (await http.get("/metrics")).text
        assert "# TYPE podium_connector_calls_total counter" in text
        assert 'podium_connector_calls_total{connector="slack",kind="webhook"} 2' in text
        assert 'podium_connector_errors_total{connector="slack",kind="webhook"} 1' in text
        assert 'podium_connector_retries_total{connector="slack",kind="webhook"} 1' in text
        assert 'podium_connector_breaker_open{connector="slack",kind="webhook",state="closed"} 0' in text
        assert 'podium_connector_latency_seconds_bucket{connector="slack",kind="webhook",le="+Inf"} 2' in text
        assert "# TYPE podium_connector_latency_seconds histogram" in text
        assert 'podium_connector_quarantine_depth{connector="slack",kind="webhook"} 0' in text
        assert 'podium_connector_drift_total{connector="orders",kind="sql"} 0' in text
        assert 'podium_connector_calls_total{connector="ops",kind="webhook"} 0' in text
        assert 'podium_outbox_messages{connector="orders",status="pending"} 1' in text
        assert "podium_connector_token_expiry_seconds" not in text  # no credential that expires
        from prometheus_client.parser import text_string_to_metric_families

        names = [f.name for f in text_string_to_metric_families(text)]  # the official parser accepts it
        assert len(names) == len(set(names)) and "podium_connector_latency_seconds" in names
        slack.stats.token_expires_at = time.time() + 600
        text = (await http.get("/metrics")).text
        left = re.search(r'podium_connector_token_expiry_seconds\{connector="slack",kind="webhook"\} ([0-9.]+)', text)
        assert left is not None and 500 < float(left.group(1)) <= 600

        found = {c["name"]: c for c in (await http.get("/api/connectors")).json()["connectors"]}
        assert sorted(found) == ["gone", "ops", "orders", "slack"]
        s = found["slack"]
        assert s["ok"] is True and s["breaker"] == "closed" and s["calls"] == 2 and s["errors"] == 1
        assert s["latency_p50"] is not None and s["latency_p95"] >= s["latency_p50"]
        assert 500 < s["token_expires_in"] <= 600 and s["quarantine_depth"] == 0 and s["drifted"] == 0
        assert found["orders"]["ok"] is True and found["ops"]["ok"] is True
        assert found["gone"]["ok"] is False and "PODIUM_TEST_UNSET_URL" in found["gone"]["error"]
        assert "SECRETPATH" not in json.dumps(found)
        quick = (await http.get("/api/connectors", params={"check": "false"})).json()["connectors"]
        assert {c["name"]: c["ok"] for c in quick}["slack"] is None
    await orders.close()


async def test_the_api_needs_the_read_permission(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/p.db"
    async with Client(store) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("bot", ["viewer"])
        await c.define_role("starter", ["runs.start"])
        await c.create_user("nobody", ["starter"])
        tokens = [await c.create_token(u) for u in ("root", "bot", "nobody")]
    async with server(store, token=tokens[0]) as (_, http):
        assert (await http.get("/api/connectors")).status_code == 401
        ok = await http.get("/api/connectors", headers={"Authorization": f"Bearer {tokens[1]}"})
        assert ok.status_code == 200 and ok.json() == {"connectors": []}
        refused = await http.get("/api/connectors", headers={"Authorization": f"Bearer {tokens[2]}"})
        assert refused.status_code == 403 and "workflows.read" in refused.text


def _orders_and_slack(hook: Hook, tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """A store with the connectors ``orders`` (SQL, with an outbox) and ``slack`` (the hook),
    registered from the command line: (store URL, orders URL, the environment they read)."""
    db = f"sqlite:///{tmp_path}/p.db"
    orders_url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(orders_url)
    env = {"ORDERS_URL": orders_url, "PODIUM_TEST_SLACK_HOOK": hook.url}
    for args in (
        ["orders", "sql", "--set", "url_env=ORDERS_URL"],
        ["slack", "webhook", "--set", "url_env=PODIUM_TEST_SLACK_HOOK", "--allow-private"],
    ):
        added = _podium("connectors", "add", *args, "--db", db)
        assert added.returncode == 0, added.stderr
    return db, orders_url, env


def test_status_and_outbox_from_the_command_line(hook: Hook, tmp_path: Path) -> None:
    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    import asyncio

    async def write() -> None:
        orders = SqlConnector(orders_url)
        await orders.call("transact", place(3), idempotency_key="k3")
        await orders.close()

    asyncio.run(write())
    listed = _podium("outbox", "list", "--source", "orders", "--json", "--db", db, env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["status"] == "pending" and row["target"] == "slack" and "arguments" not in row
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 0 and "sent=1" in relayed.stdout, relayed.stdout + relayed.stderr
    assert list(hook.effects) == ["k3/message-0"]

    async def relay_entries() -> list[Any]:  # review: deliveries were not audited at all
        async with Client(db, recover=False, execute=False) as c:
            return [e for e in await c.store.list_audit() if e.action == "connector.relay"]

    (entry,) = asyncio.run(relay_entries())
    details = entry.details()
    assert entry.target == "capability:slack" and details["outcome"] == "sent" and details["source"] == "orders"
    assert details["operation"] == "post" and len(details["arguments_sha256"]) == 64
    assert "text" not in json.dumps(details)  # the hash, never the message itself
    again = _podium("outbox", "retry", "--source", "orders", "k3/message-0", "--db", db, env=env)
    assert again.returncode == 2 and "no unsent message" in again.stderr and "Traceback" not in again.stderr
    wrong = _podium("outbox", "list", "--source", "slack", "--db", db, env=env)
    assert wrong.returncode == 2 and "sql connector" in wrong.stderr

    status = _podium("connectors", "status", "--json", "--db", db, env=env)
    assert status.returncode == 0, status.stderr
    found = {s["name"]: s for s in map(json.loads, status.stdout.splitlines())}
    assert found["orders"]["ok"] is True and found["slack"]["ok"] is True
    assert found["slack"]["breaker"] == "closed" and found["slack"]["quarantine_depth"] == 0
    text = _podium("connectors", "status", "--db", db, env={"PODIUM_TEST_SLACK_HOOK": hook.url})  # ORDERS_URL unset: exit 1
    assert text.returncode == 1 and "ORDERS_URL" in text.stdout and "slack\twebhook\tok" in text.stdout
    assert "SECRETPATH" not in status.stdout + text.stdout


@pytest.fixture(autouse=True)
def _shipped_kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shipped webhook kind (tests/connectors/webhook_connector.py, the docs' example, replaces
    it in this process when its test module is imported)."""
    from podium.connectors import _registry

    monkeypatch.delenv("PODIUM_TEST_UNSET_URL", raising=False)
    before = _registry._KINDS["webhook"]
    _registry._KINDS["webhook"] = WebhookConnector
    yield
    _registry._KINDS["webhook"] = before


def test_a_worker_relays_an_outbox_beside_its_runs(hook: Hook, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    orders_url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(orders_url)
    for args in (
        ["orders", "sql", "--set", "url_env=ORDERS_URL"],
        ["slack", "webhook", "--set", "url_env=SLACK_URL", "--allow-private"],
    ):
        assert _podium("connectors", "add", *args, "--db", db).returncode == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.update(ORDERS_URL=orders_url, SLACK_URL=hook.url)
    env.pop("PODIUM_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", "worker", "--db", db, "--outbox", "orders"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        import asyncio

        async def write() -> None:
            orders = SqlConnector(orders_url)
            await orders.call("transact", place(4), idempotency_key="k4")
            await orders.close()

        asyncio.run(write())
        assert hook.arrived.wait(120), "the worker's relay delivered nothing"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
    assert list(hook.effects) == ["k4/message-0"]
    assert "relaying the outbox of orders -> slack" in output and proc.returncode == 0, output


async def test_attack_readers_polling_the_api_do_not_probe_the_systems_each_time(tmp_path: Path) -> None:
    """Before: every ``GET /api/connectors`` (any viewer, the dashboard open in many tabs) probed
    every connected system again: readers could hammer the business systems through the server.
    Now one probe answers for every reader for 10 s."""
    from podium.connectors._base import Connector, Operation

    class Counted(Connector):
        kind = "counted"
        probes = 0

        def operations(self) -> list[Operation]:
            return []

        async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
            return None

        async def health(self) -> dict[str, Any]:
            type(self).probes += 1
            return {"ok": True}

    async with server(f"sqlite:///{tmp_path}/p.db", client_options={"connectors": {"erp": Counted()}}) as (_, http):
        import asyncio

        answers = await asyncio.gather(*(http.get("/api/connectors") for _ in range(20)))
        answers.append(await http.get("/api/connectors"))
    assert all(r.status_code == 200 and r.json()["connectors"][0]["ok"] is True for r in answers)
    assert Counted.probes == 1


def test_the_relay_command_says_what_the_policy_set_aside(hook: Hook, tmp_path: Path) -> None:
    """``podium outbox relay --once`` printed ``sent retrying failed`` only: a message the
    workflow's policy of now refuses (fifth session) was counted nowhere and the command exited 0.
    It now prints ``refused=N`` with where to look, and exits 1."""
    import asyncio

    from podium.governance.policy import Policy
    from podium.records import WRITER, Writer

    db, orders_url, env = _orders_and_slack(hook, tmp_path)

    async def write() -> None:
        orders = SqlConnector(orders_url)
        WRITER.set(Writer(workflow="checkout", run_id="r-1"))  # as the engine sets it for a run's step
        await orders.call("transact", place(4), idempotency_key="k4")
        await orders.close()
        async with Client(db, recover=False, execute=False) as c:
            await c.set_policy("checkout", Policy(allowed_connectors=["orders"]))

    asyncio.run(write())
    relayed = _podium("outbox", "relay", "--source", "orders", "--once", "--db", db, env=env)
    assert relayed.returncode == 1, relayed.stdout + relayed.stderr
    assert "sent=0" in relayed.stdout and "refused=1" in relayed.stdout, relayed.stdout
    assert "podium outbox list --source orders --status failed" in relayed.stdout
    listed = _podium("outbox", "list", "--source", "orders", "--status", "failed", "--db", db, env=env)
    assert listed.returncode == 0 and "slack" in listed.stdout, listed.stdout + listed.stderr  # the hint works
    assert not list(hook.effects)
    # the reason names the retry command with this message's source and key, not placeholders
    shown = _podium("outbox", "list", "--source", "orders", "--status", "failed", "--json", "--db", db, env=env)
    [msg] = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
    assert f"podium outbox retry --source orders {msg['key']}" in msg["last_error"], msg["last_error"]
    retried = _podium("outbox", "retry", "--source", "orders", msg["key"], "--db", db, env=env)
    assert retried.returncode == 0, retried.stdout + retried.stderr  # the command works as pasted
