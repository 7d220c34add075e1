"""Checking the audit log's chain, the head log kept outside the store, and each run's history and
record against the anchors the log holds for it.

The entry record and the chaining rule are core types (:mod:`podium.records`), since every store
writes them; the key that signs entries and the head log live in :mod:`podium._auditkey`.

Every writer (an open store) chains its own entries: each holds the hash of the entry before it in
its chain, signed with the audit key (HMAC-SHA256) over its chain, its place in it and its place in
the whole log, so editing, deleting, inserting or reordering entries breaks a chain, and rebuilding
one needs the key. The shared anchor chain records every writer chain's head now and then
(:mod:`podium.storage._audit`), so cutting a chain's tail or deleting a whole chain is caught too;
the head log outside the store covers what was written since the last anchor. Entries written
before chains existed form the legacy chain, linear by ``seq``. :func:`check_chain` names the first
entry that does not fit.

A run's history is anchored at its start (``run.start``/``run.fork``: the hash of its input), when
it parks or is handed off (``run.checkpoint``: the digest of its events so far), when it ends
(``run.end``: the digest of all its events and the hash of its record: input, output, status,
error), and when its history is changed on purpose (``run.redact`` by ``podium memory forget``,
``run.prune`` by retention). :func:`check_run` checks a run against them.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._auditkey import KEY_ENV, PREFIX, entry_holds
from ..records import ANCHOR_ACTION, ANCHOR_CHAIN, GENESIS, AuditEntry, RunRecord, chain_body, chain_hash

# One encoder made once (json.dumps(value, default=str) makes one per call, ~0.7 us); None on a
# Python without the json module's C part.
_C_MAKE = getattr(json.encoder, "c_make_encoder", None)
_ENCODER = _C_MAKE(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True) if _C_MAKE else None


def entry_json(value: Any) -> str:
    """``json.dumps(value, default=str)``, the same text, for the data of the engine's audit entries
    and record hashes (made by the engine: no check for a value that contains itself, which
    raises RecursionError instead of ValueError)."""
    if _ENCODER is None:  # pragma: no cover
        return json.dumps(value, default=str)
    return "".join(_ENCODER(value, 0))


#: Audit actions that anchor a run's history or record.
RUN_ANCHORS = frozenset({"run.start", "run.fork", "run.checkpoint", "run.end", "run.redact", "run.prune"})

#: The message (its start) of a run refused on resume because its stored history was changed.
HISTORY_MISMATCH = "history does not match its audit digest"


@dataclass(slots=True)
class ChainCheck:
    entries: int = 0
    problem: str | None = None
    keyed_from: int | None = None
    """The first entry signed with a key (entries before it are legacy, plain SHA-256)."""
    last: tuple[int, str] | None = None
    """(seq, hash) of the last entry of the whole log."""
    heads: list[tuple[int, str]] = field(default_factory=list)
    """(seq, hash) of the entries that pin the whole log down: the anchor chain's last entry, the
    last entry of every chain written since its last anchor, the legacy chain's last entry while
    no anchor seals it. A checkpoint records these."""
    broken_head: tuple[int, str] | None = None
    """The (seq, hash) of the head log or checkpoint that the store no longer holds, when that is
    the problem (the caller knows which file it came from)."""


def entry_signed(e: AuditEntry, keys: Mapping[str, bytes]) -> bool | None:
    """Whether ``e``'s keyed hash matches its content and its own prev_hash; None for a legacy entry
    or one signed by a key not in ``keys``."""
    if not e.hash.startswith(PREFIX):
        return None
    kid, _, tag = e.hash[len(PREFIX) :].partition(":")
    return entry_holds(keys, kid, e.seq, chain_body(e.prev_hash, e), tag)


def _name(e: AuditEntry) -> str:
    return f"entry {e.seq} ({e.action} by {e.actor})"


def _signature_problem(e: AuditEntry, keys: Mapping[str, bytes]) -> str | None:
    kid = e.hash[len(PREFIX) :].partition(":")[0]
    if kid not in keys:
        return (
            f"entry {e.seq} is signed with audit key {kid}, which is not available here: point "
            f"{KEY_ENV} at that key file (a rotated key is kept as audit.key.{kid}) to verify it"
        )
    if not entry_signed(e, keys):
        return f"{_name(e)} was edited after it was written: its keyed hash does not match its content"
    return None


def _check_legacy(entries: list[AuditEntry], keys: Mapping[str, bytes], out: ChainCheck) -> str:
    """The chain of entries written before per-writer chains: linear by ``seq`` from 1. Returns its
    last hash (what the first anchor links to); sets ``out.problem`` if it is broken."""
    prev, expected_seq = GENESIS, 1
    for e in entries:
        if e.seq != expected_seq:
            out.problem = f"entry {expected_seq} is missing (found entry {e.seq} in its place): entries were deleted or reordered"
            return prev
        if e.prev_hash != prev:
            out.problem = f"{_name(e)} does not follow entry {e.seq - 1}: the log was reordered or an entry replaced"
            return prev
        if e.hash.startswith(PREFIX):
            out.problem = _signature_problem(e, keys)
            if out.problem:
                return prev
            if out.keyed_from is None:
                out.keyed_from = e.seq
        elif out.keyed_from is not None:
            out.problem = (
                f"{_name(e)} is not signed with the audit key, although entry {out.keyed_from} and later "
                "ones are: it was written or rewritten without the key"
            )
            return prev
        elif chain_hash(prev, e) != e.hash:
            out.problem = f"{_name(e)} was edited after it was written: its hash does not match its content"
            return prev
        prev, expected_seq = e.hash, expected_seq + 1
    return prev


def _check_one_chain(name: str, entries: list[AuditEntry], first_prev: str, keys: Mapping[str, bytes]) -> str | None:
    """One writer's chain (or the anchor chain), in ``cseq`` order: whole, linked, signed."""
    prev, last_seq = first_prev, 0
    for n, e in enumerate(entries, 1):
        if e.cseq != n:
            return (
                f"entry {n} of audit chain {name} is missing (found its entry {e.cseq}, log entry {e.seq}, in "
                "its place): entries were deleted"
            )
        if e.prev_hash != prev:
            what = "the last legacy entry" if n == 1 and name == ANCHOR_CHAIN else f"entry {n - 1} of its chain"
            return f"{_name(e)} does not follow {what}: the log was reordered or an entry replaced"
        if e.seq <= last_seq:
            return f"{_name(e)} comes before entry {last_seq} in the log but after it in audit chain {name}: reordered"
        prev, last_seq = e.hash, e.seq
    for e in entries:  # the links hold: now is each entry what was signed?
        if not e.hash.startswith(PREFIX):
            return f"{_name(e)} of audit chain {name} is not signed with the audit key: it was written or rewritten without the key"
        problem = _signature_problem(e, keys)
        if problem:
            return problem
    return None


