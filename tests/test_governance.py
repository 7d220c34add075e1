"""Governance: identity and RBAC (the whole role x action matrix), tokens, the tamper-evident audit
log, human approvals (including a restart while waiting), and kill switches."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from podium import Client, RunStatus, StepContext, Workflow, open_store
from podium.errors import AuthError, ConfigError, KillSwitchActive, PermissionDenied
from podium.governance.identity import BUILTIN_ROLES, PERMISSIONS


@pytest.fixture
def shared_store(store_url):
    return open_store(store_url) if store_url.startswith("memory") else store_url


def _wf() -> Workflow:
    wf = Workflow("gov")

    @wf.step
    async def work(ctx: StepContext, input):
        return await ctx.wait_for("go", timeout=3600, default=input) if input == "wait" else input

    return wf


async def _admin_token(store) -> str:
    async with Client(store, recover=False) as local:  # local mode: no users yet
        assert local.principal.local and local.principal.can("users.manage")
        await local.create_user("root", ["admin"])
        return await local.create_token("root", name="bootstrap")


async def test_local_mode_then_tokens_are_required(shared_store):
    token = await _admin_token(shared_store)
    with pytest.raises(AuthError, match="needs an API token"):
        async with Client(shared_store):
            pass
    with pytest.raises(AuthError, match="unknown API token"):
        async with Client(shared_store, token="pod_nope"):
            pass
    async with Client(shared_store, token=token) as c:
        assert c.principal.name == "root" and not c.principal.local


async def test_token_expiry_revocation_and_scopes(shared_store):
    token = await _admin_token(shared_store)
    async with Client(shared_store, token=token) as admin:
        await admin.create_user("ci", ["operator"], service=True)
        short = await admin.create_token("ci", name="short", ttl=0.01)
        scoped = await admin.create_token("ci", name="readonly", scopes=["runs.read"])
        revoked = await admin.create_token("ci", name="old")
        assert await admin.revoke_token("ci", "old") == 1
        from podium import ConfigError

        with pytest.raises(ConfigError, match="unknown scope"):
            await admin.create_token("ci", scopes=["runs.read", "nope"])
        for forever in (0, -5, float("nan"), float("inf")):  # before: 0 and NaN made a token that never expires
            with pytest.raises(ConfigError, match="token ttl must be a number of seconds > 0"):
                await admin.create_token("ci", name="bad", ttl=forever)
    await asyncio.sleep(0.02)
    with pytest.raises(AuthError, match="expired"):
        async with Client(shared_store, token=short):
            pass
    with pytest.raises(AuthError, match="revoked"):
        async with Client(shared_store, token=revoked):
            pass
    async with Client(shared_store, token=scoped) as ro:
        assert ro.principal.permissions == frozenset({"runs.read"})
        with pytest.raises(PermissionDenied, match="may not runs.start"):
            await ro.start(_wf(), 1)


async def test_unknown_role_is_refused(shared_store):
    from podium import ConfigError

    async with Client(shared_store, recover=False) as local:
        with pytest.raises(ConfigError, match="unknown role"):
            await local.create_user("x", ["wizard"])


async def test_role_by_action_matrix(shared_store):
    """Every built-in role against every action: allowed exactly when the role has the permission."""
    token = await _admin_token(shared_store)
    tokens = {}
    async with Client(shared_store, token=token) as admin:
        for role in BUILTIN_ROLES:
            await admin.create_user(f"u-{role}", [role])
            tokens[role] = await admin.create_token(f"u-{role}")
        await admin.define_role("auditor", ["audit.read", "runs.read"])
        await admin.create_user("u-auditor", ["auditor"])
        tokens["auditor"] = await admin.create_token("u-auditor")
        wf = _wf()
        done = await admin.start(wf, 1)
        await done.result()
        waiting = await admin.start(wf, "wait")
        while (await admin.get(waiting.id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)

    async def attempt(c: Client, permission: str) -> None:
        actions = {
            "workflows.read": lambda: c.list(limit=1),  # workflows are read through runs here
            "runs.read": lambda: c.get(done.id),
            "payloads.read": lambda: c.authorize("payloads.read"),
            "runs.start": lambda: c.start(wf, 2),
            "runs.cancel": lambda: c.cancel(done.id),
            "runs.resume": lambda: c.resume([done.id]),
            "runs.fork": lambda: c.fork(done.id, "work"),
            "runs.signal": lambda: c.authorize("runs.signal"),
            "approvals.read": lambda: c.approvals(),
            "approvals.decide": lambda: c.authorize("approvals.decide"),
            "policies.write": lambda: c.authorize("policies.write"),
            "killswitch.use": lambda: c.set_switch("workflow", "nothing-real", reason="matrix"),
            "audit.read": lambda: c.audit_log(limit=1),
            "users.manage": lambda: c.users(),
            "tools.manage": lambda: c.remove_capability("nothing-real"),
            "secrets.manage": lambda: c.secrets.list(),
            "workflows.deploy": lambda: c.authorize("workflows.deploy"),
            "memory.read": lambda: c.authorize("memory.read"),
            "memory.write": lambda: c.authorize("memory.write"),
            # Checked by the surfaces (podium memory prune, forget, db migrate-to, db upgrade).
            "memory.prune": lambda: c.authorize("memory.prune"),
            "memory.forget": lambda: c.authorize("memory.forget"),
            "data.export": lambda: c.authorize("data.export"),
            "store.manage": lambda: c.authorize("store.manage"),
        }
        await actions[permission]()

    roles = {**{r: set(p) for r, p in BUILTIN_ROLES.items()}, "auditor": {"audit.read", "runs.read"}}
    checked = 0
    for role, allowed in roles.items():
        async with Client(shared_store, token=tokens[role], recover=False) as c:
            for permission in PERMISSIONS:
                if permission in allowed:
                    await attempt(c, permission)
                elif permission == "workflows.read":
                    continue  # reading runs needs runs.read, checked on its own row
                else:
                    with pytest.raises(PermissionDenied, match=f"may not {permission}"):
                        await attempt(c, permission)
                checked += 1
    assert checked >= len(roles) * (len(PERMISSIONS) - 1)
    async with Client(shared_store, token=token) as admin:
        denied = [e for e in await admin.audit_log() if e.action == "access.denied"]
        assert denied and all(e.details()["permission"] in PERMISSIONS for e in denied)


async def test_audit_records_actions_and_never_secrets(shared_store):
    async with Client(shared_store) as c:
        await c.create_user("ann", ["operator"])
        token = await c.create_token("ann")
        await c.run(_wf(), 5)
        log = await c.audit_log()
        actions = [e.action for e in log if e.action != "audit.anchor"]  # the chain's anchors aside
        assert actions[:2] == ["user.put", "token.create"]
        assert "run.start" in actions and "run.end" in actions
        end = next(e for e in log if e.action == "run.end")
        assert end.details()["status"] == "completed" and len(end.details()["digest"]) == 64
        assert all(token not in e.data for e in log)
        assert await c.verify_audit() == (len(log), None)


async def test_audit_verify_detects_edit_delete_and_reorder(tmp_path):
    url = f"sqlite:///{tmp_path}/audit.db"
    async with Client(url) as c:
        for i in range(3):
            await c.run(_wf(), i)
        n, problem = await c.verify_audit()
        assert problem is None and n >= 6
    path = str(tmp_path / "audit.db")

    def tamper(sql: str) -> None:
        db = sqlite3.connect(path)
        db.executescript(sql)
        db.commit()
        db.close()

    async def check() -> str:
        async with Client(url, recover=False) as c:
            return (await c.verify_audit())[1] or ""

    import shutil

    shutil.copy(path, path + ".orig")
    tamper("UPDATE audit SET actor='mallory' WHERE seq=3")
    assert "entry 3" in await check() and "edited" in await check()
    shutil.copy(path + ".orig", path)
    tamper("DELETE FROM audit WHERE seq=2")
    assert "entry 1 of audit chain" in await check() and "entries were deleted" in await check()
    shutil.copy(path + ".orig", path)
    # reorder: entries 2 and 3 swap places (each keeps its own content and hashes)
    tamper(
        "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; "
        "UPDATE audit SET seq = 3 WHERE seq = -2;"
    )
    assert "entry 2" in await check() and "reordered" in await check()
    shutil.copy(path + ".orig", path)
    tamper("UPDATE events SET data='{\"output\":999}' WHERE type='step_completed'")
    assert "history was changed after it ended" in await check()


def _approval_wf(decisions: list) -> Workflow:
    wf = Workflow("refund-approval")

    @wf.step
    async def score(input):
        return 0.4 if input["amount"] > 100 else 0.95  # confidence of an automatic decision

    @wf.step
    async def decide(ctx: StepContext, input, score):
        if score >= 0.8:
            return {"approved": True, "by": "auto", "payload": input}
        decision = await ctx.approval(input, title=f"refund {input['amount']}?", role="approver")
        decisions.append(decision)
        return decision

    @wf.step
    async def pay(decide):
        return f"paid {decide['payload']['amount']}" if decide["approved"] else "refused"

    return wf


async def test_low_confidence_escalates_to_a_human_across_a_restart(shared_store):
    decisions: list = []
    wf = _approval_wf(decisions)
    async with Client(shared_store, workflows=[wf]) as c:
        assert await c.run(wf, {"amount": 20}) == "paid 20"  # confident: no human
        await c.create_user("alice", ["approver"])
        await c.create_user("victor", ["viewer"])
        alice, victor = await c.create_token("alice"), await c.create_token("victor")
        await c.create_user("root", ["admin"])
        root = await c.create_token("root")
    async with Client(shared_store, token=root, workflows=[wf]) as c:
        handle = await c.start(wf, {"amount": 500})
        while (await c.get(handle.id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)
    # the engine restarts while the approval is pending: nothing is held meanwhile
    async with Client(shared_store, token=victor, workflows=[wf]) as v:
        inbox = await v.approvals()
        assert [(a["run_id"], a["title"], a["role"]) for a in inbox] == [
            (handle.id, "refund 500?", "approver")
        ]
        assert inbox[0]["payload"] is None  # what to approve is run data: hidden as on the API (attack: it was shown)
        with pytest.raises(PermissionDenied):
            await v.decide(handle.id, inbox[0]["name"], approve=True)
    async with Client(shared_store, token=alice, workflows=[wf]) as a:
        assert (await a.approvals())[0]["payload"] == {"amount": 500}
        name = (await a.approvals())[0]["name"]
        assert await a.decide(
            handle.id, name, approve=True, comment="ok, but cap it", payload={"amount": 300}
        )
        assert await a.result(handle.id) == "paid 300"
        assert await a.approvals() == []
    assert (
        decisions[-1]["by"] == "alice"
        and decisions[-1]["edited"]
        and decisions[-1]["comment"] == "ok, but cap it"
    )
    async with Client(shared_store, token=root) as c:
        decided = [e for e in await c.audit_log() if e.action == "approval.decide"]
        assert decided[-1].actor == "alice" and decided[-1].details()["approved"] is True


async def test_approvals_inbox_pages_and_a_decision_leaves_it(shared_store):
    wf = _approval_wf([])
    async with Client(shared_store, workflows=[wf]) as c:
        handles = [await c.start(wf, {"amount": 200 + i}) for i in range(5)]
        for h in handles:
            while (await c.get(h.id)).status is not RunStatus.WAITING:
                await asyncio.sleep(0.01)
        first = await c.approvals(limit=3)
        second = await c.approvals(limit=3, after=first[-1])
        assert len(first) == 3 and len(second) == 2
        assert sorted(a["run_id"] for a in first + second) == sorted(h.id for h in handles)
        assert await c.approvals(after=second[-1]) == []
        assert [a["payload"]["amount"] for a in await c.approvals(run_id=handles[4].id)] == [204]
        assert len(await c.approvals(workflow="refund-approval")) == 5 and await c.approvals(workflow="x") == []
        with pytest.raises(ConfigError, match="limit must be 1 to 1000"):
            await c.approvals(limit=1001)
        with pytest.raises(ConfigError, match="not an approval request"):
            await c.approvals(after={"run_id": "r"})
        decided = first[0]
        assert await c.decide(decided["run_id"], decided["name"], approve=False)
        left = await c.approvals()
        assert len(left) == 4 and decided["run_id"] not in {a["run_id"] for a in left}
        assert await c.result(decided["run_id"], timeout=5) == "refused"


async def test_a_request_beyond_the_first_page_can_be_decided(shared_store):
    """Attack: a run whose input asks more than a page (100) of approvals at once (a map step):
    decide() looked for the request in the run's first page only, so the later ones could not be
    decided and ran into their SLA default."""
    wf = Workflow("many-asks")

    @wf.step(map="input")
    async def ask(ctx: StepContext, input):
        return (await ctx.approval({"item": input}, timeout=3600, default={"approved": False}))["approved"]

    async with Client(shared_store, workflows=[wf]) as c:
        handle = await c.start(wf, list(range(105)))
        while (await c.get(handle.id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)
        first = await c.approvals(run_id=handle.id)
        rest = await c.approvals(run_id=handle.id, after=first[-1])
        assert len(first) == 100 and len(rest) == 5
        assert await c.decide(handle.id, rest[-1]["name"], approve=True)
        assert rest[-1]["name"] not in {a["name"] for a in await c.approvals(run_id=handle.id, limit=1000)}


async def test_approval_sla_takes_the_default(shared_store):
    wf = Workflow("sla-approval")

    @wf.step
    async def ask(ctx: StepContext):
        return await ctx.approval({"x": 1}, timeout=0.05, default={"approved": False, "by": "sla"})

    async with Client(shared_store, poll_interval=0.02) as c:
        handle = await c.start(wf)
        await asyncio.sleep(0.1)
        await c.resume()
        assert (await c.result(handle.id, timeout=5)) == {"approved": False, "by": "sla"}


async def test_kill_switch_pauses_at_the_next_step_and_resumes(shared_store):
    wf = Workflow("switchable")
    gate = asyncio.Event()
    ran: list[str] = []

    @wf.step
    async def first():
        ran.append("first")
        await gate.wait()
        return 1

    @wf.step
    async def second(first):
        ran.append("second")
        return first + 1

    async with Client(shared_store, poll_interval=0.02) as c:
        handle = await c.start(wf)
        while "first" not in ran:
            await asyncio.sleep(0.01)
        await c.set_switch("workflow", "switchable", reason="incident 42")
        with pytest.raises(KillSwitchActive, match="incident 42"):
            await c.start(wf)
        gate.set()
        while (await c.get(handle.id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)
        assert ran == ["first"]  # paused at the step boundary
        assert await c.clear_switch("workflow", "switchable") == 1
        await c.resume()
        assert await c.result(handle.id, timeout=5) == 2
        actions = [e.action for e in await c.audit_log()]
        assert "killswitch.set" in actions and "killswitch.clear" in actions


async def test_kill_switch_cancel_mode(shared_store):
    wf = Workflow("doomed")

    @wf.step
    async def forever():
        await asyncio.sleep(30)

    async with Client(shared_store, poll_interval=0.02) as c:
        handle = await c.start(wf)
        await asyncio.sleep(0.05)
        await c.set_switch("all", mode="cancel", reason="stop everything")
        run = await c.wait(handle.id, timeout=5)
        assert run.status is RunStatus.CANCELLED
        await c.clear_switch("all")


async def test_a_switched_off_workflow_cannot_be_forked(shared_store):
    """Attack: a fork started a new run of a workflow whose kill switch refuses new runs."""
    wf = _wf()
    async with Client(shared_store) as c:
        handle = await c.start(wf, 1)
        await handle.result()
        await c.set_switch("workflow", "gov", reason="incident 7")
        with pytest.raises(KillSwitchActive, match="incident 7"):
            await c.fork(handle.id, "work")
        assert [r.id for r in await c.list()] == [handle.id]  # no new run
        await c.clear_switch("workflow", "gov")
        assert await (await c.fork(handle.id, "work")).result() == 1


async def test_viewer_sees_runs_without_payloads(shared_store):
    async with Client(shared_store) as c:
        handle = await c.start(_wf(), {"secret": "card 4111 zebra"})
        await handle.result()
        await c.create_user("v", ["viewer"])
        token = await c.create_token("v")
    async with Client(shared_store, token=token) as v:
        h = await v.history(handle.id)  # a marker no timestamp can hold by chance
        assert "zebra" not in json.dumps([e.data for e in h.events]) + (h.run.input or "")
        assert h.step("work").status.value == "completed"
        assert h.step("work").output == "[hidden: needs payloads.read]"
        assert h.step("work").started_at is not None  # timings stay visible


async def test_python_client_hides_payloads_as_the_api_does(shared_store):
    """Attack: a viewer (runs.read, no payloads.read) read a run's input and output through the
    Python client's get, list and wait, and its result, which the API and history() hide."""
    async with Client(shared_store) as c:
        handle = await c.start(_wf(), {"secret": "card 4111"})
        await handle.result()
        await c.create_user("v", ["viewer"])
        token = await c.create_token("v")
        await c.create_user("a", ["admin"])
        admin_token = await c.create_token("a")
    async with Client(shared_store, token=token, recover=False) as v:
        seen = [await v.get(handle.id), *(await v.list()), await v.wait(handle.id)]
        assert all(r.id == handle.id and r.status is RunStatus.COMPLETED for r in seen)
        for r in seen:
            assert "4111" not in (r.input or "") + (r.output or "")
            assert r.input == r.output == '"[hidden: needs payloads.read]"'
        with pytest.raises(PermissionDenied, match="may not payloads.read"):
            await v.result(handle.id)
    async with Client(shared_store, token=admin_token, recover=False) as admin:
        denied = [e for e in await admin.audit_log(limit=10_000) if e.action == "access.denied"]
        assert any(e.target == handle.id and "payloads.read" in e.data for e in denied)


