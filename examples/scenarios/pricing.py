"""Pricing (seed 000): a vendor changes its prices -> the catalogue is updated on every sales channel,
margins are recalculated at the new cost, open purchase orders of products now below their minimum
margin are flagged in the ERP, and finance gets an e-mail.

    podium demo pricing
    podium run examples/scenarios/pricing.py:workflow \\
        --input '{"vendor": "acme", "change_pct": 8, "effective": "2027-01-01"}'
    podium approvals; podium approvals approve RUN_ID   # a change of 20% or more waits for a person

Input: the event ``vendor``, ``change_pct`` (a number above -100, at most 10000; negative for a price cut) and
``effective`` (ISO date; default today); the files ``catalogue`` (CSV: sku, vendor, unit_cost,
list_price, min_margin_pct, channels, where channels is ``;``-separated) and ``purchase_orders``
(CSV: po_id, sku, qty, unit_cost, status), default the shipped samples; ``approve_above_pct``
(a change at least this large, up or down, waits for a ``pricing-manager``'s approval; the input may
only lower the limit, never raise it or switch the approval off: that is the operator's, set with
``PODIUM_PRICING_APPROVE_ABOVE_PCT`` where the workers run, default 20, ``off`` never asks),
``approval_timeout`` (seconds; unanswered means rejected), ``finance_to`` (default
finance@northwind.example; only an address of that domain, so the input cannot mail the margins
elsewhere) and ``writer`` (``model``, the default, or ``template``).

The arithmetic decides, never a model: new cost = unit_cost x (1 + change_pct / 100); new margin =
(list_price - new cost) / list_price x 100; a product of the vendor is below margin when its new
margin is under its ``min_margin_pct``; an open purchase order (status ``open`` or ``partially
received``, any case, ``_`` or ``-`` between the words: goods still to come) of such a product is
flagged (the mail says which were partly received: their qty is the one ordered). Figures are
compared unrounded. The model only writes the e-mail's opening
sentence, which is dropped for a fixed one if it states a number that is not in the facts.

Systems, reached only through connectors (a connector the client holds under the name wins, else the
sandbox company's): ``erp`` (openapi: ``updateProducts``, ``publishListings`` per channel,
``flagPurchaseOrders``) and ``finance_mail`` (smtp). See docs/scenarios.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import unicodedata
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from podium import ConfigError, Workflow, ai

try:
    from ._common import caseless, iso_calendar, path_of
    from ._retail import catalogue_skus, read_catalogue, read_purchase_orders, system
except ImportError:  # loaded by file path: podium run examples/scenarios/pricing.py:workflow
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import caseless, iso_calendar, path_of  # type: ignore[no-redef]
    from _retail import catalogue_skus, read_catalogue, read_purchase_orders, system  # type: ignore[no-redef]

APPROVE_ABOVE_PCT = 20.0
FINANCE = "finance@northwind.example"
#: Where the operator sets the approval limit (a percentage, or ``off``): the run's input cannot.
LIMIT_ENV = "PODIUM_PRICING_APPROVE_ABOVE_PCT"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def approval_limit() -> float | None:
    """The operator's approval limit: ``$PODIUM_PRICING_APPROVE_ABOVE_PCT`` (``off``: never ask), default 20."""
    import os

    given = os.environ.get(LIMIT_ENV, "").strip()
    if not given:
        return APPROVE_ABOVE_PCT
    if given.lower() in ("off", "none", "never"):
        return None
    try:
        value = float(given.rstrip("%"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{LIMIT_ENV} is {given!r}; give a percentage >= 0 (20), or off never to ask for approval")
    return value


def finance_address(given: Any) -> str:
    """``finance_to`` if it is one address of the finance mailbox's domain, else a clear error."""
    if not given:
        return FINANCE
    domain = FINANCE.rpartition("@")[2]
    text = str(given)
    if not re.fullmatch(r"[A-Za-z0-9._%+\-]+@" + re.escape(domain), text, re.IGNORECASE):
        raise ConfigError(f'input field "finance_to" is {text!r}; give one address @{domain} (the mail holds '
                          "margins and purchase orders: it goes to the company's finance team only)")
    return text

SAMPLE_INPUT = {
    "vendor": "acme", "change_pct": 8, "effective": "2027-01-01",
    "catalogue": "examples/scenarios/data/retail_catalogue.csv",
    "purchase_orders": "examples/scenarios/data/retail_purchase_orders.csv",
}

#: What ``podium demo pricing`` runs: a routine increase (applied at once) and a large one (a person approves).
DEMO_INPUTS = [
    {"vendor": "acme", "change_pct": 8, "effective": "2027-01-01"},
    {"vendor": "kitewire", "change_pct": 25, "effective": "2027-02-01"},
]


def _figure(given: Any) -> Any:
    """A number written as text (``"15"``, ``" 15 %"``) as the number, as ``change_pct`` is read; anything
    else as given (the checks below refuse what is not a number). Before, ``"approve_above_pct": "15"``
    was refused as "give a percentage >= 0"."""
    if isinstance(given, str):
        with contextlib.suppress(ValueError):
            return float(given.strip().rstrip("%").strip())
    return given


def event(input: Any) -> dict[str, Any]:
    """The price-change event, checked (a clear error naming the field)."""
    if not isinstance(input, dict):
        raise ConfigError('the pricing scenario needs input {"vendor": "acme", "change_pct": 8, "effective": "2027-01-01"}')
    vendor = str(input.get("vendor") or "").strip()
    if not vendor:
        raise ConfigError('input field "vendor" is missing: name the vendor whose prices change')
    if _CONTROL.search(vendor) or len(vendor) > 200:
        raise ConfigError(f'input field "vendor" is {vendor[:80]!r}; give the vendor\'s name as in the catalogue '
                          "(one line, at most 200 characters)")
    pct = input.get("change_pct")
    if pct is None:  # was shown as 'is None'
        raise ConfigError('input field "change_pct" is missing; give the change in percent, a number above -100 '
                          "and at most 10000 (8 for +8%, -5 for a 5% cut)")
    if isinstance(pct, str):
        with contextlib.suppress(ValueError):
            pct = float(pct.strip().rstrip("%"))
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct) or not -100 < pct <= 10_000:
        raise ConfigError(f'input field "change_pct" is {input.get("change_pct")!r}; give the change in percent, '
                          "a number above -100 and at most 10000 (8 for +8%, -5 for a 5% cut)")
    effective = str(input.get("effective") or date.today().isoformat())
    try:  # passed on as the calendar date: "2027-W05-1" or "20270125" went to the ERP and the mail as typed
        effective = date.fromisoformat(iso_calendar(effective.strip())).isoformat()
    except ValueError:
        raise ConfigError(f'input field "effective" is {effective!r}; give an ISO date such as 2027-01-01') from None
    ceiling = approval_limit()
    limit = _figure(input.get("approve_above_pct", ceiling))
    now = "no limit (approval is off)" if ceiling is None else f"the limit of {ceiling:g}%"
    # finite: "nan" (also JSON's NaN) passed both checks, as nan compares false with everything
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit)
                              or limit < 0):
        raise ConfigError(f'input field "approve_above_pct" is {limit!r}; give a percentage >= 0: it can only lower '
                          f"{now} (the operator sets the limit with {LIMIT_ENV})")
    if ceiling is not None and (limit is None or limit > ceiling):
        raise ConfigError(f'input field "approve_above_pct" is {limit!r}; a run can only lower {now}, never raise '
                          f"it or switch the approval off: the operator sets it with {LIMIT_ENV}")
    timeout = _figure(input.get("approval_timeout"))
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not math.isfinite(timeout) or timeout <= 0):
        raise ConfigError(f'input field "approval_timeout" is {timeout!r}; give seconds (> 0), or leave it out to wait')
    writer = str(input.get("writer") or "model")
    if writer not in ("model", "template"):
        raise ConfigError(f'input field "writer" is {writer!r}; use "model" or "template"')
    return {"vendor": vendor, "change_pct": float(pct), "effective": effective, "approval_timeout": timeout,
            "approve_above_pct": None if limit is None else float(limit), "writer": writer,
            "finance_to": finance_address(input.get("finance_to"))}