def check_chain(
    entries: Iterable[AuditEntry], keys: Mapping[str, bytes], heads: Sequence[tuple[int, str]] = ()
) -> ChainCheck:
    """Check a whole log, oldest first, against ``keys`` (key id -> key) and the head log ``heads``
    ((seq, hash) of entries known to have been written).

    Each chain must be whole, linked and signed; the anchor chain must start where the legacy chain
    ends; every anchor must find the entry it records in the chain it names; every chain must be
    registered by an anchor; every entry of the head log must still be there."""
    out = ChainCheck()
    legacy: list[AuditEntry] = []
    chains: dict[str, list[AuditEntry]] = {}
    seen: dict[int, str] = {}
    first_chained: AuditEntry | None = None
    for e in entries:
        out.entries += 1
        seen[e.seq] = e.hash
        out.last = (e.seq, e.hash)
        if e.chain is None:
            if first_chained is not None:
                out.problem = (
                    f"{_name(e)} belongs to no audit chain but comes after entry {first_chained.seq}, written "
                    "in a chain: it was added behind the engine's back (or by a Podium older than the store)"
                )
                return out
            legacy.append(e)
        else:
            if first_chained is None:
                first_chained = e
            chains.setdefault(e.chain, []).append(e)
    legacy_head = _check_legacy(legacy, keys, out)
    if out.problem:
        return out
    for name, chain in chains.items():
        chain.sort(key=lambda e: e.cseq)
        out.problem = _check_one_chain(name, chain, legacy_head if name == ANCHOR_CHAIN else GENESIS, keys)
        if out.problem:
            return out
        if out.keyed_from is None or chain[0].seq < out.keyed_from:
            out.keyed_from = chain[0].seq
    out.problem = _check_anchors(chains, out)
    if out.problem:
        return out
    if legacy and ANCHOR_CHAIN not in chains:
        out.heads.insert(0, (legacy[-1].seq, legacy[-1].hash))
    for seq, h in sorted(set(heads)):
        if seq not in seen:
            out.broken_head = (seq, h)
            out.problem = (
                f"entry {seq} was deleted: the head log outside the store (or a checkpoint) records it, and "
                "it is no longer in the store"
            )
            return out
        if seen[seq] != h:
            out.broken_head = (seq, h)
            out.problem = (
                f"entry {seq} is not the entry the head log outside the store (or a checkpoint) recorded: the "
                f"log was rewritten from entry {seq} or earlier (entries deleted and others written in their place)"
            )
            return out
    return out


