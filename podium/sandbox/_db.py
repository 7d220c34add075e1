"""The sandbox company's database: one SQLite file seeded from the sample data shipped in the package.

Every business system (CRM, support desk, marketing, ERP, mailbox) keeps its tables here, and every
write a system receives is also logged in ``received``: that log is what ``podium demo`` and the
dashboard's Sandbox page show. Business events the systems publish wait in ``events`` (an outbox)
until the event bus has taken them (``sent_at``).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, name TEXT, email TEXT, plan TEXT, tier TEXT,
    since TEXT, country TEXT);
CREATE TABLE IF NOT EXISTS interactions (id INTEGER PRIMARY KEY, customer_id TEXT, at TEXT, channel TEXT, text TEXT);
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, customer_id TEXT, title TEXT, due TEXT, owner TEXT);
CREATE TABLE IF NOT EXISTS tickets (id INTEGER PRIMARY KEY, customer_id TEXT, message TEXT, status TEXT,
    intent TEXT, priority TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS replies (id INTEGER PRIMARY KEY, ticket_id INTEGER, text TEXT, author TEXT, at REAL);
CREATE TABLE IF NOT EXISTS campaigns (id TEXT PRIMARY KEY, name TEXT, channel TEXT, offer TEXT);
CREATE TABLE IF NOT EXISTS campaign_members (campaign_id TEXT, customer_id TEXT, note TEXT,
    PRIMARY KEY (campaign_id, customer_id));
CREATE TABLE IF NOT EXISTS products (sku TEXT PRIMARY KEY, name TEXT, vendor TEXT, unit_cost REAL,
    list_price REAL, min_margin_pct REAL, channels TEXT, stock INTEGER, facts TEXT);
CREATE TABLE IF NOT EXISTS purchase_orders (po_id TEXT PRIMARY KEY, sku TEXT, qty INTEGER, unit_cost REAL,
    status TEXT, flag TEXT);
CREATE TABLE IF NOT EXISTS mails (id INTEGER PRIMARY KEY, sender TEXT, recipients TEXT, subject TEXT,
    body TEXT, message_id TEXT, at REAL);
CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY, system TEXT, operation TEXT, body TEXT, at REAL);
CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer_id TEXT, sku TEXT, qty INTEGER, amount REAL,
    at REAL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, event_id TEXT UNIQUE, system TEXT, topic TEXT,
    payload TEXT, at REAL, sent_at REAL);
"""

_SEEDED = ("customers", "interactions", "products", "purchase_orders", "campaigns")


def sample() -> dict[str, Any]:
    """The sample company shipped in the package (``podium/sandbox/data/company.json``)."""
    text = resources.files("podium.sandbox").joinpath("data/company.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the company database (one per request: SQLite handles the locking)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def reset(path: Path) -> None:
    """Remove the company database (and its WAL files): the next :func:`seed` starts afresh."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def seed(path: Path) -> bool:
    """Create the tables and load the sample data, unless the database already holds it; returns
    whether it seeded (a kept sandbox keeps its tickets and mails across processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as conn:
        conn.executescript(SCHEMA)
        if conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]:
            return False
        data = sample()
        conn.execute("BEGIN")
        for table in _SEEDED:
            for row in data[table]:
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))
        conn.execute("COMMIT")
    return True


def log(conn: sqlite3.Connection, system: str, operation: str, body: Any) -> None:
    """Record what ``system`` received (shown by ``podium demo`` and :meth:`Sandbox.received`)."""
    conn.execute(
        "INSERT INTO received (system, operation, body, at) VALUES (?, ?, ?, ?)",
        (system, operation, json.dumps(body, ensure_ascii=False, default=str), time.time()),
    )


def publish(conn: sqlite3.Connection, system: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    """Put business event ``topic`` in the outbox; the sandbox's event relay sends it on the bus.
    The payload carries ``idempotency_key`` (the event's id: a trigger starts one run per event,
    however often the bus delivers it) and ``source`` (``northwind.SYSTEM``)."""
    event_id = uuid.uuid4().hex
    payload = {**data, "idempotency_key": event_id, "source": f"northwind.{system}"}
    conn.execute(
        "INSERT INTO events (event_id, system, topic, payload, at) VALUES (?, ?, ?, ?, ?)",
        (event_id, system, topic, json.dumps(payload, ensure_ascii=False, default=str), time.time()),
    )
    return payload


def rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sql, params).fetchall()]
