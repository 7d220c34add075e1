"""Rows the engine writes and later acts on, sealed with the audit key, and counted.

ML outcomes and predictions (what the monitor measures a model by), rows a data gate quarantined
(what a person releases) and file drop marks (which files were processed) live in the store's
key-value table, which anyone who can write the database can edit. Each is kept as its JSON object
with one more field, ``$seal``: an HMAC under the audit key (kept outside the store, see
:mod:`podium._auditkey`) over the row's kind, its key and its other fields, and the store's id. A
row written or edited behind the engine's back, or sealed in another store, does not hold its seal
(:func:`opened`); the fields stay readable by a release before seals (it ignores the extra field).

A seal cannot show that a row was deleted. Where a deletion changes a decision (an outcome the
model got wrong, taken out, makes it look better), the writer also keeps a sealed count of the
rows of each kind and name (:func:`count_new`, namespace ``sealed_tallies``): fewer sealed rows
than the count says means some were deleted (:func:`tally_problem`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from .._auditkey import OUTER, PREFIX, SEALED, entry_holds, outer_body
from ..records import AuditEntry, chain_body

SEAL = "$seal"
TALLIES = "sealed_tallies"
"""Key-value namespace of the sealed counts (``KIND:NAME`` -> ``{"n", "$seal"}``)."""


def _canonical(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def seal(store: Any, kind: str, key: str, entry: dict[str, Any]) -> str:
    """The stored text of ``entry`` (a row of ``kind`` under ``key``), sealed: its canonical JSON
    with ``"$seal":"MAC"`` as the last field, the MAC over the kind, the key and the text before it
    (so a check reads no more than the text: :meth:`Verifier.open`)."""
    plain = json.loads(json.dumps({k: v for k, v in entry.items() if k != SEAL}, default=str))
    text = _canonical(plain)
    mac = store.audit_keys.seal(f"{kind}\x1f{key}\x1f{text}")
    return text[:-1] + ("," if plain else "") + f'"{SEAL}":"{mac}"}}'


class Verifier:
    """Checks many seals with the keys read once (a measure of 10,000 outcomes reads the key folder
    once, not per row)."""

    def __init__(self, store: Any) -> None:
        self.secrets: dict[str, bytes] = store.audit_keys.all()
        self.store_id: str | None = store.audit_keys.store_id
        """The store's id, which every seal covers (``podium/storage/_identity.py``)."""
        self.keys: dict[str, Any] = {}
        """Key id -> an HMAC keyed once (when first needed), copied per row."""

    def open(self, kind: str, key: str, text: str | None) -> tuple[dict[str, Any] | None, bool]:
        """The row stored as ``text`` under ``key`` (None: absent or not a JSON object; without its
        seal) and whether its seal holds."""
        try:
            entry = json.loads(text) if text else None
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            return None, False
        mac = entry.pop(SEAL, None)
        assert text is not None
        tail = f'"{SEAL}":"{mac}"}}'
        if not isinstance(mac, str) or not text.endswith(tail):  # nothing may follow the seal
            return entry, False
        body = text[: -len(tail)].removesuffix(",") + "}"
        kid, _, tags = mac.partition(":")
        inner, dot, outer = tags.partition(".")
        keyed = self.keys.get(kid)
        if keyed is None:
            if kid not in self.secrets:
                return entry, False
            keyed = self.keys[kid] = hmac.new(self.secrets[kid], digestmod=hashlib.sha256)
        if not dot or self.store_id is None:  # a seal of a release before store ids
            return entry, False
        legacy = None  # which outer part binds it to this store: of this release's seals, or of an earlier one's
        for domain in (False, True):
            h = keyed.copy()
            h.update(outer_body(self.store_id, kid, inner, legacy=domain))
            if hmac.compare_digest(h.hexdigest()[:OUTER].encode(), outer.encode(errors="replace")):
                legacy = domain
                break
        if legacy is None:
            return entry, False
        h = keyed.copy()
        h.update((b"" if legacy else SEALED) + f"{kind}\x1f{key}\x1f{body}".encode())
        return entry, hmac.compare_digest(h.hexdigest()[:32].encode(), inner.encode(errors="replace"))


def opened(store: Any, kind: str, key: str, text: str | None, verifier: Verifier | None = None) -> tuple[dict[str, Any] | None, bool]:
    """The row stored under ``key`` (None: absent or not a JSON object) and whether its seal holds."""
    return (verifier or Verifier(store)).open(kind, key, text)