def _check_anchors(chains: Mapping[str, list[AuditEntry]], out: ChainCheck) -> str | None:
    anchored: dict[str, int] = {}
    for a in chains.get(ANCHOR_CHAIN, ()):
        if a.action != ANCHOR_ACTION:
            return f"{_name(a)} is in the anchor chain but is not an anchor"
        d = a.details()
        name, n, h = str(d.get("chain")), int(d.get("cseq") or 0), str(d.get("hash"))
        chain = chains.get(name, [])
        if n > len(chain):
            return (
                f"entries {len(chain) + 1} to {n} of audit chain {name} were deleted: anchor entry {a.seq} "
                f"records that chain up to its entry {n}"
            )
        if n and chain[n - 1].hash != h:
            return (
                f"entry {n} of audit chain {name} is not the one anchor entry {a.seq} recorded: the chain was "
                "rewritten"
            )
        anchored[name] = max(anchored.get(name, 0), n)
    for name, chain in chains.items():
        if name == ANCHOR_CHAIN:
            out.heads.append((chain[-1].seq, chain[-1].hash))
            continue
        if name not in anchored:
            return (
                f"audit chain {name} (entries {chain[0].seq} to {chain[-1].seq} of the log) is registered by no "
                "anchor: it was written behind the engine's back, or its anchors were deleted"
            )
        if anchored[name] < len(chain):
            out.heads.append((chain[-1].seq, chain[-1].hash))
    return None


def verify(entries: Iterable[AuditEntry], keys: Mapping[str, bytes] | None = None) -> tuple[int, str | None]:
    """Check a whole log, oldest first. Returns (entries checked, problem); the problem names the
    first entry that was edited, removed or moved, or is None when the chain holds."""
    check = check_chain(entries, keys or {})
    return check.entries, check.problem


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


def payload_hash(payload: str | None) -> str:
    """The hash of a run's stored input (anchored at its start)."""
    return hashlib.sha256(("\x00" if payload is None else payload).encode()).hexdigest()


def record_hash(run: RunRecord) -> str:
    """The hash of what a run's record says about it: input, output, status and error."""
    body = entry_json([run.input, run.output, str(run.status.value), run.error])
    return hashlib.sha256(body.encode()).hexdigest()


