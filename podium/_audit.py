"""The audit log's entries and its hash chain.

Every entry holds the hash of the entry before it, so editing, deleting or reordering any entry
breaks the chain from that point on; :func:`verify` names the first entry that does not fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(kw_only=True, slots=True)
class AuditEntry:
    """One audit record: who did what to what, when and why."""

    seq: int = 0
    """Position in the log, from 1 (assigned by the store)."""
    ts: float
    actor: str
    """The user, token or service account (``local`` in local mode, ``engine`` for the engine itself)."""
    action: str
    """What happened: ``run.start``, ``run.cancel``, ``approval.decide``, ``killswitch.set``..."""
    target: str = ""
    """What it happened to: a run id, a workflow name, a user..."""
    data: str = "{}"
    """Details as JSON text: the reason, a decision, a prompt hash, tokens and cost..."""
    prev_hash: str = GENESIS
    hash: str = ""

    def details(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.data) if self.data else {}
        return result


def chain_hash(prev_hash: str, e: AuditEntry) -> str:
    """The hash of entry ``e`` chained to ``prev_hash``: SHA-256 over its fields, unit-separated."""
    body = f"{prev_hash}\x1f{e.seq}\x1f{e.ts!r}\x1f{e.actor}\x1f{e.action}\x1f{e.target}\x1f{e.data}"
    return hashlib.sha256(body.encode()).hexdigest()


def verify(entries: Iterable[AuditEntry]) -> tuple[int, str | None]:
    """Check a whole log, oldest first. Returns (entries checked, problem); the problem names the
    first entry that was edited, removed or moved, or is None when the chain holds."""
    prev, expected_seq, n = GENESIS, 1, 0
    for e in entries:
        n += 1
        if e.seq != expected_seq:
            return (
                n,
                f"entry {expected_seq} is missing (found entry {e.seq} in its place): entries were deleted or reordered",
            )
        if e.prev_hash != prev:
            return (
                n,
                f"entry {e.seq} ({e.action} by {e.actor}) does not follow entry {e.seq - 1}: the log was reordered or an entry replaced",
            )
        if chain_hash(prev, e) != e.hash:
            return (
                n,
                f"entry {e.seq} ({e.action} by {e.actor}) was edited after it was written: its hash does not match its content",
            )
        prev, expected_seq = e.hash, expected_seq + 1
    return n, None


def event_bytes(
    seq: int,
    type: str,
    ts: float,
    step: str | None,
    iteration: int,
    index: int | None,
    attempt: int,
    data: str | None,
) -> bytes:
    """The bytes of one event that the run digest covers (unit-separated, cheap to build)."""
    return (
        f"{seq}\x1f{type}\x1f{ts!r}\x1f{step}\x1f{iteration}\x1f{index}\x1f{attempt}\x1f{data}\x1e".encode()
    )


def run_digest(events: Iterable[Any]) -> str:
    """A digest of a run's event log, anchored in the audit log when the run ends, so that a later
    edit of the run's history is detected too. The executor computes the same digest as it writes."""
    h = hashlib.sha256()
    for e in events:
        h.update(event_bytes(e.seq, e.type, e.ts, e.step, e.iteration, e.index, e.attempt, e.data))
    return h.hexdigest()