def price_for(cost: float, floor_pct: float) -> float:
    """The lowest list price (in cents, rounded up) that keeps ``floor_pct`` margin at ``cost``."""
    return math.ceil(cost / (1 - floor_pct / 100) * 100 - 1e-6) / 100


def same_vendor(name: str) -> str:
    """How a vendor's name is compared: case, Unicode form (an "ö" typed as o and a combining mark,
    as macOS and some exports write it) and runs of spaces do not matter."""
    return " ".join(caseless(unicodedata.normalize("NFKC", name)).split())


OPEN_WHOLE = frozenset({"open", "backordered", "back ordered", "on backorder"})
"""Statuses of a purchase order none of whose goods have come yet (a backorder is ordered and still to come:
before the twelfth session it was read as closed, and its PO left unflagged)."""
PARTLY_OPEN = frozenset({"partially received", "partly received", "partially delivered"})
STILL_OPEN = OPEN_WHOLE | PARTLY_OPEN
"""The statuses of a purchase order whose goods (some or all) are still to come, at the new cost."""
CLOSED = frozenset({"received", "fully received", "closed", "cancelled", "canceled", "draft", "on hold", "rejected",
                    "completed", "complete", "void", "voided", "invoiced", "billed", "delivered"})
"""Statuses known to have no goods to come at the new cost (or none ordered yet); a status in neither set is
named in the output, so a person reads it: the rule cannot tell whether its goods are still to come."""


