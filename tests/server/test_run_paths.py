"""Every route of a run reaches that run, whatever its id ends with.

A child run's id is ``PARENT.step/NAME`` (``ctx.run_workflow(..., name=NAME)``: a sub-workflow, a
goal's skill, a routed specialist), and ids chosen in Python may hold ``/`` too. A run whose last
segment is named like a route (``events``, ``trace``, ``usage``, ``plan``, ``stream``) was read
at ``GET /api/runs/ITS_ID`` as that route of another run (``PARENT.step``), even with its ``/``
percent-encoded as the dashboard sends it: its page showed nothing, and where both runs existed,
one run's events were served for the other. The path is read as sent now: an id sent with its
``/`` as ``%2F`` is one segment, and a literal ``/`` before the last segment is the route's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

import podium

TAILS = ("events", "trace", "usage", "plan", "stream")

child = podium.Workflow("leaf")


@child.step
def leaf(input: dict[str, Any]) -> dict[str, Any]:
    return {"leaf": input["n"]}


parent = podium.Workflow("spawner")


@parent.step
async def spawn(ctx: podium.StepContext, input: dict[str, Any]) -> list[Any]:
    return [await ctx.run_workflow(child, {"n": n}, name=n) for n in input["names"]]


def one(run_id: str) -> str:
    """A run id as one path segment (``encodeURIComponent``, as the dashboard sends it)."""
    return quote(run_id, safe="")


async def _runs(app: Any) -> tuple[str, list[str]]:
    c = app.state.client
    h = await c.start(parent, {"names": list(TAILS)})
    await c.result(h.id, timeout=30)
    kids = sorted(r.id for r in await c.list(parent_run_id=h.id))
    assert kids == sorted(f"{h.id}.spawn/{t}" for t in TAILS)
    return h.id, kids


async def test_a_child_run_named_like_a_route_is_read_as_itself(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=[parent, child]) as (app, http):
        _, kids = await _runs(app)
        for kid in kids:
            got = await http.get(f"/api/runs/{one(kid)}")
            assert got.status_code == 200 and got.json()["run"]["id"] == kid, (kid, got.text)
            assert got.json()["run"]["output"] == {"leaf": kid.rpartition("/")[2]}
            events = await http.get(f"/api/runs/{one(kid)}/events")  # its own routes, encoded or not
            assert events.status_code == 200 and events.json()["events"][0]["type"] == "run_started", events.text
            assert (await http.get(f"/api/runs/{kid}/events")).json() == events.json()
            trace = await http.get(f"/api/runs/{one(kid)}/trace")
            assert trace.status_code == 200 and trace.json()["run"]["id"] == kid, trace.text
            assert (await http.get(f"/api/runs/{one(kid)}/usage")).status_code == 200
            plan = await http.get(f"/api/runs/{one(kid)}/plan")  # not a goal run: said of this run
            assert plan.status_code == 404 and f"run {kid} is not a goal run" in plan.text, plan.text
            async with http.stream("GET", f"/api/runs/{one(kid)}/stream") as s:
                text = "".join([chunk async for chunk in s.aiter_text()])
            assert s.status_code == 200 and '"status": "completed"' in text.split("event: end")[1], text
        # sent with a bare '/', the last segment names the route: said so, with the way to the run
        bare = await http.get(f"/api/runs/{kids[0]}")
        assert bare.status_code == 404 and f"/api/runs/{one(kids[0])}" in bare.json()["error"]["message"], bare.text


async def test_a_run_and_its_namesake_route_of_another_run_are_both_reached(server: Any, store_url: str) -> None:
    """Ids chosen in Python: ``acct`` and ``acct/events`` both exist. ``/api/runs/acct/events`` is
    acct's events; ``/api/runs/acct%2Fevents`` the run acct/events; never one for the other."""
    async with server(store_url, workflows=[child]) as (app, http):
        c = app.state.client
        for rid in ("acct", *(f"acct/{t}" for t in TAILS)):
            await c.start(child, {"n": rid}, run_id=rid)
            await c.result(rid, timeout=30)
        for t in TAILS:
            rid = f"acct/{t}"
            got = await http.get(f"/api/runs/{one(rid)}")
            assert got.status_code == 200 and got.json()["run"]["output"] == {"leaf": rid}, got.text
            trace = await http.get(f"/api/runs/{one(rid)}/trace")
            assert trace.json()["run"]["id"] == rid, trace.text
            assert (await http.get(f"/api/runs/{rid}/trace")).json()["run"]["id"] == rid  # greedy: the longest id
        mine = (await http.get("/api/runs/acct/events")).json()["events"]
        theirs = (await http.get(f"/api/runs/{one('acct/events')}/events")).json()["events"]
        outputs = [[e["data"]["output"] for e in got if e["type"] == "step_completed"] for got in (mine, theirs)]
        assert outputs == [[{"leaf": "acct"}], [{"leaf": "acct/events"}]]
        assert (await http.get("/api/runs/acct/trace")).json()["run"]["id"] == "acct"


