"""A database writer appends events to a parked run after its last audit anchor (seventh session).

A run's history is anchored at start, park, hand-off and end; the events written after the last
anchor look like the tail of an engine that crashed mid-run, so they cannot be compared with a
digest. An approval's completion in that tail is a decision nobody made, unless a signed
``approval.decide`` entry backs it: resuming checks that (docs/governance.md, "Resuming checks too")."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client, RunStatus, StepContext, Workflow
from podium.records import step_key


def _approved_payment(paid: list[int]) -> Workflow:
    wf = Workflow("tail-pay")

    @wf.step
    async def approve(ctx: StepContext, input: dict[str, Any]) -> bool:
        decision = await ctx.approval(input, title="pay?", timeout=3600)
        return bool(decision["approved"])

    @wf.step
    def pay(input: dict[str, Any], approve: bool) -> str:
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


# -- the seventh session's attacker review: the tail check taken at the wait was too late, and a
# -- timeout was never checked. SQLite and PostgreSQL stores, the database written with SQL.


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tail.db"
    return str(request.getfixturevalue("pg_url"))


def _sql(url: str, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    """What a writer of the store's database does, in one transaction (``?`` placeholders)."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        for sql, args in statements:
            db.execute(sql, args)
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        for sql, args in statements:
            conn.execute(sql.replace("?", "%s"), args)


def _completion(rid: str, step: str, data: str) -> tuple[str, tuple[object, ...]]:
    return (
        "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) "
        "SELECT ?, MAX(seq) + 1, 'step_completed', ?, ?, 0, NULL, 1, ? FROM events WHERE run_id = ?",
        (rid, time.time(), step, data, rid),
    )


_PENDING = "UPDATE runs SET status = 'pending', owner = NULL, lease_expires_at = NULL WHERE id = ?"


def _staged_payment(paid: list[int]) -> Workflow:
    """A payment that waits for its documents (a plain signal), then for an approval, then pays."""
    wf = Workflow("tail-staged")

    @wf.step
    async def documents(ctx: StepContext, input: dict[str, int]) -> dict[str, int]:
        await ctx.wait_for("documents")
        return input

    @wf.step
    async def approve(ctx: StepContext, documents: dict[str, int]) -> bool:
        decision = await ctx.approval(documents, title="pay?", timeout=3600)
        return bool(decision["approved"])

    @wf.step
    def pay(documents: dict[str, int], approve: bool) -> str:
        if approve:
            paid.append(documents["amount"])
        return f"paid {documents['amount']}" if approve else "refused"

    return wf


async def _settle(c: Client, rid: str, status: RunStatus) -> None:
    for _ in range(3000):
        if (await c.get(rid)).status is status:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {rid} is {(await c.get(rid)).status}, not {status}")


