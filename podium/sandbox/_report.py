"""What each system of a sandbox company received, read from its database without starting it: what
the dashboard's Sandbox page shows (``GET /api/sandbox``) after ``podium demo`` or ``podium run``.
The database is the one the sandbox used: a URL (``$PODIUM_SANDBOX_DB``), else ``company.db`` in its folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._db import Database, connect, rows
from ._events import BUS_SYSTEM

#: The systems in the order people look for them, with the name shown.
TITLES: dict[str, str] = {
    "crm": "CRM",
    "support_desk": "Support desk",
    "marketing": "Marketing",
    "erp": "ERP (catalogue and purchase orders)",
    "finance_mailbox": "Finance mailbox",
    BUS_SYSTEM: "Event bus (events received from others)",
}


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def report(directory: str | os.PathLike[str], *, limit: int = 100, database: str | None = None) -> dict[str, Any]:
    """Per system what it received (newest first, at most ``limit`` each, with the total), the
    finance mailbox's mail and the business events the company published. ``exists`` is False
    (and every list empty) when no sandbox has run with this folder or ``database`` (default
    ``$PODIUM_SANDBOX_DB``, else ``company.db`` in ``directory``)."""
    from ._company import open_database

    folder = Path(directory)
    db = open_database(folder, database)
    try:
        return _report(db, folder, limit)
    finally:
        db.dispose()


def _report(db: Database, folder: Path, limit: int) -> dict[str, Any]:
    empty: dict[str, Any] = {
        "directory": str(folder.resolve()), "database": db.shown, "exists": False, "systems": [], "mails": [], "events": [],
    }
    if not db.has_tables():
        return empty
    db.create()  # a database from an older sandbox lacks the newer tables
    with connect(db) as conn:
        counts = {r["system"]: r["n"] for r in rows(conn, "SELECT system, COUNT(*) AS n FROM received GROUP BY system")}
        systems = []
        for name in [*TITLES, *sorted(set(counts) - set(TITLES))]:
            found = rows(
                conn, "SELECT operation, body, at FROM received WHERE system = ? ORDER BY id DESC LIMIT ?", (name, limit)
            )
            systems.append({
                "name": name,
                "title": TITLES.get(name, name),
                "count": counts.get(name, 0),
                "received": [{**r, "body": _decoded(r["body"])} for r in found],
            })
        mails = rows(conn, "SELECT sender, recipients, subject, body, at FROM mails ORDER BY id DESC LIMIT ?", (limit,))
        events = rows(
            conn, "SELECT topic, system, payload, at, sent_at FROM events ORDER BY id DESC LIMIT ?", (limit,)
        )
    return {
        **empty,
        "exists": True,
        "systems": systems,
        "mails": mails,
        "events": [{**e, "payload": _decoded(e["payload"])} for e in events],
    }
