"""CSV data for the sixth unseen-data round (docs/status.md, tenth session), with generators of its own
(seeds, businesses and distributions no earlier round used):

- retail (pricing, recommend): a hardware and garden wholesaler selling in Poland and Mexico: 2,400
  products of ``Narzędzia Żywiec Sp. z o.o.``, ``Ferretería del Norte, S.A. de C.V.`` (a comma in the
  name: a quoted cell), ``GreenThumb (UK) Ltd`` and ``Zöllner KG``; headers in capitals, extra columns
  (``EAN``, a quoted ``Description``, ``Weight kg``), SKUs of digits only, with ``/`` and with letters,
  numbers written ``.95`` and ``12.``, loss leaders (list price under cost), minimum margins of 0, -10
  and 12.5 and empty, channels written ``;Allegro;`` with semicolons at the ends; 6,000 purchase orders
  with statuses ``PARTIALLY_RECEIVED``, ``partly received``, ``Partially delivered``, ``Closed`` and
  fractional quantities; stock in ``Poznań``, ``Monterrey``, ``Guadalajara`` and ``digital`` with the same
  SKU and warehouse on several lines (bins), SKUs in lower case; 1,500 customers (e-mail addresses and
  numbers with leading zeros as ids) whose order times are ISO 8601 in six forms (a space for the ``T``
  with an offset, week dates, basic format ``20260304T101500Z``, fractions with an offset, plain dates)
  and whole seconds since 1970.
- churn / ml_pipeline: a mobile operator: churn peaks when a 12- or 24-month contract ends and when the
  bill is far above the plan's price (not monotone in tenure: a linear model cannot follow it), ~34%
  churn to train on but ~20% among the customers scored (the class balance moves); 900 to train, 300
  holdout, 4,000 customers; plans ``Prepago``, ``Plan 199``, ``Plan 399 Ilimitado``, ``Empresarial``,
  2% empty, and ``Plan 599 5G`` only among the customers scored (unseen); labels ``True``/``False``/``YES``/
  ``no``/``1``/``0``; extra columns (``region``, ``signup_date``, ``email``); impossible values (negative
  tenure, a last login 99,999 days ago) among the customers; a calm batch and one of new prepaid lines.
- fraud: an online marketplace paying PLN, CZK, MXN, BRL and EUR, and CHF rarely (under 30 training
  payments: unknown currency); 5% fraud to learn from and 1.2% later (the class balance moves); tx ids
  as UUIDs; extra columns (a ``user_agent`` with commas, quoted); flags ``True``/``No``/``YES``; hours
  ``7``; categories ``Home & Garden``, ``Prepaid Cards``, ``Travel Agencies``, ``Computers``, ``Software``,
  ``Crypto Exchange``; four fraud patterns, one of them at home on a new device at night.

``python make_data.py [OUT]`` (default /tmp/h6); deterministic (seeded). Seeds 6601-6603 (fraud) and
6650 (churn) were looked at while fixing; 6701-6703 and 6750 are held out (``--seed-shift 100``)."""
from __future__ import annotations

import csv
import io
import math
import random
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path


def write(path: Path, rows: list[dict], columns: list[str], *, rng: random.Random, bom: bool = False,
          end: str = "\r\n", header: dict[str, str] | None = None, quote_all: bool = False) -> Path:
    cols = list(columns)
    rng.shuffle(cols)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=end, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    w.writerow([(header or {}).get(c, c) for c in cols])
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    path.write_bytes((("\ufeff" if bom else "") + buf.getvalue()).encode())
    return path


VENDORS = ["Narzędzia Żywiec Sp. z o.o.", "Ferretería del Norte, S.A. de C.V.", "GreenThumb (UK) Ltd", "Zöllner KG"]
CHANNELS = ["Allegro", "Mercado Libre", "B2B portal", "Sklep własny"]


def money(rng: random.Random, v: float) -> str:
    text = f"{v:.2f}"
    roll = rng.random()
    if roll < 0.1 and v < 1:
        return text.lstrip("0")  # .95
    if roll < 0.15 and float(text).is_integer():
        return f"{int(v)}."  # 12.
    return text


