"""CSV data for the fourth unseen-data round (docs/status.md, eighth session): independent generators
for every CSV scenario, written the ways exports write them and the documented formats allow, but
earlier rounds did not: every cell quoted (as spreadsheets export), a trailing comma on every row (an
empty, unnamed last column), old-Mac CR line ends, a BOM, columns reordered, extra columns, numbers in
exponent form (``1.2E+03``), ``+`` signs.

- retail (pricing, recommend): a bicycle-parts distributor: 600 products of ``Kettenwerk GmbH & Co. KG``,
  ``O'Brien Cycles``, ``ÉCLAIR Vélo``, ``velotech s.a.`` (and a 6,000-product ``Bulk Parts Ltd`` for size);
  free samples (unit cost 0), negative and zero minimum margins, channels ``Webshop; bol.com; Amazon EU``;
  1,500 POs; stock in ``Hamburg``, ``Milano``, ``rotterdam``; 900 customers; order times as ISO weeks'
  dates, with fractional seconds, with a ``T`` and offset.
- churn / ml_pipeline: a subscription with a truth of its own: churn from a price rise (charges over the
  plan's usual), a first-months cliff and silence (last login), not logistic in the features, ~12% churn;
  plans ``Starter``, ``Pro``, ``Team``, ``Enterprise``, some in another case; 4,000 training, 1,000 holdout,
  2,000 labelled customers; a 40-row training file; a batch of a new population.
- fraud: a marketplace paying USD, CAD, GBP and JPY; categories as an export names them (``Consumer
  Electronics``, ``Vouchers``, ``Airlines``, ``Groceries``, ``Fuel``); 1.5% fraud in patterns of its
  own; 12,000 to learn from, 5,000 later.

``python make_csv.py [OUT]`` (default /tmp/h4); deterministic (seeded)."""
from __future__ import annotations

import csv
import io
import json
import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


def write(path: Path, rows: list[dict], columns: list[str], *, style: str, rng: random.Random) -> Path:
    """``style``: ``quoted`` (every cell quoted, CRLF, BOM), ``trailing`` (a comma after every row),
    ``cr`` (old-Mac CR line ends, extra columns in front) or ``plain``."""
    cols = list(columns)
    rng.shuffle(cols)
    if style == "cr":
        cols = ["Region", *cols, "Kommentar"]
    buf = io.StringIO()
    end = {"quoted": "\r\n", "trailing": "\n", "cr": "\r", "plain": "\n"}[style]
    w = csv.writer(buf, lineterminator=end, quoting=csv.QUOTE_ALL if style == "quoted" else csv.QUOTE_MINIMAL)
    w.writerow([*cols, *([""] if style == "trailing" else [])])
    for i, r in enumerate(rows):
        out = []
        for c in cols:
            v = r.get(c, "") if c not in ("Region", "Kommentar") else ("Nord, Süd" if i % 3 else 'sagt "ok"')
            out.append(v)
        w.writerow([*out, *([""] if style == "trailing" else [])])
    data = buf.getvalue()
    path.write_bytes((("\ufeff" if style == "quoted" else "") + data).encode())
    return path


def num(v: float, rng: random.Random) -> str:
    """How a spreadsheet may write a number: plain, with a + sign, or in exponent form."""
    roll = rng.random()
    if roll < 0.05 and v >= 100:
        return f"{v:.4E}"
    if roll < 0.08:
        return f"+{v}"
    return str(v)