@pytest.mark.parametrize("with_request", [False, True], ids=["completion", "request-and-completion"])
async def test_attack_an_approval_the_run_has_not_reached_is_forged_then_anchored_by_its_next_park(
    url: str, audit_key: str, with_request: bool
) -> None:
    """The attack: a payment run waits for its documents (parked, anchored). A writer of the database
    appends the completion of the approval it has not reached yet, approved, and sets the run
    pending. The engine that takes it up replays the log (the forged completion with it), finds no
    documents and parks again: its checkpoint's digest covers every event it loaded, the forged one
    too. The documents arrive; the next engine reaches the approval, finds its completion covered by
    an anchor and took it unchecked: it paid. Now an approval's end that no approval request in the
    log asked for is refused when ``ctx.approval`` reads it, anchored or not: the run fails, nothing
    is paid. The writer may forge the approval's request too: then the end is checked against the
    audit log when the run is taken up, before the engine writes an anchor, and refused."""
    paid: list[int] = []
    wf = _staged_payment(paid)
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 900})
        await _settle(c, h.id, RunStatus.WAITING)
    step = f"approve/signal:approval:{step_key('approve')}"
    forged = json.dumps({"approved": True, "by": "boss", "comment": "", "payload": None, "edited": False})
    data = f'{{"started":{time.time()!r},"signal":{json.dumps(step.partition("/signal:")[2])},"output":{forged}}}'
    request = json.dumps({"signal": step.partition("/signal:")[2], "deadline": None, "approval": {"title": "pay?"}})
    asking = [(_completion(h.id, step, request)[0].replace("'step_completed'", "'step_waiting'"), _completion(h.id, step, request)[1])]
    _sql(url, [*(asking if with_request else []), _completion(h.id, step, data), (_PENDING, (h.id,))])
    async with Client(url, workflows=[wf]) as c:
        run = await c.get(h.id)
        for _ in range(3000):  # taken up, replayed, parked again on its documents (or failed, now)
            run = await c.get(h.id)
            if run.status in (RunStatus.WAITING, RunStatus.FAILED) and run.owner is None:
                break
            await asyncio.sleep(0.01)
        if run.status is RunStatus.WAITING:
            await c.signal(h.id, "documents", None)
        run = await c.wait(h.id, timeout=30)
    assert paid == [], "an approval forged before the run reached it was anchored by its next park, then paid"
    assert run.status is RunStatus.FAILED
    why = "no signed approval.decide entry" if with_request else "has no approval request"  # at take-up, or read
    assert why in (run.error or ""), run.error


async def test_attack_a_forged_timeout_of_an_approval_that_accepts_on_timeout_is_taken(
    url: str, audit_key: str
) -> None:
    """The attack: an escalated step whose rule accepts the output when nobody decides in time
    (``on_timeout="accept"``, an hour) parks on its approval. A writer of the database appends the
    approval's completion marked ``timed_out`` (no decision to sign: the check looked at decisions
    only) and sets the run pending: the next engine took the timeout, an hour early, and the output
    stood. Now a timeout in the tail is taken only once the deadline its (anchored) request set has
    passed."""
    from podium import Escalate

    paid: list[int] = []
    wf = Workflow("tail-escalated")

    @wf.step(escalate=Escalate(below=0.9, timeout=3600, on_timeout="accept"))
    def score(input: dict[str, int]) -> dict[str, object]:
        return {"amount": input["amount"], "confidence": 0.1}

    @wf.step
    def pay(score: dict[str, float]) -> str:
        paid.append(int(score["amount"]))
        return "paid"

    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 700})
        await _settle(c, h.id, RunStatus.WAITING)
        [request] = await c.approvals(run_id=h.id)
        [asked] = [e for e in await c.store.load_events(h.id) if e.type == "step_waiting"]
    assert asked.step is not None
    name = request["name"]
    data = f'{{"started":{time.time()!r},"signal":{json.dumps(name)},"timed_out":true,"output":null}}'
    _sql(url, [_completion(h.id, asked.step, data), (_PENDING, (h.id,))])
    async with Client(url, workflows=[wf]) as c:
        run = await c.wait(h.id, timeout=30)
    assert paid == [], "a timeout written into the log an hour early accepted the output"
    assert run.status is RunStatus.FAILED, run.status
    assert "timed out" in (run.error or "") and "deadline" in (run.error or ""), run.error


async def _forget(url: str, customer: str) -> None:
    """``podium memory forget``: the run store's payloads that hold ``customer`` are redacted, and
    each run changed is anchored again (``run.redact``: the digest of its events as redacted)."""
    from podium import memory
    from podium.memory import Memory

    async with Client(url, execute=False) as c:
        memory.attach(c, Memory(c.store, embedder="hash:256"))
        try:
            erasure = await memory.memory_for(c).forget(f"customer:{customer}", values=[customer], reason="request")
        finally:
            await memory.memory_for(c).close()
    assert erasure.counts["runs_redacted"] >= 1, erasure.counts


