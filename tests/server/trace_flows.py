"""A support workflow whose trace has every kind of entry: a retried step, a routing decision with
its confidence, an agent's iterations with model and tool calls (scripted model, no network), a
connector-free tool call and a person's approval. Used by the trace tests (API, CLI, dashboard)."""

from __future__ import annotations

import asyncio

import podium
from podium import RetryPolicy, StepContext, ai
from podium.classifiers import Classification, Classifier
from podium.models import Response, ToolCall, Usage
from podium.models.testing import ScriptedModel
from podium.tools import tool


class Intent(Classifier):
    """A fixed-confidence classifier (a real one would embed the text)."""

    labels = ["billing", "tech"]

    async def classify(self, text: str) -> Classification:
        label = "tech" if "down" in text else "billing"
        return Classification(label=label, confidence=0.87, method="keywords", scores={label: 0.87})


@tool
def lookup_order(order_id: int) -> dict:
    """Look up an order.

    Args:
        order_id: the order number
    """
    return {"order_id": order_id, "status": "refunded", "amount": 42.5}


def _first(req):
    return req.messages[-1].role == "user"


def _after(seconds: float, response: Response):
    """A reply that takes a model's time (the timeline shows the call)."""

    async def reply(request):
        await asyncio.sleep(seconds)
        return response

    return reply


model = ScriptedModel(
    [
        (_first, _after(0.35, Response(
            tool_calls=(ToolCall(id="c1", name="lookup_order", arguments={"order_id": 7}),),
            finish_reason="tool_calls",
            usage=Usage(input_tokens=412, output_tokens=18, cached_tokens=256),
        ))),
        (None, _after(0.5, Response(
            text="Your order 7 was refunded: 42.50 EUR will be back on your card in 3 days. <b>Thanks</b>",
            usage=Usage(input_tokens=468, output_tokens=31, cached_tokens=384),
        ))),
    ],
    provider="openai",
    name="gpt-4o-mini",
)

helper = ai.Agent(
    model=model,
    instructions="You answer customers about their orders. Look the order up before answering.",
    tools=[lookup_order],
    name="helper",
)
router = ai.Router(routes={"billing": helper, "tech": helper}, classifier=Intent(), threshold=0.6)

support = podium.Workflow("support")


@support.step(retry=RetryPolicy(max_attempts=2, initial_interval=0.3))
async def triage(ctx: StepContext, input: dict) -> str:
    if ctx.attempt == 1:
        await asyncio.sleep(0.2)
        raise ConnectionError("the ticket system did not answer")
    decision = await router.decide(ctx, input["text"])
    return decision.route


@support.step
async def answer(ctx: StepContext, triage: str, input: dict) -> str:
    result = await helper.run(ctx, input["text"])
    return str(result.output)


@support.step
async def review(ctx: StepContext, answer: str) -> dict:
    return await ctx.approval({"answer": answer}, title="Send this answer to the customer?")
