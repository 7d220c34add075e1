"""The twelfth unseen-data round's CSV files (written by hand, not by the ``csv`` module):

    python make_data.py OUT [--seed-shift 100]

* churn: memberships of a coworking chain billed monthly in rupees (2,500-45,000, plain numbers as documented),
  plans ``Hot desk``, ``Biuro prywatne`` (Polish), ``Sala privativa`` (Portuguese); on the customers' rows a quarter of
  ``Hot desk`` typed ``HOT DESK`` and a fifth of ``Biuro prywatne`` typed ``Biuro  Prywatne``; headers `` Customer ID`` style (``customer_id `` with a
  trailing space), labels ``1``/``0``/``TRUE``/``no``; one member listed twice in the customers' file; the customers'
  columns in another order; a labelled holdout for ml_pipeline.
* retail (pricing and recommend): the chain's shop of office furniture and supplies: vendors ``Meble Biurowe Łódź
  Sp. z o.o.``, ``Sharma Office Systems Pvt. Ltd.``, ``Móveis Corporativos São João Ltda.`` (decomposed on a sixth of
  its rows, as macOS writes it) and ``Desk & Chair Co., Inc.`` (a comma in the name); headers ``SKU``, ``Vendor``,
  ``Unit_Cost``, ``LIST_PRICE``, ``min_margin_pct``, ``Channels``, a ``Beschreibung`` column of quoted text; SKUs
  ``MBL-0001``, ``sos/2``, ``MCSJ 0003`` (an inner space); costs in zł, rupees (up to six figures) and reais; POs with
  statuses ``Open``, ``OPEN ``, ``partially received``, ``Backordered``, ``Received``, ``Cancelled``, and ``Em aberto``
  and ``otwarte`` (Portuguese and Polish for open: statuses the rule does not know), a fifth of the SKUs in lower case;
  stock in ``Łódź``, ``Pune``, ``São Paulo``; orders timed with ``+05:30``, ``-03:00``, ``Z`` and dates alone.
* fraud: the chain's payments in PLN, INR (paise) and BRL, a few EUR; card testing with 1-rupee and zero checks,
  takeovers at night abroad, laptops bought with a stolen card; the later file with the columns in another order,
  ``new_device`` as ``yes``/``no``, without ``is_fraud``.
"""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path


def cell(value: object) -> str:
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write(path: Path, header: list[str], rows: list[list[object]], end: str = "\n") -> None:
    lines = [",".join(cell(h) for h in header)] + [",".join(cell(v) for v in r) for r in rows]
    path.write_bytes((end.join(lines) + end).encode("utf-8"))


PLANS = {"Hot desk": 0.6, "Biuro prywatne": -0.7, "Sala privativa": -0.2}


def churn(out: Path, seed: int = 12021, n_train: int = 2000, n_customers: int = 1000) -> None:
    rng = random.Random(seed)
    labels = {1: ["1", "TRUE", "yes"], 0: ["0", "false", "no"]}

    def member(c: int, odd: bool) -> tuple[list[object], float]:
        plan = rng.choice(list(PLANS))
        tenure = rng.randint(0, 72)
        charges = rng.randint(25, 450) * 100
        tickets = rng.choice([0, 0, 0, 1, 2, 4, 7])
        login = rng.randint(0, 45)
        z = -0.9 - 0.035 * tenure + 0.00002 * charges + 0.3 * tickets + 0.04 * login + PLANS[plan]
        written = plan
        if odd and plan == "Biuro prywatne" and c % 5 == 0:
            written = "Biuro  Prywatne"  # two spaces and a capital, as typed in the CRM
        if odd and plan == "Hot desk" and c % 4 == 0:
            written = "HOT DESK"
        return [f"cw-{c:05d}", tenure, charges, tickets, login, written], 1 / (1 + math.exp(-z))

    header = ["customer_id ", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "Plan",
              "churned"]
    rows = []
    for c in range(n_train):
        r, p = member(c, False)
        rows.append([*r, rng.choice(labels[int(rng.random() < p)])])
    write(out / "churn12_train.csv", header, rows, end="\r\n")
    customers, truth = [], []
    for c in range(n_train, n_train + n_customers):
        r, p = member(c, True)
        customers.append(r)
        truth.append([r[0], int(rng.random() < p), round(p, 4)])
    customers.append(list(customers[17]))  # the CRM exported one member twice
    order = [0, 5, 2, 1, 3, 4]
    write(out / "churn12_customers.csv", [header[i] for i in order], [[r[i] for i in order] for r in customers])
    write(out / "churn12_truth.csv", ["customer_id", "churned", "p"], truth)
    holdout = []
    for c in range(n_train + n_customers, n_train + n_customers + n_customers // 2):
        r, p = member(c, False)
        holdout.append([*r, int(rng.random() < p)])
    write(out / "churn12_holdout.csv", header, holdout)


VENDORS = {"Meble Biurowe Łódź Sp. z o.o.": "MBL", "Sharma Office Systems Pvt. Ltd.": "sos",
           "Móveis Corporativos São João Ltda.": "MCSJ", "Desk & Chair Co., Inc.": "DCC"}
CHANNELS = ["Allegro; Amazon.in;;Mercado Livre", "Allegro", "", ";Flipkart;", "Mercado Livre;Amazon.in"]


def retail(out: Path, seed: int = 12001, products: int = 400, customers: int = 300) -> None:
    import unicodedata
    from datetime import UTC, datetime, timedelta, timezone

    rng = random.Random(seed)
    cat = []
    for i in range(products):
        vendor = list(VENDORS)[i % 4]
        prefix = VENDORS[vendor]
        sku = f"{prefix}/{i}" if prefix == "sos" else f"{prefix} {i:04d}" if prefix == "MCSJ" else f"{prefix}-{i:04d}"
        cost = round(rng.uniform(200, 250_000), 2) if prefix == "sos" else round(rng.uniform(5, 4_000), 2)
        price = round(cost * rng.uniform(0.95, 2.0), 2)
        written = unicodedata.normalize("NFD", vendor) if prefix == "MCSJ" and i % 6 == 2 else vendor
        cat.append([sku, written, f'Item {i}, "office" grade', cost, price,
                    rng.choice(["", "20", "17.5", "25", "0", "30"]), rng.choice(CHANNELS)])
    write(out / "retail12_catalogue.csv", ["SKU", "Vendor", "Beschreibung", "Unit_Cost", "LIST_PRICE", "min_margin_pct",
                                           "Channels"], cat)
    statuses = ["Open", "OPEN ", "partially received", "Backordered", "Received", "Cancelled", "Em aberto", "otwarte"]
    pos = []
    for n in range(products * 2):
        p = rng.choice(cat)
        pos.append([f"PO-{n:05d}", p[0].lower() if n % 5 == 0 else p[0], rng.randint(1, 30), p[3], rng.choice(statuses)])
    write(out / "retail12_purchase_orders.csv", ["po_id", "sku", "qty", "unit_cost", "status"], pos, end="\r\n")
    write(out / "retail12_inventory.csv", ["sku", "warehouse", "qty"],
          [[p[0], w, rng.choice([0, 0, 2, 5, 14])] for p in cat for w in ("Łódź", "Pune", "São Paulo")])
    sets = [cat[k:k + 10] for k in range(0, len(cat), 10)]  # an office is furnished from one range
    zones = [timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3)), UTC]
    orders = []
    for c in range(customers):
        cid = ["KLIENT/{}", "cliente-{:03d}", "cust{}"][c % 3].format(c)
        group = sets[rng.randrange(len(sets))]
        for _ in range(rng.randint(3, 9)):
            at = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 400_000))
            ts = at.date().isoformat() if c % 4 == 3 else at.astimezone(zones[c % 3]).isoformat(timespec="seconds")
            orders.append([cid, rng.choice(group)[0], ts])
    rng.shuffle(orders)
    write(out / "retail12_orders.csv", ["customer_id", "sku", "ts"], orders)


