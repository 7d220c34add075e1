"""Rows the engine writes and later acts on, sealed with the audit key, and counted.

ML outcomes and predictions (what the monitor measures a model by), rows a data gate quarantined
(what a person releases) and file drop marks (which files were processed) live in the store's
key-value table, which anyone who can write the database can edit. Each is kept as its JSON object
with one more field, ``$seal``: an HMAC under the audit key (kept outside the store, see
:mod:`podium._auditkey`) over the row's kind, its key and its other fields. A row written or edited
behind the engine's back does not hold its seal (:func:`opened`); the fields stay readable by a
release before seals (it ignores the extra field).

A seal cannot show that a row was deleted. Where a deletion changes a decision (an outcome the
model got wrong, taken out, makes it look better), the writer also keeps a sealed count of the
rows of each kind and name (:func:`count_new`, namespace ``sealed_tallies``): fewer sealed rows
than the count says means some were deleted (:func:`tally_problem`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

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
    mac = store.audit_keys.mac(f"{kind}\x1f{key}\x1f{text}")
    return text[:-1] + ("," if plain else "") + f'"{SEAL}":"{mac}"}}'


class Verifier:
    """Checks many seals with the keys read once (a measure of 10,000 outcomes reads the key folder
    once, not per row)."""

    def __init__(self, store: Any) -> None:
        self.keys = {kid: hmac.new(key, digestmod=hashlib.sha256) for kid, key in store.audit_keys.all().items()}
        """Key id -> an HMAC keyed once, copied per row (the key's padding is not hashed again)."""

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
        kid, _, tag = mac.partition(":")
        keyed = self.keys.get(kid)
        if keyed is None:
            return entry, False
        h = keyed.copy()
        h.update(f"{kind}\x1f{key}\x1f{body}".encode())
        want = h.hexdigest()[:32]
        return entry, hmac.compare_digest(want.encode(), tag.encode(errors="replace"))


def opened(store: Any, kind: str, key: str, text: str | None, verifier: Verifier | None = None) -> tuple[dict[str, Any] | None, bool]:
    """The row stored under ``key`` (None: absent or not a JSON object) and whether its seal holds."""
    return (verifier or Verifier(store)).open(kind, key, text)


async def count_new(store: Any, kind: str, name: str, *, recount: Any = None) -> int:
    """Add one to the sealed count of ``kind`` rows of ``name`` (compare-and-set: two writers both
    count); the new count. A count whose seal does not hold starts again from ``await recount()``
    (the sealed rows there are now), or 0."""
    key = f"{kind}:{name}"
    while True:
        raw = await store.kv_get(TALLIES, key)
        entry, holds = opened(store, "tally", key, raw)
        if entry is not None and holds and isinstance(entry.get("n"), int):
            n = entry["n"] + 1
        else:
            n = int(await recount()) if recount is not None else 1
        if await store.kv_swap(TALLIES, key, raw, seal(store, "tally", key, {"n": n})):
            return n


def tally_of(store: Any, kind: str, name: str, raw: str | None, verifier: Verifier | None = None) -> tuple[int | None, bool]:
    """(count, seal holds) of the stored count ``raw`` (None: no count is stored)."""
    entry, holds = opened(store, "tally", f"{kind}:{name}", raw, verifier)
    n = entry.get("n") if entry is not None else None
    return (n if isinstance(n, int) else None), holds and isinstance(n, int)


def tally_problem(
    store: Any, kind: str, name: str, raw: str | None, rows: int, what: str, verifier: Verifier | None = None, *, sealed_rows: int
) -> str | None:
    """Why the ``rows`` of ``kind`` and ``name`` in the store (``sealed_rows`` of them sealed) are not
    all there were: fewer than the sealed count, a count not sealed, or none kept though sealed rows
    exist (rows of an earlier release, none sealed, have no count yet)."""
    n, holds = tally_of(store, kind, name, raw, verifier)
    if raw is None and sealed_rows == 0:
        return None
    if raw is None:
        return f"the count of the {what} is missing from the store (deleted behind the engine's back), so rows of them may have been deleted too"
    if not holds or n is None:
        return f"the count of the {what} in the store is not sealed with the audit key (edited behind the engine's back), so rows of them may have been deleted"
    if rows < n:
        return f"{n - rows} of the {n} {what} recorded are missing from the store (deleted behind the engine's back)"
    return None


__all__ = ["SEAL", "TALLIES", "Verifier", "count_new", "opened", "seal", "tally_of", "tally_problem"]
