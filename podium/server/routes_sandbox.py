"""What each system of the sandbox company received, for the dashboard's Sandbox page: ``GET /api/sandbox``.

Read from the sandbox's database in the folder ``podium demo`` and ``podium run`` use
(:func:`podium.sandbox.default_directory`: beside the server's store, or ``$PODIUM_SANDBOX_DIR``), or
from the database named by ``$PODIUM_SANDBOX_DB``; the sandbox need not be running."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ..governance.identity import Principal
from .auth import acting
from .openapi import documented

router = APIRouter(prefix="/api")


class ReceivedRecord(BaseModel):
    operation: str = Field(description="The operation called (`createTicket`...), `mail`, or the event's topic.")
    body: Any = Field(description="What the system was sent.")
    at: float


class SandboxSystem(BaseModel):
    name: str = Field(description="`crm`, `support_desk`, `marketing`, `erp`, `finance_mailbox` or `event_bus`.")
    title: str
    count: int = Field(description="Everything it received (``received`` holds the newest ``limit``).")
    received: list[ReceivedRecord]


class SandboxMail(BaseModel):
    sender: str
    recipients: str
    subject: str
    body: str
    at: float


class SandboxEvent(BaseModel):
    topic: str = Field(description="`ticket.opened`, `order.created`, `price.changed`...")
    system: str
    payload: Any
    at: float
    sent_at: float | None = Field(description="When the event bus took it (null: waiting in the outbox).")


class SandboxReport(BaseModel):
    directory: str = Field(description="The sandbox's folder (its SQLite database is `company.db` there).")
    database: str = Field(description="The database read (its URL, without a password).")
    exists: bool = Field(description="False when no sandbox has run in that folder (every list is empty).")
    systems: list[SandboxSystem]
    mails: list[SandboxMail] = Field(description="The finance mailbox, newest first.")
    events: list[SandboxEvent] = Field(description="Business events the company published, newest first.")


@router.get(
    "/sandbox",
    tags=["sandbox"],
    **documented("getSandbox", SandboxReport, 400, 422),
    summary="What each system of the sandbox company received (podium demo)",
)
async def sandbox(
    request: Request,
    limit: int = Query(default=100, ge=1, le=1000, description="Records shown per system (newest first)."),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    from ..sandbox import default_directory, report
    from ..secret import mask

    # What the systems were sent is business data written by workflows: the same permission as run
    # payloads, and shown as the run views show them (secret fields and credentials masked).
    await request.app.state.client.authorize("payloads.read", "sandbox")
    settings = request.app.state.settings
    folder = settings.sandbox_dir or default_directory(settings.store)
    shown: dict[str, Any] = mask(await asyncio.to_thread(report, folder, limit=limit, database=settings.sandbox_db))
    return shown
