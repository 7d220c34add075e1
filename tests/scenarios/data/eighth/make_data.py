"""The eighth unseen-data round's CSV files, written by hand-rolled writers (not the ``csv`` module's) so the
quoting, line ends and header spellings are the round's own:

    python make_data.py OUT [--seed N]

* retail: a musical-instrument retailer selling in Brazil, India and Korea (pricing and recommend). Columns in
  another order, every header cell quoted, LF line ends and no line end after the last row; vendors
  ``Instrumentos Ñandú Ltda.`` (half its rows written NFD), ``Swar Sangeet Pvt. Ltd.``, ``한빛악기(주)`` and
  ``D'Angelo & Sons, Inc.``; SKUs with ``/``, ``#``, an inner space, Hangul and Devanagari; costs ``1.2E3``,
  ``.5``, ``12.``, ``0`` and cells with spaces around them; a free product; minimum margins empty, 0, -2.5 and
  99.5; channels ``Mercado Livre; Amazon.in ;;Coupang``. Purchase orders with columns reversed, CRLF, statuses
  ``OPEN``, ``Open``, ``partially_received``, ``PARTLY RECEIVED``, ``Partially-Delivered``, ``received``,
  ``canceled``, ``backordered``, and SKUs in other cases. Stock in ``São Paulo``, ``Mumbai``, ``부산`` and
  ``digital`` (``3.0``, negative backorders, bins). Orders newest first, 8-20 lines per customer, ids such as
  ``cliente.0042`` and ``CUST 12``, times ``+05:30``, ``+0530``, nanoseconds with ``Z``, minutes only, dates and
  seconds before 1970.
* fraud: a rail and bus ticket marketplace in India and Brazil: INR and BRL, a few USD; many payments per
  customer (about 30 to learn from); the scoring file without ``is_fraud`` (the truth in ``..._truth.csv``),
  columns shuffled, flags ``yes``/``NO``/``TRUE``/``0``, countries in lower case, hours ``07``.
* churn: a cloud-accounting service for small firms in India: charges in rupees (499-49,999), churn about 45%,
  plans ``Starter``, ``Growth``, ``Enterprise``, ``स्टार्टर`` and ``비즈니스``; no holdout (the default quarter);
  customers without ``churned`` (the truth beside them) and outcomes; ml_pipeline batches of 150 like the
  training data (the KS test alone) and of 600 whose charges moved from rupees to dollars.
"""
from __future__ import annotations

import math
import random
import sys
import unicodedata
from pathlib import Path


