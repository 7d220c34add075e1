"""Checking the audit log's hash chain, and the digest of a run's history anchored in it.

The entry record and the chaining rule are core types (:mod:`podium.records`), since every store
writes them.

Every entry holds the hash of the entry before it, so editing, deleting or reordering any entry
breaks the chain from that point on; :func:`verify` names the first entry that does not fit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from ..records import GENESIS, AuditEntry, chain_hash


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


__all__ = ["GENESIS", "AuditEntry", "chain_hash", "event_bytes", "run_digest", "verify"]