async def test_a_control_route_is_never_taken_from_an_encoded_id(server: Any) -> None:
    """``POST /api/runs/acct%2Fcancel`` names the run ``acct/cancel`` and no route: it used to cancel
    ``acct``. Each control route still takes its run's id encoded or not."""
    wait = podium.Workflow("waits")

    @wait.step
    async def park(ctx: podium.StepContext, input: Any) -> Any:
        return await ctx.wait_for("go", timeout=60, default=None)

    async with server("memory://", workflows=[wait]) as (app, http):
        c = app.state.client
        for rid in ("acct", "acct/cancel"):
            await c.start(wait, None, run_id=rid)
            await c.driving.settled(rid)
        r = await http.post(f"/api/runs/{one('acct/cancel')}")
        assert r.status_code == 405, r.text
        assert (await c.get("acct")).status is podium.RunStatus.WAITING
        r = await http.post(f"/api/runs/{one('acct/cancel')}/cancel")
        assert r.status_code == 200 and r.json()["run"]["id"] == "acct/cancel", r.text
        assert (await c.get("acct")).status is podium.RunStatus.WAITING
        r = await http.post("/api/runs/acct/cancel")
        assert r.status_code == 200 and r.json()["run"]["id"] == "acct", r.text


@pytest.mark.parametrize("tail", TAILS)
def test_every_route_of_a_run_is_read_from_the_path_as_sent(tail: str) -> None:
    from podium.server._run_paths import split

    assert split("GET", f"/api/runs/P.s%2F{tail}") == (None, f"P.s/{tail}")
    assert split("GET", f"/api/runs/P.s/{tail}") == (tail, "P.s")
    assert split("GET", f"/api/runs/P.s%2F{tail}/{tail}") == (tail, f"P.s/{tail}")
    assert split("GET", f"/api/runs/a/b/{tail}") == (tail, "a/b")
    assert split("POST", f"/api/runs/P.s/{tail}") == (None, f"P.s/{tail}")
    assert split("GET", "/api/runs/P.s/child") == (None, "P.s/child")
    assert split("POST", "/api/runs/P.s%2Fchild/signal") == ("signal", "P.s/child")


async def test_a_run_whose_id_holds_approval_colon_is_decided_when_sent_encoded(server: Any) -> None:
    """``POST /api/approvals/{run}/{name}`` split its decoded path at the first ``/approval:``: a run
    id holding one (``ops/approval:audit``, chosen in Python) could not be decided over HTTP however
    it was sent. Sent as the dashboard does, each percent-encoded as one segment, it is."""
    ask = podium.Workflow("asks")

    @ask.step
    async def gate(ctx: podium.StepContext, input: Any) -> Any:
        return (await ctx.approval({"n": 1}, title="ok?", name="ok"))["approved"]

    async with server("memory://", workflows=[ask]) as (app, http):
        c = app.state.client
        rid = "ops/approval:audit"
        await c.start(ask, None, run_id=rid)
        await c.driving.settled(rid)
        [asked] = await c.approvals(run_id=rid)
        r = await http.post(f"/api/approvals/{one(rid)}/{one(asked['name'])}", json={"approve": True, "request": asked["seq"]})
        assert r.status_code == 200 and r.json()["decided"] is True, r.text
        assert await c.result(rid, timeout=30) is True


def test_the_dashboard_shows_a_child_run_named_like_a_route(tmp_path: Any) -> None:
    """The dashboard sends the id percent-encoded (one segment): the run page of ``PARENT.step/events``
    asked ``/api/runs/PARENT.step%2Fevents`` and was answered with the events of ``PARENT.step``
    (no such run: the page stayed empty)."""
    import os

    import httpx

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.server.served import serve
    from tests.server.test_dashboard import ARGS, CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    here = "tests.server.test_run_paths"
    proc, url = serve(f"sqlite:///{tmp_path}/podium.db", "-w", f"{here}:parent", "-w", f"{here}:child")
    try:
        started = httpx.post(f"{url}/api/runs", json={"workflow": "spawner", "input": {"names": ["events", "plan"]}})
        rid = started.json()["run"]["id"]
        with httpx.stream("GET", f"{url}/api/runs/{rid}/stream", timeout=60) as s:  # ends with the run
            ended = [line for line in s.iter_lines() if line.startswith("data: {\"status\"")]
        assert ended == ['data: {"status": "completed"}'], ended
        kid = f"{rid}.spawn/events"
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{url}/#/run/{kid}")
            page.wait_for_selector("h1 code")
            assert page.inner_text("h1 code") == kid
            page.wait_for_function("() => document.body.innerText.includes('\"leaf\": \"events\"')")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("rid", ["q?x#y/events", "100%/trace", "a b+c/plan", "é/usage"])
async def test_an_id_holding_what_urls_reserve_is_reached_percent_encoded(server: Any, rid: str) -> None:
    async with server("memory://", workflows=[child]) as (app, http):
        await app.state.client.start(child, {"n": rid}, run_id=rid)
        await app.state.client.result(rid, timeout=30)
        got = await http.get(f"/api/runs/{one(rid)}")
        assert got.status_code == 200 and got.json()["run"]["id"] == rid, got.text
        trace = await http.get(f"/api/runs/{one(rid)}/trace")
        assert trace.status_code == 200 and trace.json()["run"]["id"] == rid, trace.text
