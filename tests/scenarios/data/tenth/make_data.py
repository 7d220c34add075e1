# ruff: noqa: RUF001, RUF002  (full-width letters, ideographic spaces and Portuguese of the round's data)
"""The tenth unseen-data round's CSV files, written by a hand-rolled writer (not the ``csv`` module's):

    python make_data.py OUT [--seed-shift 100]

* retail: a stationery and art-supplies wholesaler selling in Japan, Brazil and South Africa (pricing and
  recommend). The catalogue's columns in another order (``list_price`` first, ``vendor`` last), LF, no BOM, every
  number quoted; vendors ``株式会社　東京文具`` (an ideographic space), ``Papelaria São João Ltda.``, ``Cape Art
  Supplies (Pty) Ltd`` and ``Ｋｏｂｅ Ｐａｐｅｒ`` (written in full-width letters); SKUs such as ``PEN-0007``,
  ``筆-12``, ``TINTA/3``; channels ``Rakuten;Amazon JP``, ``Mercado Livre``, ``Takealot``; prices in yen written
  ``1980`` (no decimals), in reais with two. Purchase orders with ``Open``, ``BACKORDERED``, ``partly received``,
  ``received``, ``void`` (a status the rule does not know) and a fifth of the SKUs written in full-width letters as a
  Japanese system exports them (``ＰＥＮ－０００７``): the checker reads them as the SKU a person means (NFKC).
  Stock in ``東京``, ``São Paulo``, ``Cape Town``. Orders with ``Z`` times, ``+09:00``, ``-03:00``, ``+02:00``.
* fraud: a ride-hailing and food app in Japan, Brazil and South Africa: JPY (whole yen, hundreds to tens of
  thousands), BRL and ZAR, a few payments in CHF (too few to compare: to a person); columns in another order, currency
  in lower case, flags ``Y``-less: ``true``/``FALSE``/``yes``/``no``/``1``/``0``; the later file CRLF without
  ``is_fraud`` (the truth beside it) with an extra trailing column.
* churn: a language-learning subscription billing in yen (980-4,980 a month), plans ``ベーシック``, ``Premium``,
  ``Família`` (NFD on some rows) and ``Escola``; labels ``TRUE``/``false``/``1``/``0``; the customers file with the
  columns in another order; ml_pipeline batches like the training data, and one of Brazilian students billed in reais
  (a hundredth of the figures) on plans of their own.
"""
from __future__ import annotations

import math
import random
import sys
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path


def cell(value: object, always: bool = False) -> str:
    text = str(value)
    if always or any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write(path: Path, header: list[str], rows: list[list[object]], *, end: str = "\n", quote: set[int] | None = None,
          extra: str | None = None) -> None:
    quote = quote or set()
    tail = "," + extra if extra is not None else ""
    lines = [",".join(cell(h) for h in header) + ("," + "note" if extra is not None else "")]
    lines += [",".join(cell(v, i in quote) for i, v in enumerate(r)) + tail for r in rows]
    path.write_bytes((end.join(lines) + end).encode("utf-8"))


