"""Attack (eighth session's review): one "let it go on" waived every budget for the rest of the run.

With ``on_exceed="approval"``, a person asked about a run's budget (``$0.0200 of $0.0100 for the
run``) let the run go on; from then on the run checked no budget at all: it spent past the
workflow's budget for the day (and an entity's) with nobody asked, though those budgets hold every
run of the workflow and were never shown to the approver. Now a decision waives the budgets it was
asked about; another budget reached later asks again, naming it."""

from __future__ import annotations

import asyncio

import pytest

from podium import Client, RunFailed, RunStatus, StepContext, Workflow, ai
from podium.governance.policy import Policy
from podium.models import Response, Usage
from podium.models.testing import ScriptedModel


def _spender(calls: int) -> Workflow:
    model = ScriptedModel(default=Response(text="done", usage=Usage(input_tokens=10, output_tokens=10, cost=0.02)))
    wf = Workflow("spender")

    @wf.step
    async def spend(ctx: StepContext):
        return [(await ai.llm(ctx, f"call {i}", model=model)).text for i in range(calls)]

    return wf


async def _asked(c: Client, run_id: str, seen: set[str]) -> dict | None:
    """The next approval request of the run not seen yet, or None once the run has finished."""
    while True:
        rec = await c.get(run_id)
        if rec.status.finished:
            return None
        if rec.status is RunStatus.WAITING:
            fresh = [a for a in await c.approvals(run_id=run_id) if a["name"] not in seen]
            if fresh:
                seen.add(fresh[0]["name"])
                return fresh[0]
        await asyncio.sleep(0.01)


async def test_attack_a_waived_run_budget_does_not_waive_the_day_budget(store_url: str) -> None:
    wf = _spender(5)
    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("spender", Policy(max_run_cost=0.01, max_daily_cost=0.05, on_exceed="approval"))
        handle = await c.start(wf)
        seen: set[str] = set()
        first = await _asked(c, handle.id, seen)
        assert first is not None and "for the run" in first["title"] and "today" not in first["title"]
        await c.decide(handle.id, first["name"], approve=True, comment="this one run may cost more")
        second = await _asked(c, handle.id, seen)
        assert second is not None, "the day's budget was passed with nobody asked"
        assert "today" in second["title"] and "$0.0600 of $0.0500" in second["title"], second["title"]
        await c.decide(handle.id, second["name"], approve=False, comment="not today")
        with pytest.raises(RunFailed, match="did not let it go on: not today"):
            await c.result(handle.id, timeout=30)
        spent = [e.details() for e in await c.audit_log() if e.action == "policy.budget"]
        assert any("today" in " ".join(d["spent"]) for d in spent)


async def test_a_waiver_holds_for_the_budget_it_was_asked_about(store_url: str) -> None:
    wf = _spender(4)
    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("spender", Policy(max_run_cost=0.01, on_exceed="approval"))
        handle = await c.start(wf)
        seen: set[str] = set()
        asked = await _asked(c, handle.id, seen)
        assert asked is not None
        await c.decide(handle.id, asked["name"], approve=True)
        assert await c.result(handle.id, timeout=30) == ["done"] * 4  # asked once, for the run's budget
        assert await _asked(c, handle.id, seen) is None


async def test_attack_a_day_budget_waived_yesterday_is_asked_about_again_today(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack (review of the eighth session's fixes): a waiver was named by the budget without its
    day (``$ of $0.0500 today``), and so was the approval request. A run that went on past a day's
    budget with a person's leave, and was still running the next day (a durable run waits days),
    spent past the next day's budget with nobody asked: the waiver, and the decision recorded under
    the same name, answered for a day nobody was asked about."""
    import time as time_

    from podium.governance import enforcement

    class Clock:
        days = 0

        def __getattr__(self, name: str):
            return getattr(time_, name)

        def gmtime(self, secs: float | None = None):
            return time_.gmtime((time_.time() if secs is None else secs) + self.days * 86400)

    clock = Clock()
    monkeypatch.setattr(enforcement, "time", clock)
    model = ScriptedModel(default=Response(text="done", usage=Usage(input_tokens=10, output_tokens=10, cost=0.02)))
    wf = Workflow("spender")

    @wf.step
    async def yesterday(ctx: StepContext):
        return [(await ai.llm(ctx, f"call {i}", model=model)).text for i in range(4)]

    @wf.step(needs=["yesterday"])
    async def today(ctx: StepContext):
        clock.days = 1  # the run is still going the next day
        return [(await ai.llm(ctx, f"call {i}", model=model)).text for i in range(4)]

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("spender", Policy(max_daily_cost=0.05, on_exceed="approval"))
        handle = await c.start(wf)
        seen: set[str] = set()
        first = await _asked(c, handle.id, seen)
        assert first is not None and "today" in first["title"]
        await c.decide(handle.id, first["name"], approve=True, comment="today only")
        second = await _asked(c, handle.id, seen)
        assert second is not None, "the next day's budget was passed with nobody asked"
        assert second["name"] != first["name"] and "today" in second["title"]
        await c.decide(handle.id, second["name"], approve=False, comment="not again")
        with pytest.raises(RunFailed, match="did not let it go on: not again"):
            await c.result(handle.id, timeout=30)
