# ruff: noqa: RUF001, RUF002  (Greek, Norwegian and Spanish letters of the round's data)
"""The eleventh unseen-data round's CSV files, written by a hand-rolled writer (not the ``csv`` module's):

    python make_data.py OUT [--seed-shift 100]

* retail: a marine chandlery selling in Greece, Norway and Chile (pricing and recommend). Vendors ``Ναυτιλιακά
  Παπαδόπουλος Α.Ε.`` (a Greek name, typed by its users in capitals, where Greek drops the accents:
  ``ΝΑΥΤΙΛΙΑΚΑ ΠΑΠΑΔΟΠΟΥΛΟΣ Α.Ε.``), ``Båtutstyr Nordland AS``, ``Náutica Austral SpA`` (prices in whole pesos, up to
  millions) and ``Ocean "Pro" Hardware Ltd.`` (a quote in the name); headers ``SKU``, ``Vendor``, ``UNIT_COST``,
  ``List_Price``, a ``Περιγραφή`` column of quoted text with commas and quotes; SKUs ``Σχοινί-0042`` (Greek, with
  its accent), ``BÅT/12``, ``ANC-0007``; a product given away (cost 0), every eleventh with no minimum margin.
  Purchase orders (CRLF) with ``Open``, ``Backordered``, ``partially received``, ``Received``, ``Cancelled``,
  ``ΑΝΟΙΧΤΗ`` (Greek for open: a status the rule does not know), a quarter of the Greek SKUs written in capitals
  without the accent as a Greek system exports them (``ΣΧΟΙΝΙ-0042``). Stock in ``Πειραιάς``, ``Bodø``, ``Puerto
  Montt``, half the SKUs in lower case; orders with ``+02:00``, ``-04:00``, ``Z`` and dates alone.
* fraud: a charter-booking and marina-payments platform: EUR, NOK, CLP (whole pesos, tens of thousands to
  millions) and a few USD; zero-amount card checks; columns in another order; the later file without ``is_fraud``.
* churn: marina-management software billed monthly in CLP (49,000-990,000), plans ``Βασικό``, ``Pro``, ``Empresa``;
  on a third of the customers' rows the Greek plan is written in capitals without accents (``ΒΑΣΙΚΟ``); for
  ml_pipeline a labelled holdout and a batch of marinas in the United States billed in dollars on a plan of their own.
"""
from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path


def cell(value: object) -> str:
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write(path: Path, header: list[str], rows: list[list[object]], end: str = "\n") -> None:
    lines = [",".join(cell(h) for h in header)] + [",".join(cell(v) for v in r) for r in rows]
    path.write_bytes((end.join(lines) + end).encode("utf-8"))


def greek_capitals(text: str) -> str:
    """``text`` as Greek is written in capitals: upper case without the accents (the tonos)."""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFD", text) if c != "\u0301")
    return unicodedata.normalize("NFC", plain).upper()


GREEK = "Ναυτιλιακά Παπαδόπουλος Α.Ε."
VENDORS = [GREEK, "Båtutstyr Nordland AS", "Náutica Austral SpA", 'Ocean "Pro" Hardware Ltd.']
KINDS = {GREEK: "Σχοινί", "Båtutstyr Nordland AS": "BÅT", "Náutica Austral SpA": "ANC", 'Ocean "Pro" Hardware Ltd.': "OPH"}
CHANNELS = ["Skroutz;eBay.gr", "Finn.no", "MercadoLibre CL", "", "Skroutz; Finn.no;"]
WAREHOUSES = ["Πειραιάς", "Bodø", "Puerto Montt"]


