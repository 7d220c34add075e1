"""Sixteenth session's review: the path of a run as sent, whatever the client encoded around its id.

``/api/runs/...`` paths are split as sent (``_run_paths``): an id's ``%2F`` is part of it. The
split looked for ``/api/runs/`` written out in the path as sent; a client (or a proxy re-encoding
on its way) that percent-encoded a letter of it (``/api/run%73/``, which every server routes as
``/api/runs/``) fell back to the decoded path, where ``%2F`` is a separator: ``POST
/api/run%73/acct%2Fcancel`` cancelled ``acct`` (the bug the split was made against), and ``GET
/api/run%73/acct%2Fevents`` served acct's events for the run ``acct/events``. A prefix whose
``/`` itself came encoded (``/api%2Fruns/...``) is no ``/api/runs/`` path as sent at all."""

from __future__ import annotations

from typing import Any

import podium

wait = podium.Workflow("waits16")


@wait.step
async def park(ctx: podium.StepContext, input: Any) -> Any:
    return await ctx.wait_for("go", timeout=60, default=None)


async def _two(app: Any) -> Any:
    c = app.state.client
    for rid in ("acct", "acct/cancel", "acct/events"):
        await c.start(wait, None, run_id=rid)
        await c.driving.settled(rid)
    return c


async def test_an_encoded_letter_of_the_prefix_does_not_turn_an_ids_slash_into_a_route(server: Any) -> None:
    async with server("memory://", workflows=[wait]) as (app, http):
        c = await _two(app)
        for prefix in ("/api/run%73/", "/api/%72uns/", "/%61pi/runs/", "/api/r%75ns/"):
            r = await http.post(f"{prefix}acct%2Fcancel")
            assert r.status_code in (404, 405), (prefix, r.status_code, r.text)
            assert (await c.get("acct")).status is podium.RunStatus.WAITING, f"{prefix}acct%2Fcancel cancelled acct"
            got = await http.get(f"{prefix}acct%2Fevents")
            assert got.status_code == 200 and got.json()["run"]["id"] == "acct/events", (prefix, got.text)
            events = await http.get(f"{prefix}acct%2Fevents/events")  # its own route: still reached
            assert events.status_code == 200 and events.json()["events"][0]["type"] == "run_started", events.text
        r = await http.post("/api/run%73/acct%2Fcancel/cancel")
        assert r.status_code == 200 and r.json()["run"]["id"] == "acct/cancel", r.text
        assert (await c.get("acct")).status is podium.RunStatus.WAITING


async def test_a_prefix_sent_with_an_encoded_slash_is_no_runs_path(server: Any) -> None:
    async with server("memory://", workflows=[wait]) as (app, http):
        c = await _two(app)
        for path in ("/api%2Fruns/acct%2Fcancel", "/api/runs%2Facct%2Fcancel", "/api%2Fruns/acct/cancel"):
            r = await http.post(path)
            assert r.status_code == 404 and "no such endpoint" in r.text, (path, r.text)
            assert (await c.get("acct")).status is podium.RunStatus.WAITING, f"{path} cancelled acct"
        got = await http.get("/api%2Fruns/acct%2Fevents")
        assert got.status_code == 404 and "no such endpoint" in got.text, got.text


async def test_an_approval_is_decided_as_sent_under_an_encoded_prefix(server: Any) -> None:
    """``POST /api/approvals/RUN/NAME`` sent with both parts encoded: the same under ``/api/approval%73/``."""
    ask = podium.Workflow("asks16")

    @ask.step
    async def gate(ctx: podium.StepContext, input: Any) -> Any:
        return (await ctx.approval({"n": 1}, title="ok?", name="ok"))["approved"]

    async with server("memory://", workflows=[ask]) as (app, http):
        c = app.state.client
        rid = "ops/approval:audit"
        await c.start(ask, None, run_id=rid)
        await c.driving.settled(rid)
        [asked] = await c.approvals(run_id=rid)
        r = await http.post(
            "/api/approval%73/ops%2Fapproval%3Aaudit/approval%3Aok", json={"approve": True, "request": asked["seq"]}
        )
        assert r.status_code == 200 and r.json()["decided"] is True, r.text
        assert await c.result(rid, timeout=30) is True
        r = await http.post("/api%2Fapprovals/ops%2Fapproval%3Aaudit/approval%3Aok", json={"approve": True})
        assert r.status_code == 404 and "no such endpoint" in r.text, r.text
