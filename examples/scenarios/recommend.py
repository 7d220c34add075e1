"""Recommend (seed 003): products for a customer, only what is in stock, at the current price, with a
delivery estimate, from what customers bought together; optionally handed to the marketing tool.

    podium demo recommend
    podium run examples/scenarios/recommend.py:workflow --input '{"customer_id": "C004", "k": 5}'

Input: ``customer_id``; ``k`` (default 5); the files ``catalogue`` (CSV: sku, vendor, unit_cost,
list_price, min_margin_pct, channels; ``list_price`` is the current price), ``inventory`` (CSV: sku,
warehouse, qty) and ``orders`` (CSV: customer_id, sku, ts), default the shipped samples;
``exclude_owned`` (default true: nothing the customer already bought); ``delivery_days`` (warehouse
-> working days to deliver; default rotterdam 1, leipzig 2, lyon 3, digital 0),
``default_delivery_days`` (5, for any other warehouse), ``today`` (ISO date the estimate counts
from; default today); ``campaign`` (a marketing campaign id: the customer is enrolled with the
recommendations as the note); ``evaluate`` (true: also measure the hit rate on each customer's
latest order, held out).

The recommender is item-to-item collaborative filtering on the orders: two products are similar when
the same customers bought both (co-occurrence, cosine-normalised by how many bought each); a product's
score for a customer is the sum of its similarity to everything the customer bought. Products with
no signal are ranked by popularity. No model decides anything here.

Rules that always hold: a product is recommended only when it is in the catalogue and its quantity
summed over all warehouses is above 0; its price is the catalogue's ``list_price``; it ships from the
fastest warehouse that holds it (fewest delivery days; on a tie, the one holding most), and ``by`` is
``today`` plus those working days (Monday to Friday).
"""

from __future__ import annotations

import heapq
import math
import sys
import unicodedata
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from podium import ConfigError, Workflow

try:
    from ._common import caseless, flag, iso_calendar, number, path_of
    from ._retail import read_catalogue, read_inventory, read_orders, system
except ImportError:  # loaded by file path: podium run examples/scenarios/recommend.py:workflow
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import caseless, flag, iso_calendar, number, path_of  # type: ignore[no-redef]
    from _retail import read_catalogue, read_inventory, read_orders, system  # type: ignore[no-redef]

DELIVERY_DAYS = {"rotterdam": 1, "leipzig": 2, "lyon": 3, "digital": 0}
DEFAULT_DELIVERY_DAYS = 5

SAMPLE_INPUT = {
    "customer_id": "C004", "k": 5,
    "catalogue": "examples/scenarios/data/retail_catalogue.csv",
    "inventory": "examples/scenarios/data/retail_inventory.csv",
    "orders": "examples/scenarios/data/retail_orders.csv",
}

#: What ``podium demo recommend`` runs: a regular customer (enrolled in the gear campaign) and a new one.
DEMO_INPUTS = [
    {"customer_id": "C004", "k": 5, "campaign": "CMP-GEAR"},
    {"customer_id": "C999", "k": 3},
]


class Recommender:
    """Item-to-item co-occurrence over customers' purchases (what each customer ever bought)."""

    def __init__(self, orders: list[dict[str, Any]]) -> None:
        self.bought: dict[str, set[str]] = defaultdict(set)
        for o in orders:
            self.bought[o["customer_id"]].add(o["sku"])
        self.count: Counter[str] = Counter(s for skus in self.bought.values() for s in skus)
        self.together: dict[str, Counter[str]] = defaultdict(Counter)
        for skus in self.bought.values():
            for a in skus:
                for b in skus:
                    if a != b:
                        self.together[a][b] += 1

    def similarity(self, a: str, b: str) -> float:
        n = self.together[a][b] if a in self.together else 0
        return n / math.sqrt(self.count[a] * self.count[b]) if n else 0.0

    def rank(self, customer: str, candidates: list[str], k: int) -> list[dict[str, Any]]:
        """The top ``k`` of ``candidates`` for ``customer``, each with its score and the reason."""
        history = sorted(self.bought.get(customer, set()))
        # only a product that shares a buyer with one the customer bought scores above 0: score those, and let the
        # others follow by popularity (scoring every candidate against the whole history took minutes in
        # ``evaluate`` on a catalogue of 20,000 products)
        allowed = set(candidates)
        related = {sku for h in history for sku in self.together.get(h, ()) if sku in allowed}
        scored = []
        for sku in sorted(related):
            parts = [(self.similarity(h, sku), h) for h in history]
            score = sum(p for p, _ in parts)
            best = max(parts, default=(0.0, ""))
            scored.append((-score, -self.count[sku], sku, best[1]))
        scored.sort()
        if len(scored) < k:
            scored += [(0.0, neg_count, sku, "") for neg_count, sku in heapq.nsmallest(
                k - len(scored), ((-self.count[sku], sku) for sku in candidates if sku not in related))]
        out = []
        for neg, _, sku, because in scored[:k]:
            if -neg > 0:
                reason = (f"{self.together[because][sku]} customer(s) who bought {because} also bought it")
            elif self.count[sku]:
                reason = f"popular: bought by {self.count[sku]} customer(s)"
            else:
                reason = "in stock; not ordered by anyone yet"
            out.append({"sku": sku, "score": round(-neg, 4), "reason": reason})
        return out


