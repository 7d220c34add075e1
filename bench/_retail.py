"""The pricing and recommend entries of ``bench/scenarios.py``: on the shipped samples and on data the
scenarios never saw (generated here with another seed), each checked against an independent
computation from the files, not against the scenario's own figures."""

from __future__ import annotations

import atexit
import csv
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "scenarios" / "data"


def expected_flags(catalogue: str, orders: str, vendor: str, pct: float) -> tuple[set[str], set[str]]:
    """The vendor's SKUs under their minimum margin at the new cost, and the open POs of those SKUs."""
    below = set()
    with open(catalogue, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["vendor"] == vendor:
                price, cost = float(r["list_price"]), float(r["unit_cost"]) * (1 + pct / 100)
                if (price - cost) / price * 100 < float(r["min_margin_pct"]):
                    below.add(r["sku"])
    with open(orders, encoding="utf-8") as f:
        flagged = {r["po_id"] for r in csv.DictReader(f) if r["status"] == "open" and r["sku"] in below}
    return below, flagged


def pricing_metric(input: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def metric(out: dict[str, Any]) -> dict[str, Any]:
        below, flagged = expected_flags(input["catalogue"], input["purchase_orders"], input["vendor"], input["change_pct"])
        return {"flagged_pos_exact": set(out["flagged_pos"]) == flagged, "flagged_pos": len(out["flagged_pos"]),
                "expected_flagged_pos": len(flagged), "below_margin_exact": set(out["below_margin_skus"]) == below,
                "applied": out["applied"], "finance_alert_by": out["finance_alert"].get("opening_by")}
    return metric


def recommend_metric(input: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def metric(out: dict[str, Any]) -> dict[str, Any]:
        stock: dict[str, int] = {}
        with open(input["inventory"], encoding="utf-8") as f:
            for r in csv.DictReader(f):
                stock[r["sku"]] = stock.get(r["sku"], 0) + int(r["qty"])
        with open(input["catalogue"], encoding="utf-8") as f:
            price = {r["sku"]: float(r["list_price"]) for r in csv.DictReader(f)}
        recs = out["recommendations"]
        q = out["quality"]
        return {"out_of_stock": q["out_of_stock"] + sum(stock.get(r["sku"], 0) <= 0 for r in recs),
                "stale_price": q["stale_price"] + sum(r["price"] != price.get(r["sku"]) for r in recs),
                "recommendations_checked": q["recommendations"] + len(recs),
                **{k: q[k] for k in ("customers", "k", "hit_rate", "popularity_hit_rate", "hit_rate_when_in_stock")}}
    return metric


def scenarios(make: Callable[..., Any]) -> list[Any]:
    """The entries: ``make`` is ``bench/scenarios.py``'s ``Scenario``."""
    import importlib

    gen = importlib.import_module("examples.scenarios.make_retail_data")
    folder = Path(tempfile.mkdtemp(prefix="podium-bench-retail-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    unseen = gen.write(folder, gen.generate(seed=1017, customers=120, extra=60), prefix="unseen_")
    sample = {"catalogue": str(DATA / "retail_catalogue.csv"), "purchase_orders": str(DATA / "retail_purchase_orders.csv"),
              "inventory": str(DATA / "retail_inventory.csv"), "orders": str(DATA / "retail_orders.csv")}
    p1 = {"vendor": "acme", "change_pct": 8, "effective": "2027-01-01", **{k: sample[k] for k in ("catalogue", "purchase_orders")}}
    p2 = {"vendor": "fjell", "change_pct": 27.5, "effective": "2027-02-01",
          **{k: unseen[k] for k in ("catalogue", "purchase_orders")}}
    r1 = {"customer_id": "C004", "k": 5, "evaluate": True, **{k: sample[k] for k in ("catalogue", "inventory", "orders")}}
    r2 = {"customer_id": "C010", "k": 5, "evaluate": True, **{k: unseen[k] for k in ("catalogue", "inventory", "orders")}}
    return [
        make(name="pricing", module="examples.scenarios.pricing", input=p1, metric=pricing_metric(p1)),
        make(name="pricing-unseen", module="examples.scenarios.pricing", input=p2, metric=pricing_metric(p2)),
        make(name="recommend", module="examples.scenarios.recommend", input=r1, metric=recommend_metric(r1)),
        make(name="recommend-unseen", module="examples.scenarios.recommend", input=r2, metric=recommend_metric(r2)),
    ]
