"""An approval's end a fork reused from the run it was forked from (``Client.fork`` copies the ends
of the steps it keeps, ``reused_from`` naming their run): checked against that run's log and audit
entries, as the run itself would check it. A fork has no request of its own for it, and its
``run.fork`` anchor vouches for nothing it copied: without this, a genuine decision the fork
reuses was refused as one "written behind the engine", and a decision forged in the earlier run's
unanchored tail would pass if it were taken on trust."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..governance.audit import anchored_events, decision_problem, entry_signed
from ..records import EventType
from .lineage import MAX_NESTING

if TYPE_CHECKING:
    from ..storage import Store

_Key = tuple[str, int, "int | None"]


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text or "null")
    except ValueError:
        return None


def marked_reused(text: str | None) -> bool:
    """Whether an approval's end (as stored) is a fork's copy: ``reused_from`` at its top level (not
    a field of the decision's payload, which an approver's edit or the request's data may hold)."""
    if not text or '"reused_from"' not in text:
        return False  # the frequent case: no parse
    data = _loads(text)
    return isinstance(data, dict) and "reused_from" in data


async def _parent(store: Store, keys: Mapping[str, bytes], run_id: str) -> str | None:
    """The run that run ``run_id`` was forked from as its signed ``run.fork`` entry names it (the
    runs table's ``forked_from`` is no anchor's: a database writer could point it at any run), or
    None."""
    forks = [e for e in await store.audit_for(run_id) if e.action == "run.fork" and entry_signed(e, keys)]
    parent = forks[-1].details().get("parent") if forks else None
    return parent if isinstance(parent, str) else None


async def reused_problem(
    store: Store, keys: Mapping[str, bytes], run_id: str, forked_from: str | None, key: _Key, text: str | None, *, by: bool
) -> str | None:
    """Why the end of approval wait ``key`` that run ``run_id`` (forked from ``forked_from``) holds
    as ``text``, marked reused, may not be taken, or None: it must be the end of the same wait in
    the run it was forked from (a fork of a fork: followed back, at most :data:`MAX_NESTING`
    forks), and there, where it was made, a decision backed by a signed ``approval.decide`` entry
    of its request, or a timeout whose anchored request's deadline has passed. Each run's source is
    the parent its signed ``run.fork`` entry names; ``forked_from`` (the run's record) must agree."""
    name = key[0].partition("/signal:")[2]
    data, source = _loads(text), await _parent(store, keys, run_id)

    def refused(why: str) -> str:
        return (
            f"run {run_id}: the end of approval {name!r} it reused {why}: it is not taken; fork the run "
            "again from this step (its approval is asked again), or an approver decides with "
            "'podium approvals approve'"
        )

    if forked_from != source:
        return refused(
            f"comes from run {forked_from!r} by the run's record, which its signed run.fork entry does not "
            f"name (it names {source!r}): the record was changed behind the engine"
        )
    for _ in range(MAX_NESTING + 1):
        if not isinstance(data, dict) or source is None or data.get("reused_from") != source:
            return refused(f"names run {data.get('reused_from') if isinstance(data, dict) else None!r}, not the run it was forked from ({source!r})")
        events = await store.load_events(source)
        ends = [e for e in events if e.type == EventType.STEP_COMPLETED and (e.step, e.iteration, e.index) == key]
        if not ends:
            return refused(f"is not in the log of run {source}")
        end = ends[-1]
        src = _loads(end.data)
        if not isinstance(src, dict) or {k: v for k, v in data.items() if k != "reused_from"} != {
            k: v for k, v in src.items() if k != "reused_from"
        }:
            return refused(f"differs from the one in the log of run {source}")
        if "reused_from" in src:  # reused there too: followed back
            data, source = src, await _parent(store, keys, source)
            continue
        waits = [e for e in events if e.type == EventType.STEP_WAITING and e.seq < end.seq]
        asked = [e for e in waits if (e.step, e.iteration, e.index) == key] or [  # a loop asking again
            e for e in waits if e.step and e.step.partition("/signal:")[2] == name  # under a decided name
        ]
        if not asked:
            return refused(f"has no approval request in the log of run {source}")
        request = asked[-1]
        entries = await store.audit_for(source)
        if src.get("timed_out"):
            deadline = (_loads(request.data) or {}).get("deadline")
            if (
                request.seq <= anchored_events(entries, keys)
                and isinstance(deadline, (int, float))
                and deadline == deadline
                and time.time() >= deadline
            ):
                return None
            return refused(f"is a timeout in run {source} that no anchored request's deadline backs")
        at = (end.data or "").find(',"output":')
        decision = end.data[at + 10 : -1] if end.data and at >= 0 else "null"
        problem = decision_problem(source, name, decision, entries, keys, by=by, request=request.seq)
        return None if problem is None else refused(f"from run {source}: {problem}")
    return refused(f"comes through more than {MAX_NESTING} forks")
