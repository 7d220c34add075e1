"""What the retail scenarios (pricing, recommend) share: strict readers for their CSV files, and the
business systems they act on (a connector the client holds, else the sandbox company's).

Every reader checks the documented columns and each cell; a bad file is a ``ConfigError`` that
names the file, the line and the column expected, so anyone can run the scenarios on their own data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

from podium import ConfigError

try:
    from ._common import caseless, iso_calendar, missing_columns, read_csv
    from ._common import system as system  # the scenarios take it from here too
except ImportError:  # loaded by file path, beside _common.py
    from _common import caseless, iso_calendar, missing_columns, read_csv  # type: ignore[no-redef]
    from _common import system as system  # type: ignore[no-redef]

CATALOGUE = ("sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels")
PURCHASE_ORDERS = ("po_id", "sku", "qty", "unit_cost", "status")
INVENTORY = ("sku", "warehouse", "qty")
ORDERS = ("customer_id", "sku", "ts")


def _rows(path: str, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` of a CSV file with at least ``columns`` (extra columns are ignored); the line is
    the one the row starts on."""
    header, records = read_csv(path, columns)
    missing = [c for c in columns if c not in header]
    if missing:
        raise missing_columns(path, missing, columns, header)
    at = {c: header.index(c) for c in columns}
    for line, record in records:
        yield line, {c: record[i].strip() if i < len(record) else "" for c, i in at.items()}


def _number(path: str, line: int, column: str, text: str, what: str = "a number",
            ok: Callable[[float], bool] = lambda v: True) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not ok(value):
        # "1.234,50" (a Polish or Turkish export) or "1 234.50": "it must be a number" alone reads as nonsense there
        grouped = math.isnan(value) and bool(_GROUPED.fullmatch(text))
        raise ConfigError(f"{path}:{line}: column {column} is {repr(text) if text else 'empty'}; it must be {what}"
                          + (", written without thousands separators and with a point for decimals (1234.50)"
                             if grouped else ""))
    return value


_GROUPED = re.compile(r"[+-]?\d[\d.,' \u00a0\u202f]*[.,' \u00a0\u202f]\d+")
"""A number written with group separators or a decimal comma (``1.234,50``, ``1 234.50``, ``12,5``)."""


def _text(path: str, line: int, column: str, text: str) -> str:
    if not text:
        raise ConfigError(f"{path}:{line}: column {column} is empty; give a value")
    return text


def read_catalogue(path: str) -> dict[str, dict[str, Any]]:
    """sku -> product (vendor, unit_cost, list_price, min_margin_pct, channels as a list, line).
    An empty ``min_margin_pct`` is ``None`` (no minimum given: pricing reports the product as not
    judged, it does not fail the run); a SKU listed twice is an error naming both lines."""
    out: dict[str, dict[str, Any]] = {}
    for n, r in _rows(path, CATALOGUE):
        sku = _text(path, n, "sku", r["sku"])
        if sku in out:
            raise ConfigError(f"{path}:{n}: duplicate sku {sku!r} (first on line {out[sku]['line']}); "
                              "list each product once")
        out[sku] = {
            "sku": sku,
            "vendor": _text(path, n, "vendor", r["vendor"]),
            "unit_cost": _number(path, n, "unit_cost", r["unit_cost"], "a number >= 0", lambda v: v >= 0),
            "list_price": _number(path, n, "list_price", r["list_price"], "a number > 0", lambda v: v > 0),
            "min_margin_pct": _number(path, n, "min_margin_pct", r["min_margin_pct"], "a percentage below 100, or empty",
                                      lambda v: v < 100) if r["min_margin_pct"] else None,
            "channels": [c.strip() for c in r["channels"].split(";") if c.strip()],
            "line": n,
        }
    if not out:
        raise ConfigError(f"{path}: no products (only a header); give one row per product")
    return out


def read_purchase_orders(path: str) -> list[dict[str, Any]]:
    """The purchase orders, in file order; a ``po_id`` listed twice is an error naming both lines."""
    seen: dict[str, int] = {}
    out = []
    for n, r in _rows(path, PURCHASE_ORDERS):
        po = _text(path, n, "po_id", r["po_id"])
        if po in seen:
            raise ConfigError(f"{path}:{n}: duplicate po_id {po!r} (first on line {seen[po]}); list each order once")
        seen[po] = n
        out.append({
            "po_id": po,
            "sku": _text(path, n, "sku", r["sku"]),
            "qty": _number(path, n, "qty", r["qty"], "a number >= 0", lambda v: v >= 0),
            "unit_cost": _number(path, n, "unit_cost", r["unit_cost"], "a number >= 0", lambda v: v >= 0),
            "status": _text(path, n, "status", r["status"]),
            "line": n,
        })
    return out


