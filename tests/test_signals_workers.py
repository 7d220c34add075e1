"""Durable waits (signals, timers), parking and waking runs, workers, queues and labels."""

from __future__ import annotations

import asyncio
import time

import pytest

from podium import Client, Loop, RunStatus, StepContext, StepStatus, Workflow, open_store


@pytest.fixture
def shared_store(store_url):
    return open_store(store_url) if store_url.startswith("memory") else store_url


def approval_workflow(calls: list[str]) -> Workflow:
    wf = Workflow("approve-refund")

    async def risky_lookup(amount):
        calls.append("lookup")
        return amount > 100

    @wf.step
    async def check(ctx: StepContext, input):
        needs_review = await ctx.call(risky_lookup, input["amount"])
        if not needs_review:
            return {"approved": True, "by": "policy"}
        decision = await ctx.wait_for("approval", timeout=3600)
        calls.append("decided")
        return {"approved": decision["ok"], "by": decision["by"]}

    @wf.step
    async def pay(check):
        calls.append("pay")
        return "paid" if check["approved"] else "refused"

    return wf


async def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_wait_parks_the_run_and_a_signal_resumes_it_in_a_new_engine(shared_store):
    calls: list[str] = []
    wf = approval_workflow(calls)
    async with Client(shared_store, workflows=[wf]) as c1:
        handle = await c1.start(wf, {"amount": 500})

        async def parked():
            return (await c1.get(handle.id)).status is RunStatus.WAITING

        await _until(parked)
        run = await c1.get(handle.id)
        assert run.owner is None and run.wake_at == pytest.approx(time.time() + 3600, abs=30)
        async def let_go():
            return not c1.driving

        await _until(let_go)  # no task, no thread, no lease held while waiting
    # a different process (an API that executes nothing) delivers the decision, then a late one: the
    # run cannot have finished in between, so "first wins" is checked, not raced
    async with Client(shared_store, workflows=[wf], execute=False) as api:
        assert await api.signal(handle.id, "approval", {"ok": True, "by": "maria"})
        assert not await api.signal(handle.id, "approval", {"ok": False, "by": "late"})  # first wins
    # a different engine (a restart) drives the woken run on
    async with Client(shared_store, workflows=[wf]) as c2:
        assert await c2.result(handle.id) == "paid"
        h = await c2.history(handle.id)
    assert calls == ["lookup", "decided", "pay"]  # the durable lookup was not repeated on wake
    assert h.step("check/signal:approval").output == {"ok": True, "by": "maria"}
    assert [e.type for e in h.events].count("run_waiting") == 1


async def test_signal_while_the_run_is_still_driven(shared_store):
    calls: list[str] = []
    wf = approval_workflow(calls)
    async with Client(shared_store, poll_interval=0.02) as c:
        handle = await c.start(wf, {"amount": 500})

        async def waiting():
            return (await c.get(handle.id)).status is RunStatus.WAITING

        await _until(waiting)
        await c.signal(handle.id, "approval", {"ok": False, "by": "bob"})
        assert await c.result(handle.id) == "refused"


async def test_no_wait_when_not_needed(shared_store):
    calls: list[str] = []
    async with Client(shared_store) as c:
        assert await c.run(approval_workflow(calls), {"amount": 5}) == "paid"


async def test_wait_timeout_takes_the_default(shared_store):
    wf = Workflow("sla")

    @wf.step
    async def ask(ctx: StepContext):
        return await ctx.wait_for("answer", timeout=0.05, default="no answer: default taken")

    async with Client(shared_store, poll_interval=0.02) as c:
        handle = await c.start(wf)
        await asyncio.sleep(0.1)
        await c.resume()  # an engine wakes runs whose timer ran out
        assert await c.result(handle.id, timeout=5) == "no answer: default taken"


async def test_wait_timeout_without_default_fails(shared_store):
    wf = Workflow("sla-strict")

    @wf.step
    async def ask(ctx: StepContext):
        return await ctx.wait_for("answer", timeout=0.05)

    async with Client(shared_store, poll_interval=0.02) as c:
        handle = await c.start(wf)
        await asyncio.sleep(0.1)
        await c.resume()
        with pytest.raises(Exception, match="no signal 'answer' arrived within 0.05s"):
            await c.result(handle.id, timeout=5)


