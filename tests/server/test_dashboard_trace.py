"""The run page's AI trace in headless Chromium (Playwright) against ``podium serve`` on 127.0.0.1:
model calls with their prompt and answer, the tool call, the routing decision with its confidence,
the agent's iterations, the approval (live: waiting, then who decided and why), the timeline, and
hostile text shown as text. PODIUM_SCREENSHOTS=1 refreshes docs/screenshots/trace.png (1366x768)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from .served import admin_token, approver_token, serve
from .test_dashboard import ARGS, CHROMIUM, SHOTS

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_the_run_page_shows_the_trace(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    db = f"sqlite:///{tmp_path}/podium.db"

    root = admin_token(db)
    decider = {"Authorization": f"Bearer {approver_token(db, root)}"}  # four eyes: not the runs' starter
    proc, url = serve(db, "-w", "tests.server.trace_flows:support", token=root)
    auth = {"Authorization": f"Bearer {root}"}
    try:
        text = f"Hi, where is the refund for order 7? Reply to ana.lopez@example.com {HOSTILE}"
        rid = httpx.post(f"{url}/api/runs", json={"workflow": "support", "input": {"text": text}}, headers=auth).json()["run"]["id"]
        shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
        shots.mkdir(parents=True, exist_ok=True)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.add_init_script(f"localStorage.setItem('podium-token', {root!r})")
            page.goto(f"{url}/#/run/{rid}")

            # Live: the approval request shows while the run waits, before anyone decides.
            waiting = page.locator("[data-trace] details[data-kind='approval']")
            waiting.wait_for()
            page.wait_for_selector("[data-trace] details[data-kind='approval'] .s-waiting")
            assert "Send this answer to the customer?" in waiting.inner_text()

            trace = page.locator("[data-trace]")
            assert trace.locator("[data-total='model_calls']").inner_text() == "2"
            assert trace.locator("[data-total='tool_calls']").inner_text() == "1"
            route = trace.locator("details[data-kind='route']")
            assert route.locator("[data-decision]").inner_text() == "billing"
            assert route.locator("[data-confidence]").get_attribute("data-confidence") == "0.87"
            iterations = trace.locator(".titer[data-agent='helper']")
            assert [iterations.nth(i).get_attribute("data-iteration") for i in range(iterations.count())] == ["1", "2"]
            assert iterations.nth(0).locator("details[data-kind='tool']").count() == 1

            # A model call unfolds into its prompt (stored redacted) and its answer; hostile text is text.
            first = trace.locator("details[data-kind='model']").first
            first.locator("summary").click()
            user = first.locator(".tmsg[data-role='user'] pre")
            assert HOSTILE in user.inner_text() and "[EMAIL]" in user.inner_text()
            assert "ana.lopez@example.com" not in trace.inner_html()
            assert page.evaluate("window.__pwned") is None and page.locator("[data-trace] img").count() == 0
            assert "openai:gpt-4o-mini" in first.locator("summary").inner_text()
            assert "256 cached" in first.locator("summary").inner_text()
            last = trace.locator("details[data-kind='model']").nth(1)
            last.locator("summary").click()
            assert "<b>Thanks</b>" in last.locator("[data-answer]").inner_text()  # the model's HTML, as text
            tool = trace.locator("details[data-kind='tool']")
            tool.locator("summary").click()
            assert '"order_id": 7' in tool.locator("[data-arguments]").inner_text()

            # The timeline: triage's failed first attempt, its backoff, its second attempt; the wait.
            gantt = page.locator("svg.gantt")
            assert gantt.locator("[data-row='triage'] rect.g-attempt.gs-retry").count() == 1
            assert gantt.locator("[data-row='triage'] rect.g-backoff").count() == 1
            assert gantt.locator("[data-row='review'] rect.g-wait").count() == 1
            assert gantt.locator("[data-row='answer'] rect.g-call").count() == 3

            # A person decides: the page follows (SSE) and says who, when and why; unfolded entries stay open.
            [req] = httpx.get(f"{url}/api/approvals", params={"run_id": rid}, headers=auth).json()["approvals"]
            httpx.post(f"{url}/api/approvals/{rid}/{req['name']}", headers=decider,
                       json={"approve": True, "comment": "refund confirmed in the ledger"}).raise_for_status()
            page.wait_for_selector("h1 [data-status='completed']")
            page.wait_for_load_state("networkidle")  # the page's last read after the run's end has landed
            done = page.locator("[data-trace] details[data-kind='approval']")
            page.wait_for_selector("[data-trace] details[data-kind='approval'] [data-approved='true']")
            assert done.locator("[data-by]").inner_text() == "bea"
            done.locator("summary").click()
            assert "refund confirmed in the ledger" in done.locator("[data-comment]").inner_text()
            assert trace.locator("details[data-kind='model'][open]").count() == 2

            # The kind filter.
            page.select_option("#trace-kind", "model")
            assert page.locator("[data-trace] details.tentry").count() == 2
            page.select_option("#trace-kind", "")
            page.locator("[data-trace] details[data-kind='approval'] summary").click()  # fold it for the picture
            page.evaluate("document.querySelector('[data-trace] h2').scrollIntoView({block: 'start'})")
            page.screenshot(path=str(shots / "trace.png"))

            # At a phone's width the trace wraps instead of running off the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            page.evaluate("document.querySelector(\"[data-trace] details[data-kind='model']\").scrollIntoView()")
            wide = page.evaluate("""() => [...document.querySelectorAll('[data-trace], [data-trace] details, [data-trace] summary')]
                .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.outerHTML.slice(0, 80))""")
            assert wide == [], wide
            page.screenshot(path=str(tmp_path / "trace-phone.png"))
            browser.close()
        assert not errors, errors
    finally:
        proc.terminate()
        proc.wait(10)
