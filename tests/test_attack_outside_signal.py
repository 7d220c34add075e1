"""Attack (review of the eighth session's fixes): a run's input from outside refused NaN, Infinity
and deep nesting on every surface (Client.start and fork), but what a run is sent later did not.
``Client.signal`` (the CLI's ``podium signal``, which parses its payload with Python's json, NaN
included) handed a waiting step ``NaN`` or ``{"amount": Infinity}``, which every comparison a step
makes with a limit lets through (``NaN > 1000`` is false); an approver's edited payload did too, after
its decision had been audited. A payload nested thousands deep failed with a RecursionError (a
traceback) instead of saying what was wrong. Refused now before anything is stored or audited."""

from __future__ import annotations

import asyncio

import pytest

from podium import Client, InputValidationError, RunStatus, StepContext, Workflow


def _deep(n: int) -> list:
    top: list = []
    cur = top
    for _ in range(n):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    return top


async def _waiting(c: Client, run_id: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while (await c.get(run_id)).status is not RunStatus.WAITING:
        assert loop.time() < end, "the run never waited"
        await asyncio.sleep(0.01)


async def test_attack_a_signal_cannot_carry_nan_infinity_or_deep_nesting(store_url: str) -> None:
    wf = Workflow("payout")

    @wf.step
    async def pay(ctx: StepContext):
        amount = (await ctx.wait_for("amount"))["amount"]
        return "needs a manager" if not amount <= 1000 else f"paid {amount}"

    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf)
        await _waiting(c, handle.id)
        for payload, said in (({"amount": float("nan")}, "NaN"), ({"amount": float("inf")}, "Infinity"),
                              (_deep(5000), "nested deeper")):  # fmt: skip
            with pytest.raises(InputValidationError, match=said) as err:
                await c.signal(handle.id, "amount", payload)
            assert "signal 'amount'" in str(err.value)
        assert [e.action for e in await c.audit_log() if e.action == "run.signal"] == []
        assert await c.signal(handle.id, "amount", {"amount": 5}) is True
        assert await c.result(handle.id, timeout=30) == "paid 5"


async def test_attack_an_edited_approval_payload_cannot_carry_nan(store_url: str) -> None:
    wf = Workflow("refund")

    @wf.step
    async def ask(ctx: StepContext):
        decision = await ctx.approval({"amount": 10}, title="refund?", timeout=3600)
        return decision["payload"]["amount"]

    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf)
        await _waiting(c, handle.id)
        (request,) = await c.approvals(run_id=handle.id)
        with pytest.raises(InputValidationError, match="Infinity"):
            await c.decide(handle.id, request["name"], approve=True, payload={"amount": float("inf")})
        assert [e.action for e in await c.audit_log() if e.action == "approval.decide"] == []
        assert await c.decide(handle.id, request["name"], approve=True, payload={"amount": 8}) is True
        assert await c.result(handle.id, timeout=30) == 8
