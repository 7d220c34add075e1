"""The tenth attacker review (2026-12-07): spending counters lowered in the store.

The day's, an entity's and a run's spending are counters in the store's key-value table (an atomic
add per model call). The attacker can write the database (the SQLite file, a PostgreSQL account)
but does not hold the audit key: zeroing a counter let a spent budget be spent again. Each test
failed on the code before its fix (docs/status.md, "Rows still taken as written, sealed (tenth
session)")."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from store_attacker import sql

from podium import Client, Policy, RunFailed, StepContext, Workflow, ai
from podium.models import Response, Usage
from podium.models.testing import ScriptedModel


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/spend.db"
    return str(request.getfixturevalue("pg_url"))


def _talker(calls: list[str], tokens: int) -> Workflow:
    def answer(request: Any) -> Response:
        calls.append("call")
        return Response(text="ok", usage=Usage(input_tokens=tokens // 2, output_tokens=tokens - tokens // 2, cost=0.01))

    model = ScriptedModel(default=answer)
    wf = Workflow("per-customer")

    @wf.step
    async def talk(ctx: StepContext, input: Any) -> str:
        return (await ai.llm(ctx, "hello", model=model)).text

    return wf


async def test_attack_a_days_counter_zeroed_in_the_store_does_not_reopen_the_budget(url: str) -> None:
    """The workflow may spend 250 tokens a day; it spent 300. The attacker deletes the day's
    counters and starts the engine again: the budget was open again for the rest of the day."""
    calls: list[str] = []
    wf = _talker(calls, 100)
    async with Client(url, workflows=[wf]) as c:
        await c.set_policy("per-customer", Policy(max_daily_tokens=250))
        for _ in range(3):
            assert await c.run(wf, {}) == "ok"
    sql(url, "DELETE FROM kv WHERE ns = 'spend' AND key LIKE ?", "day:%")
    async with Client(url, workflows=[wf]) as c:
        _, problem = await c.verify_audit()
        assert problem is not None and "spending counter day:per-customer:" in problem, problem
        with pytest.raises(RunFailed, match="300 tokens of 250 today"):
            await c.run(wf, {})
        restored = [e for e in await c.audit_log() if e.action == "spend.restore"]
        assert restored and restored[0].actor == "engine" and restored[0].details()["restored"] == 300
        assert (await c.verify_audit())[1] is None  # put back where the signed log had it
    assert len(calls) == 3


async def test_attack_an_entitys_counter_zeroed_under_a_running_engine_does_not_reopen_it(url: str) -> None:
    """A customer may spend 250 tokens a day and spent 300; the attacker zeroes that customer's
    counters while the engine runs: the engine read them again at the next call and let it spend."""
    calls: list[str] = []
    wf = _talker(calls, 100)
    async with Client(url, workflows=[wf]) as c:
        await c.set_policy("per-customer", Policy(max_entity_tokens=250, entity_field="customer"))
        for _ in range(3):
            assert await c.run(wf, {"customer": "acme"}) == "ok"
        sql(url, "UPDATE kv SET value = '0' WHERE ns = 'spend' AND key LIKE ?", "entity:%")
        with pytest.raises(RunFailed, match="300 tokens of 250 today for entity 'acme'"):
            await c.run(wf, {"customer": "acme"})
        assert await c.run(wf, {"customer": "globex"}) == "ok"
    assert len(calls) == 4


async def test_attack_a_runs_counter_zeroed_while_it_waits_does_not_reopen_its_budget(url: str) -> None:
    """``ops`` may spend 1,000 tokens per run, its children's included. Its first child spent 600;
    while the run waits for a signal the attacker zeroes its counter (``run:ID:tokens``) and the
    engine restarts: its next child spent 1,200 more before the budget held."""
    calls: list[str] = []

    def answer(request: Any) -> Response:
        calls.append("call")
        return Response(text="done", usage=Usage(input_tokens=300, output_tokens=300, cost=0.03))

    model = ScriptedModel(default=answer)
    child = Workflow("ops-helper")

    @child.step
    async def spend(ctx: StepContext, input: Any) -> int:
        for i in range(int(input)):
            await ai.llm(ctx, f"draft {i}", model=model)
        return int(input)

    parent = Workflow("ops")

    @parent.step
    async def first(ctx: StepContext) -> Any:
        return await ctx.run_workflow(child, 1, name="first")

    @parent.step
    async def gate(ctx: StepContext, first: Any) -> Any:
        return await ctx.wait_for("go")

    @parent.step
    async def second(ctx: StepContext, gate: Any) -> Any:
        return await ctx.run_workflow(child, 2, name="second")

    async with Client(url, workflows=[parent, child]) as c:
        await c.set_policy("ops", Policy(max_run_tokens=1000))
        handle = await c.start(parent, None)
        for _ in range(1500):  # a busy machine: up to 30 s
            if (await c.get(handle.id)).status.value == "waiting":
                break
            await asyncio.sleep(0.02)
        assert (await c.get(handle.id)).status.value == "waiting"
    sql(url, "DELETE FROM kv WHERE ns = 'spend' AND key LIKE ?", "run:%")
    async with Client(url, workflows=[parent, child]) as c:
        await c.signal(handle.id, "go", True)
        with pytest.raises(RunFailed, match="1200 tokens of 1000"):
            await c.result(handle.id, timeout=30)
    assert len(calls) == 2, "the zeroed counter let the next child spend again"
