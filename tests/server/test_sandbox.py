"""The sandbox company seen from the server: ``GET /api/sandbox`` (what each system received, behind
the same authorization as every route) and its event bus (business events that start workflows
through the server's triggers, on the embedded bus and on NATS)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the sandbox needs uvicorn: pip install -e '.[demo]'")
pytest.importorskip("aiosmtpd", reason="the sandbox mailbox needs aiosmtpd: pip install -e '.[demo]'")

import podium
from podium.sandbox import Sandbox, default_directory

#: A workflow the company's ``order.created`` event starts: it asks the CRM for a follow-up task.
followup = podium.Workflow("followup")
followup.triggers = [{"event": "order.created"}]  # type: ignore[attr-defined]


@followup.step
async def task(ctx: podium.StepContext, input: dict) -> dict:
    answer = await ctx.connector("crm").call(
        "createTask", {"customer_id": input["customer_id"], "body": {"title": f"thank for order {input['order_id']}"}}
    )
    return {"order_id": input["order_id"], "task_id": answer["task_id"]}


async def _until(what: str, probe: Any, timeout: float = 30.0) -> Any:
    """Poll ``probe()`` (sync or async) until it returns something truthy, failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def _order_and_follow_up(app: Any, company: Sandbox) -> None:
    """Order through the ERP's API; the ``order.created`` event starts ``followup`` once, whose task
    lands in the CRM; an event from elsewhere is recorded as received by the company."""
    client = app.state.client
    async with httpx.AsyncClient() as web:
        r = await web.post(f"{company.urls['erp']}/orders", json={"customer_id": "C001", "sku": "TP-30", "qty": 2})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]

    runs = await _until("the followup run", lambda: client.list(workflow="followup"))
    assert len(runs) == 1
    assert await client.result(runs[0].id, timeout=60) == {"order_id": order_id, "task_id": 1}
    assert [r["operation"] for r in company.received("crm")] == ["createTask"]
    (event,) = [e for e in company.events() if e["topic"] == "order.created"]
    assert event["sent_at"] is not None and event["payload"]["amount"] == 158.0  # 2 x 79.00

    # The same event again (a redelivery) starts nothing new: its idempotency key names the run.
    await client.emit("order.created", event["payload"])
    await client.emit("invoice.paid", {"invoice": "INV-7", "amount": 158.0})
    got = await _until("the invoice event", lambda: company.received("event_bus"))
    assert [(r["operation"], r["body"]["invoice"]) for r in got] == [("invoice.paid", "INV-7")]  # not its own events
    assert len(await client.list(workflow="followup")) == 1


