"""A fork reuses the approval ends of the steps it keeps (eighth session; the seventh session's
"a fork copies its parent's kept ends without checking the parent's unanchored tail").

A step that asked a person and then failed (its connector down) is not kept by a fork, but its
decision is: the fork runs the step again with that decision (``reusable_events``). The fork has no
request of its own for it and its ``run.fork`` anchor covers nothing it copied, so the seventh
session's check (an end no request asked for is refused) failed every such fork, calling a genuine
decision "written into the store behind the engine". Now the copy is checked where it was made: it
must equal the end in the run it was forked from, and there be backed by a signed
``approval.decide`` entry of its request (podium/engine/reused.py). A decision forged in the earlier
run's unanchored tail, or a copy edited in the fork, is refused."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client, NonRetryableError, RunFailed, StepContext, Workflow


def _payment(paid: list[int], fail: list[bool]) -> Workflow:
    wf = Workflow("fork-pay")

    @wf.step
    async def pay(ctx: StepContext, input: dict[str, Any]) -> bool:
        decision = await ctx.approval(input, title="pay?", timeout=3600)
        if fail[0]:
            raise NonRetryableError("the bank did not answer")
        if decision["approved"]:
            paid.append(input["amount"])
        return bool(decision["approved"])

    @wf.step
    def receipt(input: dict[str, Any]) -> str:
        return f"receipt {input['amount']}"

    return wf


async def _decided_then_failed(c: Client, wf: Workflow, *, approve: bool) -> str:
    h = await c.start(wf, {"amount": 40})
    while not await c.approvals(run_id=h.id):
        await c.driving.settled(h.id)
    [request] = await c.approvals(run_id=h.id)
    await c.decide(h.id, request["name"], approve=approve)
    with pytest.raises(RunFailed, match="the bank did not answer"):
        await h.result(timeout=20)
    return h.id


async def test_a_fork_reuses_a_genuine_decision_of_a_step_that_failed_after_it(store_url: str, audit_key: str) -> None:
    """Failed before (memory, SQLite, PostgreSQL): the fork failed at ``pay`` with "the end of
    approval 'approval:pay' in its log has no approval request: it was written into the store behind
    the engine", and ``approval.refuse`` was audited for a decision an approver had made."""
    paid: list[int] = []
    fail = [True]
    wf = _payment(paid, fail)
    async with Client(store_url, workflows=[wf]) as c:
        rid = await _decided_then_failed(c, wf, approve=True)
        again = await c.fork(rid, "receipt")  # the bank still down: fails again, with the same decision
        with pytest.raises(RunFailed, match="the bank did not answer"):
            await again.result(timeout=20)
        fail[0] = False
        fork = await c.fork(again.id, "receipt")  # a fork of a fork: the decision is followed back to rid
        assert await fork.result(timeout=20) == {"pay": True, "receipt": "receipt 40"}
        assert paid == [40]
        for run in (again.id, fork.id):
            assert not [e for e in await c.store.audit_for(run) if e.action == "approval.refuse"]


def _db(path: Path, sql: str, *args: Any) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


async def test_attack_a_decision_forged_in_the_parents_unanchored_tail_is_not_reused_by_a_fork(
    tmp_path: Path, audit_key: str
) -> None:
    """A run parks on its approval (anchored); a database writer appends the approval's end,
    approved, after the anchor, and someone forks the run from its other step: the fork copies the
    forged end and runs ``pay`` with it. Refused (it was before, as an end no request asked for;
    now because no signed ``approval.decide`` of the parent's request backs it)."""
    paid: list[int] = []
    wf = _payment(paid, [False])
    path = tmp_path / "fork.db"
    async with Client(f"sqlite:///{path}", workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 40})
        while not await c.approvals(run_id=h.id):
            await c.driving.settled(h.id)
        [asked] = [e for e in await c.store.load_events(h.id) if e.type == "step_waiting"]
    data = json.dumps({"started": time.time(), "signal": "approval:pay", "output": {"approved": True, "by": "boss"}})
    _db(
        path,
        "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) "
        "SELECT ?, MAX(seq) + 1, 'step_completed', ?, ?, 0, NULL, 1, ? FROM events WHERE run_id = ?",
        h.id, time.time(), asked.step, data.replace(", ", ",").replace(": ", ":"), h.id,
    )  # fmt: skip
    async with Client(f"sqlite:///{path}", workflows=[wf], recover=False) as c:
        fork = await c.fork(h.id, "receipt")
        with pytest.raises(RunFailed, match="approval:pay"):
            await fork.result(timeout=20)
        assert paid == []
        assert [e for e in await c.store.audit_for(fork.id) if e.action == "approval.refuse"]