async def test_waiting_on_a_driven_run_needs_runs_read(shared_store):
    """Attack: a principal that may start runs but not read them got a run's record and output
    from wait()/result() while this client drove the run (the in-memory path skipped the check)."""
    async with Client(shared_store, recover=False) as local:
        await local.define_role("starter", ["runs.start", "workflows.read"])
        await local.create_user("s", ["starter"])
        token = await local.create_token("s")
    go = asyncio.Event()
    wf = Workflow("gated")

    @wf.step
    async def work(input):
        await go.wait()
        return {"secret": "card 4111"}

    async with Client(shared_store, token=token) as s:
        handle = await s.start(wf)
        assert handle.id in s.driving
        reads = [asyncio.ensure_future(r) for r in (s.wait(handle.id), s.result(handle.id), handle.result())]
        await asyncio.sleep(0)  # one turn: each read is under way (before the fix: waiting on the run in memory)
        go.set()
        for read in reads:
            with pytest.raises(PermissionDenied, match="may not runs.read"):
                await read
        for read in (s.get, s.wait, s.result):
            with pytest.raises(PermissionDenied, match="may not runs.read"):
                await read(handle.id)
        with pytest.raises(PermissionDenied, match="may not runs.read"):
            await s.list()
        for read in (s.get, s.wait):  # refused before the run is looked up: no telling which ids exist
            with pytest.raises(PermissionDenied, match="may not runs.read"):
                await read("no-such-run")