def retail(out: Path, seed: int = 11001, products: int = 600, customers: int = 500) -> dict:
    rng = random.Random(seed)
    cat = []
    for i in range(products):
        vendor = VENDORS[i % len(VENDORS)]
        sku = f"{KINDS[vendor]}-{i:04d}" if i % 3 else f"{KINDS[vendor]}/{i}"
        pesos = vendor.startswith("Náutica")
        cost = float(rng.randint(2000, 2_500_000)) if pesos else round(rng.uniform(1, 900), 2)
        if i % 97 == 5:
            cost = 0.0  # a free sample
        price = round(max(cost, 1) * rng.uniform(0.9, 2.2)) if pesos else round(max(cost, 1) * rng.uniform(0.9, 2.2), 2)
        cat.append({"sku": sku, "vendor": vendor, "cost": cost, "price": price, "pesos": pesos,
                    "margin": rng.choice(["15", "20", "25", "30", "17.5", ""]) if i % 11 else "",
                    "channels": rng.choice(CHANNELS)})

    def money(p: dict, v: float) -> str:
        return f"{v:.0f}" if p["pesos"] else f"{v:.2f}"

    write(out / "retail11_catalogue.csv", ["SKU", "Vendor", "Περιγραφή", "UNIT_COST", "List_Price", "MIN_MARGIN_PCT",
                                           "Channels"],
          [[p["sku"], p["vendor"], f"Part {i}, marine grade, \"{p['sku']}\"", money(p, p["cost"]), money(p, p["price"]),
            p["margin"], p["channels"]] for i, p in enumerate(cat)])
    statuses = ["Open", "Backordered", "partially received", "Received", "Cancelled", "ΑΝΟΙΧΤΗ"]
    pos = []
    for n in range(products * 2):
        p = rng.choice(cat)
        sku = p["sku"]
        if p["vendor"] == GREEK and n % 4 == 0:
            sku = greek_capitals(sku)  # ΣΧΟΙΝΙ-0042 for Σχοινί-0042
        pos.append([f"PO-{n:05d}", sku, rng.randint(1, 40), money(p, p["cost"]), rng.choice(statuses)])
    write(out / "retail11_purchase_orders.csv", ["po_id", "sku", "qty", "unit_cost", "status"], pos, end="\r\n")
    stock = [[p["sku"] if j % 2 else p["sku"].lower(), WAREHOUSES[j], rng.choice([0, 0, 1, 3, 12, 40])]
             for p in cat for j in range(3)]
    write(out / "retail11_inventory.csv", ["sku", "warehouse", "qty"], stock)
    # customers buy within "fleets" of 12 products that go together
    fleets = [cat[k:k + 12] for k in range(0, len(cat), 12)]
    ids = ["ΠΕΛ-{:04d}", "kunde-{}", "cliente.{}"]
    zones = [timezone(timedelta(hours=2)), timezone(timedelta(hours=-4)), UTC]
    orders = []
    for c in range(customers):
        cid = ids[c % 3].format(c)
        fleet = fleets[rng.randrange(len(fleets))]
        for _ in range(rng.randint(3, 10)):
            p = rng.choice(fleet)
            at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 480_000))
            form = c % 4
            ts = (at.astimezone(zones[c % 3]).isoformat(timespec="seconds") if form < 2 else
                  at.strftime("%Y-%m-%dT%H:%M:%SZ") if form == 2 else at.date().isoformat())
            orders.append([cid, p["sku"], ts])
    rng.shuffle(orders)
    write(out / "retail11_orders.csv", ["customer_id", "sku", "ts"], orders)
    return {"catalogue": cat}