def unanchored(run_id: str, entries: Sequence[AuditEntry], keys: Mapping[str, bytes]) -> str | None:
    """Why a run about to resume has no anchor to be checked against, or None. Every run an engine
    creates is anchored when it starts (start, fork, child), so a run with no *signed* anchor was
    written into the runs table behind the engine's back: an unsigned row claiming to be its start
    proves nothing. Anchors signed with a key this machine does not hold cannot be checked either."""
    if any(e.action in RUN_ANCHORS and entry_signed(e, keys) for e in entries):
        return None
    kids = {e.hash[len(PREFIX) :].partition(":")[0] for e in entries if e.action in RUN_ANCHORS and e.hash.startswith(PREFIX)}
    unknown = sorted(kids - set(keys))
    if unknown:
        return (
            f"run {run_id}'s audit anchors are signed with audit key {unknown[0]}, which this engine does not "
            f"hold, so its history cannot be checked and it is not run: point {KEY_ENV} at that key file (a "
            f"rotated key is kept as audit.key.{unknown[0]}) on every engine of this store; no such key "
            "anywhere means the entries were forged"
        )
    return (
        f"run {run_id} has no entry in the audit log signed with the audit key (no run.start): it was not "
        "started by an engine with auditing on, so it is not run; start it again through the client or the API"
    )


def decision_problem(
    run_id: str,
    name: str,
    decision: str,
    entries: Sequence[AuditEntry],
    keys: Mapping[str, bytes],
    *,
    by: bool = True,
    request: int | None = None,
) -> str | None:
    """Why the stored decision (signal text) of approval ``name`` may not be taken, or None: every
    decision made through :meth:`Governance.decide` is audited (``approval.decide``, signed, with the
    digest of the decision as stored and the ``seq`` of the request it decides) before it is stored,
    so one that no signed entry of that request backs was written or rewritten in the store behind
    the approval path. ``request`` is the request the waiting step asked (or, for a loop asking again
    under a decided name, the one that decision ended): an entry naming another request of the same
    name (one that timed out, its late decision refused) backs nothing here; None (no request
    recorded) and entries without one (an older release) are not compared. An entry without a
    digest (an older release) backs the same verdict by the same person (``by`` False: any person,
    as when payload redaction may have rewritten the name). A decision the run's redaction rewrote
    after it was made (``podium memory forget``, a signed ``run.redact`` entry after the
    ``approval.decide`` one) no longer has the digest that entry holds: the same verdict of that
    request backs it, as an entry without a digest does."""
    try:
        d = json.loads(decision)
    except ValueError:
        d = None
    if isinstance(d, dict):
        redacted = [i for i, e in enumerate(entries) if e.action == "run.redact" and entry_signed(e, keys)]
        for i, e in enumerate(entries):
            if e.action != "approval.decide" or not entry_signed(e, keys):
                continue
            x = e.details()
            if x.get("name") != name:
                continue
            if request is not None and x.get("request") is not None and x["request"] != request:
                continue  # a decision of another request under this name (a loop that asked again)
            rewritten = bool(redacted) and redacted[-1] > i  # redacted since: its digest is of the text before
            if "decision" in x and x["decision"] == payload_hash(decision):  # verdict, author, comment, payload
                return None
            same = x.get("approved") is d.get("approved") and (not by or rewritten or e.actor == d.get("by"))
            if same and ("decision" not in x or rewritten):
                return None  # an entry written before decisions were digested, or a decision redacted since
    who = d.get("by") if isinstance(d, dict) else None
    return (
        f"run {run_id}: the decision of approval {name!r} (by {who!r}) has no signed approval.decide entry "
        "in the audit log: it was written into the store behind the approval path, so it is not taken; "
        "an approver decides with 'podium approvals approve' or client.decide()"
    )


ENGINE_ANCHORS = frozenset({"run.start", "run.fork", "run.checkpoint", "run.end"})
"""The anchors an engine (or the client starting or forking a run) writes of the events it made or
checked. ``run.redact`` and ``run.prune`` anchor a history changed on purpose, as it then was: they
vouch for no event written behind the engine's back before them."""


