"""The run page shows a model's answer while it is generated (``event: token``), in headless Chromium
against the real server (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .test_api_tokens import GATE, WORDS, live, output_of, start  # noqa: F401 (live: the fixture)
from .test_dashboard import ARGS, CHROMIUM, SHOTS


def test_the_run_page_shows_the_text_as_it_streams(live: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    run_id = start(live, delay=0.5)  # its step waits for GATE: token events are not stored
    shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live["url"])
        page.wait_for_selector("#login[open]")
        page.fill("#token", live["admin"])
        page.click("#login-submit")
        page.goto(f"{live['url']}/#/run/{run_id}")
        page.wait_for_selector("svg.graph")
        page.wait_for_selector(f"main[data-stream='{run_id}']", state="attached")  # its stream listens
        page.evaluate("""() => {
          window.liveStates = [];
          new MutationObserver(() => {
            const pre = document.querySelector("#live-text pre.live");
            if (pre && window.liveStates.at(-1) !== pre.textContent) window.liveStates.push(pre.textContent);
          }).observe(document.querySelector("main"), { subtree: true, childList: true, characterData: true });
        }""")
        GATE.set()
        page.wait_for_function("() => window.liveStates.length >= 3")
        page.screenshot(path=str(shots / "streaming-live.png"))  # the answer half written
        page.wait_for_selector(f"#live-text pre.live:has-text('{WORDS[-1]}')")
        page.wait_for_selector("#live-text:has-text('done')")
        try:
            page.wait_for_selector("h1 [data-status='completed']")
        except Exception:
            raise AssertionError(page.inner_text("main") + "\n" + str(errors)) from None
        page.screenshot(path=str(shots / "streaming.png"))
        final = page.inner_text("#live-text pre.live")
        states = page.evaluate("() => window.liveStates")
        browser.close()
    assert final == "".join(WORDS) == output_of(live, run_id)
    # the text grew on the page, piece by piece, before the answer was whole
    assert len(states) >= 3 and states[-1] == final and all(final.startswith(s) for s in states), states
    assert not errors, errors
