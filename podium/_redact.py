"""Erasure inside stored JSON (``podium memory forget``, :meth:`podium.storage.Store.redact_payloads`).

A forgotten value is replaced where it is data: inside JSON strings, object keys included. A
number whose whole text is the value (an id standing alone) becomes the replacement string; other
numbers, ``true``, ``false``, ``null`` and the structure are left, so the payload still reads.
Podium's type tags (:mod:`podium._serde`) keep their shape: the ``$podium`` key, the tag, the type
a dataclass or model names and its field names. A date, decimal or UUID whose whole text is the
value becomes the replacement string; one that merely contains it is left (it must still parse);
``bytes`` are left (base64 text holds no readable value). Text that is not JSON (a plain error
message) is replaced as plain text. A payload of any depth is redacted: it is walked without
recursion, and one nested deeper than the caller's stack leaves room to decode is decoded on a fresh
thread's stack.

A changed payload is written back in the encoding it was found in (compact or spaced, ASCII-only
or not), so that the store's other payloads and this one read alike.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from ._serde import _TAG

_erased_at = [0.0]  # time.monotonic() when an erasure last committed in this process


def note_erasure() -> None:
    """An erasure (:meth:`podium.storage.Store.redact_payloads`) or a deletion of runs
    (:meth:`~podium.storage.Store.delete_runs`) in this process: a record an engine kept in memory
    from before it is read again from the store (podium/engine/driving.py)."""
    _erased_at[0] = time.monotonic()


def last_erasure() -> float:
    """When an erasure last committed in this process (``time.monotonic()``; 0.0: none)."""
    return _erased_at[0]


#: Tags that wrap one string (their whole value) under this key.
_SCALARS = {"datetime": "iso", "date": "iso", "time": "iso", "decimal": "str", "uuid": "str"}


class _Int(int):
    """A JSON integer that remembers its text (compared whole with the values)."""

    text: str


class _Float(float):
    """A JSON number with a fraction or exponent that remembers its text."""

    text: str


def _int(text: str) -> _Int:
    n = _Int(text)
    n.text = text
    return n


def _float(text: str) -> _Float:
    n = _Float(text)
    n.text = text
    return n


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float)


def stored_forms(texts: Sequence[str]) -> list[str]:
    """What to look for in stored text to find ``texts``: each as it is, and as it appears inside a
    JSON string written with and without ASCII escapes (a quote, a backslash, a non-ASCII character
    are escaped). A row holding none of these holds none of the texts."""
    out: dict[str, None] = {}
    for t in texts:
        if t:
            out[t] = out[json.dumps(t, ensure_ascii=False)[1:-1]] = out[json.dumps(t)[1:-1]] = None
    return list(out)


def redact_stored(stored: str, texts: Sequence[str], replacement: str) -> tuple[str, int]:
    """``stored`` with each of ``texts`` replaced, in order, by ``replacement`` where it is data
    (see the module's docstring), and how many of the texts were replaced. Empty texts are
    ignored. Text that is not JSON is replaced as plain text."""
    texts = [t for t in dict.fromkeys(texts) if t]
    try:
        return _redact(stored, texts, replacement, False)
    except RecursionError:  # JSON nested deeper than this thread's stack leaves room to decode
        return _on_fresh_stack(stored, texts, replacement)


def _on_fresh_stack(stored: str, texts: list[str], replacement: str) -> tuple[str, int]:
    """:func:`_redact` in a new thread, whose stack is empty: JSON as deep as any stack could write
    it decodes there; deeper (no process reads it) is replaced as plain text."""
    out: list[tuple[str, int] | BaseException] = []

    def run() -> None:
        try:
            out.append(_redact(stored, texts, replacement, True))
        except BaseException as exc:  # raised in the caller's thread
            out.append(exc)

    thread = threading.Thread(target=run, name="podium-redact")
    thread.start()
    thread.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def _redact(stored: str, texts: list[str], replacement: str, too_deep_is_text: bool) -> tuple[str, int]:
    hit: set[str] = set()
    try:
        value = _DECODER.decode(stored)
    except (ValueError, RecursionError) as exc:  # not JSON: plain text
        if isinstance(exc, RecursionError) and not too_deep_is_text:
            raise
        for t in texts:
            if t in stored:
                stored = stored.replace(t, replacement)
                hit.add(t)
        return stored, len(hit)

    def string(s: str) -> str:
        for t in texts:
            if t in s:
                s = s.replace(t, replacement)
                hit.add(t)
        return s

    def whole(text: str, keep: Any) -> Any:
        if text in texts:
            hit.add(text)
            return replacement
        return keep

    # Depth first with a stack of its own, not recursion: a payload nested a few hundred levels
    # deep (which stores and reads) must not stop the erasure. Containers are copied, not changed:
    # ``value`` is encoded again below to find the encoding it was written in.
    box: list[Any] = [value]
    todo: list[tuple[Any, Any]] = [(box, 0)]
    new: Any
    while todo:
        parent, at = todo.pop()
        v = parent[at]
        if isinstance(v, str):
            parent[at] = string(v)
        elif isinstance(v, _Int | _Float):
            parent[at] = whole(v.text, v)
        elif isinstance(v, list):
            parent[at] = new = list(v)
            todo.extend((new, i) for i in range(len(new)))
        elif isinstance(v, dict):  # else true, false, null, NaN
            tag = v.get(_TAG)
            inner = v.get(_SCALARS.get(tag, "")) if isinstance(tag, str) else None
            if not isinstance(tag, str):
                parent[at] = new = {string(k): x for k, x in v.items()}
                todo.extend((new, k) for k in new)
            elif isinstance(inner, str) and len(v) == 2:
                parent[at] = whole(inner, v)
            elif tag == "bytes":
                pass
            elif tag in ("dataclass", "pydantic") and "value" in v:  # the type and its field names are code
                parent[at] = new = dict(v)
                if isinstance(v["value"], dict):
                    new["value"] = fields = dict(v["value"])
                    todo.extend((fields, k) for k in fields)
                else:
                    todo.append((new, "value"))
            else:  # the tag's own keys are its shape
                parent[at] = new = dict(v)
                todo.extend((new, k) for k in new if k != _TAG)

    if not hit:
        return stored, 0
    return _encoder(stored, value).encode(box[0]), len(hit)


_COMPACT, _SPACED = (",", ":"), (", ", ": ")


def _encoder(stored: str, value: Any) -> json.JSONEncoder:
    """The encoder that wrote ``stored`` (``value`` decoded): ASCII escapes if the text is ASCII
    (with no other characters both encodings agree), spaced separators if they reproduce it (as
    ``json.dumps`` writes), else compact (as :func:`podium._serde.dumps` writes)."""
    ascii = stored.isascii()
    compact = json.JSONEncoder(ensure_ascii=ascii, separators=_COMPACT)
    if compact.encode(value) == stored:
        return compact
    spaced = json.JSONEncoder(ensure_ascii=ascii, separators=_SPACED)
    return spaced if spaced.encode(value) == stored else compact
