"""The fourth session's attacker review of tokens, triggers and the MCP surface (2026-12-06). Each
test is an attack that succeeded on the code before its fix (docs/status.md, "Attacker review of
tokens, triggers and the MCP surface")."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import podium
from podium import Client, StepContext, Workflow
from podium.errors import AuthError
from podium.governance import accounts
from podium.server import auth

from . import flows
from .test_api_stream import sse


async def _root(db: str) -> str:
    """The first user, ``root`` (admin), of a new store; its token."""
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        return await setup.create_token("root")


async def _olga(client: Any, ttl: float | None = None) -> str:
    await client.create_user("olga", ["operator"])
    return str(await client.create_token("olga", name="laptop", ttl=ttl))


class _Later:
    """The clock of token expiry checks, an hour on: a token made with a TTL has expired (without
    racing a short real TTL against a loaded machine)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return time.time() + 3600


async def _shut_out(client: Any, how: str, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    if how == "expired":
        assert monkeypatch is not None
        monkeypatch.setattr(accounts, "time", _Later())
    elif how == "revoked":
        await client.revoke_token("olga", "laptop")
    elif how == "disabled":
        await client.disable_user("olga")


@pytest.mark.parametrize("how", ["revoked", "disabled", "expired"])
async def test_attack_a_runs_stream_opened_before_revocation_stops_with_it(
    server: Any, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: olga opens the live runs list (``?token=``, as the dashboard does) and her token
    is revoked (or she is disabled, or the token expires). The stream had checked the token once,
    when it opened: it went on sending every run that started or changed, with its input and
    output, for as long as the connection lasted (the dashboard keeps it open for days). Now an
    open stream checks its token again every few seconds and ends, saying why."""
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.1, raising=False)
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        token = await _olga(c, ttl=600 if how == "expired" else None)
        listening = asyncio.create_task(http.get("/api/runs/stream", params={"timeout": 3, "token": token}))
        await asyncio.sleep(0.2)
        before = await c.start(flows.hello, {"name": "before"})
        await asyncio.sleep(0.4)
        await _shut_out(c, how, monkeypatch)
        await asyncio.sleep(0.6)  # past the recheck
        after = await c.start(flows.hello, {"name": "secret after"})
        await c.wait(after.id, timeout=10)
        r = await asyncio.wait_for(listening, 10)
        events = sse(r.text)
        assert [d["id"] for e, d in events if e == "run" and d["id"] == before.id]  # seen while allowed
        assert not [d for e, d in events if e == "run" and d["id"] == after.id], events
        assert "secret after" not in r.text.lower()
        kind, data = events[-1]
        assert kind == "error" and data["error"]["code"] == "unauthorized", events
        assert how[:6] in data["error"]["message"] and "token" in data["error"]["message"]


async def test_attack_a_run_stream_opened_before_revocation_stops_with_it(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on one run's stream: opened on a run waiting for an approval, it went on sending the
    run's events (the approved payload among them) after the token was revoked, until the run
    ended."""
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.1, raising=False)
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        token = await _olga(c)
        run = await c.start(flows.review, {"topic": "q4"})
        while not await c.approvals(run_id=run.id):
            await asyncio.sleep(0.02)
        listening = asyncio.create_task(http.get(f"/api/runs/{run.id}/stream", params={"token": token}))
        await asyncio.sleep(0.3)
        await c.revoke_token("olga", "laptop")
        await asyncio.sleep(0.6)
        [request] = await c.approvals(run_id=run.id)
        await c.decide(run.id, request["name"], approve=True, payload={"text": "TOP SECRET TEXT"})
        await c.wait(run.id, timeout=10)
        r = await asyncio.wait_for(listening, 10)
        events = sse(r.text)
        assert "TOP SECRET TEXT" not in r.text and not [e for e, _ in events if e == "end"], events
        assert events[-1][0] == "error" and "revoked" in events[-1][1]["error"]["message"]


async def test_a_stream_whose_token_loses_payloads_read_stops_showing_payloads(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role taken away while a stream is open narrows it at the next check: olga's role becomes
    viewer, and the runs the stream sends next come without their input and output."""
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.1, raising=False)
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        token = await _olga(c)
        listening = asyncio.create_task(http.get("/api/runs/stream", params={"timeout": 2, "token": token}))
        await asyncio.sleep(0.3)
        await c.create_user("olga", ["viewer"])
        await asyncio.sleep(0.4)
        after = await c.start(flows.hello, {"name": "secret after"})
        await c.wait(after.id, timeout=10)
        r = await asyncio.wait_for(listening, 10)
        mine = [d for e, d in sse(r.text) if e == "run" and d["id"] == after.id]
        assert mine and "secret after" not in r.text.lower()
        assert mine[-1]["input"] == "[hidden: needs payloads.read]"


async def test_attack_a_long_lived_client_stops_acting_once_its_token_is_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: ``podium mcp`` over stdio (or any long-lived client: a notebook, a script, a
    worker) authenticates its token once, when it opens. Revoking the token (or disabling the user)
    left the open process acting with it, with every permission it had, until it was restarted:
    an MCP client left running on a lost laptop went on starting runs and reading payloads. Now
    the client checks its own token again every few seconds before acting."""
    from podium.governance import identity

    monkeypatch.setattr(identity, "RECHECK_SECONDS", 0.1)
    db = f"sqlite:///{tmp_path}/podium.db"
    async with Client(db) as admin:
        await admin.create_user("root", ["admin"])
        root = await admin.create_token("root")
    async with Client(db, token=root) as admin:
        token = await _olga(admin)
        async with Client(db, workflows=flows.ALL, token=token) as olga:
            from podium.server.mcp_tools import PodiumTools

            tools = PodiumTools(olga)
            started = await tools.call(olga.principal, "run_hello", {"input": {"name": "x"}, "wait_seconds": 5})
            assert started["status"] == "completed"
            opened_as = olga.principal  # what `podium mcp` over stdio acts as, from its start
            await admin.revoke_token("olga", "laptop")
            await asyncio.sleep(0.3)
            with pytest.raises(AuthError, match="revoked"):
                await olga.start(flows.hello, {"name": "after"})
            with pytest.raises(AuthError, match="revoked"):
                await olga.list(limit=5)
            assert not olga.principal.permissions
            from podium.server.mcp_tools import ToolFailure

            with pytest.raises(ToolFailure, match="revoked"):
                await tools.call(opened_as, "start_run", {"workflow": "hello", "input": {}, "wait_seconds": 1})
            with pytest.raises(ToolFailure, match="revoked"):
                await tools.call(opened_as, "get_run", {"run_id": started["run_id"]})
            runs = await admin.list(workflow="hello", limit=10)
            assert len(runs) == 1


def _intake_and_refund() -> tuple[Workflow, Workflow]:
    intake = Workflow("intake")

    @intake.step
    async def forward(ctx: StepContext, input: dict[str, Any]) -> str:
        await ctx.emit("refund.requested", {"amount": input["amount"], "idempotency_key": input["ref"]})
        return "forwarded"

    refund = Workflow("refund")
    refund.triggers = [{"event": "refund.requested"}]  # type: ignore[attr-defined]

    @refund.step
    async def approve(ctx: StepContext, input: dict[str, Any]) -> dict[str, Any]:
        return dict(await ctx.approval(input, title=f"refund {input['amount']}?", timeout=3600))

    @refund.step
    async def pay(ctx: StepContext, approve: dict[str, Any]) -> dict[str, Any]:
        who = await ctx.started_by()
        return {"paid": bool(approve["approved"]), "started_by": who.name if who else None}

    return intake, refund


async def test_attack_an_event_a_run_emits_does_not_launder_who_started_it(
    server: Any, tmp_path: Path
) -> None:
    """The attack: alice (operator and approver) may not approve the refunds she asks for (four
    eyes). She starts ``intake``, whose step emits ``refund.requested``; the server's trigger
    started ``refund`` as the server's own service account, so the refund's starter was not alice
    and she approved her own refund. The same laundering gave the emitted run the service
    account's roles for everything that reads the starter (a YAML ``forget`` step, a goal's
    planner). Now a run started by an event that a run emitted is started as whoever started the
    emitting run (its starter, from the signed audit log), and four eyes holds."""
    intake, refund = _intake_and_refund()
    db = f"sqlite:///{tmp_path}/podium.db"
    root = await _root(db)
    async with Client(db, token=root) as admin:
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.create_user("alice", ["operator", "approver"])
        await admin.create_user("bob", ["approver"])
        tokens = {n: await admin.create_token(n) for n in ("svc", "alice", "bob")}
    async with server(db, workflows=[intake, refund], token=tokens["svc"]) as (app, http):
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        r = await http.post("/api/runs", headers=alice, json={"workflow": "intake", "input": {"amount": 900, "ref": "r1"}})
        assert r.status_code == 201, r.text
        c = app.state.client
        for _ in range(500):
            waiting = [a for a in await c.approvals() if a["workflow"] == "refund"]
            if waiting:
                break
            await asyncio.sleep(0.02)
        [request] = waiting
        rid = request["run_id"]
        r = await http.post(f"/api/approvals/{rid}/{request['name']}", headers=alice, json={"approve": True})
        assert r.status_code == 403, r.text
        assert "four eyes" in r.text and "alice" in r.text
        async with Client(db, token=root) as admin:
            starts = [e for e in await admin.audit_log() if e.action == "run.start" and e.target == rid]
        assert [e.actor for e in starts] == ["alice"]
        bob = {"Authorization": f"Bearer {tokens['bob']}"}
        r = await http.post(f"/api/approvals/{rid}/{request['name']}", headers=bob, json={"approve": True})
        assert r.status_code == 200, r.text
        assert await c.result(rid, timeout=30) == {"paid": True, "started_by": "alice"}


async def test_an_event_emitted_by_a_scheduled_run_starts_as_the_server(tmp_path: Path) -> None:
    """What the server starts for itself (a schedule, a rule, a watched folder, a run it started) is
    still started as its own account; local mode is unchanged (the local user)."""
    intake, refund = _intake_and_refund()
    async with Client("memory://", workflows=[intake, refund]) as c:
        from podium.server.triggers import Triggers

        settings = podium.server.Settings(store="memory://", triggers=True)
        t = Triggers(c, settings)
        await t.start()
        try:
            run = await c.start(intake, {"amount": 5, "ref": "r2"})
            await c.wait(run.id, timeout=10)
            for _ in range(500):
                waiting = [a for a in await c.approvals() if a["workflow"] == "refund"]
                if waiting:
                    break
                await asyncio.sleep(0.02)
            [request] = waiting
            assert await c.decide(request["run_id"], request["name"], approve=True)
            assert (await c.result(request["run_id"], timeout=30))["started_by"] == "local"
        finally:
            await t.stop()


async def test_a_forbidden_emitted_start_is_dead_lettered_naming_the_starter(
    server: Any, tmp_path: Path
) -> None:
    """A run whose starter may no longer start runs (their role changed since) emits an event: the
    runs it would start are dead-lettered, naming who, not started as the server."""
    _, refund = _intake_and_refund()
    db = f"sqlite:///{tmp_path}/podium.db"
    root = await _root(db)
    async with Client(db, token=root) as admin:
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.define_role("starter-only", ["runs.start", "workflows.read", "runs.read"])
        await admin.create_user("sam", ["starter-only"])
        tokens = {n: await admin.create_token(n) for n in ("svc", "sam")}
    gate = asyncio.Event()
    held = Workflow("held")

    @held.step
    async def wait_then_emit(ctx: StepContext, input: dict[str, Any]) -> str:
        while not gate.is_set():
            await asyncio.sleep(0.02)
        await ctx.emit("refund.requested", {"amount": 1, "idempotency_key": "k"})
        return "ok"

    async with server(db, workflows=[held, refund], token=tokens["svc"]) as (app, http):
        sam = {"Authorization": f"Bearer {tokens['sam']}"}
        r = await http.post("/api/runs", headers=sam, json={"workflow": "held", "input": {}})
        assert r.status_code == 201, r.text
        async with Client(db, token=root) as admin:
            await admin.define_role("starter-only", ["workflows.read", "runs.read"])
        gate.set()
        c = app.state.client
        await c.wait(r.json()["run"]["id"], timeout=10)
        for _ in range(500):
            letters = await app.state.triggers.dead_letters()
            if letters:
                break
            await asyncio.sleep(0.02)
        assert [d["workflow"] for d in letters] == ["refund"]
        assert "sam" in letters[0]["error"] and "runs.start" in letters[0]["error"]
        assert not [run for run in await c.list(workflow="refund", limit=5)]


async def test_attack_a_worker_stops_claiming_runs_once_its_token_is_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: a worker's token (``podium worker``, or ``podium serve``'s) is revoked, say after
    the host it runs on was lost; the worker had authenticated once and went on claiming and
    driving every run of the store (inputs, secrets, connector calls) until restarted. Now its
    claim loop checks its token again and the worker stops, saying why; runs go to other workers."""
    from podium.governance import identity

    monkeypatch.setattr(identity, "RECHECK_SECONDS", 0.1)
    db = f"sqlite:///{tmp_path}/podium.db"
    root = await _root(db)
    async with Client(db, token=root) as admin:
        await admin.create_user("w1", ["worker"], service=True)
        token = await admin.create_token("w1", name="host-7")
        async with Client(db, workflows=flows.ALL, token=token) as w1:
            stop = asyncio.Event()
            working = asyncio.create_task(w1.work(stop))
            await asyncio.sleep(0.2)
            await admin.revoke_token("w1", "host-7")
            with pytest.raises(AuthError, match="revoked"):
                await asyncio.wait_for(working, 5)
            stop.set()


async def test_attack_dropping_or_replaying_a_dead_letter_is_audited(server: Any, tmp_path: Path) -> None:
    """The attack: an event refused its start (a payment a kill switch held, a start the server's
    account may not make) is kept as a dead letter, the only record that it came. An operator
    (``runs.cancel``) dropped it and nothing said so: no audit entry named who dropped which event
    of which workflow. Now dropping is audited (``deadletter.discard``), as replaying is
    (``deadletter.replay``, beside the run's own start)."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root = await _root(db)
    async with Client(db, token=root) as admin:
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.create_user("olga", ["operator"])
        tokens = {n: await admin.create_token(n) for n in ("svc", "olga")}
        await admin.set_switch("workflow", "tickets", mode="pause", reason="incident")
    async with server(db, workflows=flows.TRIGGERS, token=tokens["svc"]) as (app, http):
        olga = {"Authorization": f"Bearer {tokens['olga']}"}
        for key in ("k1", "k2"):
            r = await http.post(
                "/api/events/ticket.created", headers={**olga, "Idempotency-Key": key}, json={"id": 1, "subject": "s"}
            )
            assert r.status_code == 202 and r.json()["dead_lettered"], r.text
        first, second = [d["id"] for d in (await http.get("/api/deadletters", headers=olga)).json()["dead_letters"]]
        assert (await http.delete(f"/api/deadletters/{first}", headers=olga)).status_code == 200
        async with Client(db, token=root) as admin:
            await admin.clear_switch("workflow", "tickets")
        await app.state.client.governance.refresh()  # the server reads switches at its next sweep
        r = await http.post(f"/api/deadletters/{second}/replay", headers=olga)
        assert r.status_code == 200, r.text
    async with Client(db, token=root) as admin:
        entries = {e.action: e for e in await admin.audit_log() if e.action.startswith("deadletter.")}
    assert entries["deadletter.discard"].actor == "olga" and entries["deadletter.discard"].target == f"deadletter:{first}"
    assert '"workflow": "tickets"' in (entries["deadletter.discard"].data or "")
    assert entries["deadletter.replay"].actor == "olga" and entries["deadletter.replay"].target == f"deadletter:{second}"


async def test_attack_a_grant_does_not_bring_a_disabled_user_back(tmp_path: Path) -> None:
    """The attack: bob is disabled ("his tokens stop working at once", docs/governance.md) but his
    tokens are not revoked. Later an admin grants roles in bulk (``podium users grant bob viewer``)
    or adds him again with other roles: the account was written back enabled, and every token bob
    kept worked again, with the new roles. Now a disabled user stays disabled through a grant or an
    update; only ``podium users enable`` brings him back, and that is audited."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root = await _root(db)
    async with Client(db, token=root) as admin:
        await admin.create_user("bob", ["operator"])
        kept = await admin.create_token("bob", name="laptop")
        await admin.disable_user("bob")
        await admin.grant("bob", ["viewer"])
        with pytest.raises(AuthError, match="disabled"):
            await admin.governance.authenticate(kept)
        await admin.create_user("bob", ["approver"])
        with pytest.raises(AuthError, match="disabled"):
            await admin.governance.authenticate(kept)
        assert [u.disabled for u in await admin.users() if u.name == "bob"] == [True]
        await admin.disable_user("bob", disabled=False)
        assert (await admin.governance.authenticate(kept)).roles == ("approver",)
        assert [e.action for e in await admin.audit_log() if e.target == "user:bob"][-1] == "user.enable"


async def test_attack_another_sender_cannot_take_an_events_idempotency_key(server: Any, tmp_path: Path) -> None:
    """The attack: mallory (operator) posts ``ticket.created`` with the Idempotency-Key the bank's
    system will use (``inv-889``: keys are invoice or order numbers, easy to guess), and her own
    payload. When the bank posts its genuine event, it was answered 202 as a duplicate of
    mallory's run: the bank believed its event handled, its data was never run, and the run
    under its key held mallory's payload. The same for ``POST /api/events`` batches, webhooks
    and ``POST /api/runs``. Now a key whose run another sender started answers 409
    ``idempotency_key_taken`` (nothing starts; the sender's own repeats are still duplicates)."""
    db = f"sqlite:///{tmp_path}/podium.db"
    root = await _root(db)
    async with Client(db, token=root) as admin:
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.create_user("mallory", ["operator"])
        await admin.create_user("bank", ["operator"], service=True)
        tokens = {n: await admin.create_token(n) for n in ("svc", "mallory", "bank")}
    hooked = Workflow("hooked")
    hooked.triggers = [{"webhook": "/hooks/pay"}]  # type: ignore[attr-defined]

    @hooked.step
    def take(input: Any) -> Any:
        return input

    async with server(db, workflows=[*flows.ALL, hooked], token=tokens["svc"]) as (app, http):
        m = {"Authorization": f"Bearer {tokens['mallory']}", "Idempotency-Key": "inv-889"}
        b = {"Authorization": f"Bearer {tokens['bank']}", "Idempotency-Key": "inv-889"}
        first = await http.post("/api/events/ticket.created", headers=m, json={"id": 1, "subject": "mallory's"})
        assert first.status_code == 202 and first.json()["runs"]
        again = await http.post("/api/events/ticket.created", headers=m, json={"id": 1, "subject": "mallory's"})
        assert again.status_code == 202 and again.json()["duplicates"] == first.json()["runs"]  # her own repeat
        r = await http.post("/api/events/ticket.created", headers=b, json={"id": 2, "subject": "site down"})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "idempotency_key_taken" and "inv-889" in r.text
        batch = {"events": [{"type": "ticket.created", "idempotency_key": "inv-889", "payload": {"id": 2, "subject": "x"}}]}
        r = await http.post("/api/events", headers={"Authorization": b["Authorization"]}, json=batch)
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_taken", r.text
        assert (await http.post("/hooks/pay", headers=m, json={"to": "mallory"})).status_code == 202
        r = await http.post("/hooks/pay", headers=b, json={"to": "supplier"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_taken", r.text
        start = {"workflow": "hello", "input": {"name": "m"}, "idempotency_key": "order-7"}
        assert (await http.post("/api/runs", headers={"Authorization": m["Authorization"]}, json=start)).status_code == 201
        r = await http.post("/api/runs", headers={"Authorization": b["Authorization"]}, json=start)
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_taken", r.text
        from podium.server.mcp_tools import PodiumTools, ToolFailure

        bank = await app.state.client.governance.authenticate(tokens["bank"])
        with pytest.raises(ToolFailure, match="idempotency_key_taken"):
            await PodiumTools(app.state.client).call(
                bank, "start_run", {"workflow": "hello", "input": {}, "idempotency_key": "order-7"}
            )
