"""The ninth attacker review (2026-12-06): the same refusal, audited, on every surface. Each test
is an attack that succeeded on the code before its fix (docs/status.md, "Governance on every
surface and in the store (ninth session)")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from podium import Client, PermissionDenied, RunStatus, StepContext, Workflow


def _payment() -> Workflow:
    wf = Workflow("payment")

    @wf.step
    async def ask(ctx: StepContext, input):
        decision = await ctx.approval({"amount": input}, title="pay?", role="cfo", timeout=3600)
        return bool(decision["approved"])

    return wf


async def _parked(c: Client, run_id: str) -> dict:
    for _ in range(2000):
        if requests := await c.approvals(run_id=run_id):
            return requests[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} asked no approval")


async def test_attack_a_decision_without_the_requests_role_is_refused_and_audited(tmp_path: Path) -> None:
    """Amy, an approver without the role ``cfo`` that the request asks for, tries to decide it: she
    was refused, but nothing was written to the audit log (every other refusal is an
    ``access.denied`` entry), so repeated tries by the wrong person left no trace."""
    url = f"sqlite:///{tmp_path}/p.db"
    wf = _payment()
    async with Client(url, recover=False) as local:
        await local.create_user("root", ["admin"])
        await local.define_role("cfo", ["approvals.read", "approvals.decide", "payloads.read", "runs.read"])
        await local.create_user("amy", ["approver"])
        await local.create_user("carol", ["cfo"])
        await local.create_user("otto", ["operator"])
        tokens = {n: await local.create_token(n) for n in ("root", "amy", "carol", "otto")}
    async with Client(url, workflows=[wf], token=tokens["otto"]) as otto:
        run = await otto.start(wf, 20_000)
        request = await _parked(otto, run.id)
    async with Client(url, workflows=[wf], token=tokens["amy"]) as amy:
        with pytest.raises(PermissionDenied, match="needs role 'cfo'"):
            await amy.decide(run.id, request["name"], approve=True)
    async with Client(url, workflows=[wf], token=tokens["root"]) as root:
        denied = [e for e in await root.audit_log() if e.action == "access.denied" and e.actor == "amy"]
        assert denied and denied[-1].target == run.id and "cfo" in (denied[-1].data or ""), denied
        assert (await root.get(run.id)).status is RunStatus.WAITING
    async with Client(url, workflows=[wf], token=tokens["carol"]) as carol:
        assert await carol.decide(run.id, request["name"], approve=True)
        assert await carol.result(run.id, timeout=30) is True
