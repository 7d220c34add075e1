"""The dashboard end to end: ``podium serve`` on 127.0.0.1, driven by headless Chromium (Playwright).

Logs in with a token, sees a new run appear in the live runs list, watches a run's graph change
colour live, approves a pending request with an edit from the inbox, and keeps screenshots of the
main pages in docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .served import ROOT, free_port, serve

# PODIUM_SCREENSHOTS=1 refreshes the pictures in docs/; otherwise they go to a temporary folder.
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


_free_port = free_port  # the other browser tests' name for it


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real server on a free port with users: (url, admin token, approver token)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('serve')}/podium.db"

    async def users() -> tuple[str, str]:
        import podium

        async with podium.Client(db) as c:
            await c.create_user("root", ["admin"])
            await c.create_user("amy", ["approver", "operator"])
            # a registered connector whose system is down (nothing listens on port 9): the Connectors page
            await c.add_capability(
                "crm-hook", "connector", {"kind": "webhook", "url_env": "PODIUM_TEST_CRM_HOOK"}, allow_private=True
            )
            return await c.create_token("root"), await c.create_token("amy")

    root, amy = asyncio.run(users())
    wfs = [a for w in ("hello", "review", "tickets") for a in ("-w", f"tests.server.flows:{w}")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PODIUM_TEST_CRM_HOOK", "http://127.0.0.1:9/hook")  # the server reads its URL from there
        proc, url = serve(db, *wfs, token=root)
    try:
        yield {"url": url, "root": root, "amy": amy}
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_answers_with_openapi_and_401(served: dict[str, Any]) -> None:
    url = served["url"]
    assert httpx.get(f"{url}/api/runs").status_code == 401
    assert httpx.get(f"{url}/api/runs", headers={"Authorization": "Bearer pod_x"}).status_code == 401
    spec = httpx.get(f"{url}/openapi.json").json()
    assert spec["info"]["title"] == "Podium" and "/api/runs/{run_id}/stream" in spec["paths"]
    assert "<title>Podium</title>" in httpx.get(url).text


def test_dashboard_login_live_graph_and_approval(served: dict[str, Any], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    url, root, amy = served["url"], served["root"], served["amy"]
    auth = {"Authorization": f"Bearer {root}"}
    httpx.post(f"{url}/api/runs", json={"workflow": "hello", "input": {"name": "Ada"}}, headers=auth)
    httpx.post(f"{url}/api/events/ticket.created", json={"id": 1, "subject": "site down"}, headers=auth)
    rid = httpx.post(
        f"{url}/api/runs", json={"workflow": "review", "input": {"topic": "release notes"}}, headers=auth
    ).json()["run"]["id"]
    shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1360, "height": 820})
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_selector("#login[open]")
        page.fill("#token", "pod_wrong")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:has-text('unknown API token')")
        page.fill("#token", amy)
        page.click("#login-submit")
        page.wait_for_selector(f"tr[data-run='{rid}']")
        page.wait_for_selector("#who:has-text('amy')")
        page.wait_for_selector(f"tr[data-run='{rid}'] [data-status='waiting']")
        # the list is live (server-sent events, polling off): a run started elsewhere shows up
        page.wait_for_selector("#live[data-mode='live']")
        new = httpx.post(
            f"{url}/api/runs", json={"workflow": "hello", "input": {"name": "Live"}}, headers=auth
        )
        page.wait_for_selector(
            f"tr[data-run='{new.json()['run']['id']}'] [data-status='completed']", timeout=5000
        )
        page.screenshot(path=str(shots / "runs.png"))

        page.click(f"tr[data-run='{rid}']")
        page.wait_for_selector("svg.graph")
        page.wait_for_selector("rect[data-step='approve'][data-status='waiting']")
        page.click("g[data-step='draft']")
        page.wait_for_selector("#inspector:has-text('draft for release notes')")
        page.screenshot(path=str(shots / "run.png"))

        # approve with an edit from the inbox; the run page turns green live
        page.goto(f"{url}/#/approvals")
        page.wait_for_selector(f"[data-approval^='{rid}']")
        page.fill("#payload-0", '{"text": "edited in the browser"}')
        page.fill("#comment-0", "ship it")
        page.screenshot(path=str(shots / "approvals.png"))
        page.click("button[data-act='edit']")
        page.wait_for_selector("text=Nothing waits for a decision.")
        page.goto(f"{url}/#/run/{rid}")
        page.wait_for_selector("rect[data-step='publish'][data-status='completed']")
        page.wait_for_selector("h1 [data-status='completed']")
        page.wait_for_load_state("networkidle")  # the page's last read after the run's end has landed
        assert "published: edited in the browser" in page.inner_text("main")

        page.goto(f"{url}/#/switches")
        page.wait_for_selector("text=Everything is on.")
        page.screenshot(path=str(shots / "switches.png"))
        page.goto(f"{url}/#/metrics")
        page.wait_for_selector("text=Runs by workflow and status")
        page.screenshot(path=str(shots / "metrics.png"))
        page.goto(f"{url}/#/connectors")
        page.wait_for_selector("tr[data-connector='crm-hook'][data-ok='false'] [data-status='down']")
        page.wait_for_selector("tr[data-connector='crm-hook'] [data-breaker='closed']")
        page.screenshot(path=str(shots / "connectors.png"))
        # amy may not read the audit log: the page says so; the admin sees it intact
        page.goto(f"{url}/#/audit")
        page.wait_for_selector(".error:has-text('audit.read')")
        page.evaluate(f"localStorage.setItem('podium-token', {root!r})")
        page.reload()
        page.wait_for_selector("text=chain intact")
        assert "approval.decide" in page.inner_text("main")
        page.screenshot(path=str(shots / "audit.png"))
        browser.close()
    run = httpx.get(f"{url}/api/runs/{rid}", headers=auth).json()["run"]
    assert run["status"] == "completed" and run["output"] == "published: edited in the browser"