def status_key(status: str) -> str:
    """A PO status as compared: case, Unicode form, ``_`` or ``-`` between the words and spaces do not matter."""
    return " ".join(caseless(unicodedata.normalize("NFKC", status)).replace("_", " ").replace("-", " ").split())


def still_open(status: str) -> bool:
    """Whether a PO of this status still has goods to come (``open``, ``backordered``; ``partially received``
    however an export writes it: case, ``_`` or ``-`` between the words, spaces)."""
    return status_key(status) in STILL_OPEN


def vendor_name(typed: str, products: list[dict[str, Any]]) -> str:
    """The vendor as the catalogue spells it (its most frequent spelling among the vendor's products),
    else as typed: the mail and the ERP's reasons name it as the company's records do."""
    spellings = Counter(p["vendor"] for p in products)
    return min(spellings, key=lambda v: (-spellings[v], v)) if spellings else typed


def plan(ev: dict[str, Any], catalogue: dict[str, dict[str, Any]], orders: list[dict[str, Any]]) -> dict[str, Any]:
    """The vendor's products at the new cost, which fall below their minimum margin, and the open
    purchase orders to flag: pure arithmetic on the files. A product with no ``min_margin_pct`` (an
    empty cell) is updated like the others but not judged: ``below_margin`` is ``None``, it is listed in
    ``no_min_margin_skus`` and its purchase orders are not flagged."""
    key = same_vendor(ev["vendor"])
    orders = catalogue_skus(orders, catalogue)
    factor = 1 + ev["change_pct"] / 100
    skus = []
    mine = [p for p in catalogue.values() if same_vendor(p["vendor"]) == key]
    name = vendor_name(ev["vendor"], mine)
    for p in mine:
        price, cost, new_cost, floor = p["list_price"], p["unit_cost"], p["unit_cost"] * factor, p["min_margin_pct"]
        new_margin = (price - new_cost) / price * 100
        skus.append({
            "sku": p["sku"], "vendor": p["vendor"], "channels": p["channels"], "list_price": price,
            "unit_cost": cost, "new_unit_cost": round(new_cost, 4),
            "margin_pct": round((price - cost) / price * 100, 2), "new_margin_pct": round(new_margin, 2),
            "min_margin_pct": floor, "below_margin": None if floor is None else new_margin < floor,
            "price_for_min_margin": None if floor is None else price_for(new_cost, floor),
        })
    below = {s["sku"]: s for s in skus if s["below_margin"]}
    flagged = []
    for po in orders:
        if still_open(po["status"]) and po["sku"] in below:
            s = below[po["sku"]]
            flagged.append({
                "po_id": po["po_id"], "sku": po["sku"], "qty": po["qty"], "unit_cost": po["unit_cost"],
                "status": po["status"],
                "reason": f"{po['sku']} margin {s['new_margin_pct']:.2f}% at the new cost {s['new_unit_cost']:.2f} is "
                          f"under its minimum {s['min_margin_pct']:g}% ({name} {ev['change_pct']:+g}% from "
                          f"{ev['effective']})",
            })
    return {
        "vendor_found": bool(skus),
        "vendor_name": name,
        # one name once: a catalogue writing a vendor composed on some rows, decomposed on others (as macOS exports)
        # listed it twice, to the eye the same
        "vendors": sorted({unicodedata.normalize("NFC", p["vendor"]) for p in catalogue.values()}),
        "skus": skus,
        "below_margin_skus": sorted(below),
        "flagged": flagged,
        "not_flagged_below_margin": sorted(po["po_id"] for po in orders if po["sku"] in below
                                           and not still_open(po["status"])),
        "unknown_status": sorted({po["status"] for po in orders if po["sku"] in below
                                  and status_key(po["status"]) not in STILL_OPEN | CLOSED}),
        "orders_of_unknown_skus": sorted(po["po_id"] for po in orders if po["sku"] not in catalogue),
        "no_channel_skus": sorted(s["sku"] for s in skus if not s["channels"]),
        "no_min_margin_skus": sorted(s["sku"] for s in skus if s["min_margin_pct"] is None),
    }