def retail(out: Path) -> dict:
    rng = random.Random(4004)
    vendors = ["Kettenwerk GmbH & Co. KG", "O'Brien Cycles", "ÉCLAIR Vélo", "velotech s.a."]
    channels = ["Webshop", "bol.com", "Amazon EU", "Händler-Portal"]
    products = []
    for i in range(600):
        vendor = vendors[i % 4]
        cost = 0.0 if i % 97 == 0 else round(rng.uniform(0.4, 900), 2)
        price = round(max(cost, 1) / (1 - rng.uniform(0.05, 0.55)), 2)
        floor = rng.choice([0, -5, 12, 18.5, 22, 30, 35, 40, ""]) if i % 13 else ""
        products.append({"sku": f"{i:05d}", "vendor": vendor if i % 11 else vendor.upper(),
                         "unit_cost": num(cost, rng), "list_price": num(price, rng), "min_margin_pct": floor,
                         "channels": ";".join(rng.sample(channels, rng.randint(0, 3)))})
    cat = ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"]
    write(out / "retail4_catalogue.csv", products, cat, style="quoted", rng=rng)
    statuses = ["open", "Open", "received", "cancelled", "draft", "open", "partially received"]
    pos = [{"po_id": f"4500{j:06d}", "sku": rng.choice(products)["sku"] if j % 500 else f"{90000 + j:05d}",
            "qty": num(rng.randint(1, 5000), rng), "unit_cost": num(round(rng.uniform(0.4, 900), 2), rng),
            "status": rng.choice(statuses)} for j in range(1500)]
    write(out / "retail4_purchase_orders.csv", pos, ["po_id", "sku", "qty", "unit_cost", "status"], style="trailing",
          rng=rng)
    big = [{"sku": f"BP-{i:06d}", "vendor": "Bulk Parts Ltd", "unit_cost": round(rng.uniform(1, 50), 2),
            "list_price": round(rng.uniform(55, 90), 2), "min_margin_pct": 25, "channels": "Webshop;Amazon EU"}
           for i in range(6000)]
    bigpos = [{"po_id": f"BP-PO-{j}", "sku": big[j % 6000]["sku"], "qty": 10, "unit_cost": 5, "status": "open"}
              for j in range(8000)]
    write(out / "retail4_big_catalogue.csv", big, cat, style="plain", rng=rng)
    write(out / "retail4_big_purchase_orders.csv", bigpos, ["po_id", "sku", "qty", "unit_cost", "status"], style="plain",
          rng=rng)
    stock = []
    for p in products:
        for w in rng.sample(["Hamburg", "Milano", "rotterdam"], rng.randint(0, 2)):
            stock.append({"sku": p["sku"], "warehouse": w, "qty": rng.choice([0, 2, 5, 30, 120])})
    write(out / "retail4_inventory.csv", stock, ["sku", "warehouse", "qty"], style="cr", rng=rng)
    skus = [p["sku"] for p in products]
    groups = [skus[g::25] for g in range(25)]  # parts that go together (a drivetrain, brakes...)
    orders = []
    start = datetime(2026, 2, 2, tzinfo=UTC)
    for c in range(900):
        cid = f"{'WS' if c % 3 else 'DE'}-{c:04d}" + ("-ÄÖ" if c % 50 == 0 else "")
        mine = rng.sample(groups, rng.randint(1, 2))
        for _ in range(rng.randint(2, 9)):
            g = rng.choice(mine)
            at = start + timedelta(minutes=rng.randint(0, 400_000), microseconds=rng.randint(0, 999_999))
            form = rng.randint(0, 3)
            ts = (at.isoformat() if form == 0 else at.strftime("%Y-%m-%dT%H:%M:%S.%f%z") if form == 1
                  else at.date().isoformat() if form == 2 else at.astimezone().isoformat())
            orders.append({"customer_id": cid, "sku": rng.choice(g[: 8]), "ts": ts})
    rng.shuffle(orders)
    write(out / "retail4_orders.csv", orders, ["customer_id", "sku", "ts"], style="trailing", rng=rng)
    return {"products": len(products), "pos": len(pos), "orders": len(orders)}


CHURN = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan", "churned"]
USUAL = {"starter": 12, "pro": 35, "team": 90, "enterprise": 400}


def churn_rows(rng: random.Random, n: int, prefix: str, shift: bool = False) -> list[dict]:
    rows = []
    for i in range(n):
        plan = rng.choices(list(USUAL), [4, 3, 2, 1] if not shift else [1, 2, 3, 3])[0]
        tenure = min(240, int(rng.expovariate(1 / (20 if not shift else 45))))
        charges = round(USUAL[plan] * rng.uniform(0.85, 1.5 if not shift else 1.2), 2)
        tickets = min(40, int(rng.expovariate(1 / 1.5)))
        login = min(3650, int(rng.expovariate(1 / 12)))
        rise = charges / USUAL[plan] - 1
        logit = (-3.1 + 3.2 * max(0.0, rise - 0.2) + (1.4 if tenure < 3 else 0.0) + 1.6 * (1 - math.exp(-login / 20))
                 + 0.25 * min(tickets, 6) - (0.6 if plan == "enterprise" else 0))
        p = 1 / (1 + math.exp(-logit))
        name = {"starter": "Starter", "pro": "Pro", "team": "TEAM", "enterprise": "Enterprise"}[plan]
        rows.append({"customer_id": f"{prefix}{i:05d}", "tenure_months": tenure, "monthly_charges": charges,
                     "support_tickets_90d": tickets, "last_login_days": login,
                     "plan": "" if rng.random() < 0.02 else (name if i % 7 else name.lower()),
                     "churned": int(rng.random() < p), "_p": round(p, 5)})
    return rows


