"""Schedules' last fire times as the store keeps them, sealed with the audit key.

A schedule fires the periods due since its last fire time, a row of the store's key-value table
(namespace ``schedules``) that whoever writes the database can edit: set back, a ``run_all``
schedule fired again every period since (business actions for times that had run, or never were
meant to); set forward, it fired no more until then, silently. So the server seals each time it
writes (an HMAC of the audit key over the schedule and the time, kept beside ``last``, which an
earlier release reads as before), and a time whose seal does not hold is not taken: the schedule
fires at most the latest period due, counted from that time when it is past, as if unknown when
it is in the future (:func:`fire_from`). A period's run id derives from the period, so the latest
period, if it ran, is not started again. A time written by an earlier release is not sealed either
and is read the same way (the first tick after an upgrade fires at most the latest period due).
"""

from __future__ import annotations

import json
from typing import Any


def _text(key: str, last: float) -> str:
    return f"schedule\x1f{key}\x1f{last!r}"


def seal(store: Any, key: str, last: float) -> str:
    """The stored form of schedule ``key``'s last fire time ``last``."""
    return json.dumps({"last": last, "mac": store.audit_keys.seal(_text(key, last))})


def open_state(store: Any, key: str, text: str, *, sealed: bool = True) -> tuple[float | None, bool]:
    """The last fire time stored for schedule ``key`` (None: unreadable) and whether it is taken
    as it is (its seal holds, or ``sealed`` is false: auditing off, rows count as stored)."""
    try:
        state = json.loads(text)
        last = float(state["last"])
    except (ValueError, TypeError, KeyError):
        return None, False
    if not sealed:
        return last, True
    mac = state.get("mac")
    return last, isinstance(mac, str) and store.audit_keys.verify_seal(_text(key, float(state["last"])), mac) is True


def problem(key: str, state: str) -> str:
    return (
        f"the last fire time of schedule {key!r} in the store ({state[:80]}) is not sealed with this store's audit key: it was "
        "edited behind the server's back (or written by a release before fire times were sealed), so it is not taken; "
        "the schedule fires at most its latest period due (not again if it ran) and goes on from there"
    )


def fire_from(last: float | None, now: float, latest: float) -> float:
    """Where a schedule whose stored time is not taken counts from: that time when it is past (the
    misfire policy then fires at most the latest period), else just before ``latest``, the latest
    period at or before now (fired, if it has not run: the time set forward silences nothing)."""
    return last if last is not None and last <= now else latest - 1


__all__ = ["fire_from", "open_state", "problem", "seal"]
