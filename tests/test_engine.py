"""Engine behaviour, run on every store backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest
from pydantic import BaseModel

import podium
from podium import (
    Client,
    NonRetryableError,
    RetryPolicy,
    RunCancelled,
    RunFailed,
    RunStatus,
    StepContext,
    StepStatus,
    Workflow,
)


@pytest.fixture
async def client(store_url):
    async with Client(store_url, poll_interval=0.05) as c:
        yield c


async def test_independent_steps_run_in_parallel(client):
    wf = Workflow("par")
    a_ready, b_ready = asyncio.Event(), asyncio.Event()

    @wf.step
    async def a():
        a_ready.set()
        await asyncio.wait_for(b_ready.wait(), 5)  # deadlocks unless b runs at the same time
        return 1

    @wf.step
    async def b():
        b_ready.set()
        await asyncio.wait_for(a_ready.wait(), 5)
        return 2

    @wf.step
    async def total(a, b):
        return a + b

    assert await client.run(wf) == 3


async def test_sync_steps_run_in_threads_without_blocking_the_loop(client):
    wf = Workflow("sync")
    gate = threading.Event()

    @wf.step
    def blocking():
        assert gate.wait(5), "the loop was blocked: the async step never ran"
        return threading.current_thread().name

    @wf.step
    async def releaser():
        await asyncio.sleep(0.01)
        gate.set()
        return "ok"

    out = await client.run(wf)
    assert out["blocking"].startswith("podium-step")
    assert out["releaser"] == "ok"


async def test_input_and_data_flow(client):
    wf = Workflow("flow")

    @wf.step
    async def double(input):
        return input["x"] * 2

    @wf.step
    def plus_one(double):
        return double + 1

    assert await client.run(wf, {"x": 20}) == 41


async def test_conditional_step_skipped_and_dependents(client):
    wf = Workflow("cond")

    @wf.step
    async def score(input):
        return input

    @wf.step(when=lambda score: score > 0.5)
    async def escalate(score):
        return "escalated"

    @wf.step
    async def needs_escalation(escalate):  # no default: skipped too
        return "never"

    @wf.step
    async def summary(score, escalate=None):  # default: runs with it
        return {"score": score, "escalate": escalate}

    handle = await client.start(wf, 0.2)
    out = await handle.result()
    assert out["summary"] == {"score": 0.2, "escalate": None}
    assert out["needs_escalation"] is None
    h = await client.history(handle.id)
    assert h.step("escalate").status is StepStatus.SKIPPED
    assert h.step("escalate").reason == "condition is false"
    assert h.step("needs_escalation").status is StepStatus.SKIPPED
    assert "escalate" in h.step("needs_escalation").reason
    assert h.step("summary").status is StepStatus.COMPLETED

    out = await client.run(wf, 0.9)
    assert out["summary"]["escalate"] == "escalated"
    assert out["needs_escalation"] == "never"


async def test_fan_out_with_concurrency_cap_and_join(client):
    wf = Workflow("fan")
    running = {"now": 0, "max": 0}

    @wf.step
    async def items(input):
        return list(range(input))

    @wf.step(map="items", max_parallel=3)
    async def square(items):
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1
        return items * items

    @wf.step
    async def total(square):
        return sum(square)

    handle = await client.start(wf, 10)
    assert await handle.result() == sum(i * i for i in range(10))
    assert running["max"] == 3
    h = await client.history(handle.id)
    assert sorted(v.index for v in h.steps if v.step == "square") == list(range(10))


async def test_fan_out_over_empty_list(client):
    wf = Workflow("fan0")

    @wf.step(map="input")
    async def each(input):
        return input

    @wf.step
    async def count(each):
        return len(each)

    assert await client.run(wf, []) == 0


async def test_fan_out_over_non_list_fails_clearly(client):
    wf = Workflow("fanbad")

    @wf.step(map="input")
    async def each(input):
        return input

    with pytest.raises(RunFailed, match="not a list"):
        await client.run(wf, {"a": 1})


async def test_sub_workflow(client):
    child = Workflow("child")

    @child.step
    async def shout(input):
        return input.upper()

    parent = Workflow("parent")

    @parent.step
    async def name(input):
        return input["name"]

    parent.subworkflow("greet", child, input=lambda name: f"hello {name}")

    @parent.step
    async def via_ctx(ctx: StepContext, name):
        return await ctx.run_workflow(child, name)

    handle = await client.start(parent, {"name": "ada"})
    assert await handle.result() == {"greet": "HELLO ADA", "via_ctx": "ADA"}
    kids = await client.list(parent_run_id=handle.id)
    assert {k.workflow for k in kids} == {"child"}
    assert len(kids) == 2 and all(k.status is RunStatus.COMPLETED for k in kids)


async def test_failing_sub_workflow_fails_parent(client):
    child = Workflow("badchild")

    @child.step
    async def boom():
        raise ValueError("child broke")

    parent = Workflow("parent2")
    parent.subworkflow("kid", child)
    with pytest.raises(RunFailed, match="child broke"):
        await client.run(parent)


@dataclass
class Order:
    id: int
    amount: float


class Quote(BaseModel):
    order_id: int
    total: float


async def test_typed_inputs_and_outputs_are_validated(client):
    wf = Workflow("typed", input=Order)

    @wf.step
    async def price(input: Order) -> Quote:
        return Quote(order_id=input.id, total=input.amount * 1.2)

    @wf.step
    async def label(price: Quote) -> str:
        return f"{price.order_id}:{price.total:.1f}"

    assert await client.run(wf, {"id": 7, "amount": 10}) == "7:12.0"
    with pytest.raises(podium.InputValidationError, match="input of workflow 'typed'"):
        await client.start(wf, {"id": "not a number"})


async def test_an_input_the_first_step_cannot_take_is_refused_before_the_run_starts(client):
    wf = Workflow("untyped_workflow")

    @wf.step
    async def load(input: dict) -> int:
        return len(input)

    with pytest.raises(podium.InputValidationError) as caught:
        await client.start(wf)  # no input: the step needs a dict
    message = str(caught.value)
    assert "step 'load' argument 'input'" in message and "no input was given" in message
    assert "errors.pydantic.dev" not in message and "input_value" not in message
    assert [r for r in await client.list() if r.workflow == "untyped_workflow"] == []  # nothing recorded
    assert await client.run(wf, {"a": 1}) == 1


async def test_bad_output_type_fails_the_step_without_retry(client):
    wf = Workflow("badout")
    calls = []

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0))
    async def broken() -> int:
        calls.append(1)
        return "seven"  # type: ignore[return-value]

    with pytest.raises(RunFailed, match="output of step 'broken'"):
        await client.run(wf)
    assert len(calls) == 1


async def test_retry_with_backoff_then_success(client):
    wf = Workflow("retry")
    attempts = []

    @wf.step(retry=RetryPolicy(max_attempts=4, initial_interval=0.01, jitter=0))
    async def flaky(ctx: StepContext):
        attempts.append((ctx.attempt, ctx.idempotency_key))
        if ctx.attempt < 3:
            raise ConnectionError(f"try {ctx.attempt}")
        return "ok"

    handle = await client.start(wf)
    assert await handle.result() == "ok"
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert len({k for _, k in attempts}) == 1, "the idempotency key is stable across attempts"
    view = (await client.history(handle.id)).step("flaky")
    assert view.attempts == 3
    assert [e["message"] for e in view.errors] == ["try 1", "try 2"]
    assert "ConnectionError" in view.errors[0]["traceback"]


async def test_non_retryable_errors_fail_fast(client):
    wf = Workflow("nonretry")
    calls = []

    @wf.step(retry=RetryPolicy(max_attempts=5, initial_interval=0, non_retryable=(KeyError,)))
    async def strict(input):
        calls.append(input)
        if input == "key":
            raise KeyError("missing")
        raise NonRetryableError("card declined")

    with pytest.raises(RunFailed, match="card declined"):
        await client.run(wf, "x")
    with pytest.raises(RunFailed, match="missing"):
        await client.run(wf, "key")
    assert calls == ["x", "key"]


async def test_retry_on_filters_errors(client):
    wf = Workflow("retryon")
    calls = []

    @wf.step(retry=RetryPolicy(max_attempts=5, initial_interval=0, retry_on=(ConnectionError,)))
    async def picky():
        calls.append(1)
        raise ValueError("bad data")

    with pytest.raises(RunFailed, match="bad data"):
        await client.run(wf)
    assert len(calls) == 1


async def test_step_timeout_is_retried_then_fails(client):
    wf = Workflow("slow")

    @wf.step(timeout=0.05, retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def sleepy():
        await asyncio.sleep(5)

    handle = await client.start(wf)
    with pytest.raises(RunFailed, match="did not finish within its timeout of 0.05s"):
        await handle.result()
    view = (await client.history(handle.id)).step("sleepy")
    assert view.attempts == 2 and view.status is StepStatus.FAILED


async def test_sync_step_timeout(client):
    wf = Workflow("slowsync")

    @wf.step(timeout=0.05)
    def sleepy():
        import time

        time.sleep(0.3)

    with pytest.raises(RunFailed, match="timeout"):
        await client.run(wf)


async def test_run_timeout_cancels_running_steps(client):
    wf = Workflow("runtimeout", timeout=0.1)

    @wf.step
    async def forever():
        await asyncio.sleep(30)

    handle = await client.start(wf)
    with pytest.raises(RunFailed, match="exceeded its timeout"):
        await handle.result()
    view = (await client.history(handle.id)).step("forever")
    assert view.status is StepStatus.CANCELLED


async def test_cancel_running_run(client):
    wf = Workflow("cancelme")
    started = asyncio.Event()

    @wf.step
    async def quick():
        return 1

    @wf.step
    async def long(quick):
        started.set()
        await asyncio.sleep(30)

    @wf.step
    async def after(long):
        return "never"

    handle = await client.start(wf)
    await asyncio.wait_for(started.wait(), 5)
    run = await client.cancel(handle.id)
    assert run.status is RunStatus.CANCELLED
    with pytest.raises(RunCancelled):
        await handle.result()
    h = await client.history(handle.id)
    assert h.step("quick").status is StepStatus.COMPLETED
    assert h.step("long").status is StepStatus.CANCELLED
    assert all(v.step != "after" for v in h.steps)


async def test_failing_step_stores_error_and_cancels_siblings(client):
    wf = Workflow("failing")

    @wf.step
    async def bad():
        await asyncio.sleep(0.01)
        raise RuntimeError("exploded")

    @wf.step
    async def slow():
        await asyncio.sleep(30)

    handle = await client.start(wf)
    with pytest.raises(RunFailed, match="at step 'bad': exploded") as info:
        await handle.result()
    assert info.value.error["step"] == "bad"
    h = await client.history(handle.id)
    assert "RuntimeError: exploded" in h.step("bad").error["traceback"]
    assert h.step("slow").status is StepStatus.CANCELLED
    assert h.run.status is RunStatus.FAILED


async def test_on_error_continue(client):
    wf = Workflow("continue")

    @wf.step(on_error="continue")
    async def optional():
        raise RuntimeError("not important")

    @wf.step
    async def main(optional=None):
        return f"optional={optional}"

    handle = await client.start(wf)
    assert await handle.result() == "optional=None"
    assert (await client.history(handle.id)).step("optional").status is StepStatus.FAILED


async def test_step_kind_concurrency_limit(store_url):
    wf = Workflow("kinds")
    running = {"now": 0, "max": 0}

    @wf.step(map="input", kind="llm")
    async def call(input):
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1
        return input

    async with Client(store_url, limits={"llm": 2}) as c:
        assert await c.run(wf, list(range(8))) == list(range(8))
    assert running["max"] == 2


async def test_max_concurrent_runs(store_url):
    wf = Workflow("limited")
    running = {"now": 0, "max": 0}

    @wf.step
    async def work():
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0.02)
        running["now"] -= 1

    async with Client(store_url, max_concurrent_runs=2) as c:
        handles = [await c.start(wf) for _ in range(6)]
        for h in handles:
            await h.result()
        assert {(await c.get(h.id)).status for h in handles} == {RunStatus.COMPLETED}
    assert running["max"] == 2


async def test_context_fields(client):
    wf = Workflow("ctx", version="7")
    seen = {}

    @wf.step
    def look(ctx: StepContext):
        seen.update(run_id=ctx.run_id, step=ctx.step_id, attempt=ctx.attempt, version=ctx.workflow_version)
        ctx.log.info("hello from a step")
        return ctx.idempotency_key

    handle = await client.start(wf)
    key = await handle.result()
    assert seen == {"run_id": handle.id, "step": "look", "attempt": 1, "version": "7"}
    assert key == f"{handle.id}:look"


async def test_unserializable_output_fails_clearly(client):
    wf = Workflow("unser")

    @wf.step
    async def weird():
        return object()

    with pytest.raises(RunFailed, match="cannot store a value of type builtins.object"):
        await client.run(wf)


async def test_rich_values_round_trip_through_the_store(client):
    import datetime
    import decimal
    import uuid

    wf = Workflow("rich")
    value = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "money": decimal.Decimal("10.25"),
        "id": uuid.UUID(int=5),
        "raw": b"\x00\x01",
        "tags": {"a"},
        "order": Order(1, 2.5),
        "quote": Quote(order_id=1, total=3.0),
    }

    @wf.step
    async def make():
        return value

    handle = await client.start(wf)
    assert await handle.result() == value
    assert (await client.history(handle.id)).step("make").output == value


async def test_fork_reuses_steps_before_the_fork_point(client):
    wf = Workflow("forky")
    calls: list[str] = []

    @wf.step
    async def fetch(input):
        calls.append("fetch")
        return input["n"]

    @wf.step
    async def enrich(fetch):
        calls.append("enrich")
        return fetch * 10

    @wf.step
    async def report(enrich, input):
        calls.append("report")
        return f"{input['label']}={enrich}"

    first = await client.start(wf, {"n": 4, "label": "a"})
    assert await first.result() == "a=40"
    calls.clear()
    forked = await client.fork(first.id, "report", input={"n": 999, "label": "b"})
    assert await forked.result() == "b=40"  # fetch and enrich reused with their earlier results
    assert calls == ["report"]
    h = await client.history(forked.id)
    assert h.run.forked_from == first.id and h.run.fork_step == "report"
    assert h.step("fetch").reused_from == first.id
    calls.clear()
    again = await client.fork(first.id, "enrich")
    assert await again.result() == "a=40"
    assert calls == ["enrich", "report"]
    with pytest.raises(podium.NotFound, match="did you mean 'report'"):
        await client.fork(first.id, "reprot")


async def test_history_lists_every_step_and_event(client):
    wf = Workflow("hist")

    @wf.step
    async def one():
        return 1

    @wf.step
    async def two(one):
        return one + 1

    handle = await client.start(wf)
    await handle.result()
    h = await client.history(handle.id)
    assert [v.step for v in h.steps] == ["one", "two"]
    assert all(v.started_at and v.finished_at and v.finished_at >= v.started_at for v in h.steps)
    types = [e.type for e in h.events]
    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert [e.seq for e in h.events] == list(range(1, len(h.events) + 1))
    assert h.output == 2


async def test_listing_and_filtering_runs(client):
    ok, bad = Workflow("ok"), Workflow("bad")

    @ok.step
    async def fine():
        return 1

    @bad.step
    async def broken():
        raise RuntimeError("x")

    for _ in range(3):
        await client.run(ok)
    with pytest.raises(RunFailed):
        await client.run(bad)
    assert len(await client.list(workflow="ok")) == 3
    failed = await client.list(status=["failed"])
    assert [r.workflow for r in failed] == ["bad"]
    assert len(await client.list(limit=2)) == 2
    with pytest.raises(podium.ConfigError, match="statuses are"):
        await client.list(status=["nope"])


async def test_start_with_fixed_id_is_idempotent(client):
    wf = Workflow("idem")
    calls = []

    @wf.step
    async def once():
        calls.append(1)
        return "x"

    h1 = await client.start(wf, run_id="order-42")
    h2 = await client.start(wf, run_id="order-42")
    assert await h1.result() == await h2.result() == "x"
    assert calls == [1]


async def test_get_unknown_run(client):
    with pytest.raises(podium.NotFound, match="no run with id 'nope'"):
        await client.get("nope")


async def test_live_events_reach_subscribers(client):
    wf = Workflow("live")

    @wf.step
    async def a():
        return 1

    seen = []
    unsubscribe = client.subscribe(lambda ev: seen.append(ev.type))
    await client.run(wf)
    unsubscribe()
    assert seen[-1] == "run_completed" and "step_completed" in seen


def test_sync_run_helper():
    wf = Workflow("syncapi")

    @wf.step
    def hello(input):
        return f"hello {input}"

    assert podium.run(wf, "world") == "hello world"


async def test_durable_calls_inside_a_step_are_not_repeated(client):
    wf = Workflow("agentish")
    calls: list[str] = []

    async def llm(prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    def tool(x: int) -> int:
        calls.append(f"tool {x}")
        return x * 2

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def agent(ctx: StepContext):
        a = await ctx.call(llm, "plan")
        b = await ctx.call(tool, 21)
        c = await ctx.call(llm, "answer")
        if ctx.attempt == 1:
            raise ConnectionError("lost the connection after three calls")
        d = await ctx.call(llm, "final", name="wrap")
        return [a, b, c, d]

    handle = await client.start(wf)
    assert await handle.result() == ["PLAN", 42, "ANSWER", "FINAL"]
    assert calls == ["plan", "tool 21", "answer", "final"]  # the retry reused the three logged calls
    h = await client.history(handle.id)
    assert [v.step for v in h.steps] == ["agent/llm", "agent/tool", "agent/llm-2", "agent", "agent/wrap"]


async def test_failed_durable_call_raises_in_the_step(client):
    wf = Workflow("callfail")
    attempts = []

    async def flaky():
        attempts.append(1)
        raise TimeoutError("upstream slow")

    @wf.step
    async def use(ctx: StepContext):
        try:
            await ctx.call(flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0))
        except TimeoutError as exc:
            return f"fallback after: {exc}"
        return "unreachable"

    handle = await client.start(wf)
    assert await handle.result() == "fallback after: upstream slow"
    assert len(attempts) == 3
    view = (await client.history(handle.id)).step("use/flaky")
    assert view.status is StepStatus.FAILED and view.attempts == 3


async def test_durable_call_timeout(client):
    wf = Workflow("calltimeout")

    async def slow():
        await asyncio.sleep(5)

    @wf.step
    async def use(ctx: StepContext):
        try:
            await ctx.call(slow, timeout=0.05)
        except podium.StepTimeout as exc:
            return str(exc)

    assert "did not finish within 0.05s" in await client.run(wf)


async def test_failing_output_function_fails_the_run(client):
    wf = Workflow("badoutput", output=lambda a: a["nope"])

    @wf.step
    async def a():
        return {}

    with pytest.raises(RunFailed, match="output of workflow 'badoutput' could not be computed"):
        await client.run(wf)


async def test_usage_is_queryable_through_the_client(client):
    from podium.ai import UsageReport

    wf = Workflow("nousage")

    @wf.step
    async def a():
        return 1

    handle = await client.start(wf)
    await handle.result()
    assert isinstance(await client.usage(run_id=handle.id), UsageReport)


async def test_text_that_is_not_valid_unicode_gets_a_clear_error_and_the_run_ends(client):
    """Review: a lone surrogate (bytes decoded with surrogateescape, a broken escape) in a run's input
    raised a raw UnicodeEncodeError from the store, and in a step's output left the run's end
    unwritten ("engine error"). Now the input is refused saying what and where, the step fails with
    that message and the run ends failed; an audit comment holding one is kept (as an escape)."""
    wf = Workflow("surrogates")

    @wf.step
    async def echo(input):
        return input + "\ud800" if input.startswith("bad") else input

    with pytest.raises(podium.SerializationError, match=r"'\\udc00' \(a lone surrogate, not valid Unicode text\)"):
        await client.start(wf, "in\udc00put")
    handle = await client.start(wf, "bad output")
    with pytest.raises(RunFailed, match=r"step 'echo'.*lone surrogate.*errors='replace'"):
        await handle.result()
    assert (await client.get(handle.id)).status is RunStatus.FAILED
    assert await client.run(wf, "fine") == "fine"  # the store goes on
    await client.governance.record("run.note", handle.id, reason="odd \udfff text")
    notes = [e for e in await client.store.audit_for(handle.id) if e.action == "run.note"]
    assert notes[0].details()["reason"] == "odd \udfff text"
    assert (await client.verify_audit())[1] is None