def fraud(out: Path, seed: int = 12011, customers: int = 300, n_train: int = 7000, n_later: int = 2500) -> None:
    rng = random.Random(seed)
    homes = {"PLN": "PL", "INR": "IN", "BRL": "BR"}
    people = []
    for c in range(customers):
        cur = rng.choice(list(homes))
        scale = {"PLN": 300.0, "INR": 6000.0, "BRL": 400.0}[cur]
        people.append({"id": f"M-{c:04d}", "cur": cur, "home": homes[cur], "typical": scale * rng.uniform(0.3, 3.0)})
    cats = ["Coworking", "Meeting Rooms", "Cafe", "Gift Card", "Consumer Electronics", "Events"]

    def payment(n: int, bad: bool) -> list[object]:
        p = rng.choice(people)
        cur, home = p["cur"], p["home"]
        amount = p["typical"] * math.exp(rng.gauss(0, 0.45))
        country, hour, dev, vel, cat = home, rng.randint(6, 23), 0, rng.randint(0, 3), rng.choice(cats[:3] + cats[5:])
        if rng.random() < 0.012:
            cur, amount = "EUR", rng.uniform(15, 300)
        if bad:
            kind = rng.randrange(3)
            if kind == 0:
                amount, vel, cat, dev = rng.choice([0, 1, 1]), rng.randint(9, 40), "Gift Card", 1
            elif kind == 1:
                amount, country, hour, dev = amount * rng.uniform(4, 10), rng.choice(["RO", "VN", "NG"]), rng.randint(
                    0, 4), 1
            else:
                amount, cat, dev, vel = amount * rng.uniform(5, 14), "Consumer Electronics", 1, rng.randint(3, 9)
        elif rng.random() < 0.06:
            country = rng.choice(["DE", "PT", "AE"])  # members travelling
        return [f"PAY{n:06d}", p["id"], f"{amount:.2f}", cur, cat, country, home, hour, dev, vel, int(bad)]

    header = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
              "new_device", "tx_last_24h", "is_fraud"]
    train = [payment(n, rng.random() < 0.025) for n in range(n_train)]
    write(out / f"fraud12_train_{seed}.csv", header, train)
    later = [payment(n_train + n, rng.random() < 0.025) for n in range(n_later)]
    order = [1, 0, 3, 2, 4, 5, 6, 7, 8, 9]
    yes = {0: "no", 1: "yes"}
    write(out / f"fraud12_later_{seed}.csv", [header[i] for i in order],
          [[yes[r[i]] if i == 8 else r[i] for i in order] for r in later], end="\r\n")
    write(out / f"fraud12_truth_{seed}.csv", ["tx_id", "is_fraud"], [[r[0], r[10]] for r in later])


def main(argv: list[str]) -> None:
    out = Path(argv[1])
    shift = int(argv[argv.index("--seed-shift") + 1]) if "--seed-shift" in argv else 0
    out.mkdir(parents=True, exist_ok=True)
    retail(out, 12001 + shift)
    fraud(out, 12011 + shift)
    churn(out, 12021 + shift)


if __name__ == "__main__":
    main(sys.argv)