async def test_a_client_without_runs_resume_drives_no_run_it_did_not_start(shared_store):
    """Attack: a viewer's Python client (which executes and recovers by default) claimed and drove a
    queued run it did not start, which `podium worker` and the API's resume refuse without runs.resume."""
    wf = _wf()
    async with Client(shared_store, execute=False) as c:
        handle = await c.start(wf, 1)  # queued for a worker
        await c.create_user("v", ["viewer"])
        token = await c.create_token("v")
        await c.create_user("a", ["admin"])
        admin = await c.create_token("a")
    stopped = asyncio.Event()
    stopped.set()  # a worker told to stop at once (before the fix it claimed and returned)
    async with Client(shared_store, token=token, workflows=[wf]) as v:
        with pytest.raises(PermissionDenied, match="may not runs.resume"):
            await v.work(stopped)
    async with Client(shared_store, token=admin, workflows=[wf], recover=False) as a:
        assert (await a.get(handle.id)).status is RunStatus.PENDING  # still queued: nobody drove it
    async with Client(shared_store, token=admin, workflows=[wf]) as a:  # an engine that may resume runs does
        assert await a.result(handle.id) == 1


async def test_switches_and_policies_are_read_with_the_permissions_the_api_asks(shared_store):
    """Attack: the Python client listed kill switches and policies with no permission at all; the
    API asks runs.read and workflows.read."""
    async with Client(shared_store, recover=False) as local:
        await local.set_switch("workflow", "gov", reason="incident 9")
        await local.define_role("signaller", ["runs.signal"])
        await local.create_user("sig", ["signaller"])
        token = await local.create_token("sig")
        await local.clear_switch("workflow", "gov")
    async with Client(shared_store, token=token, recover=False) as s:
        with pytest.raises(PermissionDenied, match="may not runs.read"):
            await s.switches()
        with pytest.raises(PermissionDenied, match="may not workflows.read"):
            await s.policies()
        with pytest.raises(PermissionDenied, match="may not runs.read"):
            await s.quarantine.depth()  # it answered anyone


