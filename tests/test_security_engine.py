"""Attacks on the engine's own guarantees (from the security review), each reproduced as a test:
approvals forged with a signal, timers and approval deadlines that never fired in an embedded
client, and runs taken over from a live worker that shares a hostname."""

from __future__ import annotations

import asyncio
import time

import pytest

from podium import Client, PermissionDenied, RunStatus, StepContext, Workflow, open_store


@pytest.fixture
def shared_store(store_url):
    return open_store(store_url) if store_url.startswith("memory") else store_url


def _payment() -> Workflow:
    wf = Workflow("payment")

    @wf.step
    async def approve(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="pay?", role="cfo", timeout=3600)
        return {"paid": bool(decision["approved"]), "by": decision["by"]}

    return wf


async def _tokens(store, **users: str) -> dict[str, str]:
    async with Client(store, recover=False) as local:
        await local.create_user("root", ["admin"])
        await local.define_role("cfo", ["runs.read", "approvals.read", "approvals.decide", "payloads.read"])
        tokens = {"root": await local.create_token("root")}
        for name, role in users.items():
            await local.create_user(name, [role])
            tokens[name] = await local.create_token(name)
        return tokens


async def test_attack_an_operator_cannot_forge_an_approval_with_a_signal(shared_store):
    wf = _payment()
    tokens = await _tokens(shared_store, mallory="operator", carol="cfo")
    async with Client(shared_store, workflows=[wf], token=tokens["root"]) as admin:
        run = await admin.start(wf, 10_000)

        async def parked() -> bool:
            return (await admin.get(run.id)).status is RunStatus.WAITING

        while not await parked():
            await asyncio.sleep(0.01)
        [request] = await admin.approvals(run_id=run.id)
    async with Client(shared_store, workflows=[wf], token=tokens["mallory"]) as mallory:
        forged = {"approved": True, "by": "cfo", "comment": "", "payload": None, "edited": False}
        for name in (request["name"], "__timer__:1"):
            with pytest.raises(PermissionDenied, match="answered only by the engine"):
                await mallory.signal(run.id, name, forged)
        # The same name without its prefix is an ordinary signal: it answers no approval.
        assert await mallory.signal(run.id, request["name"].removeprefix("approval:"), forged)
        await mallory.driving.settled(run.id)
        assert (await mallory.get(run.id)).status is RunStatus.WAITING  # not approved
    async with Client(shared_store, workflows=[wf], token=tokens["root"]) as admin:
        refused = [e for e in await admin.audit_log() if e.action == "signal.refuse"]
        assert len(refused) == 2 and {e.actor for e in refused} == {"mallory"}
    async with Client(shared_store, workflows=[wf], token=tokens["carol"]) as carol:
        assert await carol.decide(run.id, request["name"], approve=True, comment="ok")
        assert await carol.result(run.id, timeout=30) == {"paid": True, "by": "carol"}


async def test_a_custom_approval_name_is_still_an_approval(shared_store):
    wf = Workflow("custom")

    @wf.step
    async def ask(ctx: StepContext):
        return (await ctx.approval("x", name="manager-ok", timeout=3600))["approved"]

    async with Client(shared_store, workflows=[wf]) as c:
        run = await c.start(wf)
        while not await c.approvals(run_id=run.id):
            await asyncio.sleep(0.01)
        [request] = await c.approvals(run_id=run.id)
        assert request["name"] == "approval:manager-ok"
        with pytest.raises(PermissionDenied):
            await c.signal(run.id, "approval:manager-ok", {"approved": True})
        assert await c.decide(run.id, "approval:manager-ok", approve=False)
        assert await c.result(run.id, timeout=30) is False


async def test_durable_timers_and_approval_deadlines_fire_in_an_embedded_client(shared_store):
    """No resume() and no worker: the client that parked the run wakes it when its timer is due."""
    wf = Workflow("timers")

    @wf.step
    async def nap(ctx: StepContext):
        await ctx.sleep(1)
        return "rested"

    @wf.step
    async def ask(ctx: StepContext):
        decision = await ctx.approval("x", timeout=1, default={"approved": False, "by": "sla"})
        return decision["by"]

    async with Client(shared_store, workflows=[wf], poll_interval=0.1) as c:
        t0 = time.monotonic()
        run = await c.start(wf)
        assert await c.result(run.id, timeout=30) == {"nap": "rested", "ask": "sla"}
        assert time.monotonic() - t0 < 5  # both waits (1 s each, in parallel) fired on their own


