"""An attacker's review of the surfaces (fifteenth session), each attack against a real ``podium serve``
on 127.0.0.1 (or the real ``podium worker``): what is answered to anyone (``/readyz``) or logged must
not hold the store's password; an approver's decision goes to the request they were shown, never to
one the run asked afterwards under the same name; a child run's approval is decided on the API (and
so the dashboard) as on the CLI and MCP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server needs the 'server' extra: pip install 'podium[server]'")

from tests.server.served import ROOT, admin_token, approver_token, serve

PASSWORD = "Hunter2-vault-7f3a"
FLOWS = "tests.server.surface_flows"


def _with_password(url: str) -> str:
    """``url`` (a trust-authenticated PostgreSQL URL) with a password in it, as production URLs have."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def _until(what: str, found: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := found()) is not None:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _inbox(url: str, token: str, run_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/approvals", params={"run_id": run_id}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return list(r.json()["approvals"])


def _decide(url: str, token: str, asked: dict[str, Any], **body: Any) -> httpx.Response:
    path = f"{url}/api/approvals/{quote(asked['run_id'], safe='')}/{quote(asked['name'], safe='')}"
    return httpx.post(path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_attack_readyz_does_not_tell_anyone_the_store_password(pg_url: str) -> None:
    """``/readyz`` takes no token (probes call it). While the database did not answer, its 503
    named the store by its URL, password included: anyone who could reach the port read the
    database password at the first slow moment (a lock, a failover)."""
    import psycopg

    proc, url = serve(_with_password(pg_url))
    try:
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
        with psycopg.connect(pg_url) as conn:  # a transaction holding the table: the probe's read waits
            conn.execute("LOCK TABLE kv IN ACCESS EXCLUSIVE MODE")
            r = httpx.get(f"{url}/readyz", timeout=60)
            conn.rollback()
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "store_unavailable"
        assert "did not answer" in r.text  # still says what is wrong
        assert PASSWORD not in r.text, r.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_the_worker_does_not_log_the_store_password(pg_url: str, tmp_path: Path) -> None:
    """``podium worker`` said which store it works on with the URL as given: the password went to
    the terminal and, in text mode, to the pod's or the journal's log."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_DB": _with_password(pg_url)}
    env.pop("PODIUM_TOKEN", None)
    cmd = [sys.executable, "-c", "from podium.cli import main; main()", "worker", "--log-format", "text"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = _until("the worker's first line", proc.stdout.readline)
        assert "worker" in line and "127.0.0.1" in line, line
        assert PASSWORD not in line, line
    finally:
        proc.terminate()
        proc.wait(30)


def _started(url: str, token: str, workflow: str, input: Any) -> str:
    r = httpx.post(f"{url}/api/runs", json={"workflow": workflow, "input": input}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return str(r.json()["run"]["id"])


def _ended(url: str, token: str, run_id: str) -> dict[str, Any]:
    def run() -> dict[str, Any] | None:
        r = httpx.get(f"{url}/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}).json()["run"]
        return r if r["status"] in ("completed", "failed", "cancelled") else None

    return dict(_until(f"the end of run {run_id}", run))


def _people(db: str) -> tuple[str, str, str, str]:
    """root (admin, the server's account), alice (an operator who starts runs), bea and carl (approvers)."""
    root = admin_token(db)
    return root, approver_token(db, root, "alice", ("operator",)), approver_token(db, root, "bea"), approver_token(db, root, "carl")


def test_attack_one_approval_does_not_approve_the_next_request_of_the_step(tmp_path: Path) -> None:
    """A step asking a person before each payment (``ctx.approval`` in a loop, one name; unnamed
    calls share the step's name too) got the first decision back for every later ask: bea approved
    "pay 10?" and the run paid 10 and 50000, the second never shown to anyone, one approval.decide
    entry in the log. A request now answers the question it showed: another title, payload or role
    under the same name in the step is a request of its own."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, _ = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:payouts", token=root)
    try:
        rid = _started(url, alice, "payouts", {"amounts": [10, 50000]})
        [first] = _until("the first request", lambda: _inbox(url, bea, rid) or None)
        assert first["payload"] == {"amount": 10}
        assert _decide(url, bea, first, approve=True).json()["decided"] is True
        [second] = _until("a request for the second payment", lambda: _inbox(url, bea, rid) or _done(url, root, rid))
        assert second["payload"] == {"amount": 50000}, "the second payment went through on the first one's decision"
        assert _decide(url, bea, second, approve=False).json()["decided"] is True
        assert _ended(url, root, rid)["output"] == [10]
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_one_approval_does_not_approve_the_next_pass_of_a_loop(tmp_path: Path) -> None:
    """The same across a loop's passes (``Loop``: each pass a new execution of the step): a pass
    asking under the name an earlier pass's request was decided under took that decision again,
    whatever it asked; bea approved "pay 10?" and the second pass paid 50000. The same question
    again still takes the decision (as a request asked again after its SLA ran out)."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, _ = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:rounds", token=root)
    try:
        rid = _started(url, alice, "rounds", {"amounts": [10, 50000]})
        [first] = _until("the first request", lambda: _inbox(url, bea, rid) or None)
        assert _decide(url, bea, first, approve=True).json()["decided"] is True
        [second] = _until("a request for the second pass", lambda: _inbox(url, bea, rid) or _done(url, root, rid))
        assert second["payload"] == {"amount": 50000}, "the second pass paid on the first pass's decision"
        assert _decide(url, bea, second, approve=False).json()["decided"] is True
        assert _ended(url, root, rid)["output"] == {"round": 1, "paid": 0}
        again = _started(url, alice, "rounds", {"amounts": [7, 7]})  # the same question twice: asked once
        [only] = _until("the request", lambda: _inbox(url, bea, again) or None)
        assert _decide(url, bea, only, approve=True).json()["decided"] is True
        assert _ended(url, root, again)["output"] == {"round": 1, "paid": 7}
    finally:
        proc.terminate()
        proc.wait(30)


def _done(url: str, token: str, run_id: str) -> list[dict[str, Any]] | None:
    """A finished run as a fake request (so that a wait for a request ends, and the test says what ran)."""
    run = httpx.get(f"{url}/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}).json()["run"]
    return [{"payload": f"none: the run {run['status']} with {run['output']}"}] if run["status"] == "completed" else None


def test_attack_a_stale_inbox_card_does_not_approve_the_request_asked_after_it(tmp_path: Path) -> None:
    """A loop asks to pay 10 under ``name="pay"``; that request times out (its SLA) and the next pass
    asks to pay 50000 under the same name. bea's page still showed "pay 10?": her click decided the
    open request, 50000 (a decision takes the open request's payload). A decision now names the
    request it was shown (``request``, its ``seq``; the dashboard and MCP send it): another one is
    refused, nothing decided, and the request shown now is decided as shown."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, _ = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:monthly", token=root)
    try:
        rid = _started(url, alice, "monthly", {})
        [card] = _until("the first request", lambda: _inbox(url, bea, rid) or None)  # what bea's page shows
        assert card["payload"] == {"amount": 10}
        [now] = _until("the next pass's request", lambda: [a for a in _inbox(url, bea, rid) if a["seq"] != card["seq"]] or None)
        assert now["payload"] == {"amount": 50000} and now["name"] == card["name"]

        stale = _decide(url, bea, card, approve=True, request=card["seq"])  # bea clicks on what she saw
        assert stale.status_code == 404, stale.text
        assert "asked again" in stale.json()["error"]["message"]
        assert _inbox(url, bea, rid) == [now]  # not decided: it still waits for a person

        assert _decide(url, bea, now, approve=False, request=now["seq"]).json()["decided"] is True
        assert _ended(url, root, rid)["output"] == {"by": "bea", "paid": 0}
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_a_child_runs_approval_is_decided_on_the_api_as_on_the_cli(tmp_path: Path) -> None:
    """A sub-workflow's approval (YAML ``subworkflow``, a goal's skill, a routed specialist) is asked
    in a child run, whose id holds a '/': ``POST /api/approvals/{run_id}/{name}`` answered "no such
    endpoint" however it was encoded, and the dashboard's Approve button failed, while the CLI, MCP
    and Python decided it. The approver on the dashboard had no way to decide it there, nor to read
    the run it would decide (``GET /api/runs/{id}`` and its events, trace and usage: 404 too)."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, _ = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:claims", "-w", f"{FLOWS}:refund", token=root)
    try:
        rid = _started(url, alice, "claims", {"amount": 5})
        auth = {"Authorization": f"Bearer {bea}"}
        [request] = _until(
            "the child's request",
            lambda: [a for a in httpx.get(f"{url}/api/approvals", headers=auth).json()["approvals"] if a["run_id"].startswith(rid)] or None,
        )
        child = request["run_id"]
        assert "/" in child
        for path in (child, quote(child, safe="")):  # as the dashboard's links and its API calls send it
            got = httpx.get(f"{url}/api/runs/{path}", headers=auth)
            assert got.status_code == 200 and got.json()["run"]["id"] == child, got.text
            for part in ("events", "trace", "usage"):
                assert httpx.get(f"{url}/api/runs/{path}/{part}", headers=auth).status_code == 200, part
        assert httpx.get(f"{url}/api/runs/{rid}", headers=auth).json()["run"]["id"] == rid  # the parent's, still
        r = _decide(url, bea, request, approve=True, request=request["seq"])
        assert r.status_code == 200, r.text
        assert r.json()["decided"] is True
        run = _ended(url, root, rid)
        assert run["output"] is True
    finally:
        proc.terminate()
        proc.wait(30)


