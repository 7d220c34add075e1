"""PII detection and redaction, for prompts, outputs and stored payloads.

Detectors are precise rather than eager: card numbers must pass the Luhn check and IBANs the
ISO 13616 mod-97 check, so order numbers and amounts are not mistaken for them.

    >>> from podium.guardrails import redact
    >>> redact("Mail ana@example.com, card 4111 1111 1111 1111")
    'Mail [EMAIL], card [CARD]'

Names and street addresses need a language model: install ``presidio-analyzer`` and pass
``use_presidio=True`` to add its PERSON and LOCATION findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "contains_pii", "find_pii", "redact", "redact_json", "redact_value"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    """EMAIL, PHONE, CARD, IBAN, SSN, NINO, ..."""
    start: int
    end: int
    text: str


_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# A phone-number candidate: not inside a word, a path, an id (INV-2024-00123, #2024...) or a dotted
# number (an IP address, a version). Candidates are then checked by _phone_ok.
_PHONE = re.compile(
    r"(?<![\w+/#.:-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{1,5}){1,5}(?![\w/:-]|\.\d)"
)
_GROUPS = re.compile(r"\d+")


def _phone_ok(text: str) -> bool:
    """Whether a candidate is written like a phone number rather than a date, an IP address, an
    amount or an invoice/order number. Precise rather than eager: a bare run of digits is not a phone.

    * international: ``+CC ...`` (8 to 15 digits) or ``00CC ...`` (11 to 17);
    * an area code in parentheses: ``(555) 123-4567``;
    * a national number with its trunk prefix 0: ``020 7946 0958``, ``07700 900123`` (9 to 12 digits,
      in groups of two or more);
    * the North American 3-3-4 grouping with one kind of separator: ``555-123-4567``, ``555.123.4567``.
    """
    digits = re.sub(r"\D", "", text)
    groups = _GROUPS.findall(text)
    seps = set(re.findall(r"[ .-]", text))
    if text.startswith("+"):
        return 8 <= len(digits) <= 15
    if "(" in text:
        return 7 <= len(digits) <= 15
    if "." in seps and len(groups) >= 3 and all(len(g) <= 3 for g in groups):
        return False  # dotted quads and versions
    if text.startswith("00"):
        return 11 <= len(digits) <= 17 and len(groups) >= 2
    if digits.startswith("0") and 9 <= len(digits) <= 12 and len(seps) <= 1:
        return len(groups) >= 2 and all(len(g) >= 2 for g in groups) and len(groups[0]) <= 5
    return [len(g) for g in groups] == [3, 3, 4] and groups[0][0] in "23456789" and len(seps) == 1
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")  # US social security number
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")  # UK national insurance number


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def find_pii(text: str, *, kinds: Iterable[str] | None = None, use_presidio: bool = False) -> list[Finding]:
    """Every PII finding in ``text``, in order, without overlaps (the earliest, longest wins)."""
    wanted = set(kinds) if kinds is not None else None
    found: list[Finding] = []

    def add(kind: str, m: re.Match[str]) -> None:
        if wanted is None or kind in wanted:
            found.append(Finding(kind, m.start(), m.end(), m.group()))

    for m in _EMAIL.finditer(text):
        add("EMAIL", m)
    for m in _IBAN.finditer(text):
        if _iban_ok(m.group()):
            add("IBAN", m)
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            add("CARD", m)
    for m in _SSN.finditer(text):
        add("SSN", m)
    for m in _NINO.finditer(text):
        add("NINO", m)
    for m in _PHONE.finditer(text):
        if _phone_ok(m.group()):
            add("PHONE", m)
    if use_presidio:
        found.extend(_presidio(text, wanted))
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    result: list[Finding] = []
    for f in found:
        if result and f.start < result[-1].end:
            continue  # overlaps an earlier, longer finding (a card number is not also a phone number)
        result.append(f)
    return result


def _presidio(text: str, wanted: set[str] | None) -> list[Finding]:
    try:
        from presidio_analyzer import AnalyzerEngine
    except ImportError as exc:
        raise ImportError("names and addresses need Presidio: pip install presidio-analyzer") from exc
    out = []
    for r in AnalyzerEngine().analyze(text=text, entities=["PERSON", "LOCATION"], language="en"):
        if wanted is None or r.entity_type in wanted:
            out.append(Finding(r.entity_type, r.start, r.end, text[r.start : r.end]))
    return out


def redact(text: str, *, kinds: Iterable[str] | None = None, use_presidio: bool = False) -> str:
    """``text`` with every finding replaced by ``[KIND]``."""
    out, last = [], 0
    for f in find_pii(text, kinds=kinds, use_presidio=use_presidio):
        out.append(text[last : f.start])
        out.append(f"[{f.kind}]")
        last = f.end
    out.append(text[last:])
    return "".join(out)


def contains_pii(text: str, *, kinds: Iterable[str] | None = None) -> bool:
    """Whether ``text`` holds any PII: use it to keep such prompts on the local model."""
    return bool(find_pii(text, kinds=kinds))


def redact_value(value: Any, *, kinds: Iterable[str] | None = None) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact(value, kinds=kinds)
    if isinstance(value, dict):
        return {k: redact_value(v, kinds=kinds) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, kinds=kinds) for v in value]
    return value


_TAG_FIELDS = {"$podium", "type", "b64", "iso", "str"}


def redact_json(text: str, *, kinds: Iterable[str] | None = None) -> str:
    """Redact every string value of a stored payload (Podium's JSON payload format), keeping its keys
    and the type tags of encoded objects intact, so it still reads back."""
    import json

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v, kinds=kinds)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            tagged = "$podium" in v
            return {k: x if tagged and k in _TAG_FIELDS else walk(x) for k, x in v.items()}
        return v

    return json.dumps(walk(json.loads(text)), ensure_ascii=False, separators=(",", ":"))