async def test_a_restarted_client_wakes_runs_parked_by_the_previous_one(store_url, monkeypatch):
    if store_url.startswith("memory"):
        pytest.skip("a memory store does not outlive its client")
    from podium.engine import waits, worker

    monkeypatch.setattr(waits, "HOLD", 0.2)  # a 1 s sleep parks (not waited in memory)
    monkeypatch.setattr(worker, "EARLY", 0.2)
    wf = Workflow("restart_timer")

    @wf.step
    async def nap(ctx: StepContext):
        await ctx.sleep(1)
        return "done"

    async with Client(store_url, workflows=[wf], poll_interval=0.1) as c1:
        run = await c1.start(wf)
        while (await c1.get(run.id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)
    async with Client(store_url, workflows=[wf], poll_interval=0.1) as c2:
        assert await c2.result(run.id, timeout=30) == "done"


def test_owner_ids_name_the_pid_namespace_so_a_container_sharing_the_hostname_is_not_judged_dead():
    from podium.engine.worker import HOST, PID_NS, new_owner, owner_alive

    mine = new_owner()
    host, _pid, ns, _nonce = mine.split(":")
    assert (host, ns) == (HOST, PID_NS) and owner_alive(mine)
    assert not owner_alive(f"{HOST}:999999999:{PID_NS}:x")  # here, and its pid is gone: dead
    # Same hostname, another container (PID namespace): pid 999999999 means nothing here.
    assert owner_alive(f"{HOST}:999999999:other-ns:x")
    assert owner_alive(f"{HOST}:999999999:x")  # an older owner format: the lease decides
    assert owner_alive("elsewhere:1:ns:x")


async def test_attack_a_live_workers_run_is_not_taken_over_by_a_worker_sharing_its_hostname(store_url):
    from podium.engine.worker import HOST

    if store_url.startswith("memory"):
        pytest.skip("one process only")
    wf = Workflow("held")

    @wf.step
    async def work():
        return "done"

    async with Client(store_url, workflows=[wf], recover=False, execute=False) as c:
        run = await c.start(wf)
    other = f"{HOST}:999999999:other-container:abcd"  # alive in its own PID namespace
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.claim_runs(other, lease_seconds=3600, limit=1, now=time.time(), run_ids=[run.id])
    finally:
        await store.close()
    async with Client(store_url, workflows=[wf]) as c2:  # recovers on open: must not steal it
        assert (await c2.get(run.id)).owner == other
        assert run.id not in c2.driving


async def test_attack_a_run_inserted_into_the_runs_table_is_not_executed(tmp_path, audit_key):
    """An attacker with write access to the database inserts a pending run: no engine runs it, and
    audit verify names it."""
    import sqlite3

    paid: list[int] = []
    wf = Workflow("pay")

    @wf.step
    def pay(input):
        paid.append(input["amount"])
        return input["amount"]

    url = f"sqlite:///{tmp_path}/ins.db"
    async with Client(url, workflows=[wf]) as c:
        assert await c.run(wf, {"amount": 5}) == 5  # a legitimate run: anchored
    db = sqlite3.connect(tmp_path / "ins.db")
    db.execute(
        "INSERT INTO runs (id, workflow, version, status, input, created_at, queue, priority, cancel_requested) "
        "VALUES ('01a23ce0cb648ab9dcdeFORGED', 'pay', ?, 'pending', '{\"amount\": 999999}', ?, 'default', 0, 0)",
        (wf.version, time.time()),
    )
    db.commit()
    db.close()
    async with Client(url, workflows=[wf]) as c:  # recovers on open: claims the forged run
        run = await c.wait("01a23ce0cb648ab9dcdeFORGED", timeout=30)
        assert run.status is RunStatus.FAILED and "no entry in the audit log" in (run.error or "")
        problem = (await c.verify_audit())[1] or ""
    assert paid == [5]
    assert "01a23ce0cb648ab9dcdeFORGED" in problem and "no entry in the audit log" in problem


def _forged(path: str) -> dict:
    """A payload shaped like the store's own tag for a stored object, naming a class that runs a command."""
    return {"$podium": "dataclass", "type": "subprocess:Popen", "value": {"args": ["touch", path]}}


async def test_attack_a_forged_type_tag_in_data_runs_no_code(tmp_path):
    """The attack: run input, an event payload or a tool's result (JSON from anywhere) holding
    ``{"$podium": "dataclass", "type": "subprocess:Popen", ...}`` was stored as it was and, read back
    for the step, instantiated: any importable callable ran with the attacker's arguments. Data is now
    stored so that it reads back as the same data, and a stored tag (an older store, a message put on
    the bus by another party) instantiates only a dataclass or a pydantic model."""
    from podium import _serde

    marker = tmp_path / "pwned"
    seen: list = []
    wf = Workflow("echo-input")

    @wf.step
    async def look(ctx: StepContext, input):
        seen.append(input)
        fetched = await ctx.call(lambda: {"body": _forged(str(marker) + "-tool")}, name="fetch")
        return {"input": input, "fetched": fetched}

    async with Client("memory://") as client:
        out = await client.run(wf, {"x": _forged(str(marker))})
    assert not marker.exists() and not (tmp_path / "pwned-tool").exists()
    assert seen == [{"x": _forged(str(marker))}]  # the step got the data as it was sent
    assert out == {"input": {"x": _forged(str(marker))}, "fetched": {"body": _forged(str(marker) + "-tool")}}
    for value in (_forged("a"), {"$podium": "dict", "items": []}, [{"$podium": 1, "k": {"$podium": None}}]):
        assert _serde.loads(_serde.dumps(value)) == value  # a dict holding the key round-trips

    import json

    raw = json.dumps({"x": _forged(str(marker))})  # written by someone else, not by _serde.dumps
    assert _serde.loads(raw) == {"x": {"args": ["touch", str(marker)]}} and not marker.exists()


async def test_data_holding_the_tag_key_shows_as_it_was_sent():
    from podium.engine.trace import run_trace
    from podium.server._views import plain

    wf = Workflow("echo-tagged")

    @wf.step
    async def look(ctx: StepContext, input):
        return await ctx.call(lambda: {"$podium": "x", "n": 1}, name="fetch")

    async with Client("memory://") as client:
        run = await client.start(wf, {"$podium": "x"})
        await client.result(run.id, timeout=30)
        import json

        assert plain(json.loads((await client.get(run.id)).input)) == {"$podium": "x"}
        [call] = (await run_trace(client, run.id))["calls"]
        assert call["result"] == {"$podium": "x", "n": 1}


def test_attack_a_tag_cannot_make_the_engine_import_a_module():
    """A stored tag naming a module nobody imported (``antigravity`` opens a web browser on import)
    reads as its plain value: importing a module runs its code."""
    import json
    import sys

    from podium import _serde

    assert "antigravity" not in sys.modules
    raw = json.dumps({"$podium": "dataclass", "type": "antigravity:X", "value": {"a": 1}})
    assert _serde.loads(raw) == {"a": 1}
    assert "antigravity" not in sys.modules


def test_a_stored_object_of_a_module_not_yet_imported_reads_back_after_a_restart():
    """A resumed run in a fresh process reads its steps' objects before the code that would import
    their module ran: a module of an imported package (Podium's, the workflow's) is imported."""
    import subprocess
    import sys

    code = (
        "import sys, podium; from podium import _serde\n"
        "assert 'podium.classifiers._base' not in sys.modules, 'imported already'\n"
        "raw = '{\"$podium\":\"dataclass\",\"type\":\"podium.classifiers._base:Classification\",\"value\":{\"label\":\"a\",\"confidence\":0.5}}'\n"
        "print(type(_serde.loads(raw)).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "Classification", out.stderr


async def test_a_steps_own_call_named_like_a_signal_wait_cannot_close_an_approval_request(store_url):
    """Attack on the inbox the store now keeps itself: a branch of the run names a durable call
    ``signal:<the approval's name>`` and returns ``{"signal": ...}``, as if its completion ended
    the approval's wait. The request stays in the inbox (only the engine's own wait completions,
    whose data it writes, close one) and can still be decided."""
    wf = Workflow("forge-close")

    @wf.step
    async def ask(ctx: StepContext):
        return await ctx.approval({"amount": 300})

    @wf.step
    async def other(ctx: StepContext):
        async def forged():
            return {"signal": "approval:ask", "timed_out": True}

        return await ctx.call(forged, name="signal:approval:ask")

    async with Client(store_url, poll_interval=0.05) as c:
        handle = await c.start(wf)
        for _ in range(500):
            pending = await c.approvals(run_id=handle.id)
            if pending and (await c.get(handle.id)).status is RunStatus.WAITING:
                break
            await asyncio.sleep(0.01)
        assert [p["name"] for p in await c.approvals(run_id=handle.id)] == ["approval:ask"]
        await c.decide(handle.id, "approval:ask", approve=True)
        await handle.result()


async def test_a_plain_wait_cannot_take_an_approvals_name(store_url):
    """Review: ctx.wait_for on an approval's name timing out would end the open request (gone from
    the inbox, a decision then refused) without anyone deciding. The name is reserved: the step
    fails with an error that says to use ctx.approval()."""
    from podium import Client, RunFailed, Workflow

    wf = Workflow("hides-its-approval")

    @wf.step
    async def sneaky(ctx: StepContext):
        return await ctx.wait_for("approval:pay", timeout=0.1, default={"approved": True})

    async with Client(store_url, workflows=[wf]) as c:
        with pytest.raises(RunFailed, match="reserved for approvals.*ctx.approval"):
            await c.run(wf)


async def test_a_run_that_recorded_a_plain_wait_on_an_approvals_name_replays_it(store_url):
    """Review: the refusal above applies to new waits only: a run that recorded such a wait (before
    the name was reserved) replays it from its log."""
    if store_url.startswith("memory"):
        pytest.skip("a memory store does not outlive its client")
    from podium import Client, Workflow

    wf = Workflow("old-plain-wait")

    @wf.step
    async def old(ctx):
        return await ctx.wait_for("approval:pay", timeout=3600)

    async with Client(store_url, workflows=[wf], execute=False) as c:
        handle = await c.start(wf)
        done = '{"started":1,"signal":"approval:pay","output":{"ok":true}}'
        await c.store.append_one(handle.id, 2, "step_completed", time.time(), "old/signal:approval:pay", 0, None, 1, done)
    async with Client(store_url, workflows=[wf]) as c:
        assert await c.result(handle.id) == {"ok": True}


async def test_attack_a_viewer_cannot_start_a_run_through_run_child(shared_store):
    """Attack: Client.run_child (the engine's path for a step's child run) is public and checks
    nothing: a viewer, refused by start(), started a run with it and got back its record, output
    included. Now it serves only steps of runs this client drives."""
    tokens = await _tokens(shared_store, vic="viewer")
    wf = Workflow("secretive")

    @wf.step
    async def work(input):
        return {"echo": input, "secret": "card 4111"}

    parent = Workflow("parent")

    @parent.step
    async def spawn(ctx: StepContext, input):
        return await ctx.run_workflow(wf, input)

    async with Client(shared_store, token=tokens["vic"], recover=False) as v:
        with pytest.raises(PermissionDenied, match="may not runs.start"):
            await v.start(wf, 1)
        with pytest.raises(PermissionDenied, match="not driven by this client"):
            await v.run_child("someone-elses-run", wf, {"x": 1}, "k1", "spawn")
    async with Client(shared_store, token=tokens["root"], recover=False) as root:
        assert await root.list(workflow="secretive") == []  # the viewer started nothing
        assert await root.run(parent, 2) == {"echo": 2, "secret": "card 4111"}  # a step's child run still runs
