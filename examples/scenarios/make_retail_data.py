"""Write the retail sample data of the pricing and recommend scenarios (seeded, so the files are the
same each time): a catalogue, purchase orders, inventory and customer orders, in the documented
column formats.

    python examples/scenarios/make_retail_data.py [FOLDER] [--seed N]

The catalogue holds the sandbox company's eight products (as in ``podium/sandbox/data/company.json``)
and 32 more in five categories; customers buy mostly within one or two favourite categories, so what
was bought together says something (the recommender's signal), with enough noise to be imperfect.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "data"
CATEGORIES = ("hiking", "camping", "running", "cycling", "climbing")
VENDORS = ("acme", "borealis", "kitewire", "fjell")
CHANNELS = ("web", "marketplace", "retail")
WAREHOUSES = ("rotterdam", "leipzig", "lyon")

#: The sandbox company's products (same cost, price, floor and channels as its ERP), with a category.
SANDBOX = [
    ("TP-30", "acme", 38.0, 79.0, 35, "web;marketplace;retail", "hiking"),
    ("SJ-01", "borealis", 72.0, 149.0, 40, "web;retail", "hiking"),
    ("RB-39", "acme", 55.0, 119.0, 38, "web;marketplace", "hiking"),
    ("FT-2", "kitewire", 31.0, 69.0, 40, "web;marketplace;retail", "running"),
    ("CS-4", "borealis", 24.0, 49.0, 35, "web", "camping"),
    ("NW-PRO", "northwind", 2.0, 9.0, 60, "web", "digital"),
    ("NW-BIZ", "northwind", 6.0, 29.0, 60, "web", "digital"),
    ("TL-2", "kitewire", 12.0, 29.0, 45, "web;marketplace", "camping"),
]


def generate(seed: int = 3, customers: int = 60, extra: int = 32) -> dict[str, list[dict[str, Any]]]:
    """The four tables as lists of rows (and each product's category, which is not in any file)."""
    rnd = random.Random(seed)
    catalogue: list[dict[str, Any]] = []
    category: dict[str, str] = {}
    for sku, vendor, cost, price, floor, channels, cat in SANDBOX:
        catalogue.append({"sku": sku, "vendor": vendor, "unit_cost": cost, "list_price": price,
                          "min_margin_pct": floor, "channels": channels})
        category[sku] = cat
    for i in range(extra):
        cat = CATEGORIES[i % len(CATEGORIES)]
        sku = f"{cat[:2].upper()}-{100 + i}"
        price = round(rnd.uniform(15, 250), 2)
        margin = rnd.uniform(0.30, 0.62)
        floor = rnd.choice((30, 35, 38, 40, 45))
        channels = ";".join(c for c in CHANNELS if rnd.random() < 0.6) if i != 7 else ""  # one sold on no channel yet
        catalogue.append({"sku": sku, "vendor": VENDORS[(i * 7 + rnd.randrange(2)) % len(VENDORS)],
                          "unit_cost": round(price * (1 - margin), 2), "list_price": price,
                          "min_margin_pct": floor, "channels": channels})
        category[sku] = cat
    statuses = ("open",) * 6 + ("received", "received", "cancelled", "draft")
    orders_po: list[dict[str, Any]] = [
        {"po_id": "PO-501", "sku": "TP-30", "qty": 200, "unit_cost": 38.0, "status": "open"},
        {"po_id": "PO-502", "sku": "RB-39", "qty": 120, "unit_cost": 55.0, "status": "open"},
        {"po_id": "PO-503", "sku": "SJ-01", "qty": 60, "unit_cost": 72.0, "status": "received"},
        {"po_id": "PO-504", "sku": "FT-2", "qty": 500, "unit_cost": 31.0, "status": "open"},
        {"po_id": "PO-505", "sku": "CS-4", "qty": 100, "unit_cost": 24.0, "status": "open"},
        {"po_id": "PO-506", "sku": "TL-2", "qty": 150, "unit_cost": 12.0, "status": "open"},
    ]
    physical = [p for p in catalogue if category[p["sku"]] != "digital"]
    for n in range(30):
        p = rnd.choice(physical)
        orders_po.append({"po_id": f"PO-{600 + n}", "sku": p["sku"], "qty": rnd.choice((20, 50, 100, 250)),
                          "unit_cost": p["unit_cost"], "status": rnd.choice(statuses)})
    inventory: list[dict[str, Any]] = []
    for p in catalogue:
        if category[p["sku"]] == "digital":
            inventory.append({"sku": p["sku"], "warehouse": "digital", "qty": 9999})
            continue
        sold_out = p["sku"] == "RB-39" or rnd.random() < 0.15
        for w in WAREHOUSES:
            if rnd.random() < 0.7:
                inventory.append({"sku": p["sku"], "warehouse": w, "qty": 0 if sold_out else rnd.choice((0, 3, 12, 40, 120))})
    by_cat: dict[str, list[str]] = {}
    for sku, cat in category.items():
        by_cat.setdefault(cat, []).append(sku)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    orders: list[dict[str, Any]] = []
    for c in range(1, customers + 1):
        likes = rnd.sample(CATEGORIES, rnd.choice((1, 1, 2)))
        pool = [s for cat in likes for s in by_cat[cat]]
        bought: list[str] = []
        for _ in range(rnd.randint(3, 8)):
            choices = pool if rnd.random() < 0.85 else [p["sku"] for p in catalogue]
            left = [s for s in choices if s not in bought]
            if left:
                bought.append(rnd.choice(left))
        if rnd.random() < 0.3:
            bought.insert(rnd.randrange(len(bought) + 1), rnd.choice(("NW-PRO", "NW-BIZ")))
        day = rnd.randint(0, 120)
        for sku in bought:
            at = start + timedelta(days=day, minutes=rnd.randint(0, 1439))
            orders.append({"customer_id": f"C{c:03d}", "sku": sku, "ts": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
            day += rnd.randint(1, 40)
    orders.sort(key=lambda o: o["ts"])
    return {"catalogue": catalogue, "purchase_orders": orders_po, "inventory": inventory, "orders": orders}


def write(folder: Path, tables: dict[str, list[dict[str, Any]]], prefix: str = "retail_") -> dict[str, str]:
    """Write each table as ``{prefix}{name}.csv`` in ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in tables.items():
        path = folder / f"{prefix}{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.DictWriter(f, fieldnames=list(rows[0]))
            out.writeheader()
            out.writerows(rows)
        paths[name] = str(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(HERE))
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    for name, path in write(Path(args.folder), generate(args.seed)).items():
        print(name, path)
