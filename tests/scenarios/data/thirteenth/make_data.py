# ruff: noqa: RUF002  (a typographic apostrophe in the docstring, as the round's catalogue writes it)
"""The thirteenth unseen-data round's CSV files (written by hand, not by the ``csv`` module):

    python make_data.py OUT [--seed-shift 100]

* churn: a laundry chain's monthly plans billed in Kenyan shillings (1,500-45,000, plain numbers as documented), plans
  ``Solo``, ``Familia``, ``Negocio``; on the customers' rows a fifth of ``Familia`` typed ``FAMILIA`` and a sixth of
  ``Solo`` typed ``solo`` with a trailing space; headers ``Customer_ID``, ``TENURE_MONTHS``, ``Monthly_Charges``;
  labels ``1.0``/``0.0``/``True``/``No``; two customers listed twice; the customers' columns in another order with an
  extra ``city`` column; a labelled holdout for ml_pipeline.
* retail (pricing and recommend): the chain's supplies shop (detergents, hangers, machines' spare parts): vendors
  ``Químicos del Bajío S.A. de C.V.``, ``Nairobi Linen & Supplies Ltd``, ``Công ty TNHH Giặt Sạch Sài Gòn`` (in
  decomposed form on a fifth of its rows) and ``O'Brien Hangers (Pty) Ltd`` (with a typographic apostrophe,
  ``O’Brien``, on a quarter of its rows, as a word processor writes it); costs in pesos, shillings and dong (up to
  eight figures); SKUs ``QB-0001``, ``nls.12``, ``GS_0003``; POs with statuses ``open``, ``Open ``, ``BACKORDERED``,
  ``Partially Received``, ``received``, ``cancelled`` and ``Abierta`` (Spanish for open: a status the rule does not
  know); a quarter of the PO SKUs in lower case; stock in ``Guadalajara``, ``Nairobi``, ``TP. Hồ Chí Minh``; orders
  timed with ``-06:00``, ``+03:00``, ``+07:00`` and a space instead of ``T``.
* fraud: the chain's payments in MXN, KES and VND (whole dong, tens of thousands to millions), 1% USD; card testing
  with zero, 1-peso and 10-shilling checks; takeovers at night abroad; gift cards and electronics bought with a
  stolen card; the currency in lower case on a tenth of the rows; the later file with the columns in another order,
  an extra ``channel`` column, ``new_device`` as ``TRUE``/``false``, without ``is_fraud``.
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


PLANS = {"Solo": 0.5, "Familia": -0.6, "Negocio": -0.1}


def churn(out: Path, seed: int = 13021, n_train: int = 2000, n_customers: int = 1000) -> None:
    rng = random.Random(seed)
    labels = {1: ["1", "1.0", "True", "yes"], 0: ["0", "0.0", "false", "No"]}

    def member(c: int, odd: bool) -> tuple[list[object], float]:
        plan = rng.choice(list(PLANS))
        tenure = rng.randint(0, 60)
        charges = rng.randint(15, 450) * 100
        tickets = rng.choice([0, 0, 0, 1, 1, 3, 6])
        login = rng.randint(0, 60)
        z = -1.0 - 0.04 * tenure + 0.00003 * charges + 0.35 * tickets + 0.035 * login + PLANS[plan]
        written = plan
        if odd and plan == "Familia" and c % 5 == 0:
            written = "FAMILIA"
        if odd and plan == "Solo" and c % 6 == 0:
            written = "solo "
        return [f"LV{c:05d}", tenure, charges, tickets, login, written], 1 / (1 + math.exp(-z))

    header = ["Customer_ID", "TENURE_MONTHS", "Monthly_Charges", "support_tickets_90d", "last_login_days", "plan",
              "churned"]
    rows = []
    for c in range(n_train):
        r, p = member(c, False)
        rows.append([*r, rng.choice(labels[int(rng.random() < p)])])
    write(out / "churn13_train.csv", header, rows, end="\r\n")
    customers, truth = [], []
    for c in range(n_train, n_train + n_customers):
        r, p = member(c, True)
        customers.append(r)
        truth.append([r[0], int(rng.random() < p), round(p, 4)])
    customers += [list(customers[5]), list(customers[n_customers * 2 // 5])]  # the export listed two customers twice
    order = [5, 0, 2, 4, 1, 3]
    cities = ["Guadalajara", "Nairobi", "TP. Hồ Chí Minh"]
    write(out / "churn13_customers.csv", ["city"] + [header[i] for i in order],
          [[cities[k % 3]] + [r[i] for i in order] for k, r in enumerate(customers)])
    write(out / "churn13_truth.csv", ["customer_id", "churned", "p"], truth)
    holdout = []
    for c in range(n_train + n_customers, n_train + n_customers + n_customers // 2):
        r, p = member(c, False)
        holdout.append([*r, int(rng.random() < p)])
    write(out / "churn13_holdout.csv", header, holdout)


VENDORS = {"Químicos del Bajío S.A. de C.V.": "QB", "Nairobi Linen & Supplies Ltd": "nls",
           "Công ty TNHH Giặt Sạch Sài Gòn": "GS", "O'Brien Hangers (Pty) Ltd": "OBH"}
CHANNELS = ["Mercado Libre;Jumia", "Jumia", "", "Shopee; Lazada;", "Mercado Libre"]


def retail(out: Path, seed: int = 13001, products: int = 400, customers: int = 300) -> None:
    import unicodedata
    from datetime import UTC, datetime, timedelta, timezone

    rng = random.Random(seed)
    cat = []
    for i in range(products):
        vendor = list(VENDORS)[i % 4]
        prefix = VENDORS[vendor]
        sku = f"{prefix}.{i}" if prefix == "nls" else f"{prefix}_{i:04d}" if prefix == "GS" else f"{prefix}-{i:04d}"
        cost = (round(rng.uniform(20_000, 40_000_000), 0) if prefix == "GS" else round(rng.uniform(150, 90_000), 2)
                if prefix == "nls" else round(rng.uniform(8, 6_000), 2))
        price = round(cost * rng.uniform(0.95, 2.0), 2)
        written = vendor
        if prefix == "GS" and i % 5 == 2:
            written = unicodedata.normalize("NFD", vendor)
        if prefix == "OBH" and i % 16 == 15:
            written = vendor.replace("'", "\u2019")  # a word processor's apostrophe
        cat.append([sku, written, cost, price, rng.choice(["", "15", "22.5", "30", "0"]), rng.choice(CHANNELS),
                    f'Item {i}, "pro" line'])
    write(out / "retail13_catalogue.csv", ["Sku", "VENDOR", "unit_cost", "List_Price", "Min_Margin_Pct", "channels",
                                           "notes"], cat)
    statuses = ["open", "Open ", "BACKORDERED", "Partially Received", "received", "cancelled", "Abierta"]
    pos = []
    for n in range(products * 2):
        p = rng.choice(cat)
        pos.append([p[0].lower() if n % 4 == 0 else p[0], f"OC-{n:05d}", rng.randint(1, 40), p[2],
                    rng.choice(statuses)])
    write(out / "retail13_purchase_orders.csv", ["sku", "po_id", "qty", "unit_cost", "status"], pos, end="\r\n")
    write(out / "retail13_inventory.csv", ["warehouse", "sku", "qty"],
          [[w, p[0], rng.choice([0, 0, 3, 8, 20])] for p in cat for w in ("Guadalajara", "Nairobi", "TP. Hồ Chí Minh")])
    sets = [cat[k:k + 8] for k in range(0, len(cat), 8)]  # a shop restocks from one line of supplies
    zones = [timezone(timedelta(hours=-6)), timezone(timedelta(hours=3)), timezone(timedelta(hours=7))]
    orders = []
    for c in range(customers):
        cid = ["MX-{:04d}", "ke_{}", "VN{:03d}"][c % 3].format(c)
        group = sets[rng.randrange(len(sets))]
        for _ in range(rng.randint(3, 10)):
            at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 380_000))
            local = at.astimezone(zones[c % 3])
            ts = local.isoformat(timespec="seconds").replace("T", " ") if c % 5 == 4 else local.isoformat(
                timespec="seconds")
            orders.append([cid, rng.choice(group)[0], ts])
    rng.shuffle(orders)
    write(out / "retail13_orders.csv", ["customer_id", "sku", "ts"], orders)


def fraud(out: Path, seed: int = 13011, customers: int = 320, n_train: int = 7000, n_later: int = 2500) -> None:
    rng = random.Random(seed)
    homes = {"MXN": "MX", "KES": "KE", "VND": "VN"}
    people = []
    for c in range(customers):
        cur = rng.choice(list(homes))
        scale = {"MXN": 400.0, "KES": 2500.0, "VND": 450_000.0}[cur]
        people.append({"id": f"LV-{c:04d}", "cur": cur, "home": homes[cur], "typical": scale * rng.uniform(0.3, 3.0)})
    cats = ["Laundry", "Dry Cleaning", "Subscription", "Gift Card", "Consumer Electronics", "Tips"]

    def payment(n: int, bad: bool) -> list[object]:
        p = rng.choice(people)
        cur, home = p["cur"], p["home"]
        amount = p["typical"] * math.exp(rng.gauss(0, 0.4))
        country, hour, dev, vel, cat = home, rng.randint(6, 22), 0, rng.randint(0, 3), rng.choice(cats[:3] + cats[5:])
        if rng.random() < 0.01:
            cur, amount = "USD", p["typical"] / {"MXN": 18.0, "KES": 130.0, "VND": 25_000.0}[p["cur"]]
        if bad:
            kind = rng.randrange(3)
            if kind == 0:
                small = {"MXN": 1, "KES": 10, "VND": 1000, "USD": 1}[cur]
                amount, vel, cat, dev = rng.choice([0, small, small]), rng.randint(9, 40), "Gift Card", 1
            elif kind == 1:
                amount, country, hour, dev = amount * rng.uniform(4, 10), rng.choice(["UA", "NG", "KH"]), rng.randint(
                    0, 4), 1
            else:
                amount, cat, dev, vel = amount * rng.uniform(5, 14), "Consumer Electronics", 1, rng.randint(3, 9)
        elif rng.random() < 0.05:
            country = rng.choice(["US", "TZ", "TH"])  # customers travelling
        written = f"{amount:.0f}" if cur == "VND" else f"{amount:.2f}"
        return [f"TX{n:06d}", p["id"], written, cur.lower() if n % 10 == 3 else cur, cat, country, home, hour, dev, vel,
                int(bad)]

    header = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
              "new_device", "tx_last_24h", "is_fraud"]
    train = [payment(n, rng.random() < 0.025) for n in range(n_train)]
    write(out / f"fraud13_train_{seed}.csv", header, train)
    later = [payment(n_train + n, rng.random() < 0.025) for n in range(n_later)]
    order = [7, 2, 3, 0, 1, 4, 5, 6, 8, 9]
    flag = {0: "false", 1: "TRUE"}
    write(out / f"fraud13_later_{seed}.csv", [header[i] for i in order] + ["channel"],
          [[flag[r[i]] if i == 8 else r[i] for i in order] + [rng.choice(["app", "web", "pos"])] for r in later],
          end="\r\n")
    write(out / f"fraud13_truth_{seed}.csv", ["tx_id", "is_fraud"], [[r[0], r[10]] for r in later])


def main(argv: list[str]) -> None:
    out = Path(argv[1])
    shift = int(argv[argv.index("--seed-shift") + 1]) if "--seed-shift" in argv else 0
    out.mkdir(parents=True, exist_ok=True)
    retail(out, 13001 + shift)
    fraud(out, 13011 + shift)
    churn(out, 13021 + shift)


if __name__ == "__main__":
    main(sys.argv)
