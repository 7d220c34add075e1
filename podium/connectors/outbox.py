"""The transactional outbox: a business write and the messages it implies, committed together.

A message to another system (a webhook post, a broker publish, an e-mail) cannot take part in a
database transaction. Written to the ``podium_outbox`` table of the *same* database, in the *same*
transaction as the business rows, it is kept exactly when they are. A relay
(:class:`~podium.connectors.relay.OutboxRelay`) then delivers each row through a connector operation
(``target`` connector name + ``operation``), with the row's idempotency ``key``, and marks it sent.
A relay that dies after delivering but before marking sends it again later, with the same key:
delivery is at-least-once, and a target that deduplicates by key applies it once.

Inside a run, a message records the workflow and run that wrote it, and who approved it when a
policy asked a person (``workflow``, ``run_id``, ``approved_by``), sealed with the store's audit key
(``seal``: :func:`seal_text`): the relay takes those columns only from a seal that matches, since
anyone who can write this database can write them too.

Two ways in:

* the sql connector's ``transact`` operation (writes + ``messages``, one transaction, applied once
  per idempotency key: a repeat returns the first result);
* :meth:`Outbox.add` inside your own SQLAlchemy transaction::

      with engine.begin() as conn:
          conn.execute(orders.insert().values(...))
          Outbox().add(conn, target="slack", operation="post", arguments={"text": "order 7 placed"}, key="order-7")
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import ConfigError, ConnectorError
from ..records import WRITER

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
#: Tables the sql connector's ordinary operations never touch (a workflow could forge messages).
RESERVED_PREFIX = "podium_outbox"
STATUSES = ("pending", "sent", "failed")
WRITER_COLUMNS = ("workflow", "run_id", "approved_by")
"""Who wrote a message (added to tables made before they existed, on first use)."""
SEAL_COLUMN = "seal"
"""The audit key's MAC over a message's writer columns and content (:func:`seal_text`)."""


def arguments_text(arguments: Any) -> str:
    """A message's arguments as stored (canonical JSON: its seal covers their SHA-256)."""
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False)


def seal_text(
    key: str, target: str, operation: str, arguments: str, workflow: str | None, run_id: str | None,
    approved_by: str | None,
) -> str:  # fmt: skip
    """What a message's seal signs: its key (unique in its table, so a seal cannot be moved to
    another message), target, operation, the SHA-256 of its arguments as stored (``arguments``:
    :func:`arguments_text`), and its writer columns. Not its status nor its attempts, which the
    relay changes."""
    digest = hashlib.sha256(arguments.encode()).hexdigest()
    return json.dumps(["podium.outbox", key, target, operation, digest, workflow, run_id, approved_by])


def row_key(key: str) -> str:
    """A key as stored (at most 255 characters: longer ones become their SHA-256)."""
    return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxMessage:
    """One row of the outbox."""

    id: int
    key: str
    """The idempotency key it is delivered with (unique)."""
    target: str
    """The connector's name (as the relay holds it)."""
    operation: str
    arguments: dict[str, Any]
    status: str
    """``pending``, ``sent`` or ``failed`` (parked after a non-retryable error; ``podium outbox retry``)."""
    attempts: int
    created_at: float
    next_at: float
    sent_at: float | None
    last_error: str | None
    workflow: str | None = None
    """The workflow whose run recorded it (None: recorded outside any run, or by an earlier
    release): the relay checks the message against that workflow's policy when it delivers."""
    run_id: str | None = None
    """The run that recorded it."""
    approved_by: str | None = None
    """Who approved the call that recorded it, when a policy's ``approve_connectors`` named this
    message's operation then (None: nobody was asked)."""
    seal: str | None = None
    """The audit key's MAC (``KEYID:HEX``) over :meth:`sealed_text`, made by the engine that
    recorded it in a run (None: recorded outside any run, by an earlier release, or by an engine
    that does not audit)."""
    unreadable: str | None = None
    """Why its ``arguments`` column cannot be read (not a JSON object; ``arguments`` is then empty):
    the relay sets it aside as failed instead of failing its whole batch. None for a readable row."""

    def sealed_text(self) -> str:
        """What its seal must sign (:func:`seal_text`)."""
        return seal_text(
            self.key, self.target, self.operation, arguments_text(self.arguments), self.workflow, self.run_id,
            self.approved_by,
        )  # fmt: skip

    def to_json(self, *, arguments: bool = False) -> dict[str, Any]:
        """As JSON data; the arguments (which may hold personal data) only when asked."""
        out: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "target": self.target,
            "operation": self.operation,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_at": self.next_at,
            "sent_at": self.sent_at,
            "last_error": self.last_error,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "approved_by": self.approved_by,
            "sealed": self.seal is not None,
        }
        if arguments:
            out["arguments"] = self.arguments
        return out