def sku_key(text: str) -> str:
    """How a SKU written by another system is matched to the catalogue's: without surrounding spaces, case
    or Unicode form (``ct-0042`` is ``CT-0042``; full-width letters are the letters they are, as vendors' names
    are: ``PEN-0007`` written in full-width letters by a Japanese system is ``PEN-0007``, which before the tenth unseen-data round left its PO
    unflagged). Nothing else is merged: ``0042`` is not ``42``."""
    return caseless(unicodedata.normalize("NFKC", text).strip())


def catalogue_skus(orders: list[dict[str, Any]], catalogue: dict[str, Any]) -> list[dict[str, Any]]:
    """``orders`` with each SKU as the catalogue spells it: the exact SKU when the catalogue has it, else
    the one catalogue SKU equal to it without case (:func:`sku_key`); a SKU matching none, or two
    catalogue SKUs differing only in case, is kept as written. A purchase-order export writing SKUs in
    lower case left every PO of a product below margin unflagged (listed as of an unknown SKU)."""
    spelled: dict[str, list[str]] = {}
    for sku in catalogue:
        spelled.setdefault(sku_key(sku), []).append(sku)
    out = []
    for o in orders:
        found = spelled.get(sku_key(o["sku"]), [])
        if o["sku"] not in catalogue and len(found) == 1:
            o = {**o, "sku": found[0], "sku_as_written": o["sku"]}
        out.append(o)
    return out


def read_inventory(path: str) -> dict[str, dict[str, int]]:
    """sku -> {warehouse: qty}; the same (sku, warehouse) on several lines adds up (bins, lots)."""
    out: dict[str, dict[str, int]] = {}
    for n, r in _rows(path, INVENTORY):
        qty = _number(path, n, "qty", r["qty"], "a whole number", lambda v: v == int(v))
        sku, where = _text(path, n, "sku", r["sku"]), _text(path, n, "warehouse", r["warehouse"])
        stock = out.setdefault(sku, {})
        stock[where] = stock.get(where, 0) + int(qty)
    if not out:  # every product would be out of stock: recommend ran and said nothing, with no reason given
        raise ConfigError(f"{path}: no stock lines (only a header); give one row per product and warehouse "
                          "(a product out of stock has qty 0)")
    return out


#: Seconds since 1970 of 0001-01-01 and of the last second of 9999: the dates an order time can name.
_FIRST_SECOND, _LAST_SECOND = -62135596800.0, 253402300799.0


def _timestamp(path: str, line: int, text: str) -> float:
    from datetime import datetime

    try:
        seconds = float(text)  # seconds since the epoch
    except ValueError:
        seconds = None
    if seconds is not None and math.isfinite(seconds):
        # a time in milliseconds (1735689600000) read as seconds is 55,000 years ahead: it sorted after
        # every real order and became the customer's "latest" purchase, without a word
        if not _FIRST_SECOND <= seconds <= _LAST_SECOND:
            raise ConfigError(f"{path}:{line}: column ts is {text!r}, which as seconds since 1970 is not a date between "
                              "the years 1 and 9999; give seconds (a time in milliseconds: divide it by 1000) or an "
                              "ISO 8601 date or time (2026-03-01T10:15:00)")
        return seconds
    try:
        at = datetime.fromisoformat(iso_calendar(text).replace("Z", "+00:00"))
    except ValueError:  # nan or inf as well: they would sort anywhere and make any order the "latest"
        raise ConfigError(f"{path}:{line}: column ts is {text!r}; it must be an ISO 8601 date or time "
                          "(2026-03-01 or 2026-03-01T10:15:00) or seconds since 1970") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def read_orders(path: str) -> list[dict[str, Any]]:
    """The order lines (customer_id, sku, ts as seconds since the epoch), oldest first."""
    out = []
    for n, r in _rows(path, ORDERS):
        out.append({"customer_id": _text(path, n, "customer_id", r["customer_id"]),
                    "sku": _text(path, n, "sku", r["sku"]), "ts": _timestamp(path, n, _text(path, n, "ts", r["ts"])),
                    "line": n})
    if not out:  # nothing to learn from: recommend ranked the catalogue alphabetically, as "not ordered by anyone yet"
        raise ConfigError(f"{path}: no order lines (only a header); the recommendations are learned from what "
                          "customers bought: give one row per order line")
    out.sort(key=lambda o: (o["ts"], o["line"]))
    return out
