"""The whole check behind ``podium audit verify`` (:meth:`Governance.check_audit`): the signed
chain, the head log and checkpoints, every anchored run's history and record, and the rows the
log backs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import accounts, backed
from .audit import RUN_ANCHORS, AuditEntry, ChainCheck, check_chain, check_run, entry_signed

if TYPE_CHECKING:
    from ..storage import Store


async def check_store(store: Store, checkpoints: Sequence[str]) -> tuple[ChainCheck, int]:
    """The check, and how many lines the head log has."""
    keys = store.audit_keys
    heads, bad = keys.heads()
    logged = heads
    came_from: dict[tuple[int, str], str] = {}
    for path in checkpoints:
        more, wrong = keys.heads(Path(path))
        heads, bad = heads + more, bad + [f"{path}: {w}" for w in wrong]
        came_from.update((head, f"the checkpoint file {path}") for head in more)
    came_from.update((head, f"the head log {keys.head_path}") for head in logged)
    entries = await store.read_audit()  # one snapshot: a page read apart can miss a commit
    check = check_chain(entries, keys.all(), heads)
    if check.problem and check.broken_head is not None:
        check.problem += _head_hint(came_from.get(check.broken_head, "the head log or a checkpoint"))
    if check.problem:
        return check, len(logged)
    if bad:
        check.problem = f"the head log {keys.head_path} or a checkpoint was tampered with: {bad[0]}"
        return check, len(logged)
    by_run: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action in RUN_ANCHORS or e.action == "run.cancel":
            by_run.setdefault(e.target, []).append(e)
    anchored = {rid for rid, anchors in by_run.items() if any(a.action in RUN_ANCHORS for a in anchors)}
    for record in await store.list_runs(limit=1_000_000):
        if record.id not in anchored and entries and not await _anchored_since(store, record.id):
            check.problem = (
                f"run {record.id} ({record.workflow}, {record.status.value}) has no entry in the audit "
                "log: it was written into the runs table behind the engine's back"
            )
            return check, len(logged)
    for run_id, anchors in by_run.items():
        if not any(a.action in RUN_ANCHORS for a in anchors):
            continue
        run = await store.get_run(run_id)
        events = await store.load_events(run_id) if run is not None else []
        problem = check_run(run_id, run, events, anchors)
        if problem and run is not None and run.status.finished:
            # It may have ended after the log was read: its end anchor is written with its
            # final state. Check it against its signed anchors as they are now.
            known = keys.all()
            fresh = [e for e in await store.audit_for(run_id) if entry_signed(e, known)]
            problem = check_run(run_id, run, events, fresh)
        if problem:
            check.problem = problem
            return check, len(logged)
    rows = await accounts.problems(store) + await backed.problems(store, entries)  # edited behind the log
    check.problem = (rows[0] + (f" (and {len(rows) - 1} more such record(s))" if len(rows) > 1 else "")) if rows else None
    return check, len(logged)


def _head_hint(source: str) -> str:
    """What to do about an entry the store no longer holds though ``source`` recorded it."""
    return (
        f"; it is recorded in {source}. If this database was deleted and made again on purpose (a new "
        "store under the same path or URL), that record is the old store's: move the file aside and verify "
        "again; if not, the store's audit log was cut or rewritten behind the engine's back: restore it from a backup "
        "and find out who changed it"
    )


async def _anchored_since(store: Store, run_id: str) -> bool:
    """Whether a run missing from the log as read has a signed anchor now (it was started after
    the read: its start anchor is written with the run)."""
    keys = store.audit_keys.all()
    return any(e.action in RUN_ANCHORS and entry_signed(e, keys) for e in await store.audit_for(run_id))