def wide(text: str) -> str:
    """``text`` in full-width letters, digits and signs, as a Japanese system may export it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


VENDORS = ["株式会社　東京文具", "Papelaria São João Ltda.", "Cape Art Supplies (Pty) Ltd", wide("Kobe") + " " + wide("Paper")]
KINDS = ["PEN", "筆", "TINTA", "PAPEL", "SKETCH", "糊"]
CHANNELS = ["Rakuten;Amazon JP", "Mercado Livre", "Takealot", "", "Rakuten; Mercado Livre"]
WAREHOUSES = ["東京", "São Paulo", "Cape Town"]


def retail(out: Path, seed: int = 10001, products: int = 700, customers: int = 600) -> dict:
    rng = random.Random(seed)
    cat = []
    for i in range(products):
        vendor = VENDORS[i % len(VENDORS)]
        kind = KINDS[i % len(KINDS)]
        sku = rng.choice([f"{kind}-{i:04d}", f"{kind}/{i}"])
        yen = vendor.startswith("株式") or vendor.startswith("Ｋ")
        cost = float(rng.randint(80, 20000)) if yen else round(rng.uniform(2, 400), 2)
        price = round(cost * rng.uniform(0.95, 2.1)) if yen else round(cost * rng.uniform(0.95, 2.1), 2)
        cat.append({"sku": sku, "vendor": vendor, "cost": cost, "price": price,
                    "margin": rng.choice(["15", "20", "25", "30", "22.5"]), "channels": rng.choice(CHANNELS), "yen": yen})

    def money(p: dict, v: float) -> str:
        return f"{v:.0f}" if p["yen"] else f"{v:.2f}"

    write(out / "retail10_catalogue.csv", ["list_price", "sku", "unit_cost", "min_margin_pct", "channels", "vendor"],
          [[money(p, p["price"]), p["sku"], money(p, p["cost"]), p["margin"], p["channels"], p["vendor"]] for p in cat],
          quote={0, 2, 3})
    statuses = ["Open", "BACKORDERED", "partly received", "received", "void"]
    pos = [[f"PO-{seed}-{j:05d}", wide(p["sku"]) if j % 5 == 0 else p["sku"], rng.randint(1, 200),
            money(p, p["cost"]), rng.choice(statuses)] for j, p in ((j, rng.choice(cat)) for j in range(1500))]
    write(out / "retail10_purchase_orders.csv", ["po_id", "sku", "qty", "unit_cost", "status"], pos)
    inv = [[p["sku"], w, rng.choice([0, 0, 3, 12, 50])] for p in cat for w in rng.sample(WAREHOUSES, rng.randint(1, 2))]
    write(out / "retail10_inventory.csv", ["sku", "warehouse", "qty"], inv)
    setups = [rng.sample(range(products), 12) for _ in range(30)]
    orders, ids = [], []
    for c in range(customers):
        cid = rng.choice([f"CLI-{c:04d}", f"顧客{c:04d}", f"za_{c}"])
        ids.append(cid)
        day0 = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=rng.randrange(300))
        for k in range(rng.randint(3, 10)):
            item = rng.choice(setups[c % len(setups)]) if rng.random() < 0.8 else rng.randrange(products)
            at = day0 + timedelta(days=k * rng.randint(3, 15), seconds=rng.randrange(86400))
            zone = timezone(timedelta(hours=rng.choice([9, -3, 2])))
            ts = rng.choice([at.strftime("%Y-%m-%dT%H:%M:%SZ"), at.astimezone(zone).isoformat(timespec="seconds")])
            orders.append([cid, cat[item]["sku"], ts])
    write(out / "retail10_orders.csv", ["customer_id", "sku", "ts"], orders)
    return {"catalogue": cat, "customers": ids}


SCALE = {"JPY": 2400.0, "BRL": 60.0, "ZAR": 180.0}
CATEGORIES = ["Ride", "Food", "Groceries", "Tickets"]


def fraud(out: Path, seed: int = 10011, customers: int = 350, n_train: int = 9000, n_later: int = 3000,
          rate: float = 0.02) -> dict:
    rng = random.Random(seed)
    homes = {"JPY": "JP", "BRL": "BR", "ZAR": "ZA"}
    people = [{"id": f"R{c:05d}", "cur": (cur := rng.choice(list(SCALE))), "home": homes[cur],
               "scale": SCALE[cur] * math.exp(rng.gauss(0, 0.4)), "cats": rng.sample(CATEGORIES, 2)}
              for c in range(customers)]

    def payment(n: int, bad: bool) -> dict:
        p = rng.choice(people)
        row = {"tx_id": f"T{seed}-{n:06d}", "customer_id": p["id"], "amount": p["scale"] * math.exp(rng.gauss(0, 0.3)),
               "currency": p["cur"], "merchant_category": rng.choice(p["cats"]), "country": p["home"],
               "home_country": p["home"], "hour": rng.randrange(6, 24), "new_device": int(rng.random() < 0.03),
               "tx_last_24h": rng.choice([0, 1, 1, 2, 3]), "is_fraud": int(bad)}
        if rng.random() < 0.002:
            row.update(currency="CHF", amount=rng.uniform(10, 80), country="CH")
        if bad:
            kind = rng.randrange(3)
            if kind == 0:
                row.update(amount=p["scale"] * rng.uniform(0.03, 0.1), tx_last_24h=rng.randint(8, 20),
                           hour=rng.randint(0, 4), merchant_category=rng.choice(["Gift Cards", "vouchers"]))
            elif kind == 1:
                row.update(country=rng.choice(["RU", "NG", "VN"]), new_device=1, amount=p["scale"] * rng.uniform(4, 9),
                           merchant_category="Electronics")
            else:
                row.update(new_device=1, tx_last_24h=rng.randint(6, 12), amount=p["scale"] * rng.uniform(3, 6))
        row["amount_text"] = f"{row['amount']:.0f}" if row["currency"] == "JPY" else f"{row['amount']:.2f}"
        return row

    def flag(v: int) -> str:
        return rng.choice(["true", "yes", "1", "TRUE"]) if v else rng.choice(["FALSE", "no", "0", "false"])

    train = [payment(i, rng.random() < rate) for i in range(n_train)]
    later = [payment(n_train + i, rng.random() < rate) for i in range(n_later)]
    cols = ["hour", "tx_id", "amount", "currency", "customer_id", "merchant_category", "new_device", "country",
            "home_country", "tx_last_24h"]

    def line(r: dict) -> list[object]:
        return [r["hour"], r["tx_id"], r["amount_text"], r["currency"].lower(), r["customer_id"], r["merchant_category"],
                flag(r["new_device"]), r["country"], r["home_country"], r["tx_last_24h"]]

    write(out / f"fraud10_train_{seed}.csv", [*cols, "is_fraud"], [[*line(r), flag(r["is_fraud"])] for r in train])
    write(out / f"fraud10_later_{seed}.csv", cols, [line(r) for r in later], end="\r\n", extra="")
    write(out / f"fraud10_truth_{seed}.csv", ["tx_id", "is_fraud"], [[r["tx_id"], r["is_fraud"]] for r in later])
    return {"train": train, "later": later}


PLANS = {"ベーシック": 980, "Premium": 2980, "Família": 4980, "Escola": 3980}


def churn(out: Path, seed: int = 10021, n_train: int = 2000, n_customers: int = 1500) -> dict:
    rng = random.Random(seed)

    def person(i: int, prefix: str) -> dict:
        plan = rng.choice(list(PLANS))
        tenure = int(rng.expovariate(1 / 10))
        charges = round(PLANS[plan] * rng.uniform(0.9, 1.3))
        tickets = min(30, int(rng.expovariate(1 / 1.2)))
        idle = int(rng.expovariate(1 / 7))
        z = (-1.2 + 0.1 * idle - 0.07 * min(tenure, 24) + 0.35 * tickets + 0.6 * (plan == "ベーシック")
             - 0.9 * (plan == "Escola") + 0.8 * (charges > 1.2 * PLANS[plan]) + rng.gauss(0, 0.5))
        p = 1 / (1 + math.exp(-z))
        return {"customer_id": f"{prefix}{i:05d}", "tenure_months": tenure, "monthly_charges": charges,
                "support_tickets_90d": tickets, "last_login_days": idle,
                "plan": unicodedata.normalize("NFD", plan) if rng.random() < 0.3 else plan,
                "churned": int(rng.random() < p), "p": p}

    cols = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan"]
    labels = {0: ["0", "false", "FALSE"], 1: ["1", "TRUE", "true"]}
    train = [person(i, "JP-") for i in range(n_train)]
    write(out / "churn10_train.csv", [*cols, "churned"],
          [[r[c] for c in cols] + [rng.choice(labels[r["churned"]])] for r in train])
    later = [person(i, "TK-") for i in range(n_customers)]
    shuffled = ["plan", "last_login_days", "customer_id", "monthly_charges", "tenure_months", "support_tickets_90d"]
    write(out / "churn10_customers.csv", shuffled, [[r[c] for c in shuffled] for r in later])
    write(out / "churn10_truth.csv", ["customer_id", "churned", "p"],
          [[r["customer_id"], r["churned"], round(r["p"], 6)] for r in later])
    holdout = [person(i, "HO-") for i in range(500)]
    write(out / "churn10_holdout.csv", [*cols, "churned"], [[r[c] for c in cols] + [r["churned"]] for r in holdout])
    write(out / "churn10_batch.csv", cols, [[r[c] for c in cols] for r in (person(i, "CL-") for i in range(400))])
    reais = [{**person(i, "BR-"), "plan": rng.choice(["Básico", "Família"])} for i in range(500)]
    for r in reais:
        r["monthly_charges"] = round(r["monthly_charges"] / 100, 2)
    write(out / "churn10_batch_reais.csv", cols, [[r[c] for c in cols] for r in reais])
    return {"train": train, "later": later}


def main(argv: list[str]) -> None:
    out = Path(argv[1] if len(argv) > 1 else ".")
    shift = int(argv[argv.index("--seed-shift") + 1]) if "--seed-shift" in argv else 0
    out.mkdir(parents=True, exist_ok=True)
    retail(out, 10001 + shift)
    fraud(out, 10011 + shift)
    churn(out, 10021 + shift)


if __name__ == "__main__":
    main(sys.argv)