async def test_a_scoped_tokens_runs_act_with_the_roles_its_scopes_leave_whole(shared_store):
    """Attack: an admin's token scoped to starting, forking and reading runs started (and forked)
    runs that step code, asking who started them (ctx.started_by: what a goal plans with), saw as
    started by an admin; a fork's entry even took the user's roles as they are now."""
    wf = Workflow("whom")

    @wf.step
    async def who(ctx: StepContext):
        p = await ctx.started_by()
        return list(p.roles) if p else None

    async with Client(shared_store, recover=False) as local:
        await local.create_user("boss", ["admin"])
        scoped = await local.create_token("boss", name="ci", scopes=["runs.start", "runs.fork", "runs.read", "payloads.read", "workflows.read"])
        full = await local.create_token("boss", name="all")
    async with Client(shared_store, token=scoped, workflows=[wf]) as c:
        first = await c.start(wf)
        assert await first.result() == []
        assert await (await c.fork(first.id, "who")).result() == []
    async with Client(shared_store, token=full, workflows=[wf]) as c:
        assert await c.run(wf) == ["admin"]


def test_permissions_are_distinct_and_roles_known():
    assert len(set(PERMISSIONS)) == len(PERMISSIONS)
    assert set(BUILTIN_ROLES) == {"viewer", "operator", "approver", "admin", "worker"}


