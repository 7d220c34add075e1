"""Loops (``Loop``) on every store backend: passes, limits, failing conditions, and how each pass's
completion is recorded with its decision."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from podium import Client, Loop, RunFailed, RunStatus, StepContext, Workflow
from podium.records import Event, RunRecord


@pytest.fixture
async def client(store_url):
    async with Client(store_url, poll_interval=0.05) as c:
        yield c


async def test_bounded_agent_loop(client):
    wf = Workflow("agent")

    @wf.step
    async def think(ctx: StepContext, input):
        last = ctx.previous("act", 0)
        return {"plan": last + 1, "iteration": ctx.iteration}

    @wf.step(loop=Loop(to="think", while_=lambda act: act < 3, max_iterations=10))
    async def act(think):
        return think["plan"]

    @wf.step
    async def answer(act):
        return f"done after {act}"

    handle = await client.start(wf, None)
    assert await handle.result() == "done after 3"
    h = await client.history(handle.id)
    assert [(v.step, v.iteration) for v in h.steps if v.step == "act"] == [("act", 0), ("act", 1), ("act", 2)]
    assert h.step("think").output == {"plan": 3, "iteration": 2}


async def test_a_loop_body_with_a_diamond_and_an_outside_input_runs_each_pass_in_order(client):
    """A pass that goes round again starts the body's steps that wait for none of the body (here
    ``fetch``, which needs ``prep`` from before the loop) and holds the others until their body
    inputs settle in that pass: each pass runs fetch, then left and right, then join, once."""
    wf = Workflow("diamond_loop")
    seen: list[tuple[str, int]] = []

    @wf.step
    async def prep(input):
        return input

    @wf.step
    async def fetch(ctx: StepContext, prep):
        seen.append(("fetch", ctx.iteration))
        return prep + ctx.iteration

    @wf.step
    async def left(ctx: StepContext, fetch):
        seen.append(("left", ctx.iteration))
        return fetch * 2

    @wf.step
    async def right(ctx: StepContext, fetch):
        seen.append(("right", ctx.iteration))
        return fetch * 3

    @wf.step(loop=Loop(to="fetch", while_=lambda join: join < 40, max_iterations=10))
    async def join(ctx: StepContext, left, right):
        seen.append(("join", ctx.iteration))
        return left + right

    @wf.step
    async def done(join, prep):
        return {"join": join, "prep": prep}

    assert await client.run(wf, 5) == {"join": 40, "prep": 5}
    assert len(seen) == 4 * 4
    for n in range(4):
        one = seen[4 * n : 4 * n + 4]
        assert one[0] == ("fetch", n) and one[3] == ("join", n)
        assert sorted(one[1:3]) == [("left", n), ("right", n)]


async def test_loop_limit_fails_clearly(client):
    wf = Workflow("forever")

    @wf.step(loop=Loop(to="spin", while_=lambda: True, max_iterations=4))
    async def spin(ctx: StepContext):
        return ctx.iteration

    with pytest.raises(RunFailed, match=r"looped back to 'spin' 4 times \(max_iterations=4\)"):
        await client.run(wf)


async def test_a_loop_records_each_iterations_completion_with_its_decision(client):
    """Each pass writes the looping step's completion and the decision to loop again together (one
    statement on SQLite, one transaction elsewhere: a crash cannot keep one without the other); a
    condition that raises or a limit reached still records the step's completion before the run
    fails."""
    wf = Workflow("three")

    @wf.step(loop=Loop(to="spin", while_=lambda spin: spin < 2, max_iterations=5))
    async def spin(ctx: StepContext):
        return ctx.iteration

    handle = await client.start(wf)
    assert await handle.result() == 2
    kinds = [(e.type, e.step, e.iteration) for e in await client.store.load_events(handle.id)]
    assert kinds[1:] == [
        ("step_completed", "spin", 0), ("loop_iteration", "spin", 1),
        ("step_completed", "spin", 1), ("loop_iteration", "spin", 2),
        ("step_completed", "spin", 2), ("run_completed", None, 0),
    ]  # fmt: skip

    def broken(spin):
        raise KeyError("no such field")

    bad = Workflow("bad-condition")
    bad.step(_iteration, id="spin", loop=Loop(to="spin", while_=broken, max_iterations=5))
    handle = await client.start(bad)
    with pytest.raises(RunFailed, match="loop condition of step 'spin' raised KeyError"):
        await handle.result()
    kinds = [(e.type, e.step) for e in await client.store.load_events(handle.id)]
    assert kinds[1:] == [("step_completed", "spin"), ("run_failed", None)]


async def _iteration(ctx: StepContext):
    return ctx.iteration


def _counted_once(calls: list[int]):
    """A loop condition that holds only the first time it is asked (a decision a resume cannot
    recompute: asked again, it answers otherwise)."""

    def condition(spin: int) -> bool:
        calls.append(spin)
        return len(calls) == 1

    return condition


async def _parked_then_taken_over(
    client: Client, store_url: str, wf: Workflow, calls: list, meanwhile=None, first: object = 0
) -> object:
    """Start ``wf``, wait until it parks on the signal "go" (its condition asked once, with ``first``), close the
    engine, and let another one (after ``meanwhile(its store)``, if given) take the run over from
    its log and finish it; returns its output."""
    handle = await client.start(wf)
    for _ in range(1000):
        run = await client.get(handle.id)
        if run.status is RunStatus.WAITING:
            break
        await asyncio.sleep(0.01)
    assert run.status is RunStatus.WAITING and calls == [first], (run.status, run.error, calls)
    await client.close()  # the engine goes; another takes the run over from its log
    async with Client(client.store if store_url.startswith("memory") else store_url) as again:
        if meanwhile is not None:
            await meanwhile(again.store)
        again.registry.register(wf)
        await again.signal(handle.id, "go")
        return await again.result(handle.id, timeout=30)


async def test_a_resumed_loop_follows_the_decision_in_its_log(client, store_url):
    """The loop went round again before the engine stopped: the resumed run does not ask the
    condition again for that pass (it would now say no) but takes the decision from the log."""
    calls: list[int] = []
    wf = Workflow("decided-once")

    @wf.step(loop=Loop(to="spin", while_=_counted_once(calls), max_iterations=5))
    async def spin(ctx: StepContext):
        if ctx.iteration == 1:
            await ctx.wait_for("go", timeout=60)
        return ctx.iteration

    assert await _parked_then_taken_over(client, store_url, wf, calls) == 1
    assert calls == [0, 1]  # pass 0's decision came from the log; pass 1's was asked


async def test_payload_redaction_cannot_erase_a_loops_decision(client, store_url):
    """Review (attack): payload redaction (``podium memory forget``) rewrites every event's data with
    plain text replacement. A decision kept in data ("again": true inside the completion) could be
    erased by forgetting a value such as "again" or "true", and the resumed run would skip a pass
    its log had decided. The decision is an event of its own, with no data: redacting every text it
    shows leaves it, and the resumed run goes round again as its log says (and, the redaction
    anchored as `podium memory forget` anchors it, the parked run resumes at all: it used to be
    refused, its redaction anchor covering a status that was bound to change)."""
    calls: list[int] = []
    wf = Workflow("redacted-loop")

    def condition(spin: dict) -> bool:
        calls.append(spin)
        return len(calls) == 1  # "yes" the first time, "no" if asked again

    @wf.step(loop=Loop(to="spin", while_=condition, max_iterations=5))
    async def spin(ctx: StepContext):
        if ctx.iteration == 1:
            await ctx.wait_for("go", timeout=60)
        return {"again": True, "note": "true loop_iteration spin"}  # a tool's output naming it all

    async def forget(store) -> None:  # as `podium memory forget` does: rewrite, and anchor the change with it
        from podium.memory._lifecycle import _redaction_record

        texts = ["again", "loop_iteration", "spin", "iteration"]
        done = await store.redact_payloads(texts, "[REDACTED]", record=_redaction_record("memory"))
        assert done.run_ids

    shown = {"again": True, "note": "true loop_iteration spin"}
    out = await _parked_then_taken_over(client, store_url, wf, calls, forget, first=shown)
    assert out == shown  # pass 1 ran again (fresh output); pass 0's decision came from the log
    assert calls == [shown, shown]  # asked at pass 0, then at pass 1 only
    async with Client(client.store if store_url.startswith("memory") else store_url) as c:
        run_id = (await c.list(workflow="redacted-loop"))[0].id
        events = await c.store.load_events(run_id)
    first = next(e for e in events if e.type == "step_completed")
    assert json.loads(first.data)["output"] == {"[REDACTED]": True, "note": "true [REDACTED] [REDACTED]"}
    assert [(e.type, e.iteration) for e in events if e.type == "loop_iteration"] == [("loop_iteration", 1)]


async def test_a_resumed_loop_does_not_ask_again_a_pass_whose_log_says_stop(client, store_url):
    """Review: a loop's "no" is in its log too: the pass's completion with no ``loop_iteration``
    after it (the two are written together). A run resumed after its loop ended does not ask the
    condition again for that pass (now it would say yes and run a pass the run never had)."""
    calls: list[int] = []
    wf = Workflow("stopped-once")

    def condition(spin: int) -> bool:
        calls.append(spin)
        return len(calls) > 1  # "no" the first time, "yes" if asked again

    @wf.step(loop=Loop(to="spin", while_=condition, max_iterations=5))
    async def spin(ctx: StepContext):
        return ctx.iteration

    @wf.step
    async def after(ctx: StepContext, spin: int):
        await ctx.wait_for("go", timeout=60)
        return spin

    assert await _parked_then_taken_over(client, store_url, wf, calls) == 0
    assert calls == [0]  # the log's "no" stood: the condition was not asked again


async def test_a_run_taken_over_from_its_log_loops_as_the_log_says(client):
    """A run handed to an engine with a log whose last pass decided to go round again (its
    ``loop_iteration`` event) goes round again without asking the condition for that pass."""
    calls: list[int] = []
    wf = Workflow("older-log")
    wf.step(_iteration, id="spin", loop=Loop(to="spin", while_=_counted_once(calls), max_iterations=5))
    wf.freeze()
    now = time.time()
    run = RunRecord(
        id="older-loop-run", workflow=wf.name, version=wf.version, status=RunStatus.RUNNING, input="null",
        created_at=now, started_at=now, owner=client.owner, lease_expires_at=now + 60,
    )  # fmt: skip
    events = [
        Event(run_id=run.id, seq=1, type="run_started", ts=now, data=json.dumps({"owner": client.owner})),
        Event(run_id=run.id, seq=2, type="step_completed", step="spin", iteration=0, attempt=1, ts=now,
              data=json.dumps({"started": now, "output": 0})),
        Event(run_id=run.id, seq=3, type="loop_iteration", step="spin", iteration=1, ts=now),
    ]  # fmt: skip
    assert await client.store.create_run(run, events)
    ex = client.drive_run(wf, run, events)
    await ex.finished
    done = await client.get(run.id)
    assert (done.status, done.error) == (RunStatus.COMPLETED, None)
    assert await client.result(run.id, timeout=30) == 2
    assert calls == [1, 2]  # pass 0's decision came from the log: the condition was first asked at pass 1


async def test_failing_loop_condition_fails_the_run(client):
    wf = Workflow("badloop")

    @wf.step(loop=Loop(to="spin", while_=lambda spin: spin["missing"], max_iterations=3))
    async def spin():
        return {}

    with pytest.raises(RunFailed, match="loop condition of step 'spin' raised KeyError"):
        await client.run(wf)


async def test_a_looping_step_that_asks_for_approval_records_each_pass_once(client):
    """Review 2: a looping step parks on an approval in each pass; each pass's completion is written
    once, with its loop decision, after the decision arrives (the run resumed from its log), and the
    run's end anchor matches its events."""
    from podium.governance.audit import check_run

    wf = Workflow("approve-loop")

    @wf.step(loop=Loop(to="ask", while_=lambda ask: ask < 2, max_iterations=5))
    async def ask(ctx: StepContext):
        await ctx.approval({"pass": ctx.iteration})
        return ctx.iteration

    handle = await client.start(wf)
    for it in range(3):
        for _ in range(500):
            pending = await client.approvals(run_id=handle.id)
            if pending:
                break
            await asyncio.sleep(0.01)
        assert len(pending) == 1, (it, pending)
        await client.decide(handle.id, pending[0]["name"], approve=True)
    assert await handle.result() == 2
    events = await client.store.load_events(handle.id)
    done = [(e.step, e.iteration) for e in events if e.type == "step_completed" and e.step == "ask"]
    assert done == [("ask", 0), ("ask", 1), ("ask", 2)]
    for i, e in enumerate(events):
        if e.type == "loop_iteration":
            assert (events[i - 1].type, events[i - 1].step) == ("step_completed", "ask")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    run = await client.store.get_run(handle.id)
    assert check_run(handle.id, run, events, await client.store.audit_for(handle.id)) is None