async def test_durable_sleep(shared_store):
    wf = Workflow("sleeper")

    @wf.step
    async def nap(ctx: StepContext):
        await ctx.sleep(0.05)
        return "rested"

    async with Client(shared_store, poll_interval=0.02) as c:
        stop = asyncio.Event()
        worker = asyncio.create_task(c.work(stop))
        handle = await c.start(wf)
        assert await c.result(handle.id, timeout=5) == "rested"
        stop.set()
        await worker


async def test_other_branches_run_while_one_waits(shared_store):
    wf = Workflow("branches")

    @wf.step
    async def waits(ctx: StepContext):
        return await ctx.wait_for("go")

    @wf.step
    async def works():
        return "done"

    async with Client(shared_store) as c:
        handle = await c.start(wf)

        async def waiting():
            return (await c.get(handle.id)).status is RunStatus.WAITING

        await _until(waiting)
        h = await c.history(handle.id)
        assert h.step("works").status is StepStatus.COMPLETED
        assert h.step("waits/signal:go").status is StepStatus.WAITING
        await c.signal(handle.id, "go", 1)
        assert await c.result(handle.id) == {"waits": 1, "works": "done"}


async def test_cancel_a_waiting_run(shared_store):
    wf = Workflow("cancel-waiting")

    @wf.step
    async def waits(ctx: StepContext):
        return await ctx.wait_for("never")

    async with Client(shared_store) as c:
        handle = await c.start(wf)

        async def waiting():
            return (await c.get(handle.id)).status is RunStatus.WAITING

        await _until(waiting)
        assert (await c.cancel(handle.id)).status is RunStatus.CANCELLED


async def test_submit_only_client_and_worker(shared_store):
    wf = Workflow("queued-work")

    @wf.step
    async def double(input):
        return input * 2

    async with Client(shared_store, execute=False) as api:
        handles = [await api.start(wf, i, queue="bulk", tenant="t1") for i in range(5)]
        assert {(await api.get(h.id)).status for h in handles} == {RunStatus.PENDING}
        assert [(await api.get(h.id)).owner for h in handles] == [None] * 5
        async with Client(shared_store, workflows=[wf], queues=["bulk"]) as worker:
            stop = asyncio.Event()
            task = asyncio.create_task(worker.work(stop, concurrency=2))
            assert [await api.result(h.id, timeout=10) for h in handles] == [0, 2, 4, 6, 8]
            stop.set()
            await task


async def test_worker_ignores_other_queues(shared_store):
    wf = Workflow("q-other")

    @wf.step
    async def one():
        return 1

    async with Client(shared_store, execute=False) as api:
        h = await api.start(wf, queue="reports")
        async with Client(shared_store, workflows=[wf], queues=["bulk"], recover=False) as worker:
            assert await worker.resume() == []
        assert (await api.get(h.id)).status is RunStatus.PENDING


async def test_labelled_step_is_handed_to_a_worker_with_the_label(shared_store):
    wf = Workflow("gpu-job")
    where: dict[str, str] = {}

    @wf.step
    async def prepare():
        where["prepare"] = "cpu"
        return [1, 2, 3]

    @wf.step(labels=["gpu"])
    async def train(prepare):
        where["train"] = "gpu"
        return sum(prepare)

    @wf.step
    async def report(train):
        return f"trained: {train}"

    async with Client(shared_store, workflows=[wf], labels=[]) as cpu:
        handle = await cpu.start(wf)

        async def handed():
            run = await cpu.get(handle.id)
            return run.labels == "gpu" and run.owner is None

        await _until(handed)
        async with Client(shared_store, workflows=[wf], labels=[], recover=False) as cpu2:
            assert await cpu2.resume() == []  # another CPU worker does not take it
        async with Client(shared_store, workflows=[wf], labels=["gpu"], recover=False) as gpu:
            assert await gpu.resume() == [handle.id]
            assert await gpu.result(handle.id) == "trained: 6"
    assert where == {"prepare": "cpu", "train": "gpu"}


