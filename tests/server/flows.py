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


nightly = podium.Workflow("nightly")
nightly.triggers = [{"schedule": "0 2 * * *", "timezone": "Europe/Paris"}]  # type: ignore[attr-defined]


@nightly.step
def report(input: dict) -> float:
    return float(input["scheduled_at"])


files = podium.Workflow("files")


@files.step
def size(input: dict) -> int:
    return int(input["size"])


announcer = podium.Workflow("announcer")


@announcer.step
async def announce(input: dict, ctx: podium.StepContext) -> None:
    await ctx.emit("ticket.created", {"id": 7, "subject": "emitted", "idempotency_key": "emit-7"})


TRIGGERS = [*ALL, nightly, files, announcer]
