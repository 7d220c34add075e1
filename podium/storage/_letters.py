"""Dead letters as the store keeps them, sealed: an event that could not start its run, kept to be replayed.

A replay starts the run the letter names, with the payload it holds, as whoever replays it. Its
row lives in the store's key-value table (namespace ``deadletters``), which anyone who can write
the database can edit: a letter of their own (a payment to start under an operator's name), a real
one's payload changed, one an operator dropped put back. So the engine seals each letter it keeps
with the audit key, kept outside the store (an HMAC over the letter and its id, as API tokens are
sealed), and a replay takes only a letter whose seal holds and that no signed
``deadletter.discard`` or ``deadletter.replay`` entry settled since it was kept (:func:`settled`).
A letter kept by an earlier release is not sealed: it is listed, and refused a replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

DEADLETTERS = "deadletters"
"""The store's key-value namespace of dead letters (the server's triggers and broker consumers)."""
FIELDS = ("id", "source", "event", "key", "workflow", "payload", "error", "error_type", "ts", "sent_by", "unreadable")
"""What a letter holds (``sent_by``: the user whose event it is, if a user sent it: a replay starts as them;
``unreadable``: true for a broker message that could not be read, kept without its payload)."""


def _text(key: str, text: str) -> str:
    return f"deadletter\x1f{key}\x1f{text}"


def seal(store: Any, letter: dict[str, Any]) -> str:
    """The stored form of ``letter`` (kept under its ``id``): sealed with the store's audit key."""
    text = json.dumps(letter, default=str)
    return json.dumps({"letter": text, "mac": store.audit_keys.seal(_text(str(letter["id"]), text))})


def not_sealed(key: str) -> str:
    return (
        f"dead letter {key!r} is not sealed with this store's audit key: it was written or edited in the store "
        "behind the engine's back, or kept by a release before dead letters were sealed, so it is not replayed "
        "(its workflow and payload may be anyone's); check it (GET /api/deadletters), start the run yourself "
        f"if it is genuine (POST /api/runs), and drop it: DELETE /api/deadletters/{key}"
    )


def open_letter(store: Any, key: str, stored: str | None, *, sealed: bool = True) -> tuple[dict[str, Any], str | None]:
    """The letter stored under ``key`` (as far as it can be read: shown, never replayed, when its
    seal does not hold) and why it may not be replayed (None: its seal holds, or ``sealed`` is
    false: auditing is off, and rows count as stored)."""
    try:
        outer = json.loads(stored or "null")
    except ValueError:
        outer = None
    text = outer.get("letter") if isinstance(outer, dict) and "mac" in outer else None
    try:
        letter = json.loads(text) if isinstance(text, str) else outer
    except ValueError:
        letter = None
    if not isinstance(letter, dict):
        letter = {}
    shown = {"source": "", "event": "", "key": "", "workflow": "", "payload": None, "error": "", "error_type": "", "ts": 0.0}
    shown.update({k: letter[k] for k in FIELDS if k in letter})
    shown["id"] = key
    if not sealed and letter:
        return shown, None
    holds = (
        isinstance(text, str) and isinstance(outer.get("mac"), str) and letter.get("id") == key
        and store.audit_keys.verify_seal(_text(key, text), outer["mac"]) is True
    )  # fmt: skip
    return shown, None if holds else not_sealed(key)


def unreadable(letter: dict[str, Any]) -> str | None:
    """Why ``letter`` has nothing to replay: it was kept for a broker message that could not be read
    (nested too deep, or over its trigger's ``max_message_bytes``), without its payload, and a replay
    would start the workflow with ``null`` as its input. None for any other letter. A letter kept by
    an earlier release has no ``unreadable`` mark: its error says so."""
    if letter.get("unreadable") is not True and not (
        letter.get("payload") is None and ": unreadable message: " in str(letter.get("error") or "")
    ):
        return None
    return (
        f"dead letter {letter['id']!r} is of a message from {letter.get('source') or 'a broker'} that could not be "
        f"read ({letter.get('error') or 'unreadable'}), so it holds no payload, and replaying it would start "
        f"{letter.get('workflow')!r} with none; it is not replayed. Have the publisher send it again in a form "
        f"that can be read, and drop this letter: DELETE /api/deadletters/{letter['id']}"
    )


def settled(letter: dict[str, Any], entries: Iterable[Any]) -> str | None:
    """Why a sealed ``letter`` may not be replayed all the same: a signed entry (``entries``: those of
    ``deadletter:ID``, checked) dropped or replayed it after it was kept (its row put back); None if none did."""
    for e in entries:
        if e.action in ("deadletter.discard", "deadletter.replay") and e.ts >= float(letter.get("ts") or 0):
            did = "dropped" if e.action == "deadletter.discard" else "replayed"
            return (
                f"dead letter {letter['id']!r} was {did} by {e.actor} (audit entry {e.seq}), but its row is in the "
                "store again (put back behind the admins' back), so it is not replayed; drop it: "
                f"DELETE /api/deadletters/{letter['id']}"
            )
    return None


__all__ = ["DEADLETTERS", "not_sealed", "open_letter", "seal", "settled", "unreadable"]
