"""CSV data for the fifth unseen-data round (docs/status.md, ninth session), with generators of its own:

- retail (pricing, recommend): a coffee and tea importer: 480 products of ``Café do Brasil Ltda.``,
  ``株式会社 宇治茶園``, ``Nørrebro Roasters ApS`` and ``Chai & Co.``; headers in title case with spaces
  (`` Unit_Cost ``), cells with spaces around them, channels written ``Shopify; Amazon DE ;Wholesale``;
  purchase orders exported by another system that writes SKUs in lower case; stock in ``Rotterdam``,
  ``LEIPZIG`` and ``Antwerpen`` with backorders (negative quantities) and ``12.0``; 700 customers whose
  order times are seconds since 1970 with fractions, ``...Z`` times, minutes without seconds and dates.
- churn / ml_pipeline: a gym chain: churn from staying away (last visit), tickets and the first months,
  ~22% churn; headers in title case, an extra ``Notes`` column whose quoted cells hold commas and line
  breaks, labels ``Yes``/``No``/``TRUE``/``false``, plans ``Basic``, ``Premium+``, ``Off-Peak`` and
  ``Família`` (some decomposed), numbers with spaces and leading zeros; 3,000 to train, 800 holdout,
  1,500 labelled members; a batch of members from a newly bought chain (drifted) and a calm one.
- fraud: a food-delivery and ride platform paying SGD, KRW, INR and AUD, categories as its export
  names them (``Food & Beverage``, ``Gift-Card``, ``Mobile Phones``, ``E-Wallet Top-up``); flags as
  ``TRUE``/``no``, hours ``07``, counts ``3.0``; 10,000 to learn from, 4,000 later.

``python make_csv.py [OUT]`` (default /tmp/h5); deterministic (seeded)."""
from __future__ import annotations

import csv
import io
import math
import random
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path


def write(path: Path, rows: list[dict], columns: list[str], *, rng: random.Random, bom: bool = False,
          end: str = "\n", header: dict[str, str] | None = None, pad: bool = False) -> Path:
    """Columns shuffled; ``header`` renames them as an export titles them; ``pad`` puts spaces around cells."""
    cols = list(columns)
    rng.shuffle(cols)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=end)
    w.writerow([(header or {}).get(c, c) for c in cols])
    for r in rows:
        w.writerow([f" {r.get(c, '')} " if pad and rng.random() < 0.3 else r.get(c, "") for c in cols])
    path.write_bytes((("\ufeff" if bom else "") + buf.getvalue()).encode())
    return path


