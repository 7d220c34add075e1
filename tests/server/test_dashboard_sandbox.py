"""The dashboard's Sandbox page, end to end: ``podium serve`` on 127.0.0.1 finds the sandbox company
beside its store (where ``podium demo --db`` keeps it), driven by headless Chromium (Playwright) as in
test_dashboard.py. The page first says that no sandbox has run, then shows what each system received,
the finance mailbox and the business events, in the browser, at a desktop and at a phone width."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_dashboard import ARGS, CHROMIUM, ROOT, SHOTS, _free_port

pytest.importorskip("uvicorn", reason="the sandbox needs uvicorn: pip install -e '.[demo]'")
pytest.importorskip("aiosmtpd", reason="the sandbox mailbox needs aiosmtpd: pip install -e '.[demo]'")


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = f"sqlite:///{tmp_path}/podium.db"

    async def users() -> str:
        import podium

        async with podium.Client(db) as c:
            await c.create_user("amy", ["approver", "operator"])
            return await c.create_token("amy")

    amy = asyncio.run(users())
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PODIUM_SANDBOX_DIR", "PODIUM_EVENT_BUS")}
    env.update({"PODIUM_TOKEN": amy, "PYTHONPATH": str(ROOT)})
    proc = subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", "serve", "--db", db, "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"podium serve did not start: {proc.stdout.read().decode() if proc.stdout else ''}")
            time.sleep(0.1)
        yield {"url": url, "amy": amy, "sandbox": tmp_path / "sandbox"}
    finally:
        proc.terminate()
        proc.wait(10)


def _company_at_work(folder: Path) -> None:
    """A sandbox in ``folder`` receives a ticket, an order, a price change and a mail, then stops."""
    from podium.sandbox import Sandbox

    with Sandbox(folder, event_bus=None) as company:
        desk, erp = company.urls["support_desk"], company.urls["erp"]
        assert httpx.post(f"{desk}/tickets", json={"customer_id": "C003", "message": "My <b>tent</b> pole snapped"}).status_code == 201
        assert httpx.post(f"{erp}/orders", json={"customer_id": "C001", "sku": "TP-30", "qty": 1}).status_code == 201
        assert httpx.post(f"{erp}/price-changes", json={"vendor": "acme", "change_pct": 8, "effective": "2026-01-01"}).status_code == 201
        assert company.smtp is not None
        msg = EmailMessage()  # a plain SMTP client: Playwright's loop runs in this thread
        msg["From"], msg["To"], msg["Subject"] = "podium@northwind.example", "finance@northwind.example", "Margin alert"
        msg.set_content("PO-501 is below margin")
        with smtplib.SMTP(*company.smtp, timeout=30) as smtp:
            smtp.send_message(msg)


def test_sandbox_page_empty_then_what_each_system_received(sandbox_server: dict[str, Any], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    url, amy = sandbox_server["url"], sandbox_server["amy"]
    shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#login[open]")
        page.fill("#token", amy)
        page.click("#login-submit")
        page.click("nav a[data-nav='sandbox']")
        page.wait_for_selector("#sandbox-empty")
        assert "No sandbox company has run here yet" in page.inner_text("#sandbox-empty")
        assert str(sandbox_server["sandbox"]) in page.inner_text("#sandbox-empty")
        assert "active" in (page.get_attribute("nav a[data-nav='sandbox']", "class") or "")

        _company_at_work(sandbox_server["sandbox"])
        page.reload()
        page.wait_for_selector(".sandbox-system[data-system='support_desk']")
        assert page.inner_text(".card[data-system='support_desk'] b") == "1"
        assert page.inner_text(".card[data-system='erp'] b") == "2"
        desk = page.inner_text(".sandbox-system[data-system='support_desk']")
        assert "createTicket" in desk and "My <b>tent</b> pole snapped" in desk  # shown as text, not markup
        assert page.query_selector(".sandbox-system b:has-text('tent')") is None
        erp = page.inner_text(".sandbox-system[data-system='erp']")
        assert "createOrder" in erp and "announcePriceChange" in erp
        assert "Margin alert" in page.inner_text("#sandbox-mails")
        for topic in ("ticket.opened", "order.created", "price.changed", "mail.received"):
            assert "waiting in the outbox" in page.inner_text(f"#sandbox-events tr[data-topic='{topic}']")
        assert "Nothing received." in page.inner_text(".sandbox-system[data-system='crm']")
        page.screenshot(path=str(shots / "sandbox.png"), full_page=True)
        # nothing overflows to the right, at a desktop and at a phone width
        for width in (1366, 390):
            page.set_viewport_size({"width": width, "height": 800})
            assert page.evaluate("document.querySelector('#sandbox-events').getBoundingClientRect().right") <= width + 1
            wide = page.evaluate(
                "[...document.querySelectorAll('#view *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
                ".map(e => e.tagName + '.' + e.className)"
            )
            assert wide == [], f"the page is wider than {width}px: {wide}"
        page.screenshot(path=str(shots / "sandbox-phone.png"), full_page=True)
        browser.close()
    assert not errors, errors
