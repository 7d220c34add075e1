"""The Memory, Knowledge, Policies, Capabilities, KPIs and Costs pages end to end: ``podium serve``
on 127.0.0.1 over a store seeded with real runs (model calls with a cost, business figures),
memories, a knowledge base, policies and capabilities; driven by headless Chromium (Playwright).

Each page is opened and its content checked; untrusted text (facts, properties, document text)
that carries markup must show as text and never run. Every page, the older ones included, must
fit a phone's width (375 px) and a laptop's (1366x768): no horizontal scroll of the page itself,
wide tables scroll inside their box. ``PODIUM_SCREENSHOTS=1`` keeps a picture of each new page at
both sizes in docs/screenshots/.
"""

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

from .test_dashboard import ARGS, CHROMIUM, ROOT, SHOTS, _free_port

DAY = 86_400
XSS = '"><img src=x onerror="window.__xss=1">'
HANDBOOK = {
    "refunds.md": "# Refunds\n\nA refund is paid back to the card within 5 working days of the return.\n\n"
    "## Exceptions\n\nGift cards are never refunded; offer store credit instead. " + XSS,
    "shipping.md": "# Shipping\n\nOrders ship within 24 hours. Express delivery takes one day.",
    "contact.txt": "Call the support line from 9 to 17, or write to help@example.com.",
}


