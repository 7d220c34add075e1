"""Retail data (pricing, recommend) for the third unseen-data round (docs/status.md, seventh session):
an independent generator. 220 products of five vendors (``Ærø Tekstil ApS``, ``Šumava Outdoor s.r.o.``,
``Nordlicht, GmbH`` with a comma, ``café-bergen``, ``大月 Gear``), channels ``shop.ch; ricardo.ch;
galaxus/outdoor; b2b (EU)`` with empty entries, margins with decimals, list prices with spaces; 520 POs
with statuses ``open/Open/OPEN/open /received/partially received/cancelled/on hold/draft`` and two of
SKUs the catalogue lacks; stock in ``Zürich-Nord``, ``rotterdam``, ``Łódź 2``, ``digital`` with
corrections (negative lines) and a SKU the catalogue lacks; 450 customers whose baskets follow
bundles of 4-6 products (not categories), with ids ``Zoë-17``, ``客户-22``, ``kunde-ä-3``; order times
in five forms (Z, offset, date only, a space instead of T, epoch seconds with a fraction).
retail3_shop_catalogue.csv (recommend's) leaves min_margin_pct empty on
every 17th product. ``python make_retail.py OUT``."""
from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from export import header_only, write

CATALOGUE = ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"]
POS = ["po_id", "sku", "qty", "unit_cost", "status"]
INVENTORY = ["sku", "warehouse", "qty"]
ORDERS = ["customer_id", "sku", "ts"]
VENDORS = ["Ærø Tekstil ApS", "Šumava Outdoor s.r.o.", "Nordlicht, GmbH", "café-bergen", "大月 Gear"]
CHANNELS = ["shop.ch", "ricardo.ch", "galaxus/outdoor", "b2b (EU)"]
STATUSES = ["open", "Open", "OPEN", "open ", "received", "partially received", "cancelled", "on hold", "draft"]
WAREHOUSES = ["Zürich-Nord", "rotterdam", "Łódź 2", "digital"]


def main(out: Path) -> dict:
    rng = random.Random(3003)
    products = []
    for i in range(220):
        vendor = VENDORS[i % 5]
        cost = round(rng.uniform(3, 400), 2)
        margin = rng.uniform(0.12, 0.6)
        chans = rng.sample(CHANNELS, rng.randint(0, 3))
        products.append({"sku": f"{vendor[:2].upper()}-{i:03d}/{'éøß'[i % 3]}", "vendor": vendor, "unit_cost": cost,
                         "list_price": round(cost / (1 - margin), 2),
                         "min_margin_pct": rng.choice([20, 25, 27.5, 30, 35, 40, 45]),
                         "channels": "; ".join(chans) + (";" if i % 9 == 0 and chans else "")})
    pos = []
    for j in range(520):
        sku = rng.choice(products)["sku"] if j % 260 else f"XX-{j}/unknown"
        pos.append({"po_id": f"PO-{2026}-{j:04d}", "sku": sku, "qty": rng.randint(1, 400), "unit_cost": round(rng.uniform(3, 400), 2),
                    "status": rng.choice(STATUSES)})
    stock = []
    for p in products:
        for w in rng.sample(WAREHOUSES, rng.randint(0, 2)):
            stock.append({"sku": p["sku"], "warehouse": w, "qty": rng.choice([0, 0, 1, 3, 12, 40])})
            if rng.random() < 0.1:
                stock.append({"sku": p["sku"], "warehouse": w, "qty": -1})  # a correction line
    stock.append({"sku": "ZZ-999/nirgends", "warehouse": "rotterdam", "qty": 50})
    skus = [p["sku"] for p in products]
    bundles = [rng.sample(skus, rng.randint(4, 6)) for _ in range(30)]
    names = ["Zoë", "客户", "kunde-ä", "José", "Þóra", "Ölçer"]
    start = datetime(2026, 1, 5, tzinfo=UTC)
    orders = []
    for c in range(450):
        cid = f"{names[c % 6]}-{c}"
        mine = rng.sample(range(30), rng.choice([1, 1, 2]))
        for _ in range(rng.randint(2, 7)):
            sku = rng.choice(bundles[rng.choice(mine)]) if rng.random() < 0.8 else rng.choice(skus)
            at = start + timedelta(minutes=rng.randint(0, 300 * 24 * 60))
            form = rng.randrange(5)
            ts = [at.strftime("%Y-%m-%dT%H:%M:%SZ"), at.astimezone().isoformat(), at.date().isoformat(),
                  at.strftime("%Y-%m-%d %H:%M:%S"), f"{at.timestamp():.3f}"][form]
            orders.append({"customer_id": cid, "sku": sku, "ts": ts})
    rng.shuffle(orders)
    write(out / "retail3_catalogue.csv", products, CATALOGUE, seed=21, bom=True, crlf=True, spaces=True, extra=True)
    write(out / "retail3_purchase_orders.csv", pos, POS, seed=22, shuffle=True, header_case=True, blank_tail=True)
    write(out / "retail3_inventory.csv", stock, INVENTORY, seed=23, crlf=True, extra=True)
    write(out / "retail3_orders.csv", orders, ORDERS, seed=24, bom=True, shuffle=True, spaces=True)
    shop = [{**p, "min_margin_pct": ""} if i % 17 == 0 else p for i, p in enumerate(products)]  # optional there
    write(out / "retail3_shop_catalogue.csv", shop, CATALOGUE, seed=26, crlf=True, header_case=True)
    write(out / "retail3_catalogue_one.csv", products[:1], CATALOGUE, seed=25)
    for name, cols in (("catalogue", CATALOGUE), ("purchase_orders", POS), ("inventory", INVENTORY), ("orders", ORDERS)):
        header_only(out / f"retail3_{name}_empty.csv", cols)
    return {"products": len(products), "pos": len(pos), "stock_lines": len(stock), "orders": len(orders)}


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