async def test_attack_a_forged_approval_is_anchored_by_a_redaction_of_its_run(url: str, audit_key: str) -> None:
    """The attack: a writer of the database appends an approved completion to a payment run parked on
    its approval and sets it pending; before an engine takes it up, an administrator erases a
    customer the run names (``podium memory forget``). The redaction anchors the run's events as they
    are now (``run.redact``), the forged completion with them, and the next engine took it as
    covered: it paid. A redaction vouches for no decision: the completion is still checked."""
    paid: list[int] = []
    wf = _approved_payment(paid)
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 800, "customer": "ann"})
        await _settle(c, h.id, RunStatus.WAITING)
        [asked] = [e for e in await c.store.load_events(h.id) if e.type == "step_waiting"]
    assert asked.step is not None
    forged = json.dumps({"approved": True, "by": "boss", "comment": "", "payload": None, "edited": False})
    data = f'{{"started":{time.time()!r},"signal":{json.dumps(asked.step.partition("/signal:")[2])},"output":{forged}}}'
    _sql(url, [_completion(h.id, asked.step, data), (_PENDING, (h.id,))])
    await _forget(url, "ann")
    async with Client(url, workflows=[wf]) as c:
        run = await c.wait(h.id, timeout=30)
    assert paid == [], "a forged approval anchored by a redaction paid"
    assert run.status is RunStatus.FAILED
    assert "no signed approval.decide entry" in (run.error or ""), run.error


async def test_a_genuine_decision_in_a_crashed_tail_that_a_redaction_rewrote_is_taken(url: str, audit_key: str) -> None:
    """The honest case beside it: the approver's comment names the customer; the engine recorded the
    decision and crashed before its next anchor; the customer is then erased, which rewrites the
    stored decision (its digest in ``approval.decide`` no longer matches). The decision was signed
    for that request with that verdict: the next engine goes on and pays once."""
    paid: list[int] = []
    wf = _approved_payment(paid)
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 60, "customer": "ann"})
        await _settle(c, h.id, RunStatus.WAITING)
        [asked] = [e for e in await c.store.load_events(h.id) if e.type == "step_waiting"]
    async with Client(url, workflows=[wf], execute=False) as c:
        [request] = await c.approvals(run_id=h.id)
        await c.decide(h.id, request["name"], approve=True, comment="ann's refund is fine")
        decision = (await c.store.get_signals(h.id))[request["name"]]
    assert asked.step is not None and decision is not None and "ann" in decision
    data = f'{{"started":{time.time()!r},"signal":{json.dumps(request["name"])},"output":{decision}}}'
    _sql(url, [_completion(h.id, asked.step, data), (_PENDING, (h.id,))])
    await _forget(url, "ann")
    async with Client(url, workflows=[wf]) as c:
        assert await c.result(h.id, timeout=30) == "paid 60"
    assert paid == [60]


async def test_a_genuine_decision_a_redaction_rewrote_before_the_engine_took_it_is_taken(url: str, audit_key: str) -> None:
    """The approver decides (naming the customer in the comment); before the run is taken up, the
    customer is erased, which rewrites the stored decision too (the signals table): its digest in
    ``approval.decide`` no longer matches. The decision was signed for that request with that
    verdict: the run goes on and pays once (it failed: "no signed approval.decide entry")."""
    paid: list[int] = []
    wf = _approved_payment(paid)
    async with Client(url, workflows=[wf]) as c:
        h = await c.start(wf, {"amount": 61, "customer": "ann"})
        await _settle(c, h.id, RunStatus.WAITING)
    async with Client(url, workflows=[wf], execute=False) as c:
        [request] = await c.approvals(run_id=h.id)
        await c.decide(h.id, request["name"], approve=True, comment="ann's refund is fine")
    await _forget(url, "ann")
    async with Client(url, workflows=[wf]) as c:
        assert await c.result(h.id, timeout=30) == "paid 61"
    assert paid == [61]