def cell(value: object, always: bool = False) -> str:
    text = str(value)
    if always or any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write(path: Path, header: list[str], rows: list[list[object]], *, end: str = "\n", last_end: bool = True,
          quote_header: bool = False, bom: bool = False) -> None:
    lines = [",".join(cell(h, quote_header) for h in header)] + [",".join(cell(v) for v in r) for r in rows]
    text = end.join(lines) + (end if last_end else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


VENDORS = ["Instrumentos Ñandú Ltda.", "Swar Sangeet Pvt. Ltd.", "한빛악기(주)", "D'Angelo & Sons, Inc."]
KINDS = ["GTR", "VIO", "KB", "DRM", "TAB", "SIT", "MIC", "AMP", "드럼", "सितार"]
CHANNELS = ["Mercado Livre; Amazon.in ;;Coupang", "", "loja física", "Amazon.in", "Coupang;Mercado Livre", ";Flipkart;"]
WAREHOUSES = ["São Paulo", "Mumbai", "부산", "digital"]


def number_text(value: float, rng: random.Random) -> str:
    form = rng.random()
    if form < 0.1:
        return f"{value:.1E}" if value >= 1000 else f" {value:.2f} "
    if form < 0.15 and value < 1:
        return f"{value:.2f}"[1:]  # .50
    if form < 0.2 and value == int(value):
        return f"{int(value)}."
    return f"{value:.2f}"


def retail(out: Path, seed: int = 8801, products: int = 700, customers: int = 600) -> dict:
    rng = random.Random(seed)
    cat: list[dict] = []
    for i in range(products):
        vendor = VENDORS[i % len(VENDORS)]
        if vendor.startswith("Instrumentos") and i % 8 == 0:
            vendor = unicodedata.normalize("NFD", vendor)
        kind = KINDS[i % len(KINDS)]
        sku = rng.choice([f"{kind}-{i:04d}", f"{kind}/{i}", f"{kind} {i}", f"{kind}#{i}"])
        if i % 97 == 0:
            cost = 0.0
        elif i % 53 == 0:
            cost = round(rng.uniform(1000, 4000), 0)
        else:
            cost = round(rng.uniform(0.2, 900), 2)
        price = round(max(cost, 1) * rng.uniform(0.8, 2.4), 2)
        margin = rng.choice(["", "0", "-2.5", "99.5", "15", "25", "35", "40", "20", "30"])
        cat.append({"sku": sku, "vendor": vendor, "unit_cost": cost, "list_price": price, "min_margin_pct": margin,
                    "channels": rng.choice(CHANNELS), "ncm": f"{rng.randrange(10**8):08d}"})
    header = ["channels", "list_price", "SKU", "Min_Margin_Pct", "vendor", "unit_cost", "ncm"]
    write(out / "retail8_catalogue.csv", header,
          [[p["channels"], f"{p['list_price']:.2f}", p["sku"], p["min_margin_pct"], p["vendor"],
            number_text(p["unit_cost"], rng), p["ncm"]] for p in cat], quote_header=True, last_end=False)

    statuses = ["OPEN", "Open ", "partially_received", "PARTLY RECEIVED", "Partially-Delivered", "received",
                "canceled", "backordered"]
    pos = []
    for j in range(1500):
        p = rng.choice(cat)
        sku = p["sku"].lower() if j % 5 == 0 else p["sku"]
        pos.append([rng.choice(statuses), number_text(p["unit_cost"], rng), rng.randint(1, 40), sku, f"PO/{seed}/{j:05d}"])
    write(out / "retail8_purchase_orders.csv", ["status", "unit_cost", "qty", "sku", "po_id"], pos, end="\r\n")

    inv = []
    for p in cat:
        for w in rng.sample(WAREHOUSES, rng.randint(1, 3)):
            qty = rng.choice([0, 0, -3, 4, 12, 30, 7])
            inv.append([w, p["sku"].upper() if rng.random() < 0.2 else p["sku"], f"{qty}.0" if qty > 20 else qty])
            if rng.random() < 0.1:  # a second bin of the same product and warehouse
                inv.append([w, p["sku"], 2])
    write(out / "retail8_inventory.csv", ["warehouse", "sku", "qty"], inv)

    # customers buy within one of 35 "setups" (a guitarist's, a drummer's ...) of 20 products
    setups = [rng.sample(range(products), 20) for _ in range(35)]
    orders = []
    ids = []
    for c in range(customers):
        cid = rng.choice([f"cliente.{c:04d}", f"CUST {c}", f"고객{c}", f"ग्राहक-{c}"])
        ids.append(cid)
        setup = setups[c % len(setups)]
        n = rng.randint(8, 20)
        day0 = 1_700_000_000 + rng.randrange(0, 40_000_000)
        for k in range(n):
            item = rng.choice(setup) if rng.random() < 0.85 else rng.randrange(products)
            at = day0 + k * 86400 * rng.randint(1, 9) + rng.randrange(86400)
            orders.append((at, cid, cat[item]["sku"]))
    orders.sort(reverse=True)  # newest first
    rows = []
    from datetime import UTC, datetime, timedelta, timezone
    ist = timezone(timedelta(hours=5, minutes=30))
    for at, cid, sku in orders:
        when = datetime.fromtimestamp(at, ist)
        form = rng.randrange(7)
        ts = [when.isoformat(), when.strftime("%Y-%m-%dT%H:%M:%S+0530"),
              datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
              when.strftime("%Y-%m-%dT%H:%M+05:30"), str(at), f"{at}.5", when.isoformat()][form]
        rows.append([cid, sku, ts])
    rows.append(["CUST old", cat[0]["sku"], "-86400"])  # a customer who bought in 1969
    write(out / "retail8_orders.csv", ["customer_id", "sku", "ts"], rows)
    return {"catalogue": cat, "customers": ids}


CATEGORIES = ["Rail Tickets", "Bus Tickets", "Gift Card", "Consumer Electronics", "Food & Beverage",
              "Hotel Stays", "Vouchers", "Airlines"]


def fraud(out: Path, seed: int = 8811, customers: int = 300, n_train: int = 9000, n_later: int = 3000,
          rate: float = 0.03) -> dict:
    rng = random.Random(seed)
    people = []
    for c in range(customers):
        home = rng.choice(["IN", "IN", "BR"])
        currency = {"IN": "INR", "BR": "BRL"}[home]
        scale = {"INR": 1200.0, "BRL": 90.0}[currency] * math.exp(rng.gauss(0, 0.5))
        people.append({"id": f"{c:05d}", "home": home, "currency": currency, "scale": scale,
                       "cats": rng.sample(CATEGORIES[:3] + CATEGORIES[4:6], 2)})

    def payment(n: int, fraudulent: bool) -> dict:
        p = rng.choice(people)
        cur = p["currency"] if rng.random() > 0.03 else "USD"
        base = p["scale"] / ({"INR": 1.0, "BRL": 1.0}[p["currency"]]) if cur == p["currency"] else p["scale"] / 80
        if cur == "USD" and p["currency"] == "BRL":
            base = p["scale"] / 5
        row = {"tx_id": f"T{seed}-{n}", "customer_id": p["id"], "amount": round(base * math.exp(rng.gauss(0, 0.4)), 2),
               "currency": cur, "merchant_category": rng.choice(p["cats"]), "country": p["home"],
               "home_country": p["home"], "hour": rng.choice(range(6, 23)), "new_device": 1 if rng.random() < 0.04 else 0,
               "tx_last_24h": rng.choice([0, 1, 1, 2, 3]), "is_fraud": 0}
        if rng.random() < 0.03:  # a legitimate trip abroad
            row["country"] = rng.choice(["PT", "AE", "US"])
        if fraudulent:
            kind = rng.randrange(3)
            row["is_fraud"] = 1
            if kind == 0:  # card testing
                row.update(amount=round(rng.uniform(1, 20), 2), tx_last_24h=rng.randint(6, 15),
                           merchant_category=rng.choice(["Gift Card", "Vouchers"]), hour=rng.choice([1, 2, 3, 4]))
            elif kind == 1:  # account taken over from abroad
                row.update(country=rng.choice(["NG", "RU", "VN"]), new_device=1, amount=round(base * rng.uniform(3, 8), 2),
                           merchant_category=rng.choice(["Consumer Electronics", "Airlines"]))
            else:  # resold tickets bought in bulk on a new device
                row.update(amount=round(base * rng.uniform(5, 12), 2), new_device=1, tx_last_24h=rng.randint(4, 9),
                           merchant_category=rng.choice(["Rail Tickets", "Bus Tickets"]))
        return row

    def flag(v: int) -> str:
        return rng.choice(["yes", "TRUE", "1", "Yes"]) if v else rng.choice(["no", "NO", "false", "0"])

    train = [payment(i, rng.random() < rate) for i in range(n_train)]
    later = [payment(n_train + i, rng.random() < rate) for i in range(n_later)]
    cols = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
            "new_device", "tx_last_24h", "is_fraud"]
    write(out / f"fraud8_train_{seed}.csv", cols,
          [[r["tx_id"], r["customer_id"], r["amount"], r["currency"], r["merchant_category"], r["country"],
            r["home_country"], f"{r['hour']:02d}", flag(r["new_device"]), r["tx_last_24h"], flag(r["is_fraud"])] for r in train])
    shuffled = ["hour", "merchant_category", "tx_id", "country", "amount", "home_country", "currency",
                "tx_last_24h", "customer_id", "new_device", "channel"]
    write(out / f"fraud8_later_{seed}.csv", shuffled,
          [[r["hour"], r["merchant_category"], r["tx_id"], r["country"].lower(), r["amount"], r["home_country"].lower(),
            r["currency"].lower() if rng.random() < 0.3 else r["currency"], r["tx_last_24h"], r["customer_id"],
            flag(r["new_device"]), rng.choice(["app", "web, desktop", 'kiosk "B"'])] for r in later], end="\r\n")
    write(out / f"fraud8_truth_{seed}.csv", ["tx_id", "is_fraud"], [[r["tx_id"], r["is_fraud"]] for r in later])
    return {"train": train, "later": later}


