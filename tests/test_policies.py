"""Policies: allowed tools and providers, run budgets; refusals are audited."""

from __future__ import annotations

import asyncio

import pytest

from podium import Client, RunFailed, RunStatus, StepContext, Workflow, ai
from podium.governance.policy import Policy
from podium.models import Response, ToolCall, Usage
from podium.models.testing import ScriptedModel
from podium.tools import tool


@tool
def refund(order_id: int) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


@tool
def lookup(order_id: int) -> str:
    """Look an order up."""
    return f"order {order_id}: shipped"


def agent_workflow(model) -> Workflow:
    wf = Workflow("support-agent")

    @wf.step
    async def answer(ctx: StepContext, input):
        agent = ai.Agent(model=model, tools=[lookup, refund], max_iterations=3)
        result = await agent.run(ctx, input)
        return {"text": result.output, "tools": [(t.name, t.ok, t.error) for t in result.tool_calls]}

    return wf


async def test_forbidden_tool_is_refused_even_when_the_model_asks(store_url):
    model = ScriptedModel(
        [
            (
                lambda req: not any(m.role == "tool" for m in req.messages),
                [ToolCall(id="1", name="refund", arguments={"order_id": 7})],
            )
        ],
        default="I could not refund it.",
    )
    wf = agent_workflow(model)
    async with Client(store_url) as c:
        await c.set_policy("support-agent", Policy(allowed_tools=["lookup"]))
        out = await c.run(wf, "refund order 7")
        name, ok, error = out["tools"][0]
        assert (name, ok) == ("refund", False) and "may not call tool 'refund'" in error
        refused = [e for e in await c.audit_log() if e.action == "policy.refuse"]
        assert refused and refused[0].details()["tool"] == "refund"
        actions = [e.action for e in await c.audit_log()]
        assert "policy.set" in actions


async def test_provider_allow_list_keeps_data_local(store_url):
    wf = Workflow("local-only")
    model = ScriptedModel(default="hi", provider="openai")

    @wf.step
    async def talk(ctx: StepContext):
        return (await ai.llm(ctx, "hello", model=model)).text

    async with Client(store_url) as c:
        await c.set_policy("*", Policy(allowed_providers=["local"]))
        with pytest.raises(RunFailed, match="may not call provider 'openai'"):
            await c.run(wf)
        await c.set_policy("*", None)
        assert await c.run(wf) == "hi"


async def test_run_budget_stops_or_asks(store_url):
    costly = Response(text="done", usage=Usage(input_tokens=600, output_tokens=500, cost=0.02))
    model = ScriptedModel(default=costly)
    wf = Workflow("spender")

    @wf.step
    async def spend(ctx: StepContext):
        first = await ai.llm(ctx, "one", model=model)
        second = await ai.llm(ctx, "two", model=model)  # over budget by now
        return [first.text, second.text]

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("spender", Policy(max_run_tokens=1000))
        with pytest.raises(RunFailed, match="reached a budget of its policy"):
            await c.run(wf)
        await c.set_policy("spender", Policy(max_run_cost=0.01, on_exceed="approval"))
        handle = await c.start(wf)
        while (await c.get(handle.id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)
        [request] = await c.approvals(run_id=handle.id)
        assert "budget reached" in request["title"]
        await c.decide(handle.id, request["name"], approve=True, comment="worth it")
        assert await c.result(handle.id, timeout=5) == ["done", "done"]
        assert "policy.budget" in [e.action for e in await c.audit_log()]


async def test_policy_needs_permission(store_url):
    from podium import open_store
    from podium.errors import PermissionDenied

    store = open_store(store_url) if store_url.startswith("memory") else store_url
    async with Client(store) as c:
        await c.create_user("ops", ["operator"])
        token = await c.create_token("ops")
    async with Client(store, token=token) as ops:
        with pytest.raises(PermissionDenied, match="policies.write"):
            await ops.set_policy("*", Policy(allowed_tools=[]))