async def _seed(db: str, folder: Path) -> tuple[str, list[str]]:
    """Users, memories, a knowledge base, runs over ten days, capabilities and policies; returns
    the admin's token and the run ids, oldest first."""
    import podium
    from podium.governance.policy import Policy
    from podium.knowledge import from_text, knowledge_base
    from podium.memory import Memory, attach

    from . import page_flows

    async with podium.Client(db) as c:
        runs = []  # three a day: two support runs (one per segment) and a triage run

        async def run(wf: Any, data: dict[str, Any]) -> None:
            await c.run(wf, data)
            runs.append((await c.list(limit=1))[0].id)

        # Runs of the past ten days, oldest first: the engine's clock is set back for each day, so
        # every record (events, run digests, audit entries) is written as it would have been then.
        real = time.time
        try:
            for day in range(9, -1, -1):
                time.time = lambda day=day: real() - day * DAY - 3600  # type: ignore[misc]
                segment_rate = round(0.82 + 0.012 * (9 - day), 3)
                await run(
                    page_flows.support,
                    {"customer": f"customer:{day}0", "rate": segment_rate, "segment": "smb"},
                )
                enterprise = round(0.74 + 0.02 * (day % 4), 3)
                await run(
                    page_flows.support,
                    {"customer": f"customer:{day}1", "rate": enterprise, "segment": "enterprise"},
                )
                await run(page_flows.triage, {"subject": "site down", "size": 1 + day % 3})
        finally:
            time.time = real  # type: ignore[misc]
        mem = attach(c, Memory(c.store, embedder="hash:256"))
        await mem.upsert_entity("customer:42", properties={"name": "Ann Lee", "tier": "gold", "note": XSS})
        await mem.remember("customer:42", "prefers email over phone", kind="fact")
        await mem.remember("customer:42", "asked for a refund of order 1009", kind="event")
        await mem.remember(
            "customer:42", "renewal due on 1 December; at risk of churn " + XSS, kind="summary"
        )
        for src, rel, dst in (
            ("customer:42", "owns", "account:7"),
            ("ticket:T1", "raised_by", "customer:42"),
            ("renewal:R9", "of", "customer:42"),
            ("customer:42", "referred", "customer:77"),
            ("vendor:acme", "supplies", "product:bolt"),
        ):
            await mem.relate(src, rel, dst)
        kb = knowledge_base(mem, "handbook")
        await kb.ingest(
            [
                from_text(text, source=name, type="markdown" if name.endswith(".md") else "text")
                for name, text in HANDBOOK.items()
            ]
        )
        await c.add_capability(
            "crm-lookup",
            "http",
            {"url": "https://crm.example.com/customers/{id}", "method": "GET"},
            description="Look a customer up in the CRM",
        )
        await c.add_capability("contracts", "files", {"root": str(folder)}, description="Signed contracts")
        await c.add_capability(
            "crm-hook", "connector", {"kind": "webhook", "url_env": "PODIUM_TEST_CRM_HOOK"}, allow_private=True
        )
        await c.set_policy("support", Policy(allowed_tools=["crm-lookup"], max_run_cost=0.5))
        await c.set_policy(
            "support",
            Policy(
                allowed_tools=["crm-lookup", "refund"],
                approve_tools=["refund"],
                max_run_cost=0.5,
                banned=["guaranteed returns"],
                redact=["prompts"],
            ),
        )
        await c.set_policy("*", Policy(allowed_providers=["scripted", "local"], max_daily_cost=5.0))
        await c.create_user("root", ["admin"])
        token = await c.create_token("root")
    return token, runs


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("pages")
    db = f"sqlite:///{folder}/podium.db"
    token, runs = asyncio.run(_seed(db, folder))
    port = _free_port()
    env = {
        **os.environ,
        "PODIUM_TOKEN": token,
        "PYTHONPATH": str(ROOT),
        "PODIUM_EMBEDDER": "hash:256",
        "PODIUM_SKILLS": "tests.server.page_flows:skills",
        "PODIUM_TEST_CRM_HOOK": "http://127.0.0.1:9/hook",  # a webhook whose system is down
    }
    wfs = [a for w in ("support", "triage") for a in ("-w", f"tests.server.page_flows:{w}")]
    cmd = [
        sys.executable,
        "-c",
        "from podium.cli import main; main()",
        "serve",
        "--db",
        db,
        "--port",
        str(port),
        "--log-level",
        "warning",
        *wfs,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
                pytest.fail(
                    f"podium serve did not start: {proc.stdout.read().decode() if proc.stdout else ''}"
                )
            time.sleep(0.05)
        yield {"url": url, "token": token, "runs": runs, "auth": {"Authorization": f"Bearer {token}"}}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed and could not be (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _page(browser: Any, seeded: dict[str, Any], width: int, height: int) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.add_init_script(f"localStorage.setItem('podium-token', {seeded['token']!r})")
    return page, errors


def _shots(tmp_path: Path) -> Path:
    shots = SHOTS if os.environ.get("PODIUM_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    return shots


PAGES = {  # page -> (hash, what shows once it has loaded)
    "memory": ("#/memory?entity=customer%3A42", "table.facts tr[data-fact]"),
    "knowledge": ("#/knowledge?kb=handbook&q=how+long+does+a+refund+take", ".passage"),
    "policies": ("#/policies?workflow=support", "table.versions tr[data-version]"),
    "capabilities": ("#/capabilities", "tr[data-skill='draft_offer']"),
    "kpis": ("#/kpis?days=14", "[data-kpi='retention_rate'] polyline"),
    "costs": ("#/costs?days=14", "tr[data-workflow='support']"),
}


def test_each_page_shows_the_seeded_data(seeded: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    url, auth = seeded["url"], seeded["auth"]
    shots = _shots(tmp_path)
    page, errors = _page(browser, seeded, 1366, 768)

    # Memory: search, the entity's facts (markup shown as text), its relations and their graph.
    page.goto(f"{url}/#/memory?q=CUSTOMER")
    page.wait_for_selector("tr[data-hit='customer:42']")
    assert page.locator("tr[data-hit]").count() == 2  # customer:42 and customer:77 (ids hold "customer")
    page.click("tr[data-hit='customer:42'] a")
    page.wait_for_selector("table.facts tr[data-fact]")
    facts = page.inner_text("table.facts")
    assert (
        "prefers email over phone" in facts and "asked for a refund of order 1009" in facts and XSS in facts
    )
    assert page.locator("table.relations tr[data-relation]").count() == 4
    assert page.locator("svg.entity-graph [data-node='account:7']").count() == 1
    assert XSS in page.inner_text("#entity .kv") and "Ann Lee" in page.inner_text("#entity .kv")
    page.screenshot(path=str(shots / "memory.png"))
    page.fill("#recall-q", "email")
    page.click("#recall-form button")
    page.wait_for_selector("table.facts th:has-text('Score')")
    assert page.inner_text("table.facts tbody tr:first-child").count("prefers email over phone") == 1
    page.click("svg.entity-graph [data-node='account:7']")
    page.wait_for_selector("[data-entity='account:7']")
    assert "owns" in page.inner_text("table.relations")

    # Knowledge: bases, a search answered with cited passages, the documents.
    page.goto(f"{url}/#/knowledge")
    page.wait_for_selector("tr[data-kb='handbook']")
    assert page.inner_text("tr[data-kb='handbook']").split("\t")[1:3] == ["3", str(_chunks(url, auth))]
    page.fill("#kb-q", "how long does a refund take")
    page.click("#kb-form button")
    page.wait_for_selector(".passage[data-passage='[1]']")
    hits = httpx.get(
        f"{url}/api/kb/handbook/search", params={"query": "how long does a refund take", "k": 5}, headers=auth
    ).json()
    assert page.locator(".passage").count() == len(hits["passages"]) >= 2
    first = page.inner_text(".passage[data-passage='[1]']")
    assert hits["passages"][0]["citation"] in first and hits["passages"][0]["source"] in first
    assert "Refunds" in page.inner_text("#kb-hits") and XSS in page.inner_text("#kb-hits")
    page.wait_for_selector("tr[data-document='refunds.md']")
    assert page.locator("tr[data-document]").count() == 3
    page.screenshot(path=str(shots / "knowledge.png"))

    # Policies: each policy, the versions of one (who changed what), a decision tried out.
    page.goto(f"{url}/{PAGES['policies'][0]}")
    page.wait_for_selector("table.versions tr[data-version]")
    assert page.locator("tr[data-policy]").count() == 2
    assert page.locator("table.versions tr[data-version]").count() == 2
    assert "approve_tools" in page.inner_text("table.versions tr[data-version='2']")
    page.select_option("#d-wf", "support")
    page.fill("#d-tool", "shell")
    page.fill("#d-answer", "These are guaranteed returns.")
    page.click("#decide-form button")
    page.wait_for_selector("#decision [data-decision='refused']")
    assert "may not call tool 'shell'" in page.inner_text("#decision")
    assert page.locator("#decision [data-check='answer'] [data-decision='refused']").count() == 1
    page.screenshot(path=str(shots / "policies.png"))

    # Capabilities: the registry with who may use each, the planner's skills with their roles.
    page.goto(f"{url}/{PAGES['capabilities'][0]}")
    page.wait_for_selector(PAGES["capabilities"][1])
    crm = page.inner_text("tr[data-capability='crm-lookup']")
    assert "GET https://crm.example.com/customers/{id}" in crm and "support" in crm and "allowed" in crm
    assert "refused" in page.inner_text("tr[data-capability='contracts']")
    assert page.locator("tr[data-capability]").count() == 3
    assert "finance" in page.inner_text("tr[data-skill='refund_order']")
    page.screenshot(path=str(shots / "capabilities.png"))

    # KPIs: a chart per figure, a line per series; the latest values match the API's.
    page.goto(f"{url}/{PAGES['kpis'][0]}")
    page.wait_for_selector(PAGES["kpis"][1])
    k = httpx.get(f"{url}/api/kpis", params={"days": 14}, headers=auth).json()["points"]
    assert page.locator("[data-kpi]").count() == len({p["metric"] for p in k}) == 3
    rates = page.locator("[data-kpi='retention_rate']")
    assert rates.locator("polyline").count() == 2 and rates.locator("circle").count() == 20
    latest = [p for p in k if p["metric"] == "retention_rate" and p["labels"]["segment"] == "smb"][-1]
    assert str(latest["value"]) in rates.locator("tr[data-series='support {segment=smb}']").inner_text()
    sent = page.inner_text("[data-kpi='offers_sent'] tr[data-series='support']")
    assert "20" in sent  # a counter: its running total
    page.screenshot(path=str(shots / "kpis.png"))

    # Costs: per workflow and day, the totals of the API.
    page.goto(f"{url}/{PAGES['costs'][0]}")
    page.wait_for_selector(PAGES["costs"][1])
    costs = httpx.get(f"{url}/api/costs", params={"days": 14}, headers=auth).json()
    assert len({r["day"] for r in costs["days"]}) == 10 and costs["total"] > 0
    assert page.locator("tr[data-day]").count() == len(costs["days"]) == 20
    assert page.inner_text("[data-total-cost]") == f"${costs['total']:.4f}"
    assert page.locator("svg.bar-chart rect").count() == 20
    page.screenshot(path=str(shots / "costs.png"))

    assert page.evaluate("window.__xss") is None
    assert not errors, errors


def _chunks(url: str, auth: dict[str, str]) -> int:
    [kb] = httpx.get(f"{url}/api/kb", headers=auth).json()["knowledge_bases"]
    return int(kb["chunks"])


@pytest.mark.parametrize("width,height", [(375, 812), (1366, 768)])
def test_no_page_is_wider_than_the_screen(
    seeded: dict[str, Any], browser: Any, tmp_path: Path, width: int, height: int
) -> None:
    url = seeded["url"]
    shots = _shots(tmp_path)
    page, errors = _page(browser, seeded, width, height)
    older = {
        "runs": ("#/runs", "tr[data-run]"),
        "run": (f"#/run/{seeded['runs'][0]}", "svg.graph"),
        "approvals": ("#/approvals", "h1"),
        "audit": ("#/audit", "text=chain intact"),
        "metrics": ("#/metrics", "text=Runs by workflow and status"),
        "connectors": ("#/connectors", "tr[data-connector='crm-hook']"),
        "switches": ("#/switches", "text=Everything is on."),
    }
    wide = []
    for name, (where, ready) in {**older, **PAGES}.items():
        page.goto(f"{url}/{where}")
        page.wait_for_selector(ready)
        sizes = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        if sizes[0] > sizes[1]:
            wide.append((name, sizes))
        if width < 500 and (name in PAGES or name == "audit"):
            page.screenshot(path=str(shots / f"{name}-phone.png"))
    assert not wide, f"pages wider than {width} px: {wide}"
    # The audit log's details are long JSON: they wrap or scroll inside the table's box.
    page.goto(f"{url}/#/audit")
    page.wait_for_selector("table.audit")
    box = page.evaluate(
        "(() => { const w = document.querySelector('.table-wrap'); return [w.scrollWidth, w.clientWidth, w.getBoundingClientRect().right]; })()"
    )
    assert box[2] <= width + 0.5, box
    assert not errors, errors
