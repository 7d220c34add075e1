"""How the fresh retail files beside this script were written (tests/scenarios/test_retail_fresh.py): an
independent generator, not examples/scenarios/make_retail_data.py. python tests/scenarios/data/make_retail_fresh.py [OUT]
The catalogue: columns reordered, an extra column, a BOM, CRLF, a blank line, SKUs with / and é, vendors
in two spellings, channels with /, #, ? and %, some empty; POs with statuses in any case, one of an
unknown SKU; stock in five warehouses plus a SKU not in the catalogue; orders in four time forms."""
import csv
import random
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/scenarios/data")
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(5150)
vendors = ["Bergström AB", "Tundra/Works", "Ōkami Outdoor", "sierra & sons"]
channels = ["ebay/outlet", "b2b #2", "web shop", "Zalando?de", "100% wool club", ""]
cats = {"tent": "TN", "boot": "BT", "stove": "SV", "pack": "PK", "lamp": "LM"}
products = []
for i in range(48):
    cat = rng.choice(list(cats))
    sku = f"{cats[cat]}-{i:03d}/é" if i % 7 == 0 else f"{cats[cat]}-{i:03d}"
    v = rng.choice(vendors)
    cost = round(rng.uniform(4, 300), 2)
    margin = rng.choice([18, 22.5, 30, 35, 41, 50])
    price = round(cost / (1 - (margin + rng.uniform(-6, 15)) / 100), 2)
    ch = ";".join(sorted(set(rng.sample(channels, rng.randint(1, 3))) - {""}))
    if i % 11 == 0:
        ch = ""
    products.append({"sku": sku, "vendor": v if i % 5 else v.upper(), "unit_cost": cost, "list_price": price,
                     "min_margin_pct": margin, "channels": ch, "category": cat})
cols = ["channels", "list_price", "ean", "sku", "min_margin_pct", "vendor", "unit_cost"]
with open(out / "retail_fresh_catalogue.csv", "w", newline="", encoding="utf-8-sig") as f:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow([c.upper() if c == "sku" else c for c in cols])
    for n, p in enumerate(products):
        w.writerow([p.get(c, f"40{n:011d}") for c in cols])
        if n == 20:
            w.writerow([])
statuses = ["open", "Open", "OPEN ", "received", "cancelled", "partially received", "draft"]
with open(out / "retail_fresh_purchase_orders.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["status", "po_id", "sku", "unit_cost", "qty", "buyer"])
    for i in range(90):
        p = rng.choice(products)
        w.writerow([rng.choice(statuses), f"PO-Ü{i:04d}", p["sku"], p["unit_cost"], rng.choice([1, 12, 40.0, 250]), "Jörg, K."])
    w.writerow(["open", "PO-GHOST", "XX-404", 3.5, 10, "nobody"])
whs = ["rotterdam", "Leipzig", "oslo-2", "digital", "Lyon"]
with open(out / "retail_fresh_inventory.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["qty", "warehouse", "sku", "bin"])
    for p in products:
        for wh in rng.sample(whs, rng.randint(1, 3)):
            w.writerow([rng.choice([0, 0, 3, 17, 250]), wh, p["sku"], f"B{rng.randint(1,99)}"])
    w.writerow([5, "rotterdam", "NOT-IN-CATALOGUE", "B1"])
# orders: customers favour one category
custs = [f"kunde-{i:03d}" if i % 4 else f"客户-{i}" for i in range(90)]
rows = []
for c in custs:
    fav = rng.choice(list(cats))
    n = rng.randint(2, 7)
    for _ in range(n):
        pool = [p for p in products if p["category"] == fav] if rng.random() < 0.8 else products
        p = rng.choice(pool)
        day = rng.randint(1, 300)
        forms = [f"2026-{1 + day // 31:02d}-{1 + day % 28:02d}", f"2026-{1 + day // 31:02d}-{1 + day % 28:02d}T10:{day % 60:02d}:00+02:00",
                 str(1767225600 + day * 86400), f"2026-{1 + day // 31:02d}-{1 + day % 28:02d}T08:00:00Z"]
        rows.append([p["sku"], rng.choice(forms), c])
rng.shuffle(rows)
with open(out / "retail_fresh_orders.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["sku", "ts", "customer_id"])
    w.writerows(rows)
print(len(products), "products", len(rows), "order lines")