def churn(out: Path) -> dict:
    rng = random.Random(4040)
    sets = {"train": churn_rows(rng, 4000, "acct-"), "holdout": churn_rows(rng, 1000, "hold-"),
            "customers": churn_rows(rng, 2000, "cust-"), "tiny": churn_rows(rng, 40, "tiny-"),
            "shifted": churn_rows(rng, 600, "new-", shift=True), "like": churn_rows(rng, 600, "like-")}
    truth = {}
    for name, rows in sets.items():
        truth[name] = {r["customer_id"]: r.pop("_p") for r in rows}
        cols = CHURN if name not in ("shifted", "like") else CHURN[:-1]
        write(out / f"churn4_{name}.csv", rows, cols, style=["quoted", "trailing", "cr", "plain"][len(name) % 4], rng=rng)
    (out / "churn4_truth.json").write_text(json.dumps(truth))
    return {k: (len(v), sum(r["churned"] for r in v)) for k, v in sets.items()}


FRAUD = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
         "new_device", "tx_last_24h", "is_fraud"]
CUR = {"US": ("USD", 1.0), "CA": ("CAD", 1.35), "GB": ("GBP", 0.8), "JP": ("JPY", 150.0)}
CATS = ["Groceries", "Fuel", "Consumer Electronics", "Vouchers", "Airlines", "Restaurants", "Apparel", "home & garden"]


def fraud(out: Path) -> dict:
    rng = random.Random(4444)
    customers = []
    for c in range(700):
        home = rng.choice(list(CUR))
        customers.append({"id": f"M{c:05d}", "home": home, "scale": math.exp(rng.gauss(3.3, 0.7))})

    def tx(i: int, cust: dict, fraud_kind: str | None) -> dict:
        cur, rate = CUR[cust["home"]]
        country, device, hour, burst = cust["home"], int(rng.random() < 0.03), rng.choice(range(7, 23)), rng.randint(0, 3)
        amount = cust["scale"] * math.exp(rng.gauss(0, 0.5))
        cat = rng.choices(CATS, [5, 3, 1, 0.4, 0.4, 3, 2, 1])[0]
        if rng.random() < 0.04:  # legitimate: a trip abroad, a big purchase, a new phone, a busy day
            country = rng.choice([k for k in CUR if k != cust["home"]])
        if rng.random() < 0.02:
            amount *= rng.uniform(5, 12)
        if fraud_kind == "takeover":
            device, cat = 1, rng.choice(["Consumer Electronics", "Vouchers"])
            amount = cust["scale"] * rng.uniform(6, 25)
            hour = rng.choice(range(0, 24))
        elif fraud_kind == "testing":
            amount, burst, cat = rng.uniform(0.5, 3), rng.randint(6, 20), rng.choice(["Vouchers", "Airlines", "Fuel"])
        elif fraud_kind == "abroad":
            country = rng.choice([k for k in CUR if k != cust["home"]])
            amount, hour = cust["scale"] * rng.uniform(2, 6), rng.choice([1, 2, 3, 4, 23])
        return {"tx_id": f"TX4-{i:07d}", "customer_id": cust["id"],
                "amount": round(amount * rate, 0 if cur == "JPY" else 2), "currency": cur if i % 9 else cur.lower(),
                "merchant_category": cat, "country": country, "home_country": cust["home"], "hour": hour,
                "new_device": ["0", "1"][device] if i % 5 else ["false", "true"][device], "tx_last_24h": burst,
                "is_fraud": int(fraud_kind is not None)}

    def batch(n: int, start: int) -> list[dict]:
        rows = []
        for i in range(start, start + n):
            kind = rng.choices([None, "takeover", "testing", "abroad"], [0.985, 0.006, 0.005, 0.004])[0]
            rows.append(tx(i, rng.choice(customers), kind))
        return rows

    train, later = batch(12000, 0), batch(5000, 100000)
    write(out / "fraud4_train.csv", train, FRAUD, style="quoted", rng=rng)
    write(out / "fraud4_later.csv", later, FRAUD, style="trailing", rng=rng)
    return {"train": (len(train), sum(r["is_fraud"] for r in train)), "later": (len(later), sum(r["is_fraud"] for r in later))}


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/h4")
    target.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"retail": retail(target), "churn": churn(target), "fraud": fraud(target)}))