workflow = Workflow("scenario-pricing", description="vendor price change -> catalogue on every channel -> margins "
                    "-> flag open purchase orders below margin -> finance e-mail")


@workflow.step
async def analyse(ctx, input) -> dict[str, Any]:
    """Read the event and the files, and work out what changes (no system is touched yet)."""
    ev = event(input)
    catalogue = read_catalogue(path_of(input, "catalogue", "retail_catalogue.csv"))
    orders = read_purchase_orders(path_of(input, "purchase_orders", "retail_purchase_orders.csv"))
    return {"event": ev, **plan(ev, catalogue, orders)}


@workflow.step
async def approve(ctx, analyse) -> dict[str, Any]:
    """A change at least ``approve_above_pct`` large waits for a pricing manager; smaller ones go ahead."""
    ev = analyse["event"]
    if not analyse["vendor_found"]:
        return {"needed": False, "approved": False, "by": "nothing to change"}
    limit = ev["approve_above_pct"]
    if limit is None or abs(ev["change_pct"]) < limit:
        return {"needed": False, "approved": True, "by": "policy"}
    timeout = ev["approval_timeout"]
    decision = await ctx.approval(
        {"vendor": analyse["vendor_name"], "change_pct": ev["change_pct"], "effective": ev["effective"],
         "skus": len(analyse["skus"]), "below_margin_skus": analyse["below_margin_skus"],
         "flagged_pos": [f["po_id"] for f in analyse["flagged"]]},
        role="pricing-manager",
        title=f"{analyse['vendor_name']} changes prices by {ev['change_pct']:+g}% from {ev['effective']}: update "
              f"{len(analyse['skus'])} product(s) on every channel and flag {len(analyse['flagged'])} purchase order(s)?",
        timeout=float(timeout) if timeout else None,
        default={"approved": False, "by": "sla (nobody decided in time)"},
    )
    return {"needed": True, "approved": bool(decision["approved"]), "by": decision.get("by", ""),
            "comment": decision.get("comment", "")}


@workflow.step
async def catalogue(ctx, analyse, approve) -> dict[str, Any]:
    """The product master at the new cost, then each sales channel's listing (one batch per channel)."""
    if not approve["approved"]:
        return {"channels": {}}
    ev, erp = analyse["event"], system(ctx, "erp")
    await erp.call("updateProducts", {"body": {"products": [
        {"sku": s["sku"], "vendor": s.get("vendor", ev["vendor"]), "unit_cost": s["new_unit_cost"], "list_price": s["list_price"],
         "channels": ";".join(s["channels"]),
         **({} if s["min_margin_pct"] is None else {"min_margin_pct": s["min_margin_pct"]})} for s in analyse["skus"]]}})
    channels: dict[str, list[dict[str, Any]]] = {}
    for s in analyse["skus"]:
        for ch in s["channels"]:
            channels.setdefault(ch, []).append({"sku": s["sku"], "unit_cost": s["new_unit_cost"], "list_price": s["list_price"]})
    for ch, items in sorted(channels.items()):
        await erp.call("publishListings", {"channel": ch, "body": {"items": items, "effective": ev["effective"]}})
    return {"channels": {ch: len(items) for ch, items in sorted(channels.items())}}


