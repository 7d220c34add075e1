"""The finance mailbox: a real SMTP server (aiosmtpd) whose received mail lands in the company
database, where people read it (``podium demo`` prints it; the ``mailbox`` HTTP app lists it)."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from typing import Any

from ._db import Database, connect, log, publish


class MailboxHandler:
    """aiosmtpd handler: store every message, as received, in the ``mails`` table."""

    def __init__(self, db: Database, notify: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.notify = notify

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        row = {
            "sender": envelope.mail_from,
            "recipients": ", ".join(envelope.rcpt_tos),
            "subject": str(msg.get("Subject", "")).strip(),  # a folded long subject keeps its line break's space
            "body": body,
            "message_id": str(msg.get("Message-ID", "")),
        }
        with connect(self.db) as conn:
            conn.execute(
                "INSERT INTO mails (sender, recipients, subject, body, message_id, at) VALUES (?, ?, ?, ?, ?, ?)",
                (*row.values(), time.time()),
            )
            log(conn, "finance_mailbox", "mail", {k: row[k] for k in ("recipients", "subject", "message_id")})
            publish(conn, "finance_mailbox", "mail.received", {k: row[k] for k in ("sender", "recipients", "subject", "message_id")})
        self.notify()
        return "250 Message accepted for delivery"


async def start_smtp(db: Database, sock: Any, notify: Callable[[], None] = lambda: None) -> Any:
    """Serve SMTP on the bound socket ``sock`` in the running loop; returns the asyncio server."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    handler = MailboxHandler(db, notify)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(handler, hostname="mailbox.northwind.example"), sock=sock)