#: The longest delivery time the input may give (the estimate counts working days one by one).
MAX_DELIVERY_DAYS = 365


def working_days_after(start: date, days: int) -> date:
    d = start
    while days > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d


def delivery(stock: dict[str, int], days: dict[str, int], default: int, today: date) -> dict[str, Any]:
    """The fastest warehouse holding the product (on a tie, the one holding most) and the date."""
    # a warehouse is found in ``days`` as an id is (id_key): "São Paulo" written decomposed in the stock file
    # (as macOS writes it) missed the "São Paulo" of delivery_days and took the default 5 days
    d, _, where = min((days.get(id_key(w), default), -q, w) for w, q in stock.items() if q > 0)
    return {"warehouse": where, "days": d, "by": working_days_after(today, d).isoformat()}


def options(input: dict[str, Any]) -> dict[str, Any]:
    """The run's settings, checked (a clear error naming the field)."""
    # whole numbers, as JSON numbers or as text ("3": a form or a shell writes them so, and pricing, fraud and
    # churn read them so); a word, a fraction or an out-of-range value is an error naming the field
    k = number(input, "k", 5, low=1, high=100, whole=True, hint="a whole number from 1 to 100")
    given = input.get("delivery_days") or {}
    if not isinstance(given, dict):
        given = None
    days_hint = (f"whole days >= 0 and at most {MAX_DELIVERY_DAYS} for each warehouse, for example "
                 '{"rotterdam": 1}')
    try:
        given = {w: number({"d": v}, "d", None, low=0, high=MAX_DELIVERY_DAYS, whole=True, hint="")
                 for w, v in given.items()} if given is not None else None
    except ConfigError:
        given = None
    if given is None or None in given.values():
        raise ConfigError(f'input field "delivery_days" is {input.get("delivery_days")!r}; give {days_hint}')
    default = number(input, "default_delivery_days", DEFAULT_DELIVERY_DAYS, low=0, high=MAX_DELIVERY_DAYS, whole=True,
                     hint=f"whole days >= 0 and at most {MAX_DELIVERY_DAYS}")
    try:
        today = date.fromisoformat(iso_calendar(str(input.get("today") or date.today().isoformat())))
    except ValueError:
        raise ConfigError(f'input field "today" is {input.get("today")!r}; give an ISO date such as 2026-12-01') from None
    keyed: dict[str, str] = {}
    for w in given:
        other = keyed.setdefault(id_key(str(w)), str(w))
        if other != str(w) and given[other] != given[w]:
            # {"Mumbai": 1, "MUMBAI": 3}: one warehouse to the lookup, and the last one silently won
            raise ConfigError(f'input field "delivery_days" names {other!r} and {str(w)!r}, one warehouse (case, '
                              f"spaces and Unicode form do not matter), with {given[other]} and {given[w]} days; "
                              "give it once")
    days = {**DELIVERY_DAYS, **{id_key(str(w)): v for w, v in given.items()}}
    return {"k": k, "days": days, "default": default, "today": today,
            "exclude_owned": flag(input, "exclude_owned", True), "evaluate": flag(input, "evaluate", False)}


def known_warehouses(given: dict[str, Any], stock: dict[str, dict[str, int]], path: str) -> None:
    """Every warehouse ``delivery_days`` names is one of the inventory's (as :func:`id_key` compares them). Before,
    ``{"LODZ": 1}`` for the warehouse ``Łódź`` was taken without a word and its products were promised in the default
    days (twelfth unseen-data round)."""
    there = {id_key(w): w for per in stock.values() for w in per}
    for w in given:
        if id_key(str(w)) not in there:
            raise ConfigError(f'input field "delivery_days" names {str(w)!r}, which is no warehouse of the inventory '
                              f"({path}: {', '.join(repr(n) for n in sorted(there.values()))}); write it as the "
                              "inventory does (case, spaces and Unicode form do not matter), or leave it out")


