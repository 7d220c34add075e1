"""The sandbox company's conformance suite, run on each database it keeps its tables in: the SQLite
file by default, PostgreSQL and MariaDB by URL. Each test gets a database of its own (dropped after);
a server that does not answer skips its tests and says why. Then one scenario (pricing) end to end
on PostgreSQL, and the errors a wrong database URL gets."""

from __future__ import annotations

import asyncio
import shlex
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the sandbox needs uvicorn: pip install -e '.[demo]'")
pytest.importorskip("aiosmtpd", reason="the sandbox mailbox needs aiosmtpd: pip install -e '.[demo]'")
pytest.importorskip("sqlalchemy", reason="the sandbox's database needs SQLAlchemy: pip install -e '.[demo]'")

import podium
from podium.sandbox import Sandbox, report, sample


def _down(port: int) -> str | None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as exc:
        return f"nothing answers on 127.0.0.1:{port} ({exc})"
    return None


def _mariadb(request: pytest.FixtureRequest) -> str:
    if (why := _down(3306)) is not None:
        print(f"SKIP MariaDB: {why}")
        pytest.skip(f"MariaDB is down: {why}")
    import pymysql

    name = f"podium_sbx_{uuid.uuid4().hex[:10]}"

    def server() -> Any:
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)

    with server() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")

    def drop() -> None:
        with server() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    request.addfinalizer(drop)
    return f"mysql+pymysql://root@127.0.0.1:3306/{name}"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest) -> str | None:
    """The sandbox's database URL (None: the default SQLite file in its folder), fresh and empty."""
    if request.param == "sqlite":
        return None
    if request.param == "postgresql":
        if (why := _down(5432)) is not None:
            print(f"SKIP PostgreSQL: {why}")
        return str(request.getfixturevalue("pg_url"))
    return _mariadb(request)


