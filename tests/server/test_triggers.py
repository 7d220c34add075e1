"""Triggers: cron schedules (time zones, misfires, no double firing across restarts), event
subscriptions with idempotency keys, threshold rules, watched folders, emitted events, dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from . import flows
from .test_api import wait_status

PARIS = ZoneInfo("Europe/Paris")


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=PARIS).timestamp()


async def test_schedule_fires_once_per_time_across_restarts(server: Any, store_url: str) -> None:
    kw = {"workflows": flows.TRIGGERS, "triggers": False, "misfire": "run_once"}
    async with server(store_url, **kw) as (app, _):
        trig = app.state.triggers
        assert await trig.tick(at(2024, 3, 30, 12)) == []  # first sight: starts counting, no backfill
        assert await trig.tick(at(2024, 3, 31, 1, 59)) == []
        fired = await trig.tick(at(2024, 3, 31, 2, 30))  # the DST night: 02:00 Paris does not exist
        assert len(fired) == 1
    async with server(store_url, **kw) as (app, http):  # a restart fires nothing twice
        trig = app.state.triggers
        assert await trig.tick(at(2024, 3, 31, 2, 40)) == []
        # down for three nights: run_once fires the latest missed time only
        fired += await trig.tick(at(2024, 4, 3, 9))
        assert len(fired) == 2
        body = await wait_status(http, fired[1], "completed")
        assert body["run"]["output"] == at(2024, 4, 3, 2)
        sched = (await http.get("/api/triggers")).json()["schedules"][0]
        assert sched["timezone"] == "Europe/Paris" and sched["next"] == at(2024, 4, 4, 2)


async def test_misfire_skip_and_run_all(server: Any) -> None:
    async with server("memory://", workflows=flows.TRIGGERS, triggers=False, misfire="skip") as (app, _):
        trig = app.state.triggers
        await trig.tick(at(2024, 1, 1, 12))
        assert await trig.tick(at(2024, 1, 4, 12)) == []  # all three missed beyond the grace: skipped
        assert len(await trig.tick(at(2024, 1, 5, 2, 0) + 30)) == 1  # 30 s late: within the grace
    async with server("memory://", workflows=flows.TRIGGERS, triggers=False, misfire="run_all") as (app, _):
        trig = app.state.triggers
        await trig.tick(at(2024, 1, 1, 12))
        assert len(await trig.tick(at(2024, 1, 4, 12))) == 3


async def test_events_validated_deduplicated_and_dead_lettered(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.TRIGGERS) as (_, http):
        bad = await http.post("/api/events/ticket.created", json={"id": "nope"})
        assert bad.status_code == 422 and "tickets" in bad.json()["error"]["message"]
        ticket = {"id": 1, "subject": "site down"}
        first = await http.post("/api/events/ticket.created", json=ticket, headers={"Idempotency-Key": "t-1"})
        again = await http.post("/api/events/ticket.created", json=ticket, headers={"Idempotency-Key": "t-1"})
        assert first.status_code == 202, first.text
        assert len(first.json()["runs"]) == 1 and again.json()["runs"] == []
        assert again.json()["duplicates"] == first.json()["runs"]
        body = await wait_status(http, first.json()["runs"][0], "completed")
        assert body["run"]["output"] == "urgent"
        nobody = await http.post("/api/events/nobody.listens", json={})
        assert nobody.status_code == 202 and nobody.json()["subscribers"] == []

        # a kill switch stops the run from starting: the event is kept and can be replayed
        await http.post(
            "/api/switches", json={"scope": "workflow", "name": "tickets", "reason": "maintenance"}
        )
        r = await http.post(
            "/api/events/ticket.created", json={"id": 2, "subject": "x"}, headers={"Idempotency-Key": "t-2"}
        )
        assert r.status_code == 202 and len(r.json()["dead_lettered"]) == 1
        letters = (await http.get("/api/deadletters")).json()["dead_letters"]
        assert [d["event"] for d in letters] == ["ticket.created"] and "maintenance" in letters[0]["error"]
        stuck = await http.post(f"/api/deadletters/{letters[0]['id']}/replay")
        assert stuck.status_code == 409
        await http.delete("/api/switches/workflow/tickets")
        replayed = await http.post(f"/api/deadletters/{letters[0]['id']}/replay")
        assert replayed.status_code == 200, replayed.text
        await wait_status(http, replayed.json()["run_id"], "completed")
        assert (await http.get("/api/deadletters")).json()["dead_letters"] == []


async def test_dead_letters_are_listed_page_by_page(server: Any, store_url: str) -> None:
    """Fifteenth session (the surfaces review's left item): a flood of events while a workflow is
    switched off keeps a letter each; the list answers a page at a time, with the total."""
    async with server(store_url, workflows=flows.TRIGGERS) as (_, http):
        await http.post("/api/switches", json={"scope": "workflow", "name": "tickets", "reason": "maintenance"})
        for i in range(5):
            r = await http.post("/api/events/ticket.created", json={"id": i, "subject": f"s{i}"}, headers={"Idempotency-Key": f"p-{i}"})
            assert len(r.json()["dead_lettered"]) == 1, r.text
        seen: list[str] = []
        cursor = None
        for _ in range(4):
            page = (await http.get("/api/deadletters", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
            assert page["total"] == 5 and len(page["dead_letters"]) <= 2
            seen += [d["id"] for d in page["dead_letters"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 5 == len(set(seen)) and cursor is None  # every letter once, oldest first
        assert (await http.get("/api/deadletters")).json()["total"] == 5
        import base64

        for forged in ("not-a-cursor", base64.urlsafe_b64encode(b'[NaN, "x"]').decode(), base64.urlsafe_b64encode(b'[1.0, "a\\u0000"]').decode()):
            bad = await http.get("/api/deadletters", params={"cursor": forged})  # attack: cursors the API never gave
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor", forged
        assert (await http.get("/api/deadletters", params={"limit": 0})).status_code == 422


async def test_threshold_rule_emitted_events_and_file_drops(server: Any, tmp_path: Any) -> None:
    drop = tmp_path / "inbox"
    drop.mkdir()
    rules = [{"name": "churn", "when": "churn_score > 0.8", "workflow": "retention", "event": "customer.*"}]
    async with server("memory://", workflows=flows.TRIGGERS, rules=rules, watch={str(drop): "files"}) as (
        app,
        http,
    ):
        low = await http.post("/api/events/customer.scored", json={"customer": "a", "churn_score": 0.3})
        high = await http.post("/api/events/customer.scored", json={"customer": "b", "churn_score": 0.93})
        assert low.json()["runs"] == [] and len(high.json()["runs"]) == 1
        body = await wait_status(http, high.json()["runs"][0], "completed")
        assert body["run"]["output"] == "offer for b"

        # a workflow's ctx.emit starts the subscribed workflow (once, by the event's idempotency key)
        await _announce_and_see_the_ticket(http)

        (drop / "a.csv").write_text("1,2,3\n")
        os.utime(drop / "a.csv", (1, 1))
        for _ in range(200):
            runs = (await http.get("/api/runs", params={"workflow": "files"})).json()["runs"]
            if runs and runs[0]["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        assert len(runs) == 1 and runs[0]["output"] == 6
        await app.state.triggers.tick()
        assert len((await http.get("/api/runs", params={"workflow": "files"})).json()["runs"]) == 1


async def test_a_bad_schedule_fails_alone_and_is_reported(server: Any, caplog: Any) -> None:
    """One bad cron string (it passed a character check) must not stop the other schedules nor the
    watched folders: driven tick by tick with an injected clock, the healthy schedule keeps firing."""
    import logging

    import podium

    broken = podium.Workflow("broken")
    broken.triggers = [{"schedule": "99 99 * * *"}]  # type: ignore[attr-defined]

    @broken.step
    def never(input: dict) -> None:
        return None

    async with server("memory://", workflows=[*flows.TRIGGERS, broken], triggers=False) as (app, http):
        trig = app.state.triggers
        entries: list[Any] = []
        app.state.client.subscribe_audit(entries.append)
        with caplog.at_level(logging.ERROR, logger="podium.server"):
            assert await trig.tick(at(2024, 1, 1, 12)) == []  # first sight of the healthy one
            fired = await trig.tick(at(2024, 1, 2, 2, 0) + 1)
            fired += await trig.tick(at(2024, 1, 3, 2, 0) + 1)
        assert len(fired) == 2  # nightly fired on both nights next to the broken one
        failed = [e for e in entries if e.action == "trigger.failed"]
        assert len(failed) == 1 and "99 99 * * *" in failed[0].data  # reported once, not every tick
        assert sum("99 99 * * *" in r.getMessage() for r in caplog.records) == 1
        states = {s["workflow"]: s for s in (await http.get("/api/triggers")).json()["schedules"]}
        assert "out of range" in states["broken"]["error"] and states["broken"]["next"] is None
        assert states["nightly"]["error"] is None


async def _announce_and_see_the_ticket(http: Any) -> None:
    """Run the workflow whose ctx.emit announces a ticket; the subscribed workflow starts (once)."""
    r = await http.post("/api/runs", json={"workflow": "announcer", "input": {}})
    await wait_status(http, r.json()["run"]["id"], "completed")
    for _ in range(200):  # the subscribed run starts from the event, a moment later
        runs = (await http.get("/api/runs", params={"workflow": "tickets"})).json()["runs"]
        if runs and runs[0]["status"] == "completed":
            break
        await asyncio.sleep(0.02)
    assert [r["input"]["subject"] for r in runs] == ["emitted"]


async def test_the_server_account_the_docs_describe_runs_the_triggers(server: Any, tmp_path: Any) -> None:
    """Review (attack on today's client.on check): ``podium serve`` acts as a service account that
    needs runs.resume, and runs.start for its triggers (docs/governance.md). Since client.on needs
    payloads.read, such a server did not start at all: the triggers subscribe to every event with
    client.on. The server's own subscription is the engine's path (its starts are still checked);
    a workflow's ctx.emit starts the subscribed workflow."""
    from podium import Client

    db = f"sqlite:///{tmp_path / 'served.db'}"
    async with Client(db) as c:
        await c.define_role("server", ["runs.resume", "runs.start"])
        await c.create_user("svc", ["server"], service=True)
        await c.create_user("root", ["admin"])
        svc, root = await c.create_token("svc"), await c.create_token("root")
    async with server(db, workflows=flows.TRIGGERS, token=svc) as (_, http):
        http.headers["Authorization"] = f"Bearer {root}"
        await _announce_and_see_the_ticket(http)


async def test_an_event_emitted_after_an_approval_starts_its_workflow(server: Any, tmp_path: Any) -> None:
    """Review (attack on acting_as): the server drives a parked run on from the request that
    decides its approval, so the run's task inherited the approver as the acting principal: its
    ctx.emit then started the subscribed workflow as the approver (no runs.start): refused, and
    the event was lost (neither a run nor a dead letter)."""
    import podium
    from podium import Client

    gated = podium.Workflow("gated_announcer")

    @gated.step
    async def announce(input: dict, ctx: podium.StepContext) -> None:
        await ctx.approval({"what": "announce"}, title="announce?", timeout=3600)
        await ctx.emit("ticket.created", {"id": 8, "subject": "approved", "idempotency_key": "emit-8"})

    db = f"sqlite:///{tmp_path / 'served.db'}"
    async with Client(db) as c:
        await c.create_user("svc", ["operator"], service=True)
        await c.create_user("root", ["admin"])
        await c.create_user("amy", ["approver"])
        svc, root, amy = [await c.create_token(u) for u in ("svc", "root", "amy")]
    async with server(db, workflows=[*flows.TRIGGERS, gated], token=svc) as (_, http):
        as_root, as_amy = {"Authorization": f"Bearer {root}"}, {"Authorization": f"Bearer {amy}"}
        rid = (await http.post("/api/runs", json={"workflow": "gated_announcer", "input": {}}, headers=as_root)).json()["run"]["id"]
        for _ in range(500):
            inbox = (await http.get("/api/approvals", headers=as_amy)).json()["approvals"]
            if inbox:
                break
            await asyncio.sleep(0.02)
        r = await http.post(f"/api/approvals/{rid}/{inbox[0]['name']}", json={"approve": True}, headers=as_amy)
        assert r.status_code == 200, r.text
        runs: list[Any] = []
        for _ in range(300):
            runs = (await http.get("/api/runs", params={"workflow": "tickets"}, headers=as_root)).json()["runs"]
            if runs and runs[0]["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        assert [r["input"]["subject"] for r in runs] == ["approved"]
        denied = [e for e in (await http.get("/api/audit", headers=as_root)).json()["entries"] if e["action"] == "access.denied"]
        assert denied == []


async def test_a_server_whose_account_may_not_resume_runs_says_so_at_start(server: Any, tmp_path: Any) -> None:
    """Review: a server whose account lacks runs.resume started, and its worker task stopped at
    once on PermissionDenied, swallowed: the server accepted runs it would never drive. It now
    refuses to start, naming the permission (podium serve --no-execute needs no runs.resume)."""
    from podium import Client
    from podium.errors import PermissionDenied

    db = f"sqlite:///{tmp_path / 'served.db'}"
    async with Client(db) as c:
        await c.define_role("starter", ["runs.start", "runs.read"])
        await c.create_user("svc", ["starter"], service=True)
        svc = await c.create_token("svc")
    with pytest.raises(PermissionDenied, match="may not runs.resume"):
        async with server(db, token=svc):
            pass
    async with server(db, token=svc, execute=False) as (_, http):
        http.headers["Authorization"] = f"Bearer {svc}"
        assert (await http.get("/api/runs")).status_code == 200


async def test_an_emitted_event_the_server_may_not_start_is_dead_lettered(server: Any, tmp_path: Any) -> None:
    """Nothing is lost: an event on the bus (or a schedule, a rule, a file) whose start the
    server's account is refused was logged and dropped (the refusal raised inside the trigger: no
    run, no dead letter). It is kept as a dead letter naming the refusal, to replay once granted.
    An event a run's step emits starts as that run's starter instead (the same starter here: root,
    who may)."""
    from podium import Client

    db = f"sqlite:///{tmp_path / 'served.db'}"
    async with Client(db) as c:
        await c.define_role("driver", ["runs.resume"])
        await c.create_user("svc", ["driver"], service=True)
        await c.create_user("root", ["admin"])
        svc, root = await c.create_token("svc"), await c.create_token("root")
    async with server(db, workflows=flows.TRIGGERS, token=svc) as (app, http):
        http.headers["Authorization"] = f"Bearer {root}"
        r = await http.post("/api/runs", json={"workflow": "announcer", "input": {}})
        await wait_status(http, r.json()["run"]["id"], "completed")
        for _ in range(200):  # started as root, who started the announcer
            runs = (await http.get("/api/runs", params={"workflow": "tickets"})).json()["runs"]
            if runs:
                break
            await asyncio.sleep(0.02)
        assert len(runs) == 1 and (await http.get("/api/deadletters")).json()["dead_letters"] == []
        await wait_status(http, runs[0]["id"], "completed")
        await app.state.client.events.publish("ticket.created", '{"id": 8, "subject": "on the bus", "idempotency_key": "k8"}')
        for _ in range(200):  # the event's start is tried a moment after the emit
            letters = (await http.get("/api/deadletters")).json()["dead_letters"]
            if letters:
                break
            await asyncio.sleep(0.02)
        assert [(d["event"], d["workflow"], d["error_type"]) for d in letters] == [("ticket.created", "tickets", "PermissionDenied")]
        assert "may not runs.start" in letters[0]["error"] and "svc" in letters[0]["error"]
        assert len((await http.get("/api/runs", params={"workflow": "tickets"})).json()["runs"]) == 1


async def test_a_watched_folder_of_an_unknown_workflow_is_warned_about_once(server: Any, tmp_path: Any, caplog: Any) -> None:
    """``podium serve --watch inbox=filez`` started without a word while every file dropped there
    was dead-lettered: now the server warns (with a "did you mean") and still serves, as a deploy
    may bring the workflow later."""
    drop, other = tmp_path / "inbox", tmp_path / "other"
    drop.mkdir()
    other.mkdir()
    caplog.set_level("WARNING", logger="podium")
    async with server("memory://", workflows=flows.TRIGGERS, watch={str(drop): "filez", str(other): "files"}) as (app, http):
        for _ in range(500):  # the trigger loop checks after reading the deployed workflows
            if "filez" in caplog.text:
                break
            await asyncio.sleep(0.01)
        warned = [r.getMessage() for r in caplog.records if "no served or deployed workflow" in r.getMessage()]
        assert len(warned) == 1, warned  # the folder of a known workflow ('files') is not warned about
        assert "'filez'" in warned[0] and "did you mean 'files'" in warned[0] and str(drop) in warned[0]
        assert app.state.triggers.check_watch() == []  # once, not every tick
        (drop / "a.csv").write_text("1\n")
        os.utime(drop / "a.csv", (1, 1))
        await app.state.triggers.tick()
        letters = (await http.get("/api/deadletters")).json()["dead_letters"]
        assert len(letters) == 1 and letters[0]["workflow"] == "filez", letters  # what the warning says


async def test_a_dropped_file_whose_start_the_store_failed_is_started_at_a_later_scan(server: Any, tmp_path: Any) -> None:
    """Operations (tenth session): a file dropped in a watched folder whose run's start the store
    failed (it did not answer) was dead-lettered and marked as seen, so it waited for someone to
    replay it by hand although the store was back a moment later. The folder keeps the file like a
    broker keeps a message: it is not marked, and the next scan starts its run (once)."""
    from podium import StoreError

    drop = tmp_path / "inbox"
    drop.mkdir()
    async with server("memory://", workflows=flows.TRIGGERS, watch={str(drop): "files"}, trigger_interval=3600) as (app, http):
        store = app.state.client.store
        real_create = store.create_run

        async def down(*args: Any, **kw: Any) -> bool:
            raise StoreError("store 'memory://': the store did not answer (injected)")

        (drop / "a.csv").write_text("1,2,3\n")
        os.utime(drop / "a.csv", (1, 1))
        store.create_run = down
        try:
            assert await app.state.triggers.tick() == []
        finally:
            store.create_run = real_create
        assert (await http.get("/api/deadletters")).json()["dead_letters"] == []
        assert (await http.get("/api/runs", params={"workflow": "files"})).json()["runs"] == []
        started = await app.state.triggers.tick()  # the store answers again
        assert len(started) == 1
        body = await wait_status(http, started[0], "completed")
        assert body["run"]["output"] == 6
        assert await app.state.triggers.tick() == []  # marked now: once
        assert len((await http.get("/api/runs", params={"workflow": "files"})).json()["runs"]) == 1
