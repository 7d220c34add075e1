"""Workflows the server tests run."""

from __future__ import annotations

from pydantic import BaseModel

import podium

hello = podium.Workflow("hello")


@hello.step
def greet(input: dict) -> str:
    return f"hello {input.get('name', 'world')}"


@hello.step
def shout(greet: str) -> str:
    return greet.upper()


class Ticket(BaseModel):
    id: int
    subject: str


tickets = podium.Workflow("tickets", input=Ticket)
tickets.triggers = [{"event": "ticket.created"}]  # type: ignore[attr-defined]


@tickets.step
def triage(input: Ticket) -> str:
    return "urgent" if "down" in input.subject else "normal"


review = podium.Workflow("review")


@review.step
async def draft(input: dict) -> str:
    return f"draft for {input.get('topic', '?')}"


@review.step
async def approve(draft: str, ctx: podium.StepContext) -> dict:
    decision = await ctx.approval({"text": draft}, title="publish the draft?")
    return decision


@review.step
def publish(approve: dict) -> str:
    return ("published: " if approve["approved"] else "dropped: ") + str(approve["payload"]["text"])


churn = podium.Workflow("retention")


@churn.step
def offer(input: dict) -> str:
    return f"offer for {input.get('customer')}"


ALL = [hello, tickets, review, churn]