async def test_a_long_step_is_recorded_as_running_once_and_a_short_one_not_at_all(shared_store):
    """The engine's sweep records a step attempt still running after ``started_event_after`` (other
    processes see it running), once; a step that ends sooner writes no such event."""
    release = asyncio.Event()
    wf = Workflow("long-and-short")

    @wf.step
    async def short():
        return 1

    @wf.step
    async def long(short):
        await release.wait()
        return short + 1

    async with Client(shared_store, workflows=[wf], poll_interval=0.02, started_event_after=0.05) as c:
        handle = await c.start(wf)

        async def seen_running():
            h = await c.history(handle.id)
            return any(s.step == "long" and s.status is StepStatus.RUNNING for s in h.steps)

        await _until(seen_running)
        await asyncio.sleep(0.1)  # more sweeps: the attempt is not recorded again
        release.set()
        assert await handle.result() == 2
        types = [(e.type, e.step) for e in (await c.history(handle.id)).events]
    assert types.count(("step_started", "long")) == 1
    assert ("step_started", "short") not in types


async def test_a_decision_that_arrives_as_its_request_times_out_is_refused_and_audited_void(store_url):
    """Attack (review): an approver's decision read the request while it was open, then reached the
    store only after the wait had timed out. It must not be stored as a decision the run ignored
    (the audit log would say "approved" while the run took the default): it is refused, decide
    answers False, and the audit log says the decision had no effect (approval.void)."""
    gate = asyncio.Event()
    wf = Workflow("sla-approval")

    @wf.step
    async def ask(ctx: StepContext):
        return await ctx.approval({"n": 1}, timeout=0.5, default={"approved": False, "by": "sla"})

    @wf.step
    async def after(ask):
        await gate.wait()  # the run stays unfinished while the decision is delivered
        return ask

    async with Client(store_url, workflows=[wf]) as c:
        handle = await c.start(wf)

        async def asked():
            return bool(await c.approvals(run_id=handle.id))

        await _until(asked)
        [request] = await c.approvals(run_id=handle.id)
        lock = c.store._own_chain().lock
        await lock.acquire()  # the audit chain is busy: the decision waits after reading the request
        decision = asyncio.ensure_future(c.decide(handle.id, request["name"], approve=True))

        async def decision_waits():
            return bool(lock._waiters)

        await _until(decision_waits)

        async def timed_out():
            return any(s.step.endswith("/signal:" + request["name"]) for s in (await c.history(handle.id)).steps if s.status is StepStatus.COMPLETED)

        await _until(timed_out)
        lock.release()
        assert await asyncio.wait_for(decision, 10) is False
        gate.set()
        assert await handle.result() == {"approved": False, "by": "sla"}
        assert await c.store.get_signals(handle.id) == {}
        actions = [e.action for e in await c.store.audit_for(handle.id)]
    assert "approval.decide" in actions and "approval.void" in actions


async def test_a_late_decision_on_a_timed_out_request_is_not_taken_by_the_next_request_of_that_name(store_url):
    """Attack (review, evening): a request with a given name (``ctx.approval(name="pay")``) in a loop times out and the
    loop asks again under the same name, for a larger amount. An approver who read (and approved)
    the FIRST request (100) has his decision reach the store after the first request timed out and
    the second one (1,000,000) was opened. The decision must be refused (approval.void): it was
    about a request that no longer exists. Instead the store only checks that *a* request of that
    name is open, stores the decision, and the second request is approved with the first request's
    payload (the approver never saw the amount 1,000,000)."""
    wf = Workflow("loop-approval")

    @wf.step(loop=Loop(to="ask", while_=lambda ask: ask["by"] == "sla", max_iterations=3))
    async def ask(ctx: StepContext):
        amount = 100 if ctx.iteration == 0 else 1_000_000
        timeout = 0.5 if ctx.iteration == 0 else 30
        return await ctx.approval({"amount": amount}, name="pay", timeout=timeout, default={"approved": False, "by": "sla"})

    async with Client(store_url, workflows=[wf]) as c:
        handle = await c.start(wf)

        async def asked(amount):
            reqs = await c.approvals(run_id=handle.id)
            return bool(reqs) and reqs[0]["payload"] == {"amount": amount}

        await _until(lambda: asked(100))
        [first] = await c.approvals(run_id=handle.id)
        lock = c.store._own_chain().lock
        await lock.acquire()  # the decision waits after reading the first request
        decision = asyncio.ensure_future(c.decide(handle.id, first["name"], approve=True))

        async def decision_waits():
            return bool(lock._waiters)

        await _until(decision_waits)
        await _until(lambda: asked(1_000_000))  # the first timed out; the loop asked again
        lock.release()
        delivered = await asyncio.wait_for(decision, 10)
        result = None
        if delivered:
            result = await asyncio.wait_for(handle.result(), 10)
        else:
            await c.cancel(handle.id)
    assert delivered is False, (
        f"a decision read on the request for 100 was taken by the request for 1,000,000: the run got {result}"
    )


