"""Drift references (:mod:`podium.ml`) as the store holds them, backed by the signed audit log.

A reference (key-value namespace ``ml_references``) is the summary of known-good data that a
gate's ``drift`` and ``anomaly`` rules and the model monitor compare new data with; its owner
(``ml_reference_owners``) is the model whose training may replace it (``""``: saved in Python).
Whoever writes the database could put a summary of drifted data in its place (the gate then lets
that data through) or change its owner. So each save writes a signed ``ml.reference`` entry of
``reference:NAME`` with the SHA-256 of the text saved and its owner, before the row: a reference is
used only when its text is what the newest such entry recorded (:func:`reference_problem`), and its
owner is the one the first entry gave it (:func:`logged_owner`), whatever the row says. Here, below
the ML layer, so that ``podium audit verify`` names a row the log does not back (:func:`problems`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable

from ..records import AuditEntry
from ..storage import Store
from .accounts import signed
from .audit import entry_signed

REFERENCES = "ml_references"
"""Key-value namespace of the store that holds references by name."""
REFERENCE_OWNERS = "ml_reference_owners"
"""Drift reference -> the model whose training saved it (``""``: saved in Python)."""
SAVE = "ml.reference"


def target(name: str) -> str:
    return f"reference:{name}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def record_save(store: Store, name: str, text: str, owner: str) -> None:
    """Sign the save of reference ``name`` (its ``text``, by ``owner``) into the audit log: written
    before the row, so a row is never newer than its entry."""
    data = json.dumps({"hash": digest(text), "owner": owner})
    await store.append_audit(AuditEntry(ts=time.time(), actor="engine", action=SAVE, target=target(name), data=data))


def logged_owner(entries: Iterable[AuditEntry]) -> tuple[str | None, AuditEntry | None]:
    """The owner the first signed save of a reference gave it (None: no entry), and that entry."""
    for e in entries:
        if e.action == SAVE and isinstance(owner := e.details().get("owner"), str):
            return owner, e
    return None, None


def reference_problem(name: str, text: str | None, entries: Iterable[AuditEntry]) -> str | None:
    """Why the stored reference ``text`` of ``name`` may not be used (None: it is what the newest
    signed ``ml.reference`` entry recorded, or there is no row: the rules say it is not stored)."""
    if text is None:
        return None
    saves = [e for e in entries if e.action == SAVE]
    how = "save it again (the training step that names it as its reference, or podium.ml.save_reference)"
    if not saves:
        return (
            f"drift reference {name!r} in the store is not one the engine saved (no signed ml.reference entry of the "
            "audit log records it: it was written behind the engine's back, or saved by a release before references "
            f"were recorded), so it is not compared with; {how}"
        )
    if saves[-1].details().get("hash") != digest(text):
        return (
            f"drift reference {name!r} in the store is not the one its signed ml.reference entry (audit entry "
            f"{saves[-1].seq}) recorded: it was changed behind the engine's back, so it is not compared with; {how}"
        )
    return None


def owner_problem(name: str, row: str | None, logged: str | None, entry: AuditEntry | None) -> str | None:
    """Why the owner row of reference ``name`` is not taken (None: it is the logged owner, or no entry logged one)."""
    if entry is None or row == logged:
        return None
    whose = f"model {logged!r}" if logged else "Python (podium.ml.save_reference)"
    said = repr(row) if row is not None else "missing"
    return (
        f"the owner of drift reference {name!r} in the store is {said}, but audit "
        f"entry {entry.seq} (its first save) gave it to {whose}: the row was changed behind the engine's back, and the "
        "logged owner holds"
    )


async def checked(store: Store, name: str, text: str | None) -> tuple[list[AuditEntry], str | None]:
    """The signed entries of reference ``name`` and why its stored ``text`` may not be used."""
    entries = await signed(store, target(name))
    return entries, reference_problem(name, text, entries)


async def problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every reference (and owner) row the signed log does not back (``entries``: the whole log)."""
    keys = store.audit_keys.all()
    by_name: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action == SAVE and e.target.startswith("reference:") and entry_signed(e, keys):
            by_name.setdefault(e.target[len("reference:"):], []).append(e)
    texts, owners = await store.kv_list(REFERENCES), await store.kv_list(REFERENCE_OWNERS)
    found = []
    for name in sorted(set(texts) | set(by_name)):
        found += [p] if (p := reference_problem(name, texts.get(name), by_name.get(name, []))) else []
        found += [p] if (p := owner_problem(name, owners.get(name), *logged_owner(by_name.get(name, [])))) else []
    return found


__all__ = ["REFERENCES", "REFERENCE_OWNERS", "checked", "logged_owner", "owner_problem", "problems", "record_save"]
