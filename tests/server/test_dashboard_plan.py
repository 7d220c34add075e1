"""The plan view of the dashboard's run page, end to end: ``podium serve`` on 127.0.0.1 with the
margins skills, a goal started over HTTP, driven by headless Chromium (Playwright) as in
test_dashboard.py. The page shows plan 1 waiting for its approval, then (approved, its price update
refused by the storefront) plan 1's failed step and replan 2 with its reason, live."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples import margins

from .test_dashboard import ARGS, CHROMIUM, ROOT, SHOTS, _free_port


@pytest.fixture
def goal_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = f"sqlite:///{tmp_path}/podium.db"
    shop = margins.use_db(str(tmp_path / "shop.db"), faults=("pricing_update",))

    async def users() -> tuple[str, str, str]:
        import podium

        async with podium.Client(db) as c:
            await c.create_user("root", ["admin"])
            await c.create_user("amy", ["approver", "operator"])
            await c.create_user("bea", ["approver"])  # four eyes: amy starts the goal, bea decides
            return await c.create_token("root"), await c.create_token("amy"), await c.create_token("bea")

    root, amy, bea = asyncio.run(users())
    port = _free_port()
    env = {**os.environ, "PODIUM_TOKEN": root, "PYTHONPATH": str(ROOT), "PODIUM_SKILLS": "examples.margins:skills",
           "PODIUM_GOAL_APPROVE": "skills", "PODIUM_GOAL_MAX_COST": "0.05", "PODIUM_MARGINS_DB": shop}
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
        yield {"url": url, "amy": amy, "bea": bea}
    finally:
        proc.terminate()
        proc.wait(10)


def test_run_page_shows_plans_approval_and_replan(goal_server: dict[str, Any], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    url, amy = goal_server["url"], goal_server["amy"]
    auth = {"Authorization": f"Bearer {amy}"}
    r = httpx.post(f"{url}/api/goals", json={"goal": margins.GOAL, "context": margins.CONTEXT}, headers=auth)
    assert r.status_code == 200, r.text
    rid = r.json()["run_id"]
    shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1360, "height": 1100})
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#login[open]")
        page.fill("#token", amy)
        page.click("#login-submit")
        page.goto(f"{url}/#/run/{rid}")
        plan1 = "[data-plan='1']"
        page.wait_for_selector(f"{plan1} [data-approval-state='waiting']")
        for step in ("inventory_check", "pricing_analyze", "pricing_update", "finance_alert"):
            page.wait_for_selector(f"{plan1} rect[data-plan-step='{step}'][data-status='planned']")
        assert "for amy (approver, operator)" in page.inner_text(plan1)
        # a person approves; the page follows the run live: plan 1 fails at the price update, replan 2
        r = httpx.post(f"{url}/api/approvals/{rid}/approval:plan-1", json={"approve": True, "comment": "go"},
                       headers={"Authorization": f"Bearer {goal_server['bea']}"})
        assert r.status_code == 200, r.text
        page.wait_for_selector("h1 [data-status='completed']")
        page.wait_for_load_state("networkidle")  # the page's last read after the run's end has landed
        page.wait_for_selector(f"{plan1} [data-approval-state='approved']")
        page.wait_for_selector(f"{plan1} rect[data-plan-step='pricing_update'][data-status='failed']")
        plan2 = "[data-plan='2']"
        page.wait_for_selector(f"{plan2} rect[data-plan-step='pricing_analyze'][data-status='kept']")
        page.wait_for_selector(f"{plan2} rect[data-plan-step='pricing_update_alt'][data-status='completed']")
        assert "replan after pricing_update failed" in page.inner_text(f"{plan2} [data-reason]")
        assert "approver: go" in page.inner_text(plan1)
        # The run page re-renders while it polls: scroll in one step in the page, not through a handle
        # that a re-render may detach.
        page.wait_for_selector("h2:has-text('Plans')")
        page.evaluate("[...document.querySelectorAll('h2')].find(h => h.textContent.includes('Plans'))?.scrollIntoView()")
        page.screenshot(path=str(shots / "plan.png"), full_page=True)
        browser.close()
    assert not errors, errors
