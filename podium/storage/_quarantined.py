"""Rows a data gate quarantined (:mod:`podium.ml`), as the store keeps them: sealed, counted, released once.

A gate's ``quarantine`` rule sets bad records aside in the key-value namespace ``ml_quarantine``
for a person to look at and release (the rows are then run again). Whoever writes the database
could write rows of their own there (released as what the gate set aside), change a record, delete
one (hidden from the person), or put a released entry back (released twice). So each entry is
sealed with the audit key (:mod:`._sealed`) and counted (``quarantined:gates``); a release replaces
the entry by a sealed note of its release (kept, so that the entry cannot come back unnoticed) and
counts it (``released:gates``). :func:`problems` says what is wrong: entries whose seal does not
hold, fewer entries and notes than were quarantined (deleted), fewer notes than releases (an entry
put back over its note).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import NonRetryableError
from ..records import AuditEntry
from . import _sealed as sealed

QUARANTINE = "ml_quarantine"
"""Key-value namespace of the store holding quarantined rows."""
KIND = "quarantine"
COUNTED, RELEASED, NAME = "quarantined", "released", "gates"


def not_sealed(key: str) -> str:
    return (
        f"quarantined rows {key!r} are not sealed with this store's audit key: written or edited in the store behind "
        "the engine's back (they may be anyone's rows), or kept by a release before quarantined rows were sealed, so "
        "they are not released; look at them (podium.ml.quarantined) and, once you trust the store, seal the ones "
        "kept before the upgrade: podium quarantine seal"
    )


async def put(store: Any, key: str, entry: dict[str, Any]) -> None:
    """Keep ``entry`` (a gate's bad rows) under ``key``, sealed and counted."""
    text = sealed.seal(store, KIND, key, entry)
    if await store.kv_swap(QUARANTINE, key, None, text):
        await sealed.count_new(store, COUNTED, NAME, recount=lambda: _present(store))
    else:  # the same step's entry written again (a retried sub-step): not a new one
        await store.kv_put(QUARANTINE, key, text)


async def _present(store: Any) -> int:
    verifier = sealed.Verifier(store)
    return sum(sealed.opened(store, KIND, k, v, verifier)[1] for k, v in (await store.kv_list(QUARANTINE)).items())


def _released(entry: dict[str, Any]) -> bool:
    return "released_at" in entry


async def _notes(store: Any) -> int:
    """The sealed notes of releases in the store."""
    verifier = sealed.Verifier(store)
    found = (sealed.opened(store, KIND, k, v, verifier) for k, v in (await store.kv_list(QUARANTINE)).items())
    return sum(bool(holds and entry is not None and _released(entry)) for entry, holds in found)


async def listed(store: Any) -> list[dict[str, Any]]:
    """Entries not released (``{key, ...entry}``), each with ``problem`` when its seal does not hold."""
    verifier = sealed.Verifier(store)
    out = []
    for key, raw in (await store.kv_list(QUARANTINE)).items():
        entry, holds = sealed.opened(store, KIND, key, raw, verifier)
        if entry is None or (holds and _released(entry)):
            continue
        out.append({"key": key, **entry, **({} if holds else {"problem": not_sealed(key)})})
    return out


async def release(store: Any, key: str) -> list[dict[str, Any]]:
    """The rows under ``key``, taken out: the entry is replaced by a sealed note of its release."""
    raw = await store.kv_get(QUARANTINE, key)
    entry, holds = sealed.opened(store, KIND, key, raw)
    if entry is None:
        raise NonRetryableError(f"no quarantined rows under {key!r}; list them with podium.ml.quarantined(store)")
    if not holds:
        await _denied(store, key, not_sealed(key))
        raise NonRetryableError(not_sealed(key))
    if _released(entry):
        raise NonRetryableError(f"the quarantined rows {key!r} were already released (at {entry['released_at']}); list the others with podium.ml.quarantined(store)")
    if put_back := [p for p in await problems(store) if "put back" in p]:  # a released entry again where its note was
        await _denied(store, key, put_back[0])
        raise NonRetryableError(f"{put_back[0]}; so no quarantined rows are released until it is looked into: podium audit verify")
    note = {k: entry.get(k) for k in ("workflow", "run_id", "step", "gate", "at")}
    note.update(released_at=time.time(), rows=len(entry.get("rows") or []))
    if not await store.kv_swap(QUARANTINE, key, raw, sealed.seal(store, KIND, key, note)):
        raise NonRetryableError(f"the quarantined rows {key!r} were released by someone else just now; list the others with podium.ml.quarantined(store)")
    await sealed.count_new(store, RELEASED, NAME, recount=lambda: _notes(store))
    rows: list[dict[str, Any]] = entry.get("rows") or []
    return rows


async def _denied(store: Any, key: str, problem: str) -> None:
    """Audit a refused release (``access.denied`` of ``quarantine:rows:KEY``): signed by the store, as
    a drift reference's save is (a release is a function on the store, with no client to say who)."""
    data = json.dumps({"reason": "record not backed by the audit log", "problem": problem})
    await store.append_audit(AuditEntry(ts=time.time(), actor="engine", action="access.denied", target=f"quarantine:rows:{key}", data=data))


async def problems(store: Any) -> list[str]:
    """What ``podium audit verify`` says of the quarantined rows."""
    verifier = sealed.Verifier(store)
    tallies = await store.kv_list(sealed.TALLIES)
    found, entries, notes, good = [], 0, 0, 0
    for key, raw in sorted((await store.kv_list(QUARANTINE)).items()):
        entry, holds = sealed.opened(store, KIND, key, raw, verifier)
        if not holds:
            found.append(not_sealed(key))
        else:
            good += 1
        entries += 1
        notes += bool(holds and entry is not None and _released(entry))
    what = "entries of rows quarantined by data gates"
    problem = await sealed.tally_problem(
        store, COUNTED, NAME, tallies.get(f"{COUNTED}:{NAME}"), entries, what, verifier, sealed_rows=good,
        reset="podium quarantine seal",
    )
    found += [problem] if problem else []
    raw = tallies.get(f"{RELEASED}:{NAME}")
    released, holds = sealed.tally_of(store, RELEASED, NAME, raw, verifier)
    if raw is None and await sealed.count_started(store, RELEASED, NAME) is not None:
        found.append(
            "the count of quarantined entries released is missing from the store (deleted behind the engine's back), so "
            "released entries may have been put back: releasing them again would run their rows twice"
        )
    elif released is not None and holds and notes < released:
        found.append(
            f"{released - notes} of the {released} quarantined entries released are in the store again (put back over the "
            "note of their release, behind the engine's back): releasing them again would run their rows twice"
        )
    elif raw is not None and not holds:  # not "rebuilt" by the next release from 1: entries put back then went unseen
        found.append(
            "the count of quarantined entries released is not sealed with the audit key (edited behind the engine's back), "
            "so released entries may have been put back: releasing them again would run their rows twice; once you have "
            "checked them: podium quarantine seal"
        )
    elif (sealed.opened(store, "tally", f"{RELEASED}:{NAME}", raw, verifier)[0] or {}).get("rebuilt"):
        found.append(
            "the count of quarantined entries released was rebuilt from the notes in the store after it was edited behind "
            "the engine's back, so entries put back before are not known: releasing them again would run their rows "
            "twice; once you have checked them: podium quarantine seal"
        )
    return found


async def seal_all(store: Any) -> int:
    """Seal the entries kept before they were sealed, as stored now, and count them (``podium quarantine seal``)."""
    verifier = sealed.Verifier(store)
    n = entries = 0
    for key, raw in (await store.kv_list(QUARANTINE)).items():
        entry, holds = sealed.opened(store, KIND, key, raw, verifier)
        if entry is None:
            continue
        entries += 1
        if not holds:
            await store.kv_put(QUARANTINE, key, sealed.seal(store, KIND, key, entry))
            n += 1
    key = f"{COUNTED}:{NAME}"
    await sealed.start_count(store, COUNTED, NAME)
    await store.kv_put(sealed.TALLIES, key, sealed.seal(store, "tally", key, {"n": entries}))
    key = f"{RELEASED}:{NAME}"  # the releases, as the notes now say (once checked)
    await sealed.start_count(store, RELEASED, NAME)
    await store.kv_put(sealed.TALLIES, key, sealed.seal(store, "tally", key, {"n": await _notes(store)}))
    return n


__all__ = ["QUARANTINE", "listed", "problems", "put", "release", "seal_all"]