class Outbox:
    """The outbox tables of one database (``podium_outbox`` and ``podium_outbox_applied``, or
    ``prefix`` + ``""``/``"_applied"``)."""

    def __init__(self, prefix: str = RESERVED_PREFIX) -> None:
        if not _TABLE.match(prefix) or not prefix.startswith(RESERVED_PREFIX):
            raise ConfigError(f"outbox table prefix {prefix!r}: use letters, digits and '_', starting with {RESERVED_PREFIX!r}")
        self.meta = sa.MetaData()
        self.messages = sa.Table(
            prefix,
            self.meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("key", sa.String(255), nullable=False, unique=True),
            sa.Column("target", sa.String(64), nullable=False),
            sa.Column("operation", sa.String(64), nullable=False),
            sa.Column("arguments", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False, default="pending"),
            sa.Column("attempts", sa.Integer, nullable=False, default=0),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("next_at", sa.Double, nullable=False),
            sa.Column("sent_at", sa.Double, nullable=True),
            sa.Column("lease_until", sa.Double, nullable=True),
            sa.Column("lease_owner", sa.String(64), nullable=True),
            sa.Column("last_error", sa.Text, nullable=True),
            sa.Column("result", sa.Text, nullable=True),
            *(sa.Column(name, sa.String(255), nullable=True) for name in WRITER_COLUMNS),
            sa.Column(SEAL_COLUMN, sa.String(64), nullable=True),
            sa.Index(f"{prefix}_due", "status", "next_at"),
        )
        self.applied = sa.Table(
            f"{prefix}_applied",
            self.meta,
            sa.Column("key", sa.String(255), primary_key=True),
            sa.Column("result", sa.Text, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
        )

    def create(self, conn: sa.Connection) -> None:
        """Create the tables if they are missing (inside the caller's transaction), and add the
        columns an earlier release's table lacks (who wrote each message: :data:`WRITER_COLUMNS`,
        and its :data:`SEAL_COLUMN`)."""
        self.meta.create_all(conn, checkfirst=True)
        table = self.messages
        have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        quote = conn.dialect.identifier_preparer.quote
        for name in (*WRITER_COLUMNS, SEAL_COLUMN):
            if name not in have:  # nullable: the rows already there are sealed by no run
                kind = table.c[name].type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(name)} {kind}"))

    def add(
        self,
        conn: sa.Connection,
        *,
        target: str,
        operation: str,
        arguments: dict[str, Any] | None = None,
        key: str | None = None,
        delay: float = 0.0,
    ) -> str:
        """Record one message in ``conn``'s transaction (it is kept if and only if that transaction
        commits); returns its key. ``key`` defaults to a new UUID: pass a stable one (derived from
        the business row) so that a retried transaction does not record it twice. Inside a run, the
        message records that run (:data:`~podium.records.WRITER`), whose workflow's policy the relay
        applies when it delivers, sealed with the store's audit key (:func:`seal_text`); outside any
        run it records none, and the relay checks it under the default policy ``*``."""
        if not isinstance(target, str) or not _NAME.match(target):
            raise ConnectorError(f"outbox: target {target!r} must be a connector name (letters, digits, '_', '-')")
        if not isinstance(operation, str) or not _NAME.match(operation):
            raise ConnectorError(f"outbox: operation {operation!r} of {target!r} is not an operation name")
        if arguments is not None and not isinstance(arguments, dict):
            raise ConnectorError(f"outbox: the arguments of {target}.{operation} must be an object")
        try:
            text = arguments_text(arguments or {})
        except (TypeError, ValueError) as exc:
            raise ConnectorError(f"outbox: the arguments of {target}.{operation} are not JSON ({exc})") from None
        now = time.time()
        stored = row_key(key or f"outbox:{uuid.uuid4()}")
        writer = WRITER.get()
        workflow = run_id = approved_by = seal = None
        if writer is not None:
            workflow, run_id = writer.recorded_workflow, writer.run_id  # undeployed:NAME: a look-alike
            approved_by = writer.approved_by if f"{target}.{operation}" in writer.approved else None
            if writer.seal is not None:
                seal = writer.seal(seal_text(stored, target, operation, text, workflow, run_id, approved_by))
        conn.execute(
            sa.insert(self.messages).values(
                key=stored,
                target=target,
                operation=operation,
                arguments=text,
                status="pending",
                attempts=0,
                created_at=now,
                next_at=now + max(0.0, delay),
                workflow=workflow,
                run_id=run_id,
                approved_by=approved_by,
                seal=seal,
            )
        )
        return stored

    def applied_result(self, conn: sa.Connection, key: str) -> Any:
        """The result recorded for a ``transact`` call with ``key``, or :data:`NOT_APPLIED`."""
        found = conn.execute(sa.select(self.applied.c.result).where(self.applied.c.key == row_key(key))).scalar()
        return NOT_APPLIED if found is None else json.loads(found)

    def mark_applied(self, conn: sa.Connection, key: str, result: Any) -> None:
        conn.execute(
            sa.insert(self.applied).values(key=row_key(key), result=json.dumps(result, default=str), created_at=time.time())
        )

    def list(
        self, conn: sa.Connection, *, status: str | None = None, target: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        """Messages, oldest first."""
        t = self.messages
        stmt = sa.select(t).order_by(t.c.id).limit(limit)
        if status is not None:
            stmt = stmt.where(t.c.status == status)
        if target is not None:
            stmt = stmt.where(t.c.target == target)
        return [message(m) for m in conn.execute(stmt).mappings()]

    def counts(self, conn: sa.Connection) -> dict[str, int]:
        """Messages per status."""
        t = self.messages
        rows = conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status)).all()
        return {s: 0 for s in STATUSES} | {str(s): int(n) for s, n in rows}

    def retry(self, conn: sa.Connection, key: str) -> bool:
        """Put a failed (or pending) message back in line for delivery now; False if there is none."""
        t = self.messages
        done = conn.execute(
            sa.update(t)
            .where(t.c.key == row_key(key), t.c.status != "sent")
            .values(status="pending", next_at=time.time(), lease_until=None, last_error=None)
        )
        return bool(done.rowcount)