def retail(out: Path) -> dict:
    rng = random.Random(5005)
    vendors = ["Café do Brasil Ltda.", "株式会社 宇治茶園", "Nørrebro Roasters ApS", "Chai & Co."]
    channels = ["Shopify", "Amazon DE", "Wholesale", "Café-Partner"]
    products = []
    for i in range(480):
        cost = round(rng.uniform(2, 60), 2)
        price = round(cost / (1 - rng.uniform(0.08, 0.6)), 2)
        chans = rng.sample(channels, rng.randint(0, 3))
        products.append({"sku": f"CT-{i:04d}{'JP' if i % 4 == 1 else ''}", "vendor": vendors[i % 4],
                         "unit_cost": cost, "list_price": price,
                         "min_margin_pct": "" if i % 17 == 0 else rng.choice([15, 20, 25, 30, 35, 40]),
                         "channels": " ;".join(chans) if i % 2 else "; ".join(chans)})
    header = {"sku": "SKU", "vendor": " Vendor ", "unit_cost": " Unit_Cost", "list_price": "List_Price",
              "min_margin_pct": "MIN_MARGIN_PCT", "channels": "Channels"}
    write(out / "retail5_catalogue.csv", products, list(header), rng=rng, header=header, pad=True, end="\r\n")
    pos = []
    for j in range(900):
        p = products[rng.randrange(len(products))]
        pos.append({"po_id": f"PO/{2027}/{j:05d}", "sku": p["sku"].lower() if j % 3 == 0 else p["sku"],
                    "qty": rng.randint(1, 400), "unit_cost": p["unit_cost"],
                    "status": rng.choice(["OPEN", "open ", "Partially-Received", "received", "Cancelled", "on hold"]),
                    "buyer": "Åsa Lindqvist"})
    write(out / "retail5_purchase_orders.csv", pos, ["po_id", "sku", "qty", "unit_cost", "status", "buyer"], rng=rng)
    stock = []
    for p in products:
        for w in ("Rotterdam", "LEIPZIG", "Antwerpen"):
            roll = rng.random()
            if roll < 0.45:
                continue
            qty = -rng.randint(1, 5) if roll < 0.55 else (0 if roll < 0.7 else rng.randint(1, 90))
            stock.append({"sku": p["sku"], "warehouse": w, "qty": f"{qty}.0" if rng.random() < 0.2 else qty})
    write(out / "retail5_inventory.csv", stock, ["sku", "warehouse", "qty"], rng=rng, bom=True)
    # customers buy within a roast family (groups of 8 products) and across to its tea pairing
    orders = []
    start = datetime(2026, 1, 5, tzinfo=UTC)
    for c in range(700):
        cid = f"kunde-{c:04d}"
        fam = rng.randrange(60)
        n = rng.randint(2, 7)
        for _ in range(n):
            g = fam if rng.random() < 0.8 else (fam + 30) % 60
            sku = products[g * 8 + rng.randrange(8)]["sku"]
            at = start + timedelta(seconds=rng.randint(0, 300 * 86400))
            form = rng.randrange(4)
            ts = (f"{at.timestamp():.3f}" if form == 0 else at.strftime("%Y-%m-%dT%H:%M:%SZ") if form == 1
                  else at.strftime("%Y-%m-%dT%H:%M") if form == 2 else at.date().isoformat())
            orders.append({"customer_id": cid, "sku": sku, "ts": ts})
    rng.shuffle(orders)
    write(out / "retail5_orders.csv", orders, ["customer_id", "sku", "ts"], rng=rng)
    return {"products": len(products), "pos": len(pos), "orders": len(orders)}


PLANS = {"Basic": 29.9, "Premium+": 59.0, "Off-Peak": 19.5, "Família": 79.0}


def member(rng: random.Random, i: int, *, later: bool = False) -> dict:
    plan = rng.choice(list(PLANS))
    tenure = int(rng.expovariate(1 / (10 if later else 26))) + 1
    charges = round(PLANS[plan] * rng.uniform(0.85, 1.25) * (1.3 if later else 1), 2)
    tickets = min(int(rng.expovariate(1 / (2.5 if later else 1.2))), 30)
    visit = int(rng.expovariate(1 / (30 if later else 14)))
    z = (-2.2 + 1.6 * (1 - math.exp(-visit / 20)) + 0.35 * min(tickets, 6) - 0.9 * (tenure > 12)
         + (0.7 if tenure <= 3 else 0) + (0.4 if plan == "Off-Peak" else 0) + rng.gauss(0, 0.6))
    churned = rng.random() < 1 / (1 + math.exp(-z))
    shown = plan if i % 5 else (unicodedata.normalize("NFD", plan) if plan == "Família" else plan.upper())
    return {"customer_id": f"GYM{i:06d}", "tenure_months": f"{tenure:03d}" if i % 7 == 0 else tenure,
            "monthly_charges": charges, "support_tickets_90d": f"{tickets}.0" if i % 9 == 0 else tickets,
            "last_login_days": visit, "plan": shown,
            "churned": rng.choice(["Yes", "TRUE", "1", "yes"]) if churned else rng.choice(["No", "false", "0", "no"]),
            "notes": rng.choice(["", "moved, new address", 'said "too crowded"', "line one\nline two", ""])}


CHURN_HEADER = {"customer_id": "Customer_ID", "tenure_months": "Tenure_Months", "monthly_charges": "Monthly_Charges",
                "support_tickets_90d": "Support_Tickets_90D", "last_login_days": "Last_Login_Days", "plan": "Plan",
                "churned": "Churned", "notes": "Notes"}