def test_unnamed_approvals_of_one_step_are_each_asked() -> None:
    """The engine's ``ctx.approval`` (every surface's runs): two unnamed requests of one step, each
    decided on its own; the same question asked again (a replayed step) is not asked twice."""
    import podium

    wf = podium.Workflow("two-asks")

    @wf.step
    async def both(ctx: podium.StepContext, input: dict[str, Any]) -> list[Any]:
        out = []
        for amount in input["amounts"]:
            decision = await ctx.approval({"amount": amount}, title="pay?")
            out.append([amount, decision["approved"]])
        return out

    async def go() -> None:
        async with podium.Client("memory://", workflows=[wf]) as c:
            h = await c.start(wf, {"amounts": [1, 2, 1]})
            seen = []
            while (await c.get(h.id)).status is not podium.RunStatus.COMPLETED:
                await c.driving.settled(h.id)
                for a in await c.approvals(run_id=h.id):
                    seen.append(a["payload"])
                    await c.decide(h.id, a["name"], approve=a["payload"]["amount"] == 1)
            assert seen == [{"amount": 1}, {"amount": 2}]  # the third, as the first, took its decision
            assert await c.result(h.id) == [[1, True], [2, False], [1, True]]

    asyncio.run(go())


GET_HOOK = """name: ping-in
triggers:
  - webhook: {path: /hooks/ping, method: GET}
steps:
  - id: take
    uses: set
    with: {seen: "{{ input }}"}
"""


