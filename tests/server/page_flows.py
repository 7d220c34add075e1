"""Workflows and skills the dashboard page tests seed their data with: model calls with a cost
(a scripted model, no network) and business figures (``ctx.metric``)."""

from __future__ import annotations

from typing import Any

import podium
from podium.ai import llm
from podium.goals import Skills
from podium.models import Response, Usage
from podium.models.testing import ScriptedModel


def _priced(request: Any) -> Response:
    words = len(request.prompt.split())
    return Response(
        text="Offer a 10% discount and a call with the account manager.",
        usage=Usage(input_tokens=120 + 10 * words, output_tokens=40, cost=0.0021 + 0.0001 * words),
    )


MODEL = ScriptedModel([(None, _priced)], name="retention-writer")

support = podium.Workflow("support")


@support.step
async def answer(input: dict, ctx: podium.StepContext) -> str:
    reply = await llm(ctx, f"Write a retention offer for {input['customer']}", model=MODEL)
    await ctx.metric("retention_rate", float(input["rate"]), segment=str(input.get("segment", "smb")))
    await ctx.metric("offers_sent", 1, kind="counter")
    return reply.text


triage = podium.Workflow("triage")


@triage.step
async def label(input: dict, ctx: podium.StepContext) -> str:
    reply = await llm(ctx, f"Label the ticket: {input['subject']} " * int(input.get("size", 1)), model=MODEL)
    await ctx.metric("tickets_triaged", 1, kind="counter")
    return reply.text


skills = Skills(name="support-skills")


@skills.specialist(
    "draft_offer",
    "Write a retention offer for a customer",
    input={"type": "object", "properties": {"customer": {"type": "string"}}, "required": ["customer"]},
    output={"type": "object", "properties": {"offer": {"type": "string"}}},
    cost=0.002,
    latency=1.5,
)
def draft_offer(customer: str) -> dict:
    return {"offer": f"10% off for {customer}"}


@skills.specialist(
    "refund_order",
    "Refund an order (finance only)",
    input={"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    output={"type": "object", "properties": {"refunded": {"type": "boolean"}}},
    cost=0.0,
    roles=("finance",),
    tags=("write",),
)
def refund_order(order: str) -> dict:
    return {"refunded": True}
