"""Security items the fourth session's reviews suspected and left open, each written as the attack
that succeeded on the code before its fix (docs/status.md, "Security items left by the reviews,
fixed (2026-12-06, fifth session)")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium import Client, RunFailed, RunStatus, StepContext, Workflow, open_store
from podium.cli._why import explain

# -- kill switches: a child run is a new run ---------------------------------------------------------


def _parent_and_child(ran: list[str]) -> tuple[Workflow, Workflow]:
    child = Workflow("payout")

    @child.step
    async def pay(input):
        ran.append(f"paid {input}")
        return input

    parent = Workflow("month-end")
    parent.subworkflow("payouts", child, input=lambda input: input)

    @parent.step
    async def via_ctx(ctx: StepContext, payouts):
        return await ctx.run_workflow(child, payouts + 1, name="again")

    return parent, child


async def _children(c: Client, run_id: str) -> list[Any]:
    return list(await c.list(parent_run_id=run_id))


async def test_attack_a_child_of_a_switched_off_workflow_is_not_created(store_url: str) -> None:
    """The attack: an operator switches the ``payout`` workflow off; ``client.start`` refuses new
    payout runs, but a ``month-end`` run (not switched off) still created payout runs as children
    of its step (``client.run_child`` never asked ``check_startable``): they parked at their first
    step, but they existed, and a ``cancel`` switch let them be created too. Now a child of a
    paused workflow is not created: the parent waits at that step and creates it once the switch
    is cleared; under a ``cancel`` switch the parent's step fails, refused like a start."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ran: list[str] = []
    parent, child = _parent_and_child(ran)
    async with Client(shared, workflows=[parent, child], poll_interval=0.02) as c:
        await c.set_switch("workflow", "payout", reason="bank incident")
        run = await c.start(parent, 10)
        for _ in range(500):
            if (await c.get(run.id)).status is RunStatus.WAITING:
                break
            await asyncio.sleep(0.01)
        assert (await c.get(run.id)).status is RunStatus.WAITING
        assert await _children(c, run.id) == [], "a run of a switched-off workflow was created as a child"
        assert ran == []
        assert await c.clear_switch("workflow", "payout") >= 1
        assert await c.result(run.id, timeout=30) == 11
        assert ran == ["paid 10", "paid 11"]
        assert len(await _children(c, run.id)) == 2

        await c.set_switch("workflow", "payout", mode="cancel", reason="stop payouts")
        refused = await c.start(parent, 20)
        with pytest.raises(RunFailed, match="switched off"):
            await refused.result()
        assert await _children(c, refused.id) == []
        assert ran == ["paid 10", "paid 11"]


# -- the audit key: a retired key file is the key its name says ------------------------------------


