"""The run page shows data-quality gates: each gate's rules, their outcome on failure (halt,
quarantine, escalate, warn), result, bad-row counts and readable report, quarantined rows and the
person's decision. ``podium serve`` on 127.0.0.1 driven by headless Chromium (Playwright)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

pytest.importorskip("scipy", reason="gates need the ml extra: pip install 'podium[ml]'")

from .served import admin_token, approver_token, serve
from .test_dashboard import ARGS, CHROMIUM, SHOTS


def test_the_run_page_shows_gate_reports(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    db = f"sqlite:///{tmp_path}/podium.db"

    root = admin_token(db)
    steward = approver_token(db, root, roles=("admin",))  # four eyes: not the runs' starter (an admin holds the gate's role)
    decider = {"Authorization": f"Bearer {steward}"}
    proc, url = serve(db, "-w", "tests.server.gate_flows:batch", token=root)
    auth = {"Authorization": f"Bearer {root}"}
    try:
        ok = httpx.post(f"{url}/api/runs", json={"workflow": "batch", "input": {}}, headers=auth).json()["run"]["id"]
        bad = httpx.post(f"{url}/api/runs", json={"workflow": "batch", "input": {"broken": True}}, headers=auth).json()["run"]["id"]
        shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
        shots.mkdir(parents=True, exist_ok=True)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.add_init_script(f"localStorage.setItem('podium-token', {root!r})")

            # Rows set aside and a warning: the data flowed on.
            page.goto(f"{url}/#/run/{ok}")
            page.wait_for_selector("h1 [data-status='completed']")
            page.wait_for_load_state("networkidle")  # the page's last read after the run's end has landed
            gate = page.locator("[data-gate='customers'][data-gate-step='load']")
            gate.wait_for()
            assert gate.get_attribute("data-passed") == "false"
            assert "2 row(s) quarantined" in gate.inner_text()
            assert gate.locator("tr[data-rule='unique:customer_id'][data-outcome='quarantine'][data-ok='false']").count() == 1
            assert gate.locator("tr[data-rule^='range'][data-outcome='quarantine'][data-ok='false']").count() == 1
            warn = gate.locator("tr[data-rule^='nulls'][data-outcome='warn'][data-ok='false']")
            assert "3 null" in warn.inner_text() or "null" in warn.inner_text()
            assert gate.locator("tr[data-ok='true']").count() == 2  # schema and row count hold

            # A changed export halts the run: the page says a person is needed, then who decided.
            page.goto(f"{url}/#/run/{bad}")
            halted = page.locator("[data-gate='customers']")
            halted.wait_for()
            page.wait_for_selector("[data-gate='customers'] a[href='#/approvals']")
            row = halted.locator("tr[data-rule='schema'][data-outcome='halt'][data-ok='false']")
            assert "missing column(s) monthly_charges" in row.inner_text()
            page.screenshot(path=str(shots / "gates.png"), full_page=True)
            [req] = httpx.get(f"{url}/api/approvals", params={"run_id": bad}, headers=auth).json()["approvals"]
            httpx.post(f"{url}/api/approvals/{bad}/{req['name']}", headers=decider,
                       json={"approve": False, "comment": "ask for the old export"}).raise_for_status()
            page.wait_for_selector("h1 [data-status='failed']")
            page.wait_for_selector("[data-gate='customers']:has-text('rejected by bea')")
            assert "ask for the old export" in halted.inner_text()
            browser.close()
        assert not errors, errors
    finally:
        proc.terminate()
        proc.wait(10)