def churn(out: Path) -> dict:
    rng = random.Random(5150)
    cols = list(CHURN_HEADER)
    sets = {"train": (0, 3000), "holdout": (3000, 800), "customers": (4000, 1500)}
    shares = {}
    for name, (first, n) in sets.items():
        rows = [member(rng, first + k) for k in range(n)]
        shares[name] = sum(r["churned"] in ("Yes", "TRUE", "1", "yes") for r in rows) / n
        write(out / f"churn5_{name}.csv", rows, cols, rng=rng, header=CHURN_HEADER, pad=True, end="\r\n")
    calm = [member(rng, 6000 + k) for k in range(600)]
    later = [member(rng, 7000 + k, later=True) for k in range(600)]
    batch_cols = [c for c in cols if c != "churned"]
    write(out / "churn5_batch.csv", calm, batch_cols, rng=rng, header=CHURN_HEADER)
    write(out / "churn5_shifted.csv", later, batch_cols, rng=rng, header=CHURN_HEADER)
    return {"churn_share": shares}


CURRENCIES = {"SGD": 28.0, "KRW": 21000.0, "INR": 650.0, "AUD": 32.0}
CATS = ["Food & Beverage", "Ride Hailing", "Groceries", "Gift-Card", "Mobile Phones", "E-Wallet Top-up",
        "Pharmacy", "Digital Downloads"]
RISKY = {"Gift-Card", "Mobile Phones", "Digital Downloads"}
HOME = {"SGD": "SG", "KRW": "KR", "INR": "IN", "AUD": "AU"}


def fraud(out: Path, n_train: int = 10000, n_later: int = 4000, seed: int = 5551) -> dict:
    rng = random.Random(seed)
    customers = []
    for c in range(800):
        cur = rng.choice(list(CURRENCIES))
        customers.append({"id": f"u{c:05d}", "cur": cur, "home": HOME[cur],
                          "scale": CURRENCIES[cur] * math.exp(rng.gauss(0, 0.5))})

    def tx(n: int, first: int) -> list[dict]:
        rows = []
        for k in range(n):
            c = rng.choice(customers)
            fraud_kind = rng.random()
            is_fraud = fraud_kind < 0.02
            cat = rng.choice(CATS[:3] * 4 + CATS[3:])
            amount = c["scale"] * math.exp(rng.gauss(0, 0.6))
            country, device, hour, recent = c["home"], 0, int(rng.gauss(14, 4)) % 24, rng.choice([0, 1, 1, 2, 3])
            if rng.random() < 0.03:  # legitimate trip, new phone, busy day
                country = rng.choice(["TH", "JP", "US"])
            if rng.random() < 0.03:
                device = 1
            if rng.random() < 0.03:
                recent = rng.randint(6, 12)
            if is_fraud:
                kind = rng.randrange(3)
                if kind == 0:  # takeover: new device abroad, top-ups and gift cards
                    device, country, cat = 1, rng.choice(["NG", "RU", "BR"]), rng.choice(["Gift-Card", "E-Wallet Top-up"])
                    amount *= rng.uniform(3, 8)
                elif kind == 1:  # card testing at night: many small ones
                    recent, hour, amount = rng.randint(8, 25), rng.randint(1, 4), amount * 0.1
                else:  # big phone bought on the customer's own device
                    cat, amount = "Mobile Phones", amount * rng.uniform(10, 25)
                    device = int(rng.random() < 0.5)
            rows.append({"tx_id": f"{first + k:07d}", "customer_id": c["id"],
                         "amount": round(amount) if c["cur"] == "KRW" else round(amount, 2),
                         "currency": c["cur"].lower() if k % 6 == 0 else c["cur"], "merchant_category": cat,
                         "country": country.lower() if k % 10 == 0 else country, "home_country": c["home"],
                         "hour": f"{hour:02d}", "new_device": rng.choice(["TRUE", "1", "yes"]) if device else
                         rng.choice(["false", "0", "no", "FALSE"]),
                         "tx_last_24h": f"{recent}.0" if k % 4 == 0 else recent, "is_fraud": int(is_fraud)})
        return rows

    cols = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
            "new_device", "tx_last_24h", "is_fraud"]
    train, later = tx(n_train, 0), tx(n_later, n_train)
    write(out / "fraud5_train.csv", train, cols, rng=rng, bom=True, end="\r\n")
    write(out / "fraud5_later.csv", later, cols, rng=rng)
    return {"train_fraud": sum(r["is_fraud"] for r in train), "later_fraud": sum(r["is_fraud"] for r in later)}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/h5")
    out.mkdir(parents=True, exist_ok=True)
    print({"retail": retail(out), "churn": churn(out), "fraud": fraud(out)})


if __name__ == "__main__":
    main()