PLANS = ["Starter", "Growth", "Enterprise", "स्टार्टर", "비즈니스"]


def churn(out: Path, seed: int = 8821, n_train: int = 1600, n_customers: int = 1200) -> dict:
    rng = random.Random(seed)

    def person(i: int, prefix: str, usd: bool = False) -> dict:
        plan = rng.choice(PLANS)
        tenure = int(rng.expovariate(1 / 30)) if rng.random() < 0.9 else rng.randint(100, 180)
        charges = {"Starter": 499, "स्टार्टर": 499, "Growth": 2999, "비즈니스": 9999, "Enterprise": 49999}[plan]
        charges = round(charges * rng.uniform(0.8, 1.3), 2)
        tickets = min(50, int(rng.expovariate(1 / 2)))
        login = int(rng.expovariate(1 / 12))
        z = (-0.2 + 1.1 * (login > 20) + 0.18 * tickets - 0.025 * min(tenure, 60)
             - 0.9 * (plan == "Enterprise") + 0.6 * (plan in ("Starter", "स्टार्टर")) + rng.gauss(0, 0.6))
        churned = int(rng.random() < 1 / (1 + math.exp(-z)))
        return {"customer_id": f"{prefix}{i:05d}", "tenure_months": tenure,
                "monthly_charges": round(charges / 80, 2) if usd else charges, "support_tickets_90d": tickets,
                "last_login_days": login, "plan": plan, "churned": churned, "p": 1 / (1 + math.exp(-z))}

    cols = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan"]
    train = [person(i, "ACME-") for i in range(n_train)]
    later = [person(i, "FIRM-") for i in range(n_customers)]
    label = {0: ["0", "no", "False"], 1: ["1", "yes", "True"]}
    write(out / "churn8_train.csv", [*cols, "churned"],
          [[r[c] for c in cols] + [rng.choice(label[r["churned"]])] for r in train], bom=True)
    write(out / "churn8_customers.csv", cols, [[r[c] for c in cols] for r in later], end="\r\n", last_end=False)
    write(out / "churn8_truth.csv", ["customer_id", "churned"], [[r["customer_id"], r["churned"]] for r in later])
    write(out / "churn8_outcomes.csv", ["churned", "customer_id"],
          [[r["churned"], r["customer_id"]] for r in later[:60]])
    holdout = [person(i, "HOLD-") for i in range(500)]
    write(out / "churn8_holdout.csv", [*cols, "churned"], [[r[c] for c in cols] + [r["churned"]] for r in holdout])
    calm = [person(i, "CALM-") for i in range(150)]
    write(out / "churn8_batch_small.csv", cols, [[r[c] for c in cols] for r in calm])
    usd = [person(i, "USD-", usd=True) for i in range(600)]
    write(out / "churn8_batch_usd.csv", cols, [[r[c] for c in cols] for r in usd])
    return {"train": train, "later": later}


def main(argv: list[str]) -> None:
    out = Path(argv[1] if len(argv) > 1 else ".")
    shift = int(argv[argv.index("--seed-shift") + 1]) if "--seed-shift" in argv else 0
    out.mkdir(parents=True, exist_ok=True)
    retail(out, 8801 + shift)
    for s in (8811, 8812):
        fraud(out, s + shift)
    churn(out, 8821 + shift)


if __name__ == "__main__":
    main(sys.argv)