async def test_business_events_start_workflows_on_the_embedded_bus(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    with Sandbox(tmp_path / "company") as company:
        conns = company.connectors()
        async with server("memory://", workflows=[followup], client_options={"connectors": conns}) as (app, _):
            await company.attach(app.state.client)  # the company's events go on the client's (store's) bus
            await _order_and_follow_up(app, company)
            await company.detach()
        await asyncio.gather(*(c.close() for c in conns.values()))


async def test_events_wait_in_the_outbox_until_a_bus_takes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    with Sandbox(tmp_path / "company") as company:
        async with httpx.AsyncClient() as web:
            r = await web.post(f"{company.urls['support_desk']}/tickets", json={"customer_id": "C002", "message": "broken zip"})
            assert r.status_code == 201
            r = await web.post(f"{company.urls['erp']}/price-changes", json={"vendor": "nobody", "change_pct": 5})
            assert r.status_code == 404  # a refused write publishes nothing
        (opened,) = company.events()
        assert opened["topic"] == "ticket.opened" and opened["sent_at"] is None
        async with podium.Client("memory://") as client:
            seen: list[Any] = []
            await client.on("ticket.*", lambda topic, payload: seen.append((topic, payload["message"])))
            await company.attach(client)
            await _until("the waiting event", lambda: seen)
            await company.detach()
        assert seen == [("ticket.opened", "broken zip")] and company.events()[0]["sent_at"] is not None


async def test_podiums_own_topics_are_not_recorded_as_received(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's streamed model tokens (``podium.tokens.<run_id>``) go on the same bus as business events:
    the company records the latter only, so "what each system received" is not filled with tokens."""
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    with Sandbox(tmp_path / "company") as company:
        async with podium.Client("memory://") as client:
            await company.attach(client)
            await client.emit("podium.tokens.run-1", {"text": "Hel"})
            await client.emit("podium.tokens.run-1", {"text": "lo"})
            await client.emit("invoice.paid", {"invoice": "INV-8"})
            got = await _until("the invoice event", lambda: company.received("event_bus"))
            await company.detach()
        assert [r["operation"] for r in got] == ["invoice.paid"]
        assert all(not r["operation"].startswith("podium.") for r in company.received())


def _nats_down() -> str | None:
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", 4222))
        except OSError as exc:
            return f"nothing answers on 127.0.0.1:4222 ({exc})"
    return None


@pytest.fixture
async def nats_url() -> Any:
    if (why := _nats_down()) is not None:
        pytest.skip(f"NATS is down: {why}")
    pytest.importorskip("nats", reason="the NATS bus needs nats-py: pip install -e '.[nats]'")
    prefix = f"sbx{uuid.uuid4().hex[:10]}"
    yield f"nats://127.0.0.1:4222?prefix={prefix}"
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(f"{prefix.upper()}_EVENTS")
    await nc.close()


async def test_business_events_start_workflows_over_nats(server: Any, tmp_path: Path, nats_url: str) -> None:
    """The sandbox publishes on NATS itself: the server, on the same NATS bus, never attaches to it."""
    with Sandbox(tmp_path / "company", event_bus=nats_url) as company:
        conns = company.connectors()
        options = {"connectors": conns, "event_bus": nats_url}
        async with server("memory://", workflows=[followup], client_options=options) as (app, _):
            await _order_and_follow_up(app, company)
        await asyncio.gather(*(c.close() for c in conns.values()))


def test_a_sandbox_bus_that_is_not_nats_is_refused() -> None:
    with pytest.raises(podium.ConfigError, match="nats://"):
        Sandbox(event_bus="redis://127.0.0.1:6379")


# -- GET /api/sandbox ----------------------------------------------------------------------------------


def test_the_server_finds_the_sandbox_beside_its_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_SANDBOX_DIR", raising=False)
    assert default_directory(f"sqlite:///{tmp_path}/p.db") == tmp_path / "sandbox"
    assert default_directory("sqlite:///.podium/podium.db") == Path(".podium/sandbox")
    assert default_directory("postgresql://u@h/db") == Path(".podium/sandbox")
    monkeypatch.setenv("PODIUM_SANDBOX_DIR", str(tmp_path / "elsewhere"))
    assert default_directory(f"sqlite:///{tmp_path}/p.db") == tmp_path / "elsewhere"


async def test_api_sandbox_empty_then_what_each_system_received(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODIUM_SANDBOX_DIR", raising=False)
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    store = f"sqlite:///{tmp_path}/podium.db"
    async with server(store) as (app, http):
        r = await http.get("/api/sandbox")
        assert r.status_code == 200
        empty = r.json()
        assert empty["exists"] is False and empty["systems"] == [] and empty["directory"] == str(tmp_path / "sandbox")

        with Sandbox(default_directory(store)) as company:  # where podium demo --db STORE keeps it
            async with httpx.AsyncClient() as web:
                await web.post(f"{company.urls['support_desk']}/tickets", json={"customer_id": "C001", "message": "hi"})
                await web.patch(f"{company.urls['erp']}/products/TP-30", json={"list_price": 84.0})
            conns = company.connectors()
            await conns["finance_mail"].call("send", {"to": "finance@northwind.example", "subject": "PO-501", "text": "check"})
            await asyncio.gather(*(c.close() for c in conns.values()))

        data = (await http.get("/api/sandbox", params={"limit": 5})).json()
        assert data["exists"] is True
        systems = {s["name"]: s for s in data["systems"]}
        assert list(systems)[:6] == ["crm", "support_desk", "marketing", "erp", "finance_mailbox", "event_bus"]
        assert systems["support_desk"]["count"] == 1
        assert systems["support_desk"]["received"][0]["operation"] == "createTicket"
        assert systems["support_desk"]["received"][0]["body"]["message"] == "hi"
        assert systems["erp"]["received"][0]["body"] == {"sku": "TP-30", "list_price": 84.0}
        assert systems["crm"]["count"] == 0 and systems["crm"]["received"] == []
        assert data["mails"][0]["subject"] == "PO-501"
        assert sorted(e["topic"] for e in data["events"]) == ["mail.received", "ticket.opened"]
        assert all(e["sent_at"] is None for e in data["events"])  # no bus was attached

        # Authorization as on every route: a viewer may not read what workflows sent the systems.
        c = app.state.client
        await c.create_user("vic", ["viewer"])
        await c.create_user("ops", ["operator"])
        viewer, operator = await c.create_token("vic"), await c.create_token("ops")
        assert (await http.get("/api/sandbox")).status_code == 401
        r = await http.get("/api/sandbox", headers={"Authorization": f"Bearer {viewer}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
        r = await http.get("/api/sandbox", headers={"Authorization": f"Bearer {operator}"})
        assert r.status_code == 200 and r.json()["systems"][1]["count"] == 1
        r = await http.get("/api/sandbox", params={"limit": 0}, headers={"Authorization": f"Bearer {operator}"})
        assert r.status_code == 422


async def test_attack_an_order_posted_to_the_erp_cannot_run_code_in_the_workflow(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: anyone who reaches the sandbox ERP's HTTP port (no login: it is a demo company)
    posts an order whose body holds the payload store's tag for an object; the ``order.created``
    event carries it to the trigger, the run's input held it, and reading that input back ran
    ``subprocess.Popen`` in the server. Now it is data, and the run sees it as sent."""
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    marker = tmp_path / "pwned"
    forged = {"$podium": "dataclass", "type": "subprocess:Popen", "value": {"args": ["touch", str(marker)]}}
    with Sandbox(tmp_path / "company") as company:
        conns = company.connectors()
        async with server("memory://", workflows=[followup], client_options={"connectors": conns}) as (app, _):
            await company.attach(app.state.client)
            async with httpx.AsyncClient() as web:
                r = await web.post(f"{company.urls['erp']}/orders",
                                   json={"customer_id": "C001", "sku": "TP-30", "qty": 1, "note": forged})
            assert r.status_code == 201, r.text
            client = app.state.client
            [run] = await _until("the followup run", lambda: client.list(workflow="followup"))
            await client.result(run.id, timeout=60)
            history = await client.history(run.id)
            assert podium._serde.loads(history.run.input)["note"] == forged
            await company.detach()
        await asyncio.gather(*(c.close() for c in conns.values()))
    assert not marker.exists()


async def test_api_sandbox_masks_credentials_like_every_run_view(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a workflow sent a system is shown as the run views show data: secret fields masked."""
    monkeypatch.delenv("PODIUM_SANDBOX_DIR", raising=False)
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    store = f"sqlite:///{tmp_path}/podium.db"
    async with server(store) as (_, http):
        with Sandbox(default_directory(store)) as company:
            async with httpx.AsyncClient() as web:
                await web.post(f"{company.urls['support_desk']}/tickets",
                               json={"customer_id": "C001", "message": "my api_key=sk-live-abcdefghijklmnop", "password": "hunter22"})
        text = (await http.get("/api/sandbox")).text
    assert "hunter22" not in text and "sk-live-abcdefghijklmnop" not in text and "sk-***" in text
