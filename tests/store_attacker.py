"""What the attack tests share: an attacker who writes the store's database (SQLite or
PostgreSQL) without the audit key, an admin's token, a one-step workflow to switch off."""

from __future__ import annotations

import sqlite3
from typing import Any

from podium import Client, Workflow


def sql(url: str, statement: str, *args: object) -> None:
    """One statement of a writer of the store's database (``?`` placeholders), committed."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        db.execute(statement, args)
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.replace("?", "%s"), args)


def script(url: str, *statements: str) -> None:
    """Statements without parameters (several to a string on SQLite), straight to the database."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        for s in statements:
            db.executescript(s)
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


async def root_token(url: str) -> str:
    """The first user, ``root`` (admin), of the store at ``url``; a token of theirs."""
    async with Client(url) as c:
        await c.governance.create_user("root", ["admin"])
        return str(await c.governance.create_token("root"))


def pay_workflow() -> Workflow:
    """``pay``: one step that returns its input."""
    wf = Workflow("pay")

    @wf.step
    def pay(input: Any) -> Any:
        return input

    return wf