async def test_attack_a_retired_key_file_must_hold_the_key_its_name_claims(
    tmp_path: Any, audit_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack: someone who can write the key folder and the database (not read the key)
    replaces the retired key file ``audit.key.KEYID`` with a key of their own, and signs with it an
    ``approval.decide`` entry claiming KEYID (the genuine retired key's id) for a parked refund,
    then puts the matching decision in the signals table. ``AuditKeys.all()`` took a key's id from
    its file name, so the forged entry counted as signed and the run paid. Now a file's key must
    hash to the id in its name; one that does not is ignored (it verifies nothing), with a warning
    naming the file; the decision is refused and the forged entry is reported by ``verify``."""
    import hashlib
    import hmac
    import json
    import logging
    import sqlite3
    import time
    from pathlib import Path

    from podium._auditkey import PREFIX, AuditKeys, key_id
    from podium.governance.audit import payload_hash
    from podium.records import AuditEntry, chain_body

    paid: list[int] = []
    wf = Workflow("refund")

    @wf.step
    async def ask(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="refund?", timeout=3600)
        if decision["approved"]:
            paid.append(decision["payload"]["amount"])
        return decision["approved"]

    url = f"sqlite:///{tmp_path}/k.db"
    async with Client(url, workflows=[wf]) as c:
        c.store.audit_keys.current()  # the key that signed the first entries, retired below
        old, _ = c.store.audit_keys.rotate()
        run = await c.start(wf, 9_000)
        for _ in range(500):
            if await c.approvals(run_id=run.id):
                break
            await asyncio.sleep(0.01)
        [request] = await c.approvals(run_id=run.id)
    assert old is not None
    retired = Path(f"{audit_key}.{old}")
    forged_key = bytes(range(32))
    retired.write_text(forged_key.hex() + "\n")  # the attacker's key, under the genuine retired id
    decision = json.dumps({"approved": True, "by": "cfo", "comment": "", "payload": {"amount": 9_000}, "edited": False})
    db = sqlite3.connect(tmp_path / "k.db")
    (seq,) = db.execute("SELECT MAX(seq) + 1 FROM audit").fetchone()
    data = json.dumps({"name": request["name"], "approved": True, "request": request["seq"], "decision": payload_hash(decision)})
    entry = AuditEntry(seq=seq, ts=time.time(), actor="cfo", action="approval.decide", target=run.id, data=data,
                       prev_hash="0" * 64, chain="forged", cseq=1)  # fmt: skip
    tag = hmac.new(forged_key, chain_body(entry.prev_hash, entry), hashlib.sha256).hexdigest()
    db.execute(
        "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (seq, entry.ts, "cfo", "approval.decide", run.id, data, entry.prev_hash, f"{PREFIX}{old}:{tag}", "forged", 1),
    )
    db.execute("INSERT INTO signals (run_id, name, payload, created_at) VALUES (?,?,?,?)", (run.id, request["name"], decision, time.time()))
    db.execute("UPDATE runs SET wake_at = ? WHERE id = ?", (time.time(), run.id))
    db.commit()
    db.close()
    caplog.set_level(logging.WARNING, logger="podium.audit")
    async with Client(url, workflows=[wf]) as c:
        await c.take_over([run.id])
        done = await c.wait(run.id, timeout=30)
        problem = (await c.verify_audit())[1] or ""
    assert paid == [], "a decision backed by an entry signed with a planted key was taken"
    assert done.status is RunStatus.FAILED and "no signed approval.decide entry" in (done.error or "")
    keys = AuditKeys(audit_key, "any").all()
    assert old not in keys and key_id(forged_key) not in keys, "a key file was trusted for the id in its name"
    assert f"audit key {old}" in problem or "forged" in problem, problem
    assert any(str(retired) in r.getMessage() and "holds another key" in r.getMessage() for r in caplog.records)


# -- approvals: a decision names the request it decides ---------------------------------------------


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_attack_a_decision_of_an_earlier_request_is_not_taken_by_a_later_one(store_url: str) -> None:
    """The attack: a loop asks to pay 100 under ``name="pay"``; the approver's decision reaches the
    store after that request timed out and the loop asked again (the same 100, a new request): the
    store refuses it (``approval.void``), but its signed ``approval.decide`` entry stays in the log.
    A database writer then puts that decision into the signals table for the new request: the
    waiting step found a signed entry of the same name with the same digest and paid, though nobody
    decided the request it was asking. Now the entry must name the request the step asked (its
    ``seq``): the step fails, and the attempt is audited ``approval.refuse``."""
    from podium import Loop, _serde

    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    paid: list[int] = []
    wf = Workflow("monthly-payout")

    @wf.step(loop=Loop(to="ask", while_=lambda ask: ask["by"] == "sla", max_iterations=3))
    async def ask(ctx: StepContext):
        timeout = 0.5 if ctx.iteration == 0 else 3600
        decision = await ctx.approval({"amount": 100}, name="pay", timeout=timeout, default={"approved": False, "by": "sla"})
        if decision["approved"]:
            paid.append(100)
        return decision

    async with Client(shared, workflows=[wf]) as c:
        handle = await c.start(wf)

        async def asked_after(seq: int) -> bool:
            reqs = await c.approvals(run_id=handle.id)
            return bool(reqs) and reqs[0]["seq"] > seq

        await _until(lambda: asked_after(0))
        [first] = await c.approvals(run_id=handle.id)
        lock = c.store._own_chain().lock
        await lock.acquire()  # the decision waits after reading the first request
        late = asyncio.ensure_future(c.decide(handle.id, first["name"], approve=True))

        async def decision_waits() -> bool:
            return bool(lock._waiters)

        await _until(decision_waits)
        await _until(lambda: asked_after(first["seq"]))  # the first timed out; the loop asked again
        lock.release()
        assert await asyncio.wait_for(late, 10) is False  # refused by the store: approval.void
        [second] = await c.approvals(run_id=handle.id)
        copy = _serde.dumps({"approved": True, "by": "local", "comment": "", "payload": {"amount": 100}, "edited": False})
        assert await c.store.send_signal(handle.id, second["name"], copy, now=__import__("time").time(), request=second["seq"])
        await c.take_over([handle.id])
        run = await c.wait(handle.id, timeout=30)
        actions = [e.action for e in await c.store.audit_for(handle.id)]
    assert paid == [], "a decision of the request that timed out paid the next one"
    assert run.status is RunStatus.FAILED and "no signed approval.decide entry" in (run.error or "")
    assert "approval.void" in actions and "approval.refuse" in actions


# -- knowledge: the file checked is the file read ---------------------------------------------------


@pytest.mark.parametrize("swapped", ["file", "folder"])
async def test_attack_a_file_swapped_for_a_link_after_its_check_is_not_read(tmp_path: Any, swapped: str) -> None:
    """The attack: someone who can write in a registered folder swaps a checked file (or a folder
    on its path) for a symlink to a file outside, between ``kb_ingest``'s check of its real path
    and its read: the secret was read, chunked, embedded and kept in the knowledge base. Now the
    file is opened beneath the registered folder one component at a time, never following a link,
    so the file read is the one checked; a swapped path fails the step, saying so."""
    import os
    from pathlib import Path

    import podium.governance.capabilities as capabilities
    from podium import memory
    from podium.memory import Memory
    from podium.yaml import load_text

    letters, outside = Path(tmp_path) / "letters", Path(tmp_path) / "outside"
    (letters / "sub").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    (letters / "sub" / "notice.md").write_text("# Notice\n\nThe office closes at noon on Friday.")
    (outside / "sub" / "notice.md").write_text("# Salaries\n\nTOPSECRET ann 120000")
    real = capabilities.confine_paths

    async def checked_then_swapped(*args: Any, **kw: Any) -> list[str]:
        files = await real(*args, **kw)
        if swapped == "file":  # the attacker wins the race: the checked file is now a link out
            (letters / "sub" / "notice.md").unlink()
            os.symlink(outside / "sub" / "notice.md", letters / "sub" / "notice.md")
        else:
            (letters / "sub").rename(letters / "old")
            os.symlink(outside / "sub", letters / "sub")
        return files

    wf = load_text("name: docs\nsteps:\n  - id: ingest\n    uses: kb_ingest\n    with: {kb: office, root: letters, paths: sub/notice.md}\n")
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await c.add_capability("letters", "files", {"root": str(letters)})
        capabilities.confine_paths = checked_then_swapped  # type: ignore[assignment]
        try:
            run = await c.start(wf, {})
            with pytest.raises(RunFailed, match="link"):
                await c.result(run.id)
        finally:
            capabilities.confine_paths = real  # type: ignore[assignment]
        kept = await mem.db.fetchall("SELECT text FROM kb_chunks")
        await mem.close()
    assert "TOPSECRET" not in repr(kept), "the file a link pointed to outside the folder was ingested"


# -- ML actions and escalations: a decision answers the payload it was asked about -------------------


async def test_attack_an_ml_action_approval_does_not_answer_another_payload(store_url: str) -> None:
    """The attack: a retention step offers a refund through ``podium.ml.act`` with a person's
    approval, the amount read from another system (not a durable call). The approver approves 20;
    when the decision wakes the run, the step runs again and reads 20,000: the approval was named
    after the step and the action only, so the recorded decision for 20 was taken and 20,000 paid.
    Now the name holds a digest of what is asked (the action, its context and its call): another
    payload is a new request; the same payload (a deterministic replay) is not asked again."""
    from podium.ml import Action, act

    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    amounts = iter([20, 20_000, 20_000, 20_000, 20_000])
    paid: list[int] = []
    wf = Workflow("retention")

    @wf.step
    async def offer(ctx: StepContext, input):
        amount = next(amounts)  # read from another system each time the step runs

        async def refund(ctx: StepContext) -> int:
            paid.append(amount)
            return amount

        return await act(ctx, [Action(name="refund", do=refund, approve=True)], context={"amount": amount})

    async with Client(shared, workflows=[wf]) as c:
        run = await c.start(wf, {})

        async def asked(amount: int) -> bool:
            reqs = await c.approvals(run_id=run.id)
            return bool(reqs) and reqs[0]["payload"]["context"] == {"amount": amount}

        await _until(lambda: asked(20))
        [first] = await c.approvals(run_id=run.id)
        assert await c.decide(run.id, first["name"], approve=True)

        async def moved_on() -> bool:
            return bool(paid) or await asked(20_000)

        await _until(moved_on)
        assert paid == [], f"the decision about 20 paid {paid}"  # asked again: the decision was about 20
        [second] = await c.approvals(run_id=run.id)
        assert second["name"] != first["name"]
        assert await c.decide(run.id, second["name"], approve=True)
        out = await c.result(run.id, timeout=30)
    assert out["done"] == {"refund": 20_000} and paid == [20_000]


async def test_an_escalation_is_named_after_what_it_decides_and_a_replay_does_not_ask_again(store_url: str) -> None:
    """An escalation's approval holds a digest of the output and confidence it shows (as ML actions
    and tool calls do); the output is logged before the question, so the run resumed by the decision
    asks nothing again and finishes with the approved output."""
    from podium import Escalate

    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ran: list[int] = []
    wf = Workflow("triage")

    @wf.step(escalate=Escalate(below=0.8))
    async def classify(input):
        ran.append(1)
        return {"label": "refund", "confidence": 0.4}

    async with Client(shared, workflows=[wf]) as c:
        run = await c.start(wf, {})

        async def asked() -> bool:
            return bool(await c.approvals(run_id=run.id))

        await _until(asked)
        [request] = await c.approvals(run_id=run.id)
        assert request["name"].startswith("approval:escalate:classify:0:None:")
        assert len(request["name"].rsplit(":", 1)[1]) == 16
        assert await c.decide(run.id, request["name"], approve=True)
        assert await c.result(run.id, timeout=30) == {"label": "refund", "confidence": 0.4}
        assert await c.approvals(run_id=run.id) == []
    assert ran == [1]


# -- kill switches: a workflow's switch holds the child runs it started ------------------------------


def _gated_tree(ran: list[str], started: asyncio.Event, go: asyncio.Event) -> tuple[Workflow, Workflow]:
    child = Workflow("refund-payout")

    @child.step
    async def check(input):
        ran.append(f"checked {input}")
        started.set()
        await go.wait()
        return input

    @child.step
    async def pay(check):
        ran.append(f"paid {check}")
        return check

    parent = Workflow("refunds")
    parent.subworkflow("payout", child, input=lambda input: input)
    return parent, child


async def _child_of(c: Client, run_id: str) -> Any:
    for _ in range(1000):
        kids = await _children(c, run_id)
        if kids:
            return kids[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the child run was never created")


async def _status_in(c: Client, run_id: str, *statuses: RunStatus) -> RunStatus:
    for _ in range(1000):
        status = (await c.get(run_id)).status
        if status in statuses:
            return status
        await asyncio.sleep(0.01)
    return (await c.get(run_id)).status


async def test_attack_a_switched_off_workflows_child_run_goes_on(store_url: str) -> None:
    """The attack: an operator pauses workflow ``refunds`` (an incident: no refund may be paid);
    a refunds run had already started its ``refund-payout`` child, which went on to its next step
    and paid, because every switch check looked at the run's own workflow only (the child's name is
    not switched off). Now a run's switches include its ancestors' workflows: the child parks at its
    next step boundary and goes on once the switch is cleared; a ``cancel`` switch on the parent's
    workflow cancels the child too."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ran: list[str] = []
    started, go = asyncio.Event(), asyncio.Event()
    parent, child = _gated_tree(ran, started, go)
    async with Client(shared, workflows=[parent, child], poll_interval=0.02) as c:
        run = await c.start(parent, 7)
        await asyncio.wait_for(started.wait(), 30)
        kid = await _child_of(c, run.id)
        await c.set_switch("workflow", "refunds", reason="refund incident")
        go.set()
        assert await _status_in(c, kid.id, RunStatus.WAITING, RunStatus.COMPLETED) is RunStatus.WAITING
        assert ran == ["checked 7"], "the child of a paused workflow paid"
        _, line = await explain(c, await c.get(kid.id)) or ("", "")
        assert "parked by kill switch workflow:refunds (refund incident" in line
        assert "podium killswitch clear workflow refunds" in line
        assert await c.clear_switch("workflow", "refunds") >= 1
        assert await c.result(run.id, timeout=30) == 7
        assert ran == ["checked 7", "paid 7"]

        started.clear()
        go.clear()
        run = await c.start(parent, 8)
        await asyncio.wait_for(started.wait(), 30)
        kid = await _child_of(c, run.id)
        await c.set_switch("workflow", "refunds", mode="cancel", reason="stop refunds")
        go.set()
        final = await _status_in(c, kid.id, RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.COMPLETED)
        assert final in (RunStatus.CANCELLED, RunStatus.FAILED), f"the child of a cancelled workflow ended {final}"
        assert "paid 8" not in ran
        await c.clear_switch("workflow", "refunds")