def anchored_events(entries: Sequence[AuditEntry], keys: Mapping[str, bytes]) -> int:
    """How many of a run's events its signed engine anchors (:data:`ENGINE_ANCHORS`) cover (the rest,
    the tail an engine that crashed mid-run left, no digest vouches for)."""
    covered = 0
    for a in entries:
        if a.action in ENGINE_ANCHORS and entry_signed(a, keys):
            covered = max(covered, int(a.details().get("events") or 0))
    return covered


def check_run(run_id: str, run: RunRecord | None, events: Sequence[Any], anchors: Sequence[AuditEntry]) -> str | None:
    """Check one run (None: not in the store) and its events against its audit anchors (authentic
    entries, oldest first). Returns the first problem, or None."""
    start = 0
    for i, a in enumerate(anchors):
        if a.action in ("run.redact", "run.prune"):
            start = i  # changed on purpose: earlier anchors describe the history before the change
    anchors = anchors[start:]
    if anchors and anchors[0].action == "run.prune":
        # Deleted on purpose: a run under this id now is a new one (an idempotency key used again),
        # anchored from its own start, or one put back behind the engine's back.
        pruned, anchors = anchors[0], anchors[1:]
        if not any(a.action in RUN_ANCHORS for a in anchors):
            if run is None:
                return None
            return (
                f"run {run_id} was pruned (audit entry {pruned.seq}) and is in the store again with no "
                "new start: it was put back behind the engine's back; delete it, or start the run again "
                "through the client or the API"
            )
    current = [a for a in anchors if a.action in RUN_ANCHORS]
    if not current:
        return None
    if run is None:
        return f"run {run_id} was deleted, but the audit log records no pruning of it (see audit entry {current[-1].seq})"
    prefix: dict[int, str] = {}
    wanted = {int(a.details().get("events") or 0) for a in current}
    h = hashlib.sha256()
    last = 0
    for e in events:
        h.update(event_bytes(e.seq, e.type, e.ts, e.step, e.iteration, e.index, e.attempt, e.data))
        last = e.seq
        if e.seq in wanted:
            prefix[e.seq] = h.hexdigest()
    whole = h.hexdigest()
    ended = False
    for a in current:
        d = a.details()
        if a.action == "run.end":
            ended = True
        if "input" in d and d["input"] != payload_hash(run.input):
            return f"run {run_id}'s input was changed: it no longer matches the hash recorded in audit entry {a.seq}"
        if "digest" in d:
            n = d.get("events")
            if n is None:  # written before checkpoints: the digest of the whole history
                got = whole
            elif a.action == "run.end" and last != n:
                got = "" if last < n else "events added"
            else:
                got = prefix.get(int(n), "")
            if got != d["digest"]:
                what = "deleted" if not events else "changed"
                when = "after it ended" if a.action == "run.end" else "after it was recorded"
                return (
                    f"run {run_id}'s history was {what} {when}: it no longer matches the digest "
                    f"recorded in audit entry {a.seq}"
                )
        if "record" in d and d["record"] != record_hash(run):
            return (
                f"run {run_id}'s record (input, output, status or error) was changed: it no longer matches "
                f"audit entry {a.seq}"
            )
    cancelled = run.status.value == "cancelled" and any(a.action == "run.cancel" for a in anchors)
    if run.status.finished and not ended and not cancelled and not any(a.action == "run.redact" for a in current):
        return (
            f"run {run_id} is marked {run.status.value}, but the audit log records no end of it "
            f"(its last anchor is entry {current[-1].seq})"
        )
    return None


__all__ = [
    "ENGINE_ANCHORS",
    "GENESIS",
    "HISTORY_MISMATCH",
    "RUN_ANCHORS",
    "AuditEntry",
    "ChainCheck",
    "chain_hash",
    "check_chain",
    "check_run",
    "decision_problem",
    "entry_signed",
    "event_bytes",
    "payload_hash",
    "record_hash",
    "run_digest",
    "unanchored",
    "verify",
]