async def test_attack_a_rejection_turned_into_an_approval_in_the_forks_copy_is_not_taken(
    tmp_path: Path, audit_key: str
) -> None:
    """The approver rejected; the step failed after. A fork is recorded (by a client that does not
    execute), and before an engine takes it up a database writer turns the copied rejection into an
    approval. Refused: the copy differs from the end in the run it was forked from. And a copy that
    names another run as its source (one where the same step was approved) is refused too."""
    paid: list[int] = []
    fail = [True]
    wf = _payment(paid, fail)
    path = tmp_path / "fork.db"
    url = f"sqlite:///{path}"
    async with Client(url, workflows=[wf]) as c:
        rejected = await _decided_then_failed(c, wf, approve=False)
        approved = await _decided_then_failed(c, wf, approve=True)
    fail[0] = False
    for source in (rejected, approved):
        async with Client(url, workflows=[wf], execute=False) as c:
            fork = await c.fork(rejected, "receipt")
        [copy] = [
            (seq, data)
            for seq, step, data in sqlite3.connect(path).execute(
                "SELECT seq, step, data FROM events WHERE run_id = ? AND type = 'step_completed'", (fork.id,)
            )
            if "/signal:" in step
        ]
        edited = json.loads(copy[1])
        edited["output"]["approved"] = True
        edited["reused_from"] = source
        _db(path, "UPDATE events SET data = ? WHERE run_id = ? AND seq = ?", json.dumps(edited), fork.id, copy[0])
        async with Client(url, workflows=[wf], recover=False) as c:
            await c.take_over([fork.id])
            with pytest.raises(RunFailed, match="approval:pay"):
                await c.result(fork.id, timeout=20)
    assert paid == []


async def test_attack_a_fork_pointed_at_another_run_in_its_record_does_not_reuse_that_runs_approval(
    tmp_path: Path, audit_key: str
) -> None:
    """The reused end names its source run, and the check follows the run's record to it: a
    database writer who rewrites the fork's ``forked_from`` in the runs table (no anchor holds it)
    to a run of the same workflow where the same step was approved, and the copy to that run's end,
    made the fork pay with a decision taken for another payment. The source is now the parent its
    signed ``run.fork`` entry names (failed before: the fork paid 40)."""
    paid: list[int] = []
    fail = [True]
    wf = _payment(paid, fail)
    path = tmp_path / "fork.db"
    url = f"sqlite:///{path}"
    async with Client(url, workflows=[wf]) as c:
        rejected = await _decided_then_failed(c, wf, approve=False)
        approved = await _decided_then_failed(c, wf, approve=True)
    fail[0] = False
    async with Client(url, workflows=[wf], execute=False) as c:
        fork = await c.fork(rejected, "receipt")
    db = sqlite3.connect(path)
    [(seq, step)] = [
        (s, st)
        for s, st in db.execute("SELECT seq, step FROM events WHERE run_id = ? AND type = 'step_completed'", (fork.id,))
        if "/signal:" in st
    ]
    [(theirs,)] = db.execute(
        "SELECT data FROM events WHERE run_id = ? AND type = 'step_completed' AND step = ?", (approved, step)
    ).fetchall()
    db.close()
    copy = json.loads(theirs)
    copy["reused_from"] = approved
    _db(path, "UPDATE events SET data = ? WHERE run_id = ? AND seq = ?", json.dumps(copy), fork.id, seq)
    _db(path, "UPDATE runs SET forked_from = ? WHERE id = ?", approved, fork.id)
    async with Client(url, workflows=[wf], recover=False) as c:
        await c.take_over([fork.id])
        with pytest.raises(RunFailed, match="approval:pay"):
            await c.result(fork.id, timeout=20)
    assert paid == []


async def test_a_decision_whose_edited_payload_has_a_reused_from_field_is_not_taken_for_a_forks_copy(
    tmp_path: Path, audit_key: str
) -> None:
    """A fork's copy is told by its top-level ``reused_from``; the check looked for the text
    ``"reused_from"`` anywhere in the end. Failed before: an approver edited the payload, which has
    a field of that name (the request's own data), the engine went down before its next anchor, and
    on resume the genuine decision was refused as a fork's copy ("names run None")."""
    gate = [False]
    reached = asyncio.Event()
    wf = Workflow("edited-payload")

    @wf.step
    async def pay(ctx: StepContext, input: dict[str, Any]) -> bool:
        decision = await ctx.approval(input, title="pay?", timeout=3600)
        if not gate[0]:  # the decision's end is written; the engine goes down before any anchor
            reached.set()
            await asyncio.Event().wait()
        return bool(decision["approved"])

    url = f"sqlite:///{tmp_path / 'edited.db'}"
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 1, "reused_from": "the customer's form"})
        while not await c.approvals(run_id=h.id):
            await c.driving.settled(h.id)
        [request] = await c.approvals(run_id=h.id)
        await c.decide(h.id, request["name"], approve=True, payload={"amount": 1, "reused_from": "the form"})
        await reached.wait()
    gate[0] = True
    async with Client(url, workflows=[wf]) as c:
        done = await c.wait(h.id, timeout=20)
        assert json.loads(done.output or "null") is True, done.error
        assert not [e for e in await c.store.audit_for(h.id) if e.action == "approval.refuse"]