@workflow.step
async def flag(ctx, analyse, approve) -> dict[str, Any]:
    """Flag the open purchase orders of products now below their minimum margin, in the ERP."""
    if not approve["approved"] or not analyse["flagged"]:
        return {"flagged": []}
    flags = [{**f, "qty": int(f["qty"]) if float(f["qty"]).is_integer() else f["qty"]} for f in analyse["flagged"]]
    answer = await system(ctx, "erp").call("flagPurchaseOrders", {"body": {"flags": flags}})
    await ctx.metric("pricing_flagged_pos", len(flags), kind="counter")
    return {"flagged": list(answer.get("flagged") or [f["po_id"] for f in flags])}


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", ".")) for n in _NUMBER.findall(text)}


async def opening(ctx, ev: dict[str, Any], analyse: dict[str, Any]) -> tuple[str, str]:
    """The e-mail's opening sentence and who wrote it: the model, when what it writes states the
    change and both counts, holds no number that is not in the facts, is 6 to 60 words and ends a
    sentence; else the fixed one (what a 135M model writes usually fails: docs/scenarios.md)."""
    n_below, n_pos, vendor = len(analyse["below_margin_skus"]), len(analyse["flagged"]), analyse["vendor_name"]
    fixed = (f"{vendor} changes its prices by {ev['change_pct']:+g}% from {ev['effective']}: "
             f"{n_below} of {len(analyse['skus'])} products fall below their minimum margin and "
             f"{n_pos} open purchase orders are flagged for review.")
    if ev["writer"] != "model":
        return fixed, "template"
    facts = (f"Vendor: {vendor}. Price change: {ev['change_pct']:+g}% from {ev['effective']}. "
             f"Products affected: {len(analyse['skus'])}. Below minimum margin: {n_below}. "
             f"Open purchase orders flagged: {n_pos}.")
    try:
        reply = await ai.llm(ctx, f"{facts}\n\nWrite one sentence for the finance team that states these facts.",
                             system="You write short, exact notes for a finance team. Use only the facts given.",
                             max_tokens=70, temperature=0.0, name="finance_opening")
    except Exception:
        return fixed, "template"
    text = " ".join(reply.text.split())
    words = len(text.split())
    must = _numbers(f"{abs(ev['change_pct']):g} {n_below} {n_pos}")
    if (not 6 <= words <= 60 or not text.endswith((".", "!")) or not must <= _numbers(text) <= _numbers(facts)
            or re.search(r"\b(as an ai|language model|unable|cannot)\b", text, re.IGNORECASE)):
        return fixed, "template"
    return text, "model"