def test_attack_a_get_webhooks_body_is_bounded_as_a_posts(tmp_path: Path) -> None:
    """The request limits (``--max-request-size``, default 10 MB) counted the bodies of POST, PUT,
    PATCH and DELETE only, but a webhook declared for GET reads its body as the run's input: a GET
    with a body of any size was read whole into the server's memory (and started a run with it)."""
    flow = tmp_path / "ping.yaml"
    flow.write_text(GET_HOOK)
    proc, url = serve(f"sqlite:///{tmp_path}/podium.db", "-w", str(flow), "--max-request-size", "1000")
    try:
        small = httpx.request("GET", f"{url}/hooks/ping", json={"n": 1})
        assert small.status_code == 202, small.text
        big = httpx.request("GET", f"{url}/hooks/ping", json={"pad": "x" * 5000})
        assert big.status_code == 413, big.text
        assert big.json()["error"]["code"] == "request_too_large"
        plain = httpx.get(f"{url}/api/runs")  # a GET without a body is served as before
        assert plain.status_code == 200 and len(plain.json()["runs"]) == 1
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_a_stale_card_on_the_dashboard_or_over_mcp_decides_nothing(tmp_path: Path) -> None:
    """The stale card of the attack above, on the two other surfaces an approver uses: the
    dashboard's Approve button (it sends the request it shows) and MCP's ``decide_approval`` with the
    ``request`` that ``list_approvals`` gave."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.server.test_dashboard import ARGS, CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, carl = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:monthly", token=root)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.add_init_script(f"localStorage.setItem('podium-token', {bea!r})")
            rid = _started(url, alice, "monthly", {"sla": 6})  # time to show the first request before it times out
            _until("the first request", lambda: _inbox(url, bea, rid) or None)
            page.goto(f"{url}/#/approvals")
            page.wait_for_selector(f"[data-approval^='{rid}/']")  # bea's page shows "pay 10"
            [card] = _inbox(url, bea, rid)
            mcp_card = _in_thread(_mcp(url, carl, "list_approvals", {"run_id": rid}))["approvals"][0]
            assert card["payload"] == mcp_card["payload"] == {"amount": 10}
            [now] = _until("the next pass's request", lambda: [a for a in _inbox(url, bea, rid) if a["seq"] != card["seq"]] or None)
            page.click(f"[data-approval^='{rid}/'] button[data-act='approve']")  # the card still shows 10
            toast = page.locator("#toast")
            toast.wait_for(state="visible")
            assert "asked again" in toast.inner_text()
            browser.close()
        stale = _in_thread(_mcp(url, carl, "decide_approval", {"run_id": rid, "approve": True, "request": mcp_card["seq"]}, error=True))
        assert stale.startswith("not_found") and "asked again" in stale
        assert _inbox(url, bea, rid) == [now]  # neither decided it
    finally:
        proc.terminate()
        proc.wait(30)


def _in_thread(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end in a thread of its own (Playwright's sync API holds this one's loop)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _mcp(url: str, token: str, tool: str, arguments: dict[str, Any], *, error: bool = False) -> Any:
    """One tool call over ``podium serve``'s /mcp as ``token``: its result, or its error text."""
    import httpx2
    import mcp
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    async with mcp.Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error is error, result.content[0].text
    return result.content[0].text if error else result.structured_content