COUNT_START = "count.start"
"""The signed audit entry (of ``count:KIND:NAME``) written when a count is first kept: a count
deleted later, with the rows it counted, is then missing, not absent."""


async def count_started(store: Any, kind: str, name: str) -> AuditEntry | None:
    """The signed ``count.start`` entry of ``kind`` rows of ``name`` (None: counting never started)."""
    keys = store.audit_keys.all()
    for e in await store.audit_for(f"count:{kind}:{name}"):
        if e.action == COUNT_START and e.hash.startswith(PREFIX):
            kid, _, tag = e.hash[len(PREFIX) :].partition(":")
            # the check of governance.audit.entry_signed, which this layer may not import
            if entry_holds(keys, kid, e.seq, chain_body(e.prev_hash, e), tag):
                return e
    return None


async def start_count(store: Any, kind: str, name: str) -> None:
    """Sign that ``kind`` rows of ``name`` are counted from now on (once)."""
    if await count_started(store, kind, name) is None:
        await store.append_audit(AuditEntry(ts=time.time(), actor="engine", action=COUNT_START, target=f"count:{kind}:{name}", data="{}"))


async def count_new(store: Any, kind: str, name: str, *, recount: Any = None) -> int:
    """Add one to the sealed count of ``kind`` rows of ``name`` (compare-and-set: two writers both
    count); the new count. The first count signs ``count.start``. A count whose seal does not hold,
    or that is missing though counting started, starts again from ``await recount()`` (the sealed
    rows there are now) marked ``rebuilt``: rows deleted with it are not known, which
    :func:`tally_problem` says until an admin resets it."""
    key = f"{kind}:{name}"
    while True:
        raw = await store.kv_get(TALLIES, key)
        entry, holds = opened(store, "tally", key, raw)
        if entry is not None and holds and isinstance(entry.get("n"), int):
            n, rebuilt = entry["n"] + 1, bool(entry.get("rebuilt"))
        else:
            rebuilt = raw is not None or await count_started(store, kind, name) is not None
            if not rebuilt:
                await start_count(store, kind, name)
            n = int(await recount()) if recount is not None else 1
        value: dict[str, Any] = {"n": n, **({"rebuilt": True} if rebuilt else {})}
        if await store.kv_swap(TALLIES, key, raw, seal(store, "tally", key, value)):
            return n


def tally_of(store: Any, kind: str, name: str, raw: str | None, verifier: Verifier | None = None) -> tuple[int | None, bool]:
    """(count, seal holds) of the stored count ``raw`` (None: no count is stored)."""
    entry, holds = opened(store, "tally", f"{kind}:{name}", raw, verifier)
    n = entry.get("n") if entry is not None else None
    return (n if isinstance(n, int) else None), holds and isinstance(n, int)


async def tally_problem(
    store: Any, kind: str, name: str, raw: str | None, rows: int, what: str, verifier: Verifier | None = None, *,
    sealed_rows: int, reset: str,
) -> str | None:
    """Why the ``rows`` of ``kind`` and ``name`` in the store (``sealed_rows`` of them sealed) are not
    all there were: fewer than the sealed count, a count not sealed, missing though sealed rows exist
    or counting started (its signed ``count.start``: read only then), or rebuilt since; ``reset``
    is the command that resets it once checked. Rows of an earlier release have no count yet."""
    n, holds = tally_of(store, kind, name, raw, verifier)
    if raw is None and sealed_rows == 0 and await count_started(store, kind, name) is None:
        return None
    if raw is None:
        return f"the count of the {what} is missing from the store (deleted behind the engine's back), so rows of them may have been deleted too"
    if not holds or n is None:
        return f"the count of the {what} in the store is not sealed with the audit key (edited behind the engine's back), so rows of them may have been deleted"
    if rows < n:
        return f"{n - rows} of the {n} {what} recorded are missing from the store (deleted behind the engine's back)"
    entry, _ = opened(store, "tally", f"{kind}:{name}", raw, verifier)
    if entry is not None and entry.get("rebuilt"):
        return (
            f"the count of the {what} was rebuilt from the rows in the store after it went missing or was edited behind "
            f"the engine's back, so rows deleted with it are not known; once you have checked them: {reset}"
        )
    return None


__all__ = ["COUNT_START", "SEAL", "TALLIES", "Verifier", "count_new", "count_started", "opened", "seal", "start_count", "tally_of", "tally_problem"]