async def test_a_late_decision_does_not_bypass_the_role_the_next_request_of_that_name_requires(store_url):
    """Attack (review, evening; same hole, worse): the first request needs no role, the one asked again under the
    same name after it timed out needs role "cfo". An approver without "cfo" reads the first
    request; his decision lands on the second one: the role check was made against the request he
    read, and the store only checks that a request of that name is open. The cfo-only request is
    approved by someone who is not a cfo."""
    from podium.governance.identity import Principal

    wf = Workflow("loop-approval-role")

    @wf.step(loop=Loop(to="ask", while_=lambda ask: ask["by"] == "sla", max_iterations=3))
    async def ask(ctx: StepContext):
        first = ctx.iteration == 0
        return await ctx.approval(
            {"amount": 100 if first else 1_000_000}, name="pay", role=None if first else "cfo",
            timeout=0.5 if first else 30, default={"approved": False, "by": "sla"},
        )  # fmt: skip

    clerk = Principal(name="clerk", roles=("clerk",), permissions=frozenset({"approvals.decide", "approvals.read"}))
    async with Client(store_url, workflows=[wf]) as c:
        handle = await c.start(wf)

        async def asked(role):
            reqs = await c.approvals(run_id=handle.id)
            return bool(reqs) and reqs[0].get("role") == role

        await _until(lambda: asked(None))
        lock = c.store._own_chain().lock
        await lock.acquire()
        with c.acting_as(clerk):
            decision = asyncio.ensure_future(c.decide(handle.id, "approval:pay", approve=True))

        async def decision_waits():
            return bool(lock._waiters)

        await _until(decision_waits)
        await _until(lambda: asked("cfo"))
        lock.release()
        delivered = await asyncio.wait_for(decision, 10)
        result = await asyncio.wait_for(handle.result(), 10) if delivered is True else None
        if delivered is not True:
            await c.cancel(handle.id)
        actions = [e.action for e in await c.store.audit_for(handle.id)]
    assert delivered is False, f"a clerk's decision approved the cfo-only request: {result}"
    assert "approval.void" in actions


async def test_a_decision_that_lands_just_before_the_timeout_wins_and_leaves_a_whole_log(store_url):
    """Review: the decision lands just before the request is closed for the timeout (close_request
    answers False); the wait takes it; the log has no hole and the run.end anchor's digest verifies."""
    wf = Workflow("wins")

    @wf.step
    async def ask(ctx: StepContext):
        return await ctx.approval({"n": 1}, timeout=0.3, default={"approved": False, "by": "sla"})

    @wf.step
    async def after(ask):
        return ask["approved"]

    async with Client(store_url, workflows=[wf]) as c:
        real, calls = c.store.close_request, []

        async def decided_first(run_id, signal):
            calls.append(signal)
            if len(calls) == 1:
                assert await c.decide(run_id, signal, approve=True)
            return await real(run_id, signal)

        c.store.close_request = decided_first
        handle = await c.start(wf)
        assert await asyncio.wait_for(handle.result(), 10) is True
        seqs = [e.seq for e in await c.store.load_events(handle.id)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(calls) == 1
        _, problem = await c.verify_audit()
    assert problem is None