def test_attack_a_replayed_dead_letter_does_not_launder_who_sent_the_event(tmp_path: Path) -> None:
    """alice (an operator who may also approve) posts ``payout.requested`` while the workflow's kill
    switch is on: the event is dead-lettered. After the incident bob, an operator, replays the dead
    letters; the run started as bob, so alice approved her own payout (four eyes bypassed, as an
    emitted event once did). A replayed letter now starts as whoever sent its event (who must
    still be a user who may start runs); the replayer only needs runs.start to ask for it."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root = admin_token(db)
    alice = approver_token(db, root, "alice", ("operator", "approver"))
    bob = approver_token(db, root, "bob", ("operator",))
    carl = approver_token(db, root, "carl")
    proc, url = serve(db, "-w", f"{FLOWS}:payout_requested", token=root)
    as_root, as_alice, as_bob = ({"Authorization": f"Bearer {t}"} for t in (root, alice, bob))
    try:
        on = httpx.post(f"{url}/api/switches", json={"scope": "workflow", "name": "payout-requested", "mode": "cancel"}, headers=as_root)
        assert on.status_code == 200, on.text
        sent = httpx.post(f"{url}/api/events/payout.requested", json={"amount": 900000}, headers=as_alice)
        assert sent.status_code == 202, sent.text
        [letter] = httpx.get(f"{url}/api/deadletters", headers=as_bob).json()["dead_letters"]
        assert httpx.delete(f"{url}/api/switches/workflow/payout-requested", headers=as_root).status_code == 200
        replayed = httpx.post(f"{url}/api/deadletters/{letter['id']}/replay", headers=as_bob)
        assert replayed.status_code == 200, replayed.text
        rid = replayed.json()["run_id"]
        [request] = _until("the payout's request", lambda: _inbox(url, alice, rid) or None)
        own = _decide(url, alice, request, approve=True)
        assert own.status_code == 403, f"alice approved the payout she asked for: {own.text}"
        assert "four eyes" in own.json()["error"]["message"]
        assert _decide(url, carl, request, approve=False).json()["decided"] is True  # someone else may
        assert _ended(url, root, rid)["output"] == {"paid": 0, "by": "carl"}
        actors = {e["action"]: e["actor"] for e in httpx.get(f"{url}/api/audit", headers=as_root).json()["entries"]}
        assert actors["run.start"] == "alice" and actors["deadletter.replay"] == "bob"
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_dead_letter_whose_sender_may_no_longer_start_runs_is_not_replayed(tmp_path: Path) -> None:
    """Replayed as its sender, a letter of a sender since disabled is refused (409, saying why and
    what to do) and kept, rather than started as the replayer."""
    import podium

    db = f"sqlite:///{tmp_path}/podium.db"
    root = admin_token(db)
    alice = approver_token(db, root, "alice", ("operator",))
    bob = approver_token(db, root, "bob", ("operator",))
    proc, url = serve(db, "-w", f"{FLOWS}:payout_requested", token=root)
    as_root, as_bob = {"Authorization": f"Bearer {root}"}, {"Authorization": f"Bearer {bob}"}
    try:
        httpx.post(f"{url}/api/switches", json={"scope": "workflow", "name": "payout-requested", "mode": "cancel"}, headers=as_root)
        assert httpx.post(f"{url}/api/events/payout.requested", json={"amount": 5}, headers={"Authorization": f"Bearer {alice}"}).status_code == 202
        httpx.delete(f"{url}/api/switches/workflow/payout-requested", headers=as_root)

        async def disable() -> None:
            async with podium.Client(db, token=root) as c:
                await c.disable_user("alice")

        asyncio.run(disable())
        [letter] = httpx.get(f"{url}/api/deadletters", headers=as_bob).json()["dead_letters"]
        refused = httpx.post(f"{url}/api/deadletters/{letter['id']}/replay", headers=as_bob)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "sender_refused" and "'alice'" in refused.text and "disabled" in refused.text
        assert [d["id"] for d in httpx.get(f"{url}/api/deadletters", headers=as_bob).json()["dead_letters"]] == [letter["id"]]
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_forgotten_escape_on_the_dashboard_runs_no_script(tmp_path: Path) -> None:
    """Defence in depth for the dashboard, which every earlier review found escaping each text it
    writes: the page's policy runs its own scripts only, so a run's or a model's text that ever
    reached the page as HTML (one ``esc()`` forgotten in a new page) runs nothing, and an injected
    script could send nothing to another site. Before, only framing was refused."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.server.test_dashboard import ARGS, CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    proc, url = serve(f"sqlite:///{tmp_path}/podium.db", "-w", "tests.server.flows:hello")
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/#/runs")
            page.wait_for_selector("#runs")
            page.evaluate("document.querySelector('#view').insertAdjacentHTML('beforeend', "
                          "'<img src=x onerror=\"window.__pwned=1\"><a id=bad href=\"javascript:window.__pwned=2\">x</a>')")
            page.click("#bad")
            page.wait_for_load_state()
            assert page.evaluate("window.__pwned") is None
            browser.close()
        assert not errors, errors
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_podium_db_migrate_to_neither_prints_nor_audits_the_targets_password(pg_url: str, tmp_path: Path) -> None:
    """``podium db migrate-to postgresql://user:PASSWORD@...`` printed the URL as given (a CI job's
    log), and a user refused ``data.export`` had the URL, password and all, written into the audit
    log as the refusal's target, which every holder of ``audit.read`` reads and nobody can erase."""
    import podium

    src = f"sqlite:///{tmp_path}/src.db"
    root = admin_token(src)
    viewer = approver_token(src, root, "vic", ("viewer",))
    target = _with_password(pg_url)

    def cli(token: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_TOKEN": token}
        cmd = [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", target, "--db", src]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    refused = cli(viewer)
    assert refused.returncode != 0 and "data.export" in refused.stdout + refused.stderr
    done = cli(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied" in done.stdout and PASSWORD not in done.stdout + done.stderr, done.stdout

    async def entries() -> list[Any]:
        async with podium.Client(src, token=root) as c:
            return list(await c.audit_log(limit=5000))

    logged = asyncio.run(entries())
    assert any(e.action == "access.denied" for e in logged)
    assert not [e for e in logged if PASSWORD in f"{e.target} {e.data}"]


INVOICES = """name: invoices
triggers:
  - webhook: /hooks/invoices
steps:
  - id: take
    uses: set
    with: {x: "{{ input }}"}
"""


def test_attack_a_deploy_declaring_anothers_webhook_neither_takes_it_nor_stops_the_server(tmp_path: Path) -> None:
    """A deployer whose workflow declares the webhook another one serves: the deploy was stored and
    made active, then answered 400, and at the server's next start reading the triggers raised, so
    ``podium serve`` no longer started (API, dashboard, MCP and approvals down for everyone: one
    deploy, from the API or the CLI, then a restart). Now the workflow that serves the path keeps it,
    the deploy says so (409, naming the path), and a server starting with such a clash starts, the
    path served to nobody (409 saying why) rather than to the later one."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root = admin_token(db)
    proc, url = serve(db, token=root)
    auth, yaml = {"Authorization": f"Bearer {root}"}, {"Content-Type": "application/yaml"}
    try:
        assert httpx.post(f"{url}/api/workflows", content=INVOICES, headers={**auth, **yaml}).status_code == 201
        grab = httpx.post(f"{url}/api/workflows", content=INVOICES.replace("name: invoices", "name: grabber"), headers={**auth, **yaml})
        assert grab.status_code == 409 and grab.json()["error"]["code"] == "webhook_conflict", grab.text
        hooked = httpx.post(f"{url}/hooks/invoices", json={"n": 1}, headers=auth)
        assert hooked.status_code == 202 and hooked.json()["workflow"] == "invoices", hooked.text
    finally:
        proc.terminate()
        proc.wait(30)
    proc, url = serve(db, token=root)  # the server starts again
    try:
        clash = httpx.post(f"{url}/hooks/invoices", json={"n": 2}, headers=auth)
        assert clash.status_code == 409 and "grabber" in clash.text and "invoices" in clash.text, clash.text
        assert httpx.get(f"{url}/api/runs", headers=auth).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_event_types_made_up_by_a_caller_do_not_grow_the_metrics_for_good(tmp_path: Path) -> None:
    """``podium_events_ingested_total`` had a series per event type, and the type is any text in the
    URL of anyone who may start runs: batches of made-up types added series for good (the server's
    memory, every scrape, the dashboard's metrics page). Past 1,000 types the rest count as ``other``."""
    MAX_EVENT_TYPES = 1000  # podium.server.metrics.MAX_EVENT_TYPES

    proc, url = serve(f"sqlite:///{tmp_path}/podium.db")
    try:
        for batch in range(3):
            events = [{"type": f"made.up.{batch}.{i}", "idempotency_key": f"k{batch}.{i}", "payload": {}} for i in range(MAX_EVENT_TYPES // 2 + 1)]
            r = httpx.post(f"{url}/api/events", json={"events": events}, timeout=60)
            assert r.status_code == 202, r.text
        lines = [x for x in httpx.get(f"{url}/metrics").text.splitlines() if x.startswith("podium_events_ingested_total{")]
        assert len(lines) <= MAX_EVENT_TYPES + 1, len(lines)
        assert any('type="other"' in x for x in lines)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("encoded", [True, False])
def test_a_request_whose_name_holds_a_slash_is_decided_on_the_api(tmp_path: Path, encoded: bool) -> None:
    """An output check's request is named ``approval:output:STEP:0:None/CALL:1``: with a '/' in the
    name (and here in the child run's id too) no path reached it, encoded or not, so an answer that
    failed its checks could be passed only from the CLI or MCP."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, _ = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:regional_claims", "-w", f"{FLOWS}:regional", token=root)
    try:
        rid = _started(url, alice, "regional-claims", {"amount": 5})
        auth = {"Authorization": f"Bearer {bea}"}
        [request] = _until(
            "the request",
            lambda: [a for a in httpx.get(f"{url}/api/approvals", headers=auth).json()["approvals"] if a["run_id"].startswith(rid)] or None,
        )
        assert request["name"] == "approval:refund/eu" and "/" in request["run_id"]
        path = (f"{quote(request['run_id'], safe='')}/{quote(request['name'], safe='')}" if encoded
                else f"{request['run_id']}/{request['name']}")  # fmt: skip
        r = httpx.post(f"{url}/api/approvals/{path}", json={"approve": True}, headers=auth)
        assert r.status_code == 200 and r.json()["decided"] is True, r.text
        assert _ended(url, root, rid)["output"] is True
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_child_runs_page_and_approval_on_the_dashboard(tmp_path: Path) -> None:
    """The dashboard's run page of a child run (its id holds '/') showed the parent's id cut at the
    '/', and its Approve button could not reach the API."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.server.test_dashboard import ARGS, CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    db = f"sqlite:///{tmp_path}/podium.db"
    root, alice, bea, _ = _people(db)
    proc, url = serve(db, "-w", f"{FLOWS}:claims", "-w", f"{FLOWS}:refund", token=root)
    try:
        rid = _started(url, alice, "claims", {"amount": 5})
        auth = {"Authorization": f"Bearer {bea}"}
        [request] = _until(
            "the child's request",
            lambda: [a for a in httpx.get(f"{url}/api/approvals", headers=auth).json()["approvals"] if a["run_id"].startswith(rid)] or None,
        )
        child = request["run_id"]
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.add_init_script(f"localStorage.setItem('podium-token', {bea!r})")
            page.goto(f"{url}/#/run/{child}")
            page.wait_for_selector("h1 code")
            assert page.inner_text("h1 code") == child
            page.goto(f"{url}/#/approvals")
            page.click(f"[data-approval='{child}/{request['name']}'] button[data-act='approve']")
            toast = page.locator("#toast")
            toast.wait_for(state="visible")
            assert toast.inner_text() == "Approved"
            browser.close()
        assert _ended(url, root, rid)["output"] is True
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_user_rows_deleted_in_the_store_do_not_make_a_running_server_trust_everyone(tmp_path: Path) -> None:
    """Someone who can write the database but not the audit key (the threat the signed accounts are
    for) deleted the ``users`` rows: the running server, whose users were checked per request, fell
    back to local mode and answered every caller as the local admin (one naming a loopback ``Host``,
    which any program can send), who then decided approvals, set policies and deployed, each signed
    with the engine's audit key. A server that has seen users stays a server with users."""
    import sqlite3

    path = tmp_path / "podium.db"
    db = f"sqlite:///{path}"
    root = admin_token(db)
    proc, url = serve(db, token=root)
    try:
        assert httpx.get(f"{url}/api/me").status_code == 401  # users: a token is needed
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM kv WHERE ns = 'users'")
        anyone = httpx.get(f"{url}/api/me", headers={"Host": "127.0.0.1"})
        assert anyone.status_code == 401, f"anyone is now {anyone.text}"
        switched = httpx.post(f"{url}/api/switches", json={"scope": "all", "mode": "pause"})
        assert switched.status_code == 401, switched.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_budget_waived_in_one_step_stays_waived_in_a_later_step_of_another_process(tmp_path: Path) -> None:
    """What a question-bound decision must not change: a budget's request is named by the budget
    (its payload, the amount spent when asked, differs each time), and a person's waiver holds for
    the run. A later step, driven by another process after a wait, meets the budget again: it is not
    asked again (docs/governance.md, "Over budget")."""
    import podium
    from podium import ai
    from podium.governance.policy import Policy
    from podium.models import Response, Usage
    from podium.models.testing import ScriptedModel

    db = f"sqlite:///{tmp_path}/p.db"
    model = ScriptedModel(default=Response(text="done", usage=Usage(input_tokens=10, output_tokens=10, cost=0.02)))
    wf = podium.Workflow("spend-twice")

    @wf.step
    async def first(ctx: podium.StepContext) -> list[str]:
        return [(await ai.llm(ctx, f"call {i}", model=model)).text for i in range(2)]

    @wf.step
    async def second(ctx: podium.StepContext, first: list[str]) -> str:
        await ctx.wait_for("go")
        return (await ai.llm(ctx, "call 3", model=model)).text

    async def go() -> None:
        async with podium.Client(db, workflows=[wf]) as c:
            await c.set_policy("spend-twice", Policy(max_run_cost=0.01, on_exceed="approval"))
            h = await c.start(wf)
            while not (asked := await c.approvals(run_id=h.id)):
                await c.driving.settled(h.id)
            await c.decide(h.id, asked[0]["name"], approve=True)
            while (await c.get(h.id)).status is not podium.RunStatus.WAITING or await c.approvals(run_id=h.id):
                await c.driving.settled(h.id)
        async with podium.Client(db, workflows=[wf]) as c:  # another process: the first step is not run again
            await c.signal(h.id, "go")
            while not (await c.get(h.id)).status.finished and not await c.approvals(run_id=h.id):
                await c.driving.settled(h.id)
            assert await c.approvals(run_id=h.id) == [], "the waived budget was asked again"
            assert await c.result(h.id, timeout=30) == "done"

    asyncio.run(go())
