"""The fourth attacker review (2026-12-06): the audit log, approvals and workers. Each test is an
attack that succeeded on the code before its fix (docs/status.md, "Attacker review of the audit
log, approvals and workers")."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client, PermissionDenied, RetryPolicy, RunStatus, StepContext, Workflow, open_store
from podium.records import AuditEntry


def _pay(paid: list[int]) -> Workflow:
    wf = Workflow("pay")

    @wf.step
    def pay(input):
        paid.append(input["amount"])
        return input["amount"]

    return wf


def _insert_run(
    path: Path | sqlite3.Connection, run_id: str, version: str, amount: int
) -> sqlite3.Connection:
    db = path if isinstance(path, sqlite3.Connection) else sqlite3.connect(path)
    db.execute(
        "INSERT INTO runs (id, workflow, version, status, input, created_at, queue, priority, cancel_requested) "
        "VALUES (?, 'pay', ?, 'pending', ?, ?, 'default', 0, 0)",
        (run_id, version, json.dumps({"amount": amount}), time.time()),
    )
    return db


async def test_attack_a_forged_unsigned_start_entry_does_not_let_an_inserted_run_run(
    tmp_path: Path, audit_key: str
) -> None:
    """The attack: a database writer inserts a pending run AND an audit row ``run.start`` for it,
    with any hash (it cannot sign). Resume asked whether the run had any anchor, signed or not, and
    then compared it with the signed ones only (none): the forged run ran."""
    paid: list[int] = []
    wf = _pay(paid)
    url = f"sqlite:///{tmp_path}/ins.db"
    async with Client(url, workflows=[wf]) as c:
        assert await c.run(wf, {"amount": 5}) == 5
    rid = "01a23ce0cb648ab9dcdeFORGED"
    db = _insert_run(tmp_path / "ins.db", rid, wf.version, 999_999)
    (seq,) = db.execute("SELECT MAX(seq) + 1 FROM audit").fetchone()
    db.execute(
        "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) VALUES (?, ?, 'root', 'run.start', ?, '{}', ?, ?)",
        (seq, time.time(), rid, "0" * 64, "0" * 64),
    )
    other = rid.replace("FORGED", "FORGE2")  # the same, claiming a key this host does not hold
    _insert_run(db, other, wf.version, 888_888)
    db.execute(
        "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) VALUES (?, ?, 'root', 'run.start', ?, '{}', ?, ?)",
        (seq + 1, time.time(), other, "0" * 64, "hmac:000000000000:" + "0" * 64),
    )
    db.commit()
    db.close()
    async with Client(url, workflows=[wf]) as c:  # recovers on open: claims the forged runs
        run = await c.wait(rid, timeout=30)
        run2 = await c.wait(other, timeout=30)
    assert paid == [5], "a forged run was executed"
    assert run.status is RunStatus.FAILED and "no entry in the audit log signed with the audit key" in (
        run.error or ""
    )
    assert run2.status is RunStatus.FAILED and "audit key 000000000000, which this engine does not hold" in (
        run2.error or ""
    )


async def test_attack_a_pruned_runs_id_put_back_with_another_input_is_not_run(
    tmp_path: Path, audit_key: str
) -> None:
    """The attack: retention pruned a finished run (signed ``run.prune``). A database writer inserts
    a pending run under that id with an input of their own. The prune made every earlier anchor of
    that id irrelevant, so resume found nothing to compare and ran it, and ``verify`` passed."""
    paid: list[int] = []
    wf = _pay(paid)
    url = f"sqlite:///{tmp_path}/prune.db"
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 5})
        assert await h.result() == 5
        deleted = await c.store.delete_runs(
            [h.id],
            record=lambda rid: AuditEntry(
                ts=time.time(), actor="root", action="run.prune", target=rid, data="{}"
            ),
        )
        assert deleted == [h.id]
        assert (await c.verify_audit())[1] is None
    db = _insert_run(tmp_path / "prune.db", h.id, wf.version, 999_999)
    db.commit()
    db.close()
    async with Client(url, workflows=[wf]) as c:
        run = await c.wait(h.id, timeout=30)
        problem = (await c.verify_audit())[1] or ""
    assert paid == [5], "the run put back under a pruned id was executed"
    assert run.status is RunStatus.FAILED and "pruned" in (run.error or "")
    assert h.id in problem and "pruned" in problem


async def test_a_run_started_again_under_a_pruned_id_is_sound(tmp_path: Path, audit_key: str) -> None:
    """An idempotency key is a run id: after its run was pruned, starting with the same id through
    the client is a new, anchored run, which verifies."""
    paid: list[int] = []
    wf = _pay(paid)
    url = f"sqlite:///{tmp_path}/again.db"
    async with Client(url, workflows=[wf]) as c:
        assert await c.run(wf, {"amount": 5}, run_id="key-1") == 5
        await c.store.delete_runs(
            ["key-1"],
            record=lambda rid: AuditEntry(
                ts=time.time(), actor="root", action="run.prune", target=rid, data="{}"
            ),
        )
        assert await c.run(wf, {"amount": 6}, run_id="key-1") == 6
        assert (await c.verify_audit())[1] is None
    assert paid == [5, 6]


# -- approvals: four eyes ------------------------------------------------------------------------


def _refund() -> Workflow:
    wf = Workflow("refund")

    @wf.step
    async def ask(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="refund?", timeout=3600)
        return {"paid": bool(decision["approved"]), "by": decision["by"]}

    return wf


async def _parked(c: Client, run_id: str) -> dict:
    for _ in range(1000):
        if requests := await c.approvals(run_id=run_id):
            return requests[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} asked no approval")


async def test_attack_the_person_who_started_a_run_cannot_approve_it(store_url: str) -> None:
    """The attack: alice (approver and operator, as docs/governance.md's own example grants) starts
    a refund and approves it herself; an admin does the same. One person both asked and decided:
    no four eyes. Now the starter of a run (its root run's, for a child) may not decide its
    approvals on any surface (they all go through ``Governance.decide``); someone else decides."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    wf = _refund()
    async with Client(shared, recover=False) as local:
        await local.create_user("root", ["admin"])
        await local.create_user("alice", ["approver", "operator"])
        await local.create_user("bob", ["approver"])
        tokens = {n: await local.create_token(n) for n in ("root", "alice", "bob")}
    async with Client(shared, workflows=[wf], token=tokens["alice"]) as alice:
        mine = await alice.start(wf, 900)
        request = await _parked(alice, mine.id)
        with pytest.raises(PermissionDenied, match="started run") as refused:
            await alice.decide(mine.id, request["name"], approve=True)
        assert "someone else" in str(refused.value)
        assert (await alice.get(mine.id)).status is RunStatus.WAITING
    async with Client(shared, workflows=[wf], token=tokens["root"]) as root:
        his = await root.start(wf, 50)
        theirs = await _parked(root, his.id)
        with pytest.raises(PermissionDenied, match="started run"):
            await root.decide(his.id, theirs["name"], approve=True)
        denied = [
            e for e in await root.audit_log() if e.action == "access.denied" and "four eyes" in (e.data or "")
        ]
        assert {e.actor for e in denied} == {"alice", "root"}
        assert not [e for e in await root.audit_log() if e.action == "approval.decide"]
    async with Client(shared, workflows=[wf], token=tokens["bob"]) as bob:
        assert await bob.decide(mine.id, request["name"], approve=True)
        assert await bob.result(mine.id, timeout=30) == {"paid": True, "by": "bob"}
    async with Client(shared, workflows=[wf], token=tokens["alice"]) as alice:
        assert await alice.decide(his.id, theirs["name"], approve=False)  # not hers: she may
        assert (await alice.result(his.id, timeout=30))["paid"] is False


async def test_the_local_user_still_decides_the_runs_they_start() -> None:
    """Local mode is one person: four eyes cannot apply, and the developer's loop is unchanged."""
    wf = _refund()
    async with Client("memory://", workflows=[wf]) as c:
        run = await c.start(wf, 5)
        request = await _parked(c, run.id)
        assert await c.decide(run.id, request["name"], approve=True)
        assert await c.result(run.id, timeout=30) == {"paid": True, "by": "local"}


# -- kill switches -------------------------------------------------------------------------------


async def test_attack_a_paused_workflow_stops_retrying_its_failing_step(store_url: str) -> None:
    """The attack (an incident, not a person): a payment step fails and retries (ten attempts); the
    operator pauses the workflow with a kill switch. Retries went on, each one calling the payment
    service again, because the switch was read only between steps. Now a retry is a boundary too:
    the run parks before its next attempt, and goes on with it once the switch is cleared."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    attempts: list[int] = []
    wf = Workflow("charge")

    @wf.step(retry=RetryPolicy(max_attempts=10, initial_interval=0.2, backoff=1.0, jitter=0))
    async def charge(ctx: StepContext, input):
        attempts.append(ctx.attempt)
        if len(attempts) < 4:
            raise ConnectionError("bank unavailable")
        return "charged"

    async with Client(shared, workflows=[wf], poll_interval=0.02) as c:
        run = await c.start(wf, 1)
        while not attempts:
            await asyncio.sleep(0.01)
        await c.set_switch("workflow", "charge", reason="incident 7")
        for _ in range(500):
            if (await c.get(run.id)).status is RunStatus.WAITING:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.6)  # three retry delays
        assert attempts == [1], "the step was retried while its workflow was switched off"
        assert (await c.get(run.id)).status is RunStatus.WAITING
        assert await c.clear_switch("workflow", "charge") == 1
        assert await c.result(run.id, timeout=30) == "charged"
    assert attempts == [1, 2, 3, 4]


# -- approvals: a decision written into the store behind the approval path -------------------------


async def test_attack_a_decision_written_straight_into_the_store_is_not_taken(store_url: str) -> None:
    """The attack: a worker process (or anyone who can write the store) puts an approval's decision
    in the signals table itself, ``{"approved": true, "by": "cfo"}``, with no ``client.decide``: no
    role check, no four eyes, no ``approval.decide`` entry. The run took it and paid. Now an
    approval's decision is taken only if a signed ``approval.decide`` entry of the same request
    says the same (who, and which way); otherwise the step fails, saying why."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    wf = _refund()
    async with Client(shared, workflows=[wf]) as c:
        forged = await c.start(wf, 10_000)
        request = await _parked(c, forged.id)
        body = json.dumps(
            {"approved": True, "by": "cfo", "comment": "", "payload": {"amount": 10_000}, "edited": False}
        )
        assert await c.store.send_signal(
            forged.id, request["name"], body, now=time.time(), request=request["seq"]
        )
        await c.take_over([forged.id])
        run = await c.wait(forged.id, timeout=30)
        assert run.status is RunStatus.FAILED, f"the forged decision was taken: {run.output}"
        assert "no signed approval.decide entry" in (run.error or "")
        genuine = await c.start(wf, 20)  # the approval path itself is unchanged
        request = await _parked(c, genuine.id)
        assert await c.decide(genuine.id, request["name"], approve=True)
        assert await c.result(genuine.id, timeout=30) == {"paid": True, "by": "local"}


async def test_attack_the_payload_of_a_genuine_decision_cannot_be_swapped_in_the_store(tmp_path: Path, audit_key: str) -> None:
    """The attack: an approver approves a refund of 20 (the decision is stored, the run not yet
    resumed: no worker took it); a database writer rewrites the stored decision's payload to
    20,000 before a worker resumes the run. Verdict and author still matched the signed
    ``approval.decide``, so the run paid 20,000. Now the entry holds the digest of the decision as
    stored, and the waiting step takes only that decision."""
    paid: list[int] = []
    wf = Workflow("refund")

    @wf.step
    async def ask(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="refund?", timeout=3600)
        if decision["approved"]:
            paid.append(decision["payload"]["amount"])
        return decision["payload"]

    url = f"sqlite:///{tmp_path}/swap.db"
    async with Client(url, workflows=[wf]) as c:
        run = await c.start(wf, 20)
        await _parked(c, run.id)
    async with Client(url, workflows=[wf], execute=False) as approver:
        [request] = await approver.approvals(run_id=run.id)
        assert await approver.decide(run.id, request["name"], approve=True)
    db = sqlite3.connect(tmp_path / "swap.db")
    assert db.execute("UPDATE signals SET payload = REPLACE(payload, '20}', '20000}') WHERE run_id = ?", (run.id,)).rowcount == 1
    db.commit()
    db.close()
    async with Client(url, workflows=[wf]) as worker:
        await worker.take_over([run.id])
        done = await worker.wait(run.id, timeout=30)
    assert paid == [], f"the swapped payload was paid: {paid}"
    assert done.status is RunStatus.FAILED and "no signed approval.decide entry" in (done.error or "")


def _approved_payment(paid: list[Any]) -> Workflow:
    wf = Workflow("payment")

    @wf.step
    async def approve(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="pay?", timeout=3600)
        return bool(decision["approved"])

    @wf.step
    async def pay(approve, input):
        if approve:
            paid.append(input)
        return {"paid": approve}

    return wf


async def test_attack_a_fork_does_not_reuse_anothers_approval_for_its_starter(tmp_path: Any) -> None:
    """The attack: alice (operator) may not approve her own payment (four eyes), so bob approves it
    once; alice then forks the run from its ``pay`` step, with the same input, and the fork pays
    again under bob's decision: one approval, two payments, and the second asked nobody. Now, with
    users, a fork that re-executes a step after a person's decision asks again (the step that asked
    is executed again); local mode (one person) keeps reusing it."""
    paid: list[Any] = []
    wf = _approved_payment(paid)
    url = f"sqlite:///{tmp_path}/p.db"
    async with Client(url, recover=False) as local:
        await local.create_user("alice", ["operator"])
        await local.create_user("bob", ["approver"])
        tokens = {n: await local.create_token(n) for n in ("alice", "bob")}
    async with Client(url, workflows=[wf], token=tokens["alice"]) as alice:
        run = await alice.start(wf, 40)
        request = await _parked(alice, run.id)
    async with Client(url, workflows=[wf], token=tokens["bob"]) as bob:
        assert await bob.decide(run.id, request["name"], approve=True)
        assert await bob.result(run.id, timeout=30) == {"paid": True}
    assert paid == [40]
    async with Client(url, workflows=[wf], token=tokens["alice"]) as alice:
        fork = await alice.fork(run.id, "pay")
        again = await _parked(alice, fork.id)  # asked again, not reused
        assert again["payload"] == {"amount": 40}
        assert paid == [40]
    async with Client(url, workflows=[wf], token=tokens["bob"]) as bob:
        assert await bob.decide(fork.id, again["name"], approve=False)
        assert await bob.result(fork.id, timeout=30) == {"paid": False}
    assert paid == [40]

    local_paid: list[Any] = []
    mine = _approved_payment(local_paid)
    async with Client("memory://", workflows=[mine]) as c:  # local mode: one person, decision reused
        first = await c.start(mine, 5)
        asked = await _parked(c, first.id)
        await c.decide(first.id, asked["name"], approve=True)
        await c.result(first.id, timeout=30)
        fork = await c.fork(first.id, "pay")
        assert await c.result(fork.id, timeout=30) == {"paid": True}
    assert local_paid == [5, 5]