def id_key(text: str) -> str:
    """How ids (customer ids, SKUs) are compared: without surrounding spaces, case or Unicode form
    (``c004`` is ``C004``, ``é`` typed composed or not is one letter, ``PEN-7`` in full-width letters is ``PEN-7``).
    Nothing else is merged: ``0042`` is not ``42`` and ``C 004`` is not ``C004``."""
    return caseless(unicodedata.normalize("NFKC", text).strip())


def same_ids(catalogue: dict[str, Any], stock: dict[str, dict[str, int]], orders: list[dict[str, Any]],
             path: str = "catalogue") -> None:
    """Write every SKU of ``stock`` and ``orders`` as the catalogue spells it (in place): exports of three
    systems disagree on case, and ``sku-7`` in stock left ``SKU-7`` unrecommended. Two catalogue SKUs
    differing only in case are an error naming both lines. Customer ids are kept as the orders spell
    them: a system with case-sensitive ids has ``C004`` and ``c004`` as two people, whose histories
    must not be merged (:func:`customer_of` finds the one asked about)."""
    canon: dict[str, str] = {}
    for sku, product in catalogue.items():
        first = canon.setdefault(id_key(sku), sku)
        if first != sku:
            raise ConfigError(f"{path}:{product['line']}: sku {sku!r} differs from {first!r} (line "
                              f"{catalogue[first]['line']}) only in case; SKUs are compared without case, rename one")
    for sku in list(stock):
        to = canon.get(id_key(sku), sku)
        if to != sku:
            merged = stock.setdefault(to, {})
            for where, qty in stock.pop(sku).items():
                merged[where] = merged.get(where, 0) + qty
    for o in orders:
        o["sku"] = canon.get(id_key(o["sku"]), o["sku"])


def customer_of(customer: str, orders: list[dict[str, Any]]) -> str:
    """The customer id of the orders that ``customer`` (the id asked about) names: itself when the orders
    spell it so, else its one spelling there without case (``c004`` asked, ``C004`` in the orders). Two
    spellings and neither exact is an error: they may be two people, and which one is meant cannot be told."""
    spellings = sorted({o["customer_id"] for o in orders if id_key(o["customer_id"]) == id_key(customer)})
    if customer in spellings or not spellings:
        return customer
    if len(spellings) > 1:
        raise ConfigError(f"input field 'customer_id': {customer!r} matches {' and '.join(map(repr, spellings))} in the "
                          "orders, which differ only in case (two customers, or one spelled two ways); give the id as "
                          "the orders spell it")
    return spellings[0]


def recommend_for(customer: str, model: Recommender, catalogue: dict[str, Any], stock: dict[str, dict[str, int]],
                  opt: dict[str, Any], in_stock: list[str] | None = None) -> list[dict[str, Any]]:
    """The recommendations of ``customer``: in stock, at the current price, with a delivery estimate.
    ``in_stock``: the catalogue's SKUs in stock, sorted (computed when not given)."""
    owned = model.bought.get(customer, set()) if opt["exclude_owned"] else set()
    if in_stock is None:
        in_stock = [s for s in sorted(catalogue) if sum(stock.get(s, {}).values()) > 0]
    candidates = [s for s in in_stock if s not in owned]
    out = []
    for r in model.rank(customer, candidates, opt["k"]):
        sku = r["sku"]
        out.append({"sku": sku, "price": catalogue[sku]["list_price"], "in_stock": sum(stock[sku].values()),
                    "delivery": delivery(stock[sku], opt["days"], opt["default"], opt["today"]),
                    "reason": r["reason"], "score": r["score"]})
    return out


def evaluate(catalogue: dict[str, Any], stock: dict[str, dict[str, int]], orders: list[dict[str, Any]],
             opt: dict[str, Any]) -> dict[str, Any]:
    """Hold out each customer's latest order line (when it is not a repeat of something bought before),
    train on the rest, and count how often the held-out product is among the ``k`` recommended; beside
    it the same count for "the k most popular in-stock products" (the baseline to beat)."""
    last: dict[str, dict[str, Any]] = {}
    for o in orders:  # oldest first: the last one seen is the latest
        last[o["customer_id"]] = o
    held = {id(o) for o in last.values()}
    train = [o for o in orders if id(o) not in held]
    model = Recommender(train)
    popular = Recommender([])
    popular.count = model.count
    hits = base = evaluated = in_stock = hits_in_stock = 0
    shown = out_of_stock = stale = 0
    stocked = [s for s in sorted(catalogue) if sum(stock.get(s, {}).values()) > 0]
    for customer, o in sorted(last.items()):
        if o["sku"] in model.bought.get(customer, set()) or not model.bought.get(customer):
            continue  # a repeat purchase, or a customer with nothing else to learn from
        evaluated += 1
        recs = recommend_for(customer, model, catalogue, stock, opt, stocked)
        pop = [r["sku"] for r in popular.rank(customer, [r for r in stocked if r not in model.bought[customer]],
                                              opt["k"])]
        hit = o["sku"] in {r["sku"] for r in recs}
        hits += hit
        base += o["sku"] in pop
        if sum(stock.get(o["sku"], {}).values()) > 0:
            in_stock += 1
            hits_in_stock += hit
        shown += len(recs)
        out_of_stock += sum(sum(stock.get(r["sku"], {}).values()) <= 0 for r in recs)
        stale += sum(r["price"] != catalogue[r["sku"]]["list_price"] for r in recs)
    return {"customers": evaluated, "k": opt["k"],
            "hit_rate": round(hits / evaluated, 4) if evaluated else None,
            "popularity_hit_rate": round(base / evaluated, 4) if evaluated else None,
            "hit_rate_when_in_stock": round(hits_in_stock / in_stock, 4) if in_stock else None,
            "recommendations": shown, "out_of_stock": out_of_stock, "stale_price": stale}