async def test_audit_verify_accepts_recorded_redaction_and_pruning(tmp_path):
    """`podium forget` rewrites run payloads and pruning deletes runs: both are recorded in the
    audit log, so verify accepts them; an unrecorded deletion is still caught."""
    pytest.importorskip("numpy")
    from podium.memory import Memory

    url = f"sqlite:///{tmp_path}/forget.db"
    async with Client(url) as c:
        kept = await c.start(_wf(), {"email": "ann@example.com"})
        await kept.result()
        old = await c.start(_wf(), 2)
        await old.result()
        async with Memory(c.store, embedder="hash:64") as mem:
            await mem.forget("customer:ann", values=["ann@example.com"], reason="GDPR request")
            assert (await c.verify_audit())[1] is None  # redaction recorded: accepted
            await mem.prune_runs(older_than=-1)  # prune every finished run
        assert (await c.verify_audit())[1] is None  # pruning recorded: accepted
    db = sqlite3.connect(tmp_path / "forget.db")
    db.execute("DELETE FROM audit WHERE action = 'run.prune'")
    db.commit()
    db.close()
    async with Client(url, recover=False) as c:
        problem = (await c.verify_audit())[1] or ""
    assert "missing" in problem or "deleted" in problem


async def test_trusted_service_principal_and_start_events(shared_store):
    from podium.governance.identity import Principal

    token = await _admin_token(shared_store)
    del token
    async with Client(shared_store, principal=Principal.engine()) as svc:  # no token needed in-process
        seen: list[str] = []
        svc.subscribe(lambda ev: seen.append(ev.type))
        await svc.run(_wf(), 1)
        assert seen[0] == "run_started" and seen[-1] == "run_completed"
        assert svc.workflows() == {"gov": ["1"]}