def retail(out: Path, seed: int = 6006) -> dict:
    rng = random.Random(seed)
    products = []
    for i in range(2400):
        cost = round(rng.choice([rng.uniform(0.3, 1), rng.uniform(1, 80), float(rng.randint(2, 300))]), 2)
        margin = rng.uniform(-0.1, 0.55)  # some loss leaders: list price under cost
        price = round(max(cost / (1 - margin), 0.05), 2)
        sku = (f"{400000 + i}" if i % 3 == 0 else f"ZK/{i:05d}" if i % 3 == 1 else f"GT-{i:05d}")
        chans = rng.sample(CHANNELS, rng.randint(0, 3))
        channels = ";".join(chans)
        if chans and rng.random() < 0.2:
            channels = f";{channels};"
        products.append({
            "sku": sku, "vendor": VENDORS[i % 4], "unit_cost": money(rng, cost), "list_price": money(rng, price),
            "min_margin_pct": rng.choice(["", "0", "-10", "12.5", "20", "25", "30", "35"]),
            "channels": channels, "ean": f"590{rng.randrange(10**10):010d}",
            "description": rng.choice(['Hose 1/2", 25 m', "Spade, ash handle", "Sekator \"Pro\"", "Maceta 30 cm"]),
            "weight_kg": f"{rng.uniform(0.1, 30):.3f}"})
    header = {"sku": "SKU", "vendor": "VENDOR", "unit_cost": "UNIT_COST", "list_price": "LIST_PRICE",
              "min_margin_pct": "MIN_MARGIN_PCT", "channels": "CHANNELS", "ean": "EAN",
              "description": "DESCRIPTION", "weight_kg": "WEIGHT KG"}
    write(out / "retail6_catalogue.csv", products, list(header), rng=rng, header=header)
    pos = []
    for j in range(6000):
        p = products[rng.randrange(len(products))]
        pos.append({"po_id": f"{rng.choice(['PL', 'MX'])}-{j:06d}", "sku": f" {p['sku']} " if j % 5 == 0 else p["sku"],
                    "qty": rng.choice([str(rng.randint(1, 500)), f"{rng.randint(1, 40)}.5"]),
                    "unit_cost": p["unit_cost"],
                    "status": rng.choice(["Open", "OPEN", "PARTIALLY_RECEIVED", "partly received", "Partially delivered",
                                          "Received", "Closed", "Draft", "Cancelled"]),
                    "eta": (datetime(2027, 1, 1) + timedelta(days=rng.randint(0, 90))).strftime("%Y-%m-%d"),
                    "supplier_ref": f"REF {rng.randrange(10**6)}"})
    write(out / "retail6_purchase_orders.csv", pos, ["po_id", "sku", "qty", "unit_cost", "status", "eta", "supplier_ref"],
          rng=rng, bom=True)
    stock = []
    for p in products:
        for w in ("Poznań", "Monterrey", "Guadalajara"):
            roll = rng.random()
            if roll < 0.5:
                continue
            qty = 0 if roll < 0.62 else rng.randint(-4, 60)
            sku = p["sku"].lower() if rng.random() < 0.2 else p["sku"]
            if rng.random() < 0.15:  # two bins of one warehouse
                stock.append({"sku": sku, "warehouse": w, "qty": qty // 2})
                qty -= qty // 2
            stock.append({"sku": sku, "warehouse": w, "qty": qty})
    write(out / "retail6_inventory.csv", stock, ["sku", "warehouse", "qty"], rng=rng, end="\n")
    orders = []
    start = datetime(2026, 2, 2, tzinfo=UTC)
    for c in range(1500):
        cid = f"{c:06d}" if c % 2 else f"cliente{c}@example.mx"
        fam = rng.randrange(200)  # 200 project kits of 12 products
        for _ in range(rng.randint(2, 9)):
            g = fam if rng.random() < 0.75 else rng.randrange(200)
            sku = products[g * 12 + rng.randrange(12)]["sku"]
            at = start + timedelta(seconds=rng.randint(0, 280 * 86400))
            form = rng.randrange(6)
            mx = at.astimezone(timezone(timedelta(hours=-6)))
            ts = (mx.isoformat(sep=" ") if form == 0 else f"{at.isocalendar()[0]}-W{at.isocalendar()[1]:02d}-{at.isoweekday()}"
                  if form == 1 else at.strftime("%Y%m%dT%H%M%SZ") if form == 2
                  else mx.isoformat(timespec="milliseconds") if form == 3
                  else str(int(at.timestamp())) if form == 4 else at.date().isoformat())
            orders.append({"customer_id": cid, "sku": sku, "ts": ts, "channel": rng.choice(CHANNELS)})
    rng.shuffle(orders)
    write(out / "retail6_orders.csv", orders, ["customer_id", "sku", "ts", "channel"], rng=rng)
    return {"products": len(products), "pos": len(pos), "orders": len(orders)}


PLANS = {"Prepago": 120.0, "Plan 199": 199.0, "Plan 399 Ilimitado": 399.0, "Empresarial": 650.0}


def customer(rng: random.Random, i: int, *, base: float, unseen: bool = False, prepaid_wave: bool = False) -> dict:
    plan = "Plan 599 5G" if unseen and rng.random() < 0.03 else rng.choice(list(PLANS))
    if prepaid_wave and rng.random() < 0.7:
        plan = "Prepago"
    price = PLANS.get(plan, 599.0)
    tenure = rng.randint(0, 6) if prepaid_wave else int(rng.expovariate(1 / 20))
    over = rng.choice([1.0, 1.0, 1.0, rng.uniform(1.2, 2.5)])  # roaming, extra data
    charges = round(price * over * rng.uniform(0.95, 1.05), 2)
    tickets = min(int(rng.expovariate(1 / 1.5)), 40)
    login = int(rng.expovariate(1 / 20))
    contract_end = min(abs(tenure - 12), abs(tenure - 24)) <= 1
    known = (base + 1.8 * contract_end + 1.3 * (over > 1.2) + 0.25 * min(tickets, 8)
             + 0.9 * (1 - math.exp(-login / 30)) - 0.4 * (plan == "Empresarial"))
    z = known + rng.gauss(0, 0.7)
    churned = rng.random() < 1 / (1 + math.exp(-z))
    region = rng.choice(["CDMX", "Jalisco", "Nuevo León", "Yucatán"])
    return {"customer_id": f"MX-{i:07d}", "tenure_months": tenure, "monthly_charges": charges,
            "support_tickets_90d": tickets, "last_login_days": login,
            "plan": "" if rng.random() < 0.02 else (plan.lower() if rng.random() < 0.1 else plan),
            "churned": rng.choice(["True", "1", "YES"]) if churned else rng.choice(["False", "0", "no"]),
            "truth": 1 / (1 + math.exp(-known)), "is_churn": int(churned),
            "region": region, "signup_date": (datetime(2026, 11, 1) - timedelta(days=30 * tenure)).date().isoformat(),
            "email": f"c{i}@example.mx"}


CHURN_HEADER = {"customer_id": "Customer_Id", "tenure_months": "tenure_months", "monthly_charges": "Monthly_Charges",
                "support_tickets_90d": "SUPPORT_TICKETS_90D", "last_login_days": "last_login_days", "plan": "Plan",
                "churned": "Churned", "region": "Region", "signup_date": "Signup Date", "email": "E-mail"}


def churn(out: Path, seed: int = 6650) -> dict:
    rng = random.Random(seed)
    cols = list(CHURN_HEADER)
    train = [customer(rng, k, base=-1.8) for k in range(900)]
    holdout = [customer(rng, 1000 + k, base=-1.8) for k in range(300)]
    customers = [customer(rng, 2000 + k, base=-2.6, unseen=True) for k in range(4000)]
    for k in (7, 123, 2048):  # a broken export: impossible values
        customers[k]["tenure_months"] = -1
    customers[99]["last_login_days"] = 99999
    for name, rows in (("train", train), ("holdout", holdout), ("customers", customers)):
        write(out / f"churn6_{name}.csv", rows, cols, rng=rng, header=CHURN_HEADER)
    batch_cols = [c for c in cols if c != "churned"]
    write(out / "churn6_batch.csv", [customer(rng, 9000 + k, base=-1.8) for k in range(400)], batch_cols, rng=rng,
          header=CHURN_HEADER, end="\n")
    write(out / "churn6_shifted.csv", [customer(rng, 9500 + k, base=-1.8, prepaid_wave=True) for k in range(400)],
          batch_cols, rng=rng, header=CHURN_HEADER, end="\n")
    return {"churn_share": {n: round(sum(r["is_churn"] for r in rows) / len(rows), 3)
                            for n, rows in (("train", train), ("holdout", holdout), ("customers", customers))},
            "truth_auc_customers": auc([r["truth"] for r in customers], [r["is_churn"] for r in customers])}


def auc(scores: list[float], labels: list[int]) -> float:
    pairs = sorted(zip(scores, labels, strict=True))
    pos = sum(labels)
    neg = len(labels) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        rank_sum += (i + j + 1) / 2 * sum(lab for _, lab in pairs[i:j])
        i = j
    return round((rank_sum - pos * (pos + 1) / 2) / (pos * neg), 3)


CURRENCIES = {"PLN": 140.0, "CZK": 780.0, "MXN": 620.0, "BRL": 160.0, "EUR": 38.0}
HOME = {"PLN": "PL", "CZK": "CZ", "MXN": "MX", "BRL": "BR", "EUR": "DE", "CHF": "CH"}
SAFE = ["Home & Garden", "Fashion", "Supermarkets", "Pharmacy", "Books"]
RISKY = ["Computers", "Prepaid Cards", "Travel Agencies", "Software", "Crypto Exchange"]


def fraud(out: Path, n_train: int = 6000, n_later: int = 5000, seed: int = 6601,
          train_share: float = 0.05, later_share: float = 0.012) -> dict:
    rng = random.Random(seed)
    customers = []
    for c in range(1100):
        cur = rng.choice(list(CURRENCIES))
        customers.append({"id": f"{c:05d}" if c % 2 else f"user-{c}", "cur": cur, "home": HOME[cur],
                          "scale": CURRENCIES[cur] * math.exp(rng.gauss(0, 0.6))})
    swiss = [{"id": f"ch-{c}", "cur": "CHF", "home": "CH", "scale": 45.0} for c in range(6)]

    def tx(n: int, share: float, chf: int) -> list[dict]:
        rows = []
        for k in range(n):
            c = swiss[k % len(swiss)] if k < chf else rng.choice(customers)
            is_fraud = k >= chf and rng.random() < share
            cat = rng.choice(SAFE * 3 + RISKY)
            amount = c["scale"] * math.exp(rng.gauss(0, 0.7))
            country, device, hour, recent = c["home"], 0, int(rng.gauss(15, 4)) % 24, rng.choice([0, 0, 1, 2, 3])
            if rng.random() < 0.04:
                country = rng.choice(["ES", "US", "IT", "HR"])
            if rng.random() < 0.04:
                device = 1
            if rng.random() < 0.02:
                recent = rng.randint(5, 10)
            if rng.random() < 0.03:
                amount *= rng.uniform(4, 10)  # a legitimate big purchase
            if is_fraud:
                kind = rng.randrange(4)
                if kind == 0:  # takeover abroad: prepaid cards, crypto
                    device, country, cat = 1, rng.choice(["NG", "RU", "VN", "US"]), rng.choice(["Prepaid Cards", "Crypto Exchange"])
                    amount *= rng.uniform(2, 6)
                elif kind == 1:  # card testing
                    recent, amount = rng.randint(6, 30), round(rng.uniform(0, 3), 2)
                elif kind == 2:  # a big computer shipped on the customer's own device
                    cat, amount = "Computers", amount * rng.uniform(6, 20)
                else:  # at home, at night, on a new device: software keys
                    device, hour, cat, amount = 1, rng.randint(0, 4), "Software", amount * rng.uniform(1.5, 4)
            amount = round(amount, 2)
            uuid = (f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
                    f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}")
            rows.append({"tx_id": uuid,
                         "customer_id": c["id"], "amount": f"{amount:.2f}" if k % 3 else f"{amount}",
                         "currency": c["cur"] if k % 7 else c["cur"].lower(), "merchant_category": cat,
                         "country": country, "home_country": c["home"], "hour": str(hour),
                         "new_device": rng.choice(["True", "YES", "1"]) if device else rng.choice(["False", "No", "0"]),
                         "tx_last_24h": recent, "is_fraud": rng.choice(["yes", "1"]) if is_fraud else rng.choice(["no", "0"]),
                         "user_agent": rng.choice(["Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "okhttp/4.9.0",
                                                   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0, like Mac OS X)"]),
                         "ip_country": country})
        return rows

    cols = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
            "new_device", "tx_last_24h", "is_fraud", "user_agent", "ip_country"]
    train, later = tx(n_train, train_share, 18), tx(n_later, later_share, 9)
    write(out / f"fraud6_train_{seed}.csv", train, cols, rng=rng)
    write(out / f"fraud6_later_{seed}.csv", later, cols, rng=rng, end="\n", quote_all=True)
    fraud_of = {"yes", "1"}
    return {"train_fraud": sum(r["is_fraud"] in fraud_of for r in train),
            "later_fraud": sum(r["is_fraud"] in fraud_of for r in later)}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/h6")
    shift = int(sys.argv[sys.argv.index("--seed-shift") + 1]) if "--seed-shift" in sys.argv else 0
    out.mkdir(parents=True, exist_ok=True)
    print({"retail": retail(out, 6006 + shift), "churn": churn(out, 6650 + shift),
           "fraud": {s: fraud(out, seed=s) for s in (6601 + shift, 6602 + shift, 6603 + shift)}})


if __name__ == "__main__":
    main()