class _NotApplied:
    def __repr__(self) -> str:
        return "NOT_APPLIED"


NOT_APPLIED: Any = _NotApplied()


def _arguments(row_id: Any, text: str | None) -> tuple[dict[str, Any], str | None]:
    """A row's ``arguments``, or why they cannot be read: the outbox is in the business database,
    which other programs write too, and one bad row must not fail every batch it is claimed in."""
    try:
        value = json.loads(text or "{}")
    except (ValueError, RecursionError) as exc:
        why = "JSON nested deeper than the reader allows" if isinstance(exc, RecursionError) else f"not JSON ({exc})"
        return {}, (
            f"the outbox row {row_id} cannot be read: its arguments column holds {why}; it was written outside "
            "Podium (transact writes a JSON object). Not delivered: find out who wrote it, and record the message "
            "again (run the workflow again) if it is wanted"
        )
    if not isinstance(value, dict):
        return {}, f"the outbox row {row_id} cannot be read: its arguments column holds JSON {type(value).__name__}, not an object"
    return value, None


def message(m: Any) -> OutboxMessage:
    """An :class:`OutboxMessage` from a row mapping."""
    arguments, unreadable = _arguments(m["id"], m["arguments"])
    return OutboxMessage(
        id=int(m["id"]),
        key=m["key"],
        target=m["target"],
        operation=m["operation"],
        arguments=arguments,
        unreadable=unreadable,
        status=m["status"],
        attempts=int(m["attempts"] or 0),
        created_at=float(m["created_at"]),
        next_at=float(m["next_at"]),
        sent_at=float(m["sent_at"]) if m["sent_at"] is not None else None,
        last_error=m["last_error"],
        workflow=m.get("workflow"),
        run_id=m.get("run_id"),
        approved_by=m.get("approved_by"),
        seal=m.get("seal"),
    )