async def test_application_events_need_the_permissions_the_api_asks(shared_store):
    """Attack: a viewer's client.emit published an event, which starts every workflow subscribed to
    it (podium serve's triggers), although POST /api/events needs runs.start; and a viewer's
    client.on received every event's payload, a run's live model text included, which the API's
    run stream sends only with payloads.read. Step code still emits under any driver (a worker)."""
    async with Client(shared_store, recover=False) as local:
        tokens = {}
        for role in ("viewer", "operator", "worker"):
            await local.create_user(role[0], [role])
            tokens[role] = await local.create_token(role[0])
    wf = Workflow("announce")

    @wf.step
    async def tell(ctx: StepContext, input):
        await ctx.emit("ticket.created", {"id": input})
        return input

    heard: list = []
    async with Client(shared_store, token=tokens["operator"], recover=False, execute=False) as o:
        await o.on("ticket.*", lambda topic, payload: heard.append(payload))
        async with Client(shared_store, token=tokens["viewer"], recover=False) as v:
            with pytest.raises(PermissionDenied, match="may not runs.start on event:ticket.created"):
                await v.emit("ticket.created", {"id": "forged"})
            with pytest.raises(PermissionDenied, match="may not payloads.read"):
                await v.on("podium.tokens.*", lambda topic, payload: heard.append(payload))
        await o.emit("ticket.created", {"id": 1})
        handle = await o.start(wf, 2)  # driven below by a worker, which may not start runs itself
        async with Client(shared_store, token=tokens["worker"], recover=False, workflows=[wf]) as w:
            told: list = []
            await w.on("ticket.*", lambda topic, payload: told.append(payload))  # a worker holds payloads.read
            assert await w.resume([handle.id]) == [handle.id]
            assert (await w.wait(handle.id, timeout=10)).status is RunStatus.COMPLETED
            assert told == [{"id": 2}]
        for _ in range(200):
            if heard:
                break
            await asyncio.sleep(0.01)
        assert heard[0] == {"id": 1} and {"id": "forged"} not in heard