async def test_attack_a_fork_of_a_child_run_escapes_its_parents_switch(store_url: str) -> None:
    """The attack (second review, sixth session): a fork of a child run is a new run with no
    parent, so the kill switch on the workflow its original worked for did not hold it: with
    ``refunds`` paused, forking a finished ``refund-payout`` child at ``pay`` paid again. Now a
    fork works for whoever its original worked for (its lineage follows ``forked_from``): it
    parks at ``pay`` until the switch is cleared."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ran: list[str] = []
    started, go = asyncio.Event(), asyncio.Event()
    go.set()
    parent, child = _gated_tree(ran, started, go)
    async with Client(shared, workflows=[parent, child], poll_interval=0.02) as c:
        run = await c.start(parent, 9)
        assert await c.result(run.id, timeout=30) == 9
        kid = await _child_of(c, run.id)
        await c.set_switch("workflow", "refunds", reason="refund incident")
        fork = await c.fork(kid.id, "pay")
        status = await _status_in(c, fork.id, RunStatus.WAITING, RunStatus.COMPLETED)
        assert status is RunStatus.WAITING, "a fork of a paused workflow's child paid"
        assert ran == ["checked 9", "paid 9"]
        assert await c.clear_switch("workflow", "refunds") >= 1
        assert await c.result(fork.id, timeout=30) == 9
        assert ran == ["checked 9", "paid 9", "paid 9"]
