"""A database writer appends events to a parked run after its last audit anchor (seventh session).

A run's history is anchored at start, park, hand-off and end; the events written after the last
anchor look like the tail of an engine that crashed mid-run, so they cannot be compared with a
digest. An approval's completion in that tail is a decision nobody made, unless a signed
``approval.decide`` entry backs it: resuming checks that (docs/governance.md, "Resuming checks too")."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from podium import Client, RunStatus, StepContext, Workflow


def _approved_payment(paid: list[int]) -> Workflow:
    wf = Workflow("tail-pay")

    @wf.step
    async def approve(ctx: StepContext, input: dict[str, int]) -> bool:
        decision = await ctx.approval(input, title="pay?", timeout=3600)
        return bool(decision["approved"])

    @wf.step
    def pay(input: dict[str, int], approve: bool) -> str:
        if approve:
            paid.append(input["amount"])
        return f"paid {input['amount']}" if approve else "refused"

    return wf


async def _parked(url: str, wf: Workflow, amount: int) -> tuple[str, str, int]:
    """A run of ``wf`` parked on its approval: (run id, its request's step key, the request's seq)."""
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": amount})
        while not await c.approvals(run_id=h.id):
            await c.driving.settled(h.id)
        [request] = await c.approvals(run_id=h.id)
        events = await c.store.load_events(h.id)
    [asked] = [e for e in events if e.type == "step_waiting"]
    assert asked.step is not None and request["name"] in asked.step
    return h.id, asked.step, asked.seq


def _append_completion(path: Path, rid: str, step: str, output: str) -> None:
    """What a crashed engine would have left: the wait's completion after the last anchor, and the
    run taken as pending (no owner)."""
    name = step.partition("/signal:")[2]
    data = f'{{"started":{time.time()!r},"signal":{json.dumps(name)},"output":{output}}}'
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) "
        "SELECT ?, MAX(seq) + 1, 'step_completed', ?, ?, 0, NULL, 1, ? FROM events WHERE run_id = ?",
        (rid, time.time(), step, data, rid),
    )
    db.execute(
        "UPDATE runs SET status = 'pending', owner = NULL, lease_expires_at = NULL WHERE id = ?", (rid,)
    )
    db.commit()
    db.close()


async def test_attack_an_approval_completed_behind_the_engine_after_the_last_anchor_is_not_taken(
    tmp_path: Path, audit_key: str
) -> None:
    """The attack: a payment run parks on its approval (anchored by ``run.checkpoint``). A database
    writer appends the approval step's completion, approved, after that anchor and sets the run
    pending, as an engine that crashed after taking a decision would have left it. The next engine
    replayed the tail unchecked and paid."""
    paid: list[int] = []
    wf = _approved_payment(paid)
    url = f"sqlite:///{tmp_path}/tail.db"
    rid, step, _ = await _parked(url, wf, 500)
    _append_completion(tmp_path / "tail.db", rid, step, json.dumps({"approved": True, "by": "boss"}))
    async with Client(url, workflows=[wf]) as c:
        run = await c.wait(rid, timeout=30)
    assert paid == [], "a decision written behind the approval path paid"
    assert run.status is RunStatus.FAILED
    assert "no signed approval.decide entry" in (run.error or ""), run.error


async def test_a_genuine_decision_in_a_crashed_engines_tail_is_taken(tmp_path: Path, audit_key: str) -> None:
    """The honest case the check must let through: the decision was made through the approval path
    (signed ``approval.decide``), the engine recorded the wait's completion and crashed before the
    run's next anchor. The next engine goes on from the completion and pays once."""
    paid: list[int] = []
    wf = _approved_payment(paid)
    url = f"sqlite:///{tmp_path}/honest.db"
    rid, step, _ = await _parked(url, wf, 70)
    async with Client(url, workflows=[wf], execute=False) as c:
        [request] = await c.approvals(run_id=rid)
        await c.decide(rid, request["name"], approve=True)
        [(decision,)] = sqlite3.connect(tmp_path / "honest.db").execute(
            "SELECT payload FROM signals WHERE run_id = ?", (rid,)
        )
    _append_completion(tmp_path / "honest.db", rid, step, decision)
    async with Client(url, workflows=[wf]) as c:
        assert await c.result(rid, timeout=30) == "paid 70"
    assert paid == [70]
