"""The run page under a busy run (headless Chromium against ``podium serve``): a run logging many
events must not make one open page send the server overlapping reads of the run and its trace.

The attack (review of the run trace): a run making a call every few milliseconds, watched on the
dashboard. Each event asked for the run and its whole trace again 150 ms later, whether or not the
previous read had come back; on a long run a read takes longer than that, so reads piled up and
one browser tab kept the server busy. Now at most one read is in flight, and the events that
arrive meanwhile are answered by a single read after it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

import podium

from .served import serve
from .test_dashboard import ARGS, CHROMIUM

busy = podium.Workflow("busy")


@busy.step
async def work(ctx: podium.StepContext, input: dict) -> int:
    calls = int(input.get("calls", 150))
    for _ in range(calls):
        await ctx.call(asyncio.sleep, 0.02, name="tick")
    return calls


def test_a_busy_run_gets_one_read_at_a_time(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    db = f"sqlite:///{tmp_path}/podium.db"
    proc, url = serve(db, "-w", "tests.server.test_dashboard_live_load:busy")
    try:
        rid = httpx.post(f"{url}/api/runs", json={"workflow": "busy", "input": {"calls": 150}}).json()["run"]["id"]
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(60_000)
            # A long run's trace takes a while to read: 600 ms here, counted in the page itself.
            page.add_init_script("""(() => {
              const real = window.fetch.bind(window);
              window.__reads = 0; window.__flying = 0; window.__most = 0;
              window.fetch = async (url, opts) => {
                if (!String(url).endsWith('/trace')) return real(url, opts);
                window.__reads++; window.__flying++; window.__most = Math.max(window.__most, window.__flying);
                try { await new Promise((r) => setTimeout(r, 600)); return await real(url, opts); }
                finally { window.__flying--; }
              };
            })()""")
            page.goto(f"{url}/#/run/{rid}")
            page.wait_for_selector("h1 [data-status='completed']")
            page.wait_for_function("() => window.__flying === 0")  # a function: the page's policy refuses eval
            reads, most = page.evaluate("[window.__reads, window.__most]")
            browser.close()
        assert reads >= 2  # it did follow the run
        assert most == 1, f"{most} reads of the trace were in flight at once"
    finally:
        proc.terminate()
        proc.wait(10)