def _width(text: str) -> int:
    """Columns ``text`` takes in a fixed-width font: a wide (CJK) character takes two, a combining mark none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


@workflow.step
async def alert(ctx, analyse, approve, catalogue, flag) -> dict[str, Any]:
    """E-mail finance what changed (the model may write the opening sentence; the figures are a table)."""
    ev = analyse["event"]
    if not approve["approved"]:
        return {"sent": False}
    intro, source = await opening(ctx, ev, analyse)
    below = [s for s in analyse["skus"] if s["below_margin"]]
    lines = [intro, "",
             f"Catalogue: {len(analyse['skus'])} product(s) of {analyse['vendor_name']} now cost {ev['change_pct']:+g}% from "
             f"{ev['effective']}; updated on " + (", ".join(f"{ch} ({n})" for ch, n in catalogue["channels"].items()) or
                                                  "no channel") + "."]
    if analyse["no_channel_skus"]:
        lines.append(f"Sold on no channel (master data only): {', '.join(analyse['no_channel_skus'])}.")
    if analyse["no_min_margin_skus"]:
        lines.append("No minimum margin in the catalogue (min_margin_pct empty; margin not judged, purchase orders "
                     f"not flagged): {', '.join(analyse['no_min_margin_skus'])}.")
    width = max([10, *(_width(s["sku"]) for s in below), *(_width(f[k]) for f in analyse["flagged"] for k in ("po_id", "sku"))])
    if below:
        lines += ["", "Below their minimum margin at the new cost:",
                  f"{_pad('sku', width)} {'cost':>9} {'new cost':>9} {'price':>9} {'margin':>7} {'new':>7} {'min':>5} {'price for min':>13}"]
        lines += [f"{_pad(s['sku'], width)} {s['unit_cost']:>9.2f} {s['new_unit_cost']:>9.2f} {s['list_price']:>9.2f} "
                  f"{s['margin_pct']:>6.1f}% {s['new_margin_pct']:>6.1f}% {s['min_margin_pct']:>4g}% {s['price_for_min_margin']:>13.2f}"
                  for s in below]
    if analyse["flagged"]:
        lines += ["", "Open purchase orders flagged in the ERP:"]
        lines += [f"{_pad(f['po_id'], width)} {_pad(f['sku'], width)} qty {f['qty']:g} at {f['unit_cost']:.2f}"
                  + (" (partially received: qty ordered)" if status_key(f["status"]) in PARTLY_OPEN else "")
                  for f in analyse["flagged"]]
    lines += ["", "Decided by rule: margin = (list price - new cost) / list price; below when under the product's "
              "min_margin_pct. Sent by Podium (scenario-pricing)."]
    subject = (f"{analyse['vendor_name']} {ev['change_pct']:+g}% from {ev['effective']}: {len(below)} product(s) below margin, "
               f"{len(analyse['flagged'])} PO(s) flagged")
    sent = await system(ctx, "finance_mail").call("send", {"to": ev["finance_to"], "subject": subject, "text": "\n".join(lines)})
    return {"sent": True, "to": ev["finance_to"], "subject": subject, "opening_by": source,
            "message_id": sent.get("message_id") if isinstance(sent, dict) else None}


def names(vendors: list[str]) -> str:
    """Vendor names for a message, each in double quotes: joined by commas alone, ``Ferretería del Norte,
    S.A. de C.V., GreenThumb (UK) Ltd`` read as four vendors (sixth unseen-data round)."""
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in vendors)


@workflow.step
async def outcome(analyse, approve, catalogue, flag, alert) -> dict[str, Any]:
    """What was decided and what each system was told."""
    ev = analyse["event"]
    if not analyse["vendor_found"]:
        message = (f"vendor {ev['vendor']!r} is not in the catalogue; nothing was changed "
                   f"(its vendors are: {names(analyse['vendors'])})")
    elif not approve["approved"]:
        message = f"the change was not approved (by {approve['by']}); nothing was changed"
    else:
        message = (f"{len(analyse['skus'])} product(s) updated, {len(analyse['below_margin_skus'])} below margin, "
                   f"{len(flag['flagged'])} purchase order(s) flagged, finance alerted")
    unknown = analyse.get("unknown_status", [])  # a run recorded before the twelfth session has none
    if unknown and analyse["vendor_found"]:
        message += (f"; purchase orders of products below margin with a status the rule does not know "
                    f"({names(unknown)}) were not flagged: see below_margin_not_open_pos and check them")
    return {
        "vendor": analyse["vendor_name"], "change_pct": ev["change_pct"], "effective": ev["effective"],
        "vendor_found": analyse["vendor_found"], "applied": bool(approve["approved"]), "approval": approve,
        "message": message,
        "below_margin_skus": analyse["below_margin_skus"],
        "flagged_pos": [f["po_id"] for f in analyse["flagged"]],
        "skus": analyse["skus"],
        "channels_updated": catalogue["channels"],
        "no_channel_skus": analyse["no_channel_skus"],
        "no_min_margin_skus": analyse["no_min_margin_skus"],
        "below_margin_not_open_pos": analyse["not_flagged_below_margin"],
        "unknown_statuses": analyse.get("unknown_status", []),
        "orders_of_unknown_skus": analyse["orders_of_unknown_skus"],
        "finance_alert": alert,
    }