def fraud(out: Path, seed: int = 11011, customers: int = 400, n_train: int = 8000, n_later: int = 3000) -> None:
    rng = random.Random(seed)
    homes = {"EUR": "GR", "NOK": "NO", "CLP": "CL"}
    people = []
    for c in range(customers):
        cur = rng.choice(["EUR", "NOK", "CLP"])
        scale = {"EUR": 120.0, "NOK": 1300.0, "CLP": 110_000.0}[cur]
        people.append({"id": f"CU{c:05d}", "cur": cur, "home": homes[cur], "typical": scale * rng.uniform(0.4, 2.5)})
    cats = ["Charter", "Marina Fees", "Fuel", "Gift Card", "Consumer Electronics", "Restaurants", "Flights"]

    def payment(n: int, bad: bool) -> list[object]:
        p = rng.choice(people)
        cur, home = p["cur"], p["home"]
        amount = p["typical"] * math.exp(rng.gauss(0, 0.4))
        country, hour, dev, vel, cat = home, rng.randint(7, 22), 0, rng.randint(0, 3), rng.choice(cats[:3] + cats[5:6])
        if rng.random() < 0.01:
            cur = "USD"
            amount = rng.uniform(20, 400)
        if bad:
            kind = rng.randrange(3)
            if kind == 0:  # card testing: zero or tiny checks, many in a day
                amount, vel, cat, dev = rng.choice([0, 0, 1]), rng.randint(8, 30), "Gift Card", 1
            elif kind == 1:  # takeover abroad at night
                amount, country, hour, dev = amount * rng.uniform(4, 12), rng.choice(["RU", "NG", "BR"]), rng.randint(
                    0, 4), 1
            else:
                amount, cat, dev, vel = amount * rng.uniform(6, 15), "Consumer Electronics", 1, rng.randint(3, 9)
        elif rng.random() < 0.05:
            country = rng.choice(["IT", "HR", "TR"])  # sailing abroad
        amt = f"{amount:.0f}" if cur == "CLP" else f"{amount:.2f}"
        return [f"T{n:07d}", p["id"], amt, cur, cat, country, home, hour, dev, vel, int(bad)]

    header = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
              "new_device", "tx_last_24h", "is_fraud"]
    train = [payment(n, rng.random() < 0.03) for n in range(n_train)]
    write(out / f"fraud11_train_{seed}.csv", header, train)
    later = [payment(n_train + n, rng.random() < 0.03) for n in range(n_later)]
    order = [7, 0, 2, 3, 1, 4, 5, 6, 8, 9]  # hour first, no is_fraud
    write(out / f"fraud11_later_{seed}.csv", [header[i] for i in order], [[r[i] for i in order] for r in later],
          end="\r\n")
    write(out / f"fraud11_truth_{seed}.csv", ["tx_id", "is_fraud"], [[r[0], r[10]] for r in later])


PLANS = ["Βασικό", "Pro", "Empresa"]


def churn(out: Path, seed: int = 11021, n_train: int = 2400, n_customers: int = 1200) -> None:
    rng = random.Random(seed)

    def person(c: int, caps: bool) -> tuple[list[object], float]:
        plan = rng.choice(PLANS)
        tenure = rng.randint(0, 96)
        charges = rng.randint(49, 990) * 1000
        tickets = rng.choice([0, 0, 1, 2, 3, 5, 8])
        login = rng.randint(0, 60)
        z = -0.6 - 0.03 * tenure + 0.0000015 * charges + 0.25 * tickets + 0.03 * login + {"Βασικό": 0.5, "Pro": 0,
                                                                                          "Empresa": -0.6}[plan]
        p = 1 / (1 + math.exp(-z))
        written = greek_capitals(plan) if caps and plan == "Βασικό" else plan
        return [f"MAR-{c:05d}", tenure, charges, tickets, login, written], p

    header = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan",
              "churned"]
    rows = []
    for c in range(n_train):
        r, p = person(c, False)
        rows.append([*r, int(rng.random() < p)])
    write(out / "churn11_train.csv", header, rows)
    customers, truth = [], []
    for c in range(n_train, n_train + n_customers):
        r, p = person(c, c % 3 == 0)
        customers.append(r)
        truth.append([r[0], int(rng.random() < p), round(p, 4)])
    write(out / "churn11_customers.csv", header[:-1], customers)
    write(out / "churn11_truth.csv", ["customer_id", "churned", "p"], truth)
    # ml_pipeline: a labelled holdout, and a batch of 500 marinas bought in the United States, billed in dollars
    # (a thousandth of the figures) on a plan of their own
    holdout = []
    for c in range(n_train + n_customers, n_train + n_customers + n_customers // 2):
        r, p = person(c, False)
        holdout.append([*r, int(rng.random() < p)])
    write(out / "churn11_holdout.csv", header, holdout)
    drifted = []
    for c in range(500):
        r, _ = person(90_000 + c, False)
        drifted.append([f"US-{c:04d}", r[1], round(r[2] / 950, 2), r[3], r[4], "Marina US"])
    write(out / "churn11_batch_us.csv", header[:-1], drifted)


def main(argv: list[str]) -> None:
    out = Path(argv[1])
    shift = int(argv[argv.index("--seed-shift") + 1]) if "--seed-shift" in argv else 0
    out.mkdir(parents=True, exist_ok=True)
    retail(out, 11001 + shift)
    fraud(out, 11011 + shift)
    churn(out, 11021 + shift)


if __name__ == "__main__":
    main(sys.argv)