async def test_a_failed_runs_error_message_is_a_payload(shared_store):
    """Attack: a viewer read a failed run's error message (step code's exception text, which quotes
    the data it failed on) from get, list and wait, while history() and the API's steps and events
    hide that same message without payloads.read."""
    wf = Workflow("declines")

    @wf.step
    async def charge(input):
        raise ValueError(f"card {input['card']} declined")

    async with Client(shared_store, recover=False) as local:
        handle = await local.start(wf, {"card": "4111 1111 1111 1111"})
        assert (await local.wait(handle.id)).status is RunStatus.FAILED
        assert "4111" in (await local.get(handle.id)).error
        await local.create_user("v", ["viewer"])
        token = await local.create_token("v")
    async with Client(shared_store, token=token, recover=False) as v:
        for run in (await v.get(handle.id), *(await v.list()), await v.wait(handle.id), (await v.history(handle.id)).run):
            error = json.loads(run.error)
            assert "4111" not in run.error and error["message"] == "[hidden: needs payloads.read]"
            assert error["type"] == "builtins.ValueError"  # what failed stays visible, not with what


async def test_an_idle_engine_sees_a_switch_set_by_another_process(tmp_path):
    """Before: an engine read the switches again only while it drove runs, so `podium serve`, idle,
    started runs of a workflow that `podium killswitch set` (another process) had switched off."""
    wf = Workflow("payouts")

    @wf.step
    async def pay(ctx: StepContext, input):
        return input

    url = f"sqlite:///{tmp_path}/p.db"
    async with Client(url, poll_interval=0.05) as server:
        server.register(wf)
        async with Client(url) as cli:
            await cli.set_switch("workflow", "payouts", reason="incident 9")
        await asyncio.sleep(0.5)  # ten sweeps of an idle engine
        with pytest.raises(KillSwitchActive, match="incident 9"):
            await server.start(wf, 1)


async def test_no_token_is_made_for_a_disabled_user(shared_store):
    """``create_token`` (the CLI's and Python's one path) made tokens for a disabled user, refused at
    every use but standing the moment the user is enabled again: it is refused, nothing is stored."""
    token = await _admin_token(shared_store)
    async with Client(shared_store, token=token) as admin:
        await admin.create_user("bob", ["operator"])
        await admin.disable_user("bob")
        with pytest.raises(ConfigError, match=r"user 'bob' is disabled.*podium users enable bob"):
            await admin.create_token("bob", name="fresh")
        assert not [e for e in await admin.audit_log() if e.action == "token.create" and e.target == "user:bob"]
        await admin.disable_user("bob", disabled=False)
        bob = await admin.create_token("bob", name="fresh")
    async with Client(shared_store, token=bob) as c:
        assert c.principal.name == "bob"


async def test_the_commands_messages_suggest_quote_user_names(tmp_path) -> None:
    """Review of the fifth session's last fixes: user names are not restricted, and the commands the
    messages suggest put them in unquoted (``podium users enable ann lee`` enables nobody). They are
    quoted for a shell where they need it."""
    from podium import Client
    from podium.errors import AuthError

    db = f"sqlite:///{tmp_path}/g.db"
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.create_user("ann lee", ["viewer"])
        token = await admin.create_token("ann lee")
        await admin.disable_user("ann lee")
        with pytest.raises(AuthError, match=r"podium users enable 'ann lee'"):
            await admin.authenticate(token)
