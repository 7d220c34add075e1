"""A model's owners (the workflows that may train, promote and roll it back: :mod:`podium.ml._owners`)
as the store holds them, checked against the signed audit log.

Their row (key-value namespace ``model_owners``) can be edited by whoever writes the database; what
holds is what the signed entries of ``model:MODEL`` say (:func:`logged_owners`). Here, below the
ML layer, so that ``podium audit verify`` names a row the log does not back (:func:`problems`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..records import AuditEntry
from ..storage import Store
from .accounts import signed
from .audit import entry_signed

OWNERS = "model_owners"


def listed(text: str | None) -> list[str]:
    try:
        names = json.loads(text) if text is not None else []
    except ValueError:
        return []
    return [str(w) for w in names] if isinstance(names, list) else []


def logged_owners(entries: Iterable[AuditEntry]) -> tuple[list[str] | None, Any]:
    """The owners the signed entries of ``model:MODEL`` (oldest first) give it, and the last entry
    that changed them: an admin's ``model.owners`` adds and removes the workflows it names; a
    workflow's claim (``model.owner``) counts only while the model has none, so of two claims at
    once the first logged wins. (None, None): no entry."""
    owners: list[str] | None = None
    entry = None
    for e in entries:
        d = e.details()
        if e.action == "model.owners":
            added, removed = d.get("added"), d.get("removed")
            if isinstance(added, list) and isinstance(removed, list):
                base = owners or []
                owners = [w for w in base if w not in removed] + [str(w) for w in added if w not in base]
            elif isinstance(d.get("owners"), list):
                owners = [str(w) for w in d["owners"]]
            entry = e
        elif e.action == "model.owner" and not owners and isinstance(d.get("owners"), list):
            owners, entry = [str(w) for w in d["owners"]], e
    return owners, entry


def owners_problem(model: str, text: str | None, logged: list[str] | None, entry: Any) -> str | None:
    """Why the owners row ``text`` of ``model`` is not taken (None: it is what the log says)."""
    row = listed(text) if text is not None else None
    if row == logged or (row is None and not logged):
        return None
    shown = ", ".join(row) if row else ("missing" if text is None else "none")
    if entry is None:
        return (
            f"the owners of model {model!r} in the store ({shown}) are not what a signed entry of the audit log set (they "
            "were written behind the admins' back, or claimed under a release before claims were logged by model), so "
            f"no workflow may change the model; an admin says whose it is: podium ml owners {model} --add WORKFLOW"
        )
    return (
        f"the owners of model {model!r} in the store are {shown}, but audit entry {entry.seq} gave it "
        f"{', '.join(logged or []) or 'none'}: the row was changed behind the admins' back, and the logged owners hold"
    )


async def in_force(store: Store, model: str, text: str | None) -> tuple[list[str] | None, str | None]:
    """The owners of ``model`` the signed log gave it (None: no entry did), and why its row
    ``text`` is not taken (None: it is what the log says)."""
    logged, entry = logged_owners(await signed(store, f"model:{model}"))
    return logged, owners_problem(model, text, logged, entry)


async def problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every model whose owners row differs from the signed log (``entries``: the whole log)."""
    keys = store.audit_keys.all()
    by_model: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action in ("model.owner", "model.owners") and e.target.startswith("model:") and entry_signed(e, keys):
            by_model.setdefault(e.target[len("model:"):], []).append(e)
    rows = await store.kv_list(OWNERS)
    found = []
    for model in sorted(set(rows) | set(by_model)):
        logged, entry = logged_owners(by_model.get(model, []))
        problem = owners_problem(model, rows.get(model), logged, entry)
        found += [problem] if problem else []
    return found