@pytest.fixture
def company(tmp_path: Path, database: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.delenv("PODIUM_SANDBOX_DB", raising=False)
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    with Sandbox(tmp_path / "company", database=database) as sandbox:
        yield sandbox


def _call(company: Sandbox, system: str, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    r = httpx.request(method, company.urls[system] + path, json=body, timeout=30)
    assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def test_seeded_from_the_sample_data_once(company: Sandbox, tmp_path: Path, database: str | None) -> None:
    data = sample()
    assert company.db.dialect == ("sqlite" if database is None else "postgresql" if "postgres" in database else "mysql")
    customers = _call(company, "crm", "GET", "/customers")
    assert [c["id"] for c in customers] == sorted(c["id"] for c in data["customers"])
    assert _call(company, "crm", "GET", "/customers/C001")["name"] == "Ann Lee"
    _call(company, "crm", "GET", "/customers/C999", status=404)
    products = _call(company, "erp", "GET", "/products")
    assert len(products) == len(data["products"]) and isinstance(products[0]["unit_cost"], float)
    assert _call(company, "erp", "GET", "/products/TP-30")["list_price"] == 79.0
    assert company.received() == [] and company.events() == []
    _call(company, "support_desk", "POST", "/tickets", {"customer_id": "C001", "message": "kept"}, status=201)

    # The same database again keeps what it holds; fresh=True starts from the sample data.
    with Sandbox(tmp_path / "company", database=database) as again:
        assert [r["operation"] for r in again.received()] == ["createTicket"]
        assert len(_call(again, "crm", "GET", "/customers")) == len(data["customers"])
    with Sandbox(tmp_path / "company", database=database, fresh=True) as fresh:
        assert fresh.received() == [] and _call(fresh, "support_desk", "GET", "/tickets") == []
        assert len(_call(fresh, "erp", "GET", "/products")) == len(data["products"])


def test_each_system_writes_and_what_it_received(company: Sandbox) -> None:
    task = _call(company, "crm", "POST", "/customers/C001/tasks", {"title": "call back"}, status=201)
    opened = _call(company, "support_desk", "POST", "/tickets", {"customer_id": "C002", "message": "zip broke"}, status=201)
    second = _call(company, "support_desk", "POST", "/tickets", {"customer_id": "C003", "message": "invoice?"}, status=201)
    assert isinstance(task["task_id"], int) and second["ticket_id"] == opened["ticket_id"] + 1
    t1, t2 = opened["ticket_id"], second["ticket_id"]
    _call(company, "support_desk", "POST", f"/tickets/{t1}/replies", {"text": "sorry", "intent": "technical"}, status=201)
    _call(company, "support_desk", "POST", f"/tickets/{t2}/escalations", {"reason": "unsure", "intent": "billing"}, status=201)
    _call(company, "support_desk", "POST", "/tickets/999/replies", {"text": "x"}, status=404)
    assert _call(company, "support_desk", "GET", f"/tickets/{t1}")["replies"][0]["text"] == "sorry"
    assert [t["id"] for t in _call(company, "support_desk", "GET", "/tickets?status=escalated")] == [t2]
    assert [t["id"] for t in _call(company, "support_desk", "GET", "/tickets")] == [t2, t1]
    # Enrolling twice keeps one membership, with the newer note (an upsert on every dialect).
    _call(company, "marketing", "POST", "/campaigns/CMP-RETAIN/members", {"customer_id": "C001", "note": "a"}, status=201)
    _call(company, "marketing", "POST", "/campaigns/CMP-RETAIN/members", {"customer_id": "C001", "note": "b"}, status=201)
    _call(company, "marketing", "POST", "/campaigns/NOPE/members", {"customer_id": "C001"}, status=404)
    assert _call(company, "marketing", "GET", "/campaigns/CMP-RETAIN/members") == [{"customer_id": "C001", "note": "b"}]
    _call(company, "erp", "PATCH", "/products/TP-30", {"list_price": 84.5})
    _call(company, "erp", "POST", "/purchase-orders/PO-501/flags", {"reason": "margin"}, status=201)
    assert [p["po_id"] for p in _call(company, "erp", "GET", "/purchase-orders?status=open") if p["flag"]] == ["PO-501"]
    stock = _call(company, "erp", "GET", "/products/TP-30")["stock"]
    order = _call(company, "erp", "POST", "/orders", {"customer_id": "C001", "sku": "TP-30", "qty": 2}, status=201)
    assert order["amount"] == 169.0 and _call(company, "erp", "GET", "/products/TP-30")["stock"] == stock - 2
    _call(company, "erp", "POST", "/orders", {"customer_id": "C001", "sku": "TP-30", "qty": stock + 1}, status=409)
    r = httpx.get(f"{company.urls['support_desk']}/tickets/abc", timeout=30)
    assert r.status_code in (404, 422) and "error" in r.json()  # SQLite finds none; a typed column refuses it

    async def mail() -> None:
        conn = company.connector("finance_mail")
        try:
            await conn.call("send", {"to": "finance@northwind.example", "subject": "PO-501", "text": "check"})
        finally:
            await conn.close()

    asyncio.run(mail())
    assert [(r["system"], r["operation"]) for r in company.received()] == [
        ("crm", "createTask"), ("support_desk", "createTicket"), ("support_desk", "createTicket"),
        ("support_desk", "replyToTicket"), ("support_desk", "escalateTicket"),
        ("marketing", "addToCampaign"), ("marketing", "addToCampaign"),
        ("erp", "updateProduct"), ("erp", "flagPurchaseOrder"), ("erp", "createOrder"), ("finance_mailbox", "mail"),
    ]
    assert company.received("erp")[0]["body"] == {"sku": "TP-30", "list_price": 84.5}
    assert company.received("crm")[0]["body"] == {"customer_id": "C001", "title": "call back"}
    (got,) = company.mails()
    assert got["subject"] == "PO-501" and got["recipients"] == "finance@northwind.example" and "check" in got["body"]


def test_the_event_outbox_waits_for_a_bus_then_sends_once(company: Sandbox) -> None:
    _call(company, "support_desk", "POST", "/tickets", {"customer_id": "C002", "message": "hi"}, status=201)
    _call(company, "erp", "POST", "/price-changes", {"vendor": "nobody", "change_pct": 5}, status=404)  # refused: none
    _call(company, "erp", "POST", "/price-changes", {"vendor": "acme", "change_pct": 5}, status=201)
    events = company.events()
    assert [e["topic"] for e in events] == ["ticket.opened", "price.changed"]
    assert all(e["sent_at"] is None for e in events) and events[1]["payload"]["skus"]
    assert len({e["payload"]["idempotency_key"] for e in events}) == 2

    async def go() -> list[str]:
        seen: list[str] = []
        async with podium.Client("memory://") as client:
            await client.on("*", lambda topic, payload: seen.append(topic))
            await company.attach(client)
            for _ in range(600):  # poll with a deadline: the relay runs in the sandbox's thread
                if all(e["sent_at"] is not None for e in company.events()):
                    break
                await asyncio.sleep(0.05)
            await client.emit("invoice.paid", {"invoice": "INV-1"})  # from elsewhere: recorded as received
            for _ in range(600):
                if company.received("event_bus"):
                    break
                await asyncio.sleep(0.05)
            await company.detach()
        return seen

    seen = asyncio.run(go())
    assert all(e["sent_at"] is not None for e in company.events())
    assert seen[:2] == ["ticket.opened", "price.changed"]
    assert [r["operation"] for r in company.received("event_bus")] == ["invoice.paid"]  # not its own events


def test_the_undo_operations(company: Sandbox) -> None:
    task = _call(company, "crm", "POST", "/customers/C001/tasks", {"title": "offer"}, status=201)["task_id"]
    assert [t["task_id"] for t in _call(company, "crm", "GET", "/customers/C001/tasks")] == [task]
    assert _call(company, "crm", "DELETE", f"/customers/C001/tasks/{task}") == {"deleted": task}
    _call(company, "crm", "DELETE", f"/customers/C001/tasks/{task}", status=404)
    assert _call(company, "crm", "GET", "/customers/C001/tasks") == []
    ticket = _call(company, "support_desk", "POST", "/tickets", {"customer_id": "C001", "message": "m"}, status=201)["ticket_id"]
    assert _call(company, "support_desk", "PATCH", f"/tickets/{ticket}", {"status": "cancelled", "priority": "low"}) == {
        "ticket_id": ticket, "status": "cancelled", "priority": "low"}
    assert _call(company, "support_desk", "GET", f"/tickets/{ticket}")["status"] == "cancelled"
    _call(company, "support_desk", "PATCH", "/tickets/999", {"status": "cancelled"}, status=404)
    _call(company, "marketing", "POST", "/campaigns/CMP-RETAIN/members", {"customer_id": "C002"}, status=201)
    assert _call(company, "marketing", "DELETE", "/campaigns/CMP-RETAIN/members/C002") == {"removed": "C002"}
    _call(company, "marketing", "DELETE", "/campaigns/CMP-RETAIN/members/C002", status=404)
    ops = [r["operation"] for r in company.received()]
    assert ops == ["createTask", "deleteTask", "createTicket", "updateTicket", "addToCampaign", "removeFromCampaign"]


def test_the_erp_operations_a_price_change_uses(company: Sandbox) -> None:
    got = _call(company, "erp", "PATCH", "/products", {"products": [
        {"sku": "TP-30", "unit_cost": 50.5}, {"sku": "NEW-1", "vendor": "acme", "unit_cost": 3.25, "list_price": 9.0,
                                              "min_margin_pct": 30, "channels": "web"}]})
    assert got == {"updated": 2, "created": ["NEW-1"]}
    assert _call(company, "erp", "GET", "/products/NEW-1")["unit_cost"] == 3.25
    assert _call(company, "erp", "GET", "/products/TP-30")["unit_cost"] == 50.5
    _call(company, "erp", "PATCH", "/products", {"products": [{"sku": "X"}]}, status=422)
    # Publishing a listing again replaces it (one row per channel and SKU).
    for price in (9.0, 9.5):
        _call(company, "erp", "PUT", "/channels/web/listings", {"items": [
            {"sku": "NEW-1", "unit_cost": 3.25, "list_price": price}, {"sku": "TP-30", "unit_cost": 50.5, "list_price": 79.0}],
            "effective": "2027-01-01"})
    assert _call(company, "erp", "GET", "/channels/web/listings") == [
        {"sku": "NEW-1", "unit_cost": 3.25, "list_price": 9.5, "effective": "2027-01-01"},
        {"sku": "TP-30", "unit_cost": 50.5, "list_price": 79.0, "effective": "2027-01-01"}]
    assert _call(company, "erp", "GET", "/channels/retail/listings") == []
    # Flags: a known PO is flagged, an unknown one recorded once (a second batch updates its flag).
    for reason in ("below margin", "still below"):
        _call(company, "erp", "POST", "/purchase-orders/flags", {"flags": [
            {"po_id": "PO-501", "sku": "TP-30", "reason": reason},
            {"po_id": "PO-NEW", "sku": "NEW-1", "qty": 4, "unit_cost": 3.25, "reason": reason}]}, status=201)
    pos = {p["po_id"]: p for p in _call(company, "erp", "GET", "/purchase-orders")}
    assert pos["PO-501"]["flag"] == "still below" and pos["PO-501"]["sku"] == sample_po("PO-501")["sku"]
    assert (pos["PO-NEW"]["qty"], pos["PO-NEW"]["status"], pos["PO-NEW"]["flag"]) == (4, "open", "still below")

    async def through_sql() -> list[dict[str, Any]]:  # the company_db connector reads the same database
        conn = company.connector("company_db")
        try:
            return list(await conn.call("query", {"table": "purchase_orders", "where": {"po_id": "PO-NEW"}}))
        finally:
            await conn.close()

    assert [r["flag"] for r in asyncio.run(through_sql())] == ["still below"]


def sample_po(po_id: str) -> dict[str, Any]:
    return next(p for p in sample()["purchase_orders"] if p["po_id"] == po_id)


def test_the_report_reads_the_same_database(tmp_path: Path, database: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_SANDBOX_DB", raising=False)
    folder = tmp_path / "company"
    empty = report(folder, database=database)
    assert empty["exists"] is False and empty["systems"] == []  # an empty database, or no file yet
    assert not (folder / "company.db").exists()  # reading creates nothing
    with Sandbox(folder, database=database) as company:
        _call(company, "support_desk", "POST", "/tickets", {"customer_id": "C001", "message": "hi"}, status=201)
    if database is not None:  # the dashboard finds a server database through $PODIUM_SANDBOX_DB
        monkeypatch.setenv("PODIUM_SANDBOX_DB", database)
    kept = report(folder)
    assert kept["exists"] is True and kept["database"] == company.db.shown
    counts = {s["name"]: s["count"] for s in kept["systems"]}
    assert counts["support_desk"] == 1 and kept["events"][0]["topic"] == "ticket.opened"


# -- one scenario end to end on PostgreSQL --------------------------------------------------------------


def test_the_pricing_scenario_on_postgresql(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.scenarios import pricing
    from tests.scenarios.test_pricing import DATA, expected

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    below, flagged = expected(str(DATA / "retail_catalogue.csv"), str(DATA / "retail_purchase_orders.csv"), "acme", 8)

    async def go(company: Sandbox) -> dict[str, Any]:
        async with podium.Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors()) as client:
            return dict(await client.run(pricing.workflow, {"writer": "template", "vendor": "acme", "change_pct": 8,
                                                            "effective": "2027-01-01"}))

    with Sandbox(database=pg_url) as company:
        assert company.db.dialect == "postgresql"
        out = asyncio.run(go(company))
        assert set(out["below_margin_skus"]) == below and set(out["flagged_pos"]) == flagged and flagged
        products = {p["sku"]: p for p in _call(company, "erp", "GET", "/products")}
        for s in out["skus"]:
            assert products[s["sku"]]["unit_cost"] == pytest.approx(s["unit_cost"] * 1.08, abs=1e-3)
            for ch in s["channels"]:
                listed = {i["sku"]: i for i in _call(company, "erp", "GET", f"/channels/{ch}/listings")}
                assert listed[s["sku"]]["effective"] == "2027-01-01"
        flags = {p["po_id"] for p in _call(company, "erp", "GET", "/purchase-orders") if p["flag"]}
        assert flags == flagged
        (mail,) = company.mails()
        assert all(po in mail["body"] for po in flagged)
        assert {r["operation"] for r in company.received("erp")} >= {"updateProducts", "publishListings", "flagPurchaseOrders"}
    # What it received is in PostgreSQL, where the dashboard reads it.
    assert report(tmp_path, database=pg_url)["exists"] is True


# -- a wrong database URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "says"), [
    ("not a url", "is not a database URL; use sqlite:///"),
    ("oracle://u@h/db", "runs on SQLite, PostgreSQL or MariaDB/MySQL, not 'oracle'"),
    ("sqlite://", "names no file"),
    ("mysql+nosuchdriver://root@127.0.0.1/x", "has no driver"),
])
def test_a_bad_url_says_what_and_how_to_fix(url: str, says: str) -> None:
    with pytest.raises(podium.ConfigError, match="--sandbox-db") as err:
        Sandbox(database=url)
    assert says in str(err.value)


def test_an_unreachable_server_or_missing_database_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PODIUM_SANDBOX_DB", f"postgresql://postgres:s3cret@127.0.0.1:{port}/x")
    company = Sandbox()
    with pytest.raises(podium.ConfigError, match=r"\$PODIUM_SANDBOX_DB: cannot reach the sandbox database") as err:
        company.start()
    assert "s3cret" not in str(err.value) and "start the server or fix the URL" in str(err.value)
    assert not company.directory.exists()  # a failed start leaves nothing behind
    if _down(5432) is None:
        with pytest.raises(podium.ConfigError, match="does not exist .* create it .*createdb"):
            Sandbox(database=f"postgresql://postgres@127.0.0.1:5432/podium_none_{uuid.uuid4().hex[:8]}").start()


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails, as when it is not installed
    with pytest.raises(podium.ConfigError, match=r"needs the psycopg driver: pip install .*\[postgres\]"):
        Sandbox(database="postgresql://postgres@127.0.0.1:5432/x")


def test_podium_demo_sandbox_db_refuses_a_bad_url_before_running(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from podium.cli import cli

    result = CliRunner().invoke(cli, ["demo", "pricing", "--db", f"sqlite:///{tmp_path}/d.db", "--sandbox-db", "oracle://u@h/db"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--sandbox-db" in result.output and "not 'oracle'" in result.output


async def test_api_sandbox_reads_the_sandbox_database_on_postgresql(
    server: Any, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODIUM_SANDBOX_DB", raising=False)
    monkeypatch.delenv("PODIUM_EVENT_BUS", raising=False)
    with Sandbox(tmp_path / "company", database=pg_url) as company:
        async with httpx.AsyncClient() as web:
            r = await web.post(f"{company.urls['crm']}/customers/C002/tasks", json={"title": "from pg"})
            assert r.status_code == 201
    async with server(f"sqlite:///{tmp_path}/podium.db", sandbox_db=pg_url) as (_, http):
        data = (await http.get("/api/sandbox")).json()
    assert data["exists"] is True and data["database"] == company.db.shown
    crm = next(s for s in data["systems"] if s["name"] == "crm")
    assert crm["count"] == 1 and crm["received"][0]["body"] == {"customer_id": "C002", "title": "from pg"}
    async with server(f"sqlite:///{tmp_path}/podium.db") as (_, http):  # without it: the SQLite file, none here
        assert (await http.get("/api/sandbox")).json()["exists"] is False


@pytest.mark.timeout(900)
def test_podium_demo_pricing_with_sandbox_db_on_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from podium.cli import cli
    from tests.scenarios.conftest import LOCAL_SKIP

    if LOCAL_SKIP:
        pytest.skip(LOCAL_SKIP)
    for var in ("PODIUM_SANDBOX_DB", "PODIUM_SANDBOX_DIR", "PODIUM_EVENT_BUS", "PODIUM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    args = ["demo", "pricing", "--decide", "approve", "--db", f"sqlite:///{tmp_path}/demo.db", "--sandbox-db", pg_url]
    result = CliRunner().invoke(cli, args)
    out = result.output
    assert result.exit_code == 0, out
    assert out.count("completed") == 2 and f"PODIUM_SANDBOX_DB={shlex.quote(pg_url)} podium serve" in out
    assert not (tmp_path / "sandbox" / "company.db").exists()  # nothing went to the SQLite file
    kept = report(tmp_path / "sandbox", database=pg_url)
    counts = {s["name"]: s["count"] for s in kept["systems"]}
    assert kept["exists"] and counts["erp"] >= 8 and counts["finance_mailbox"] == 2
