"""The attacker review of the day's diff (2026-12-06, fourth session): four eyes, forks and
decisions. Each test is an attack that succeeded on the code before its fix (docs/status.md,
"Review of the day's diff")."""

from __future__ import annotations

import asyncio
from typing import Any

from podium import Client, StepContext, Workflow


async def _parked(c: Client, run_id: str) -> dict:
    for _ in range(1000):
        if requests := await c.approvals(run_id=run_id):
            return requests[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} asked no approval")


async def _users(url: str) -> dict[str, str]:
    async with Client(url, recover=False) as local:
        await local.create_user("alice", ["operator"])
        await local.create_user("bob", ["approver"])
        return {n: await local.create_token(n) for n in ("alice", "bob")}


def _payment_with_a_note(paid: list[Any]) -> Workflow:
    wf = Workflow("payment-note")

    @wf.step
    async def approve(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="pay?", timeout=3600)
        return bool(decision["approved"])

    @wf.step
    async def pay(approve, input):
        if approve:
            paid.append(input)
        return {"paid": approve}

    @wf.step
    def note(input):  # depends on nothing: a fork from it re-executes it alone
        return "noted"

    return wf


async def test_attack_a_fork_of_a_fork_does_not_reuse_the_first_runs_approval(tmp_path: Any) -> None:
    """The attack: bob approves alice's payment once. Alice forks the run from ``note`` (a step after
    no approval: the approval and the payment are reused, nothing is paid), then forks that fork
    from ``pay``. The second fork looked for the approvals in the first fork's log, where the reused
    approval step left no request (only its result), so it reused bob's decision and paid again:
    one approval, two payments."""
    paid: list[Any] = []
    wf = _payment_with_a_note(paid)
    url = f"sqlite:///{tmp_path}/p.db"
    tokens = await _users(url)
    async with Client(url, workflows=[wf], token=tokens["alice"]) as alice:
        run = await alice.start(wf, 40)
        request = await _parked(alice, run.id)
    async with Client(url, workflows=[wf], token=tokens["bob"]) as bob:
        assert await bob.decide(run.id, request["name"], approve=True)
        await bob.result(run.id, timeout=30)
    assert paid == [40]
    async with Client(url, workflows=[wf], token=tokens["alice"]) as alice:
        first = await alice.fork(run.id, "note")
        assert (await alice.result(first.id, timeout=30))["note"] == "noted"
        assert paid == [40]
        second = await alice.fork(first.id, "pay")
        again = await _parked(alice, second.id)  # asked again, not reused from the first run
        assert again["payload"] == {"amount": 40}
        assert paid == [40]
    async with Client(url, workflows=[wf], token=tokens["bob"]) as bob:
        assert await bob.decide(second.id, again["name"], approve=False)
        assert await bob.result(second.id, timeout=30) == {"pay": {"paid": False}, "note": "noted"}
    assert paid == [40]