workflow = Workflow("scenario-recommend", description="orders -> item co-occurrence -> in-stock products at the "
                    "current price with a delivery estimate -> marketing")


@workflow.step
async def recommend(ctx, input) -> dict[str, Any]:
    """Read the files and rank the in-stock products for the customer (one durable step)."""
    if not isinstance(input, dict) or input.get("customer_id") is None:
        raise ConfigError('the recommend scenario needs input {"customer_id": "C004"} (and optionally "k")')
    if not str(input["customer_id"]).strip():
        raise ConfigError("input field 'customer_id' is blank; give the customer's id ({\"customer_id\": \"C004\"})")
    customer = str(input["customer_id"]).strip()
    opt = options(input)
    where = path_of(input, "catalogue", "retail_catalogue.csv")
    catalogue = read_catalogue(where)
    stocked_at = path_of(input, "inventory", "retail_inventory.csv")
    stock = read_inventory(stocked_at)
    known_warehouses(input.get("delivery_days") or {}, stock, stocked_at)
    orders = read_orders(path_of(input, "orders", "retail_orders.csv"))
    same_ids(catalogue, stock, orders, where)
    customer = customer_of(customer, orders)
    model = Recommender(orders)
    recs = recommend_for(customer, model, catalogue, stock, opt)
    out: dict[str, Any] = {
        "customer_id": customer, "known_customer": customer in model.bought,
        "bought": sorted(model.bought.get(customer, set())), "recommendations": recs,
        "today": opt["today"].isoformat(),
        "catalogue": {"products": len(catalogue), "in_stock": sum(sum(stock.get(s, {}).values()) > 0 for s in catalogue)},
    }
    if len(recs) < opt["k"]:
        out["note"] = shortfall(customer, model, catalogue, stock, opt, len(recs))
    if opt["evaluate"]:
        out["quality"] = evaluate(catalogue, stock, orders, opt)
    return out


def shortfall(customer: str, model: Recommender, catalogue: dict[str, Any], stock: dict[str, dict[str, int]],
              opt: dict[str, Any], shown: int) -> str:
    """Why fewer than ``k`` products are recommended: an empty list came with no reason (a customer who
    had bought every product in stock, or a stock file of zeros, read as "nothing to recommend")."""
    stocked = [s for s in catalogue if sum(stock.get(s, {}).values()) > 0]
    owned = sum(s in model.bought.get(customer, set()) for s in stocked) if opt["exclude_owned"] else 0
    text = (f"{shown} of the {opt['k']} asked for: {len(stocked)} of the catalogue's {len(catalogue)} product(s) are in "
            "stock (qty summed over the warehouses above 0)")
    if owned:
        text += (f", and the customer already bought {owned} of them (\"exclude_owned\": false recommends those "
                 "too)")
    return text


@workflow.step
async def push(ctx, input, recommend) -> dict[str, Any]:
    """Enrol the customer in the marketing campaign ``campaign``, the recommendations as the note."""
    campaign = input.get("campaign")
    if not campaign or not recommend["recommendations"]:
        return {"pushed": False}
    note = "recommended: " + ", ".join(f"{r['sku']} ({r['price']:.2f}, by {r['delivery']['by']})"
                                       for r in recommend["recommendations"])
    await system(ctx, "marketing").call("addToCampaign", {"campaign_id": str(campaign), "body": {
        "customer_id": recommend["customer_id"], "note": note}})
    return {"pushed": True, "campaign": str(campaign), "note": note}


@workflow.step
async def outcome(recommend, push) -> dict[str, Any]:
    return {**recommend, "marketing": push}
