# ruff: noqa: RUF001, RUF002  (Turkish dotless i and other letters of the round's languages)
"""The ninth unseen-data round's CSV files, written by a hand-rolled writer (not the ``csv`` module's), so the
quoting, line ends, byte-order marks and header spellings are the round's own:

    python make_data.py OUT [--seed-shift 100]

* retail: a home-textile and furniture wholesaler selling in Turkey, Poland and Vietnam (pricing and recommend).
  A BOM and CRLF on the catalogue, headers `` Sku ``, ``VENDOR``, ``Unit_Cost``, ``List_Price `` and an extra
  ``Açıklama`` column whose quoted cells hold commas, doubled quotes and line breaks; vendors ``İpek & Yün Tekstil
  A.Ş.`` (a dotted capital I), ``Kırmızı Halı Ltd. Şti.`` (dotless i's), ``Meble Łódź Sp. z o.o.`` and ``Công ty
  TNHH Nội Thất Sài Gòn`` (a third of its rows NFD); one vendor's ``min_margin_pct`` empty on every row and the
  ``channels`` cell empty on a third of the rows; SKUs such as ``HL.0042``, ``ŁÓŻ-7`` and ``GHẾ_12``; costs
  ``1e3``, ``-0``, ``0.0``. Purchase orders (LF, no BOM, a comma ending every row) with statuses ``Open``,
  ``OPEN``, ``Back-Ordered``, ``on backorder``, ``partially received``, ``Received``, ``Cancelled``, ``Pending``
  (a status the rule does not know) and a quarter of the SKUs in lower case as a Turkish system writes it
  (``KİLİM`` as ``kilim``). Stock in ``İstanbul``, ``Warszawa``, ``TP. Hồ Chí
  Minh`` (NFD on some rows), the same line twice now and then. Orders with dates only, times with ``+03:00``,
  ``+07:00`` and seconds; a customer buying the same product twice on one day (a duplicated line).
* fraud: a food-delivery and ride-hailing app in Vietnam, Poland, Kuwait and Turkey: VND (amounts in the tens and
  hundreds of thousands), PLN, KWD (three decimals, a few dinars) and TRY, and a handful of EUR payments (too few to
  compare: they go to a person); categories ``Food Delivery``, ``Ride Hailing``, ``Gift-Cards``, ``MOBILE PHONES``,
  ``Prepaid Cards``, ``crypto exchange``, ``Digital Downloads``; flags ``TRUE``/``False``/``yes``/``0``; the later
  file with a BOM, CRLF, every cell quoted, columns shuffled, without ``is_fraud`` (the truth beside it).
* churn: an e-scooter subscription in Indonesia and Vietnam, billing in rupiah (149,000-899,000 a month) and dong;
  headers in title case (`` Customer_ID ``, ``Plan``); plans ``Hemat``, ``Premium ⚡``, ``Gói Gia đình``,
  ``Kurumsal`` and empty ones; labels ``1``/``0``/``TRUE``/``no``; one customer listed twice in training; a BOM;
  customers without ``churned`` (the truth beside them); ml_pipeline batches of 400 like the training data, of 600
  Vietnamese customers billed in dong on plans of their own, and of 12 (too few to judge drift).
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


def write(path: Path, header: list[str], rows: list[list[object]], *, end: str = "\n", bom: bool = False,
          quote_all: bool = False, trailing_comma: bool = False) -> None:
    tail = "," if trailing_comma else ""
    lines = [",".join(cell(h, quote_all) for h in header) + tail]
    lines += [",".join(cell(v, quote_all) for v in r) + tail for r in rows]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (end.join(lines) + end).encode("utf-8"))


VENDORS = ["İpek & Yün Tekstil A.Ş.", "Kırmızı Halı Ltd. Şti.", "Meble Łódź Sp. z o.o.", "Công ty TNHH Nội Thất Sài Gòn"]
KINDS = ["HL", "ŁÓŻ", "GHẾ", "PERDE", "STÓŁ", "NỆM", "KİLİM"]
CHANNELS = ["Trendyol;Hepsiburada", "", "", "Allegro; Ceneo ", "Shopee;Tiki;Lazada", "Trendyol"]
WAREHOUSES = ["İstanbul", "Warszawa", "TP. Hồ Chí Minh"]


def tr_lower(text: str) -> str:
    """Lower case as a Turkish system writes it: ``İ`` is ``i`` and ``I`` is ``ı`` (Python's ``lower`` keeps a
    combining dot on the first and gives ``i`` for the second)."""
    return text.replace("İ", "i").replace("I", "ı").lower()


def retail(out: Path, seed: int = 9901, products: int = 800, customers: int = 700) -> dict:
    rng = random.Random(seed)
    cat = []
    for i in range(products):
        vendor = VENDORS[i % len(VENDORS)]
        if vendor.startswith("Công") and i % 3 == 0:
            vendor = unicodedata.normalize("NFD", vendor)
        kind = KINDS[i % len(KINDS)]
        sku = rng.choice([f"{kind}.{i:04d}", f"{kind}-{i}", f"{kind}_{i}"])
        cost = 0.0 if i % 89 == 0 else round(rng.uniform(5, 3000), 2)
        price = round(max(cost, 2) * rng.uniform(0.9, 2.2), 2)
        margin = "" if vendor.startswith("Meble") else rng.choice(["10", "20", "25", "30", "35", "12.5", "0"])
        desc = rng.choice(["", 'Pamuk, 200x220 cm', 'Kanapa "Łódź", 3-osobowa', "Ghế gỗ\nsồi tự nhiên", "Yün halı"])
        cat.append({"sku": sku, "vendor": vendor, "cost": cost, "price": price, "margin": margin,
                    "channels": rng.choice(CHANNELS), "desc": desc})

    def cost_text(v: float) -> str:
        r = rng.random()
        if v == 0:
            return rng.choice(["0", "-0", "0.0"])
        if r < 0.08 and v >= 1000:
            return f"{v:.3e}"
        return f"{v:.2f}"

    write(out / "retail9_catalogue.csv", [" Sku ", "VENDOR", "Unit_Cost", "List_Price ", "min_margin_pct", "Channels",
                                          "Açıklama"],
          [[p["sku"], p["vendor"], cost_text(p["cost"]), f"{p['price']:.2f}", p["margin"], p["channels"], p["desc"]]
           for p in cat], end="\r\n", bom=True)
    statuses = ["Open", "OPEN", "Back-Ordered", "on backorder", "partially received", "Received", "Cancelled", "Pending"]
    pos = []
    for j in range(2000):
        p = rng.choice(cat)
        pos.append([f"ZAM/{seed}/{j:05d}", tr_lower(p["sku"]) if j % 4 == 0 else p["sku"], rng.randint(1, 60),
                    f"{p['cost']:.2f}", rng.choice(statuses)])
    write(out / "retail9_purchase_orders.csv", ["po_id", "sku", "qty", "unit_cost", "status"], pos, trailing_comma=True)
    inv = []
    for p in cat:
        for w in rng.sample(WAREHOUSES, rng.randint(1, 2)):
            qty = rng.choice([0, 0, 2, 5, 18, 40])
            where = unicodedata.normalize("NFD", w) if rng.random() < 0.3 else w
            inv.append([p["sku"], where, qty])
            if rng.random() < 0.05:  # the same stock line twice (an export joined twice)
                inv.append([p["sku"], where, qty])
    write(out / "retail9_inventory.csv", ["sku", "warehouse", "qty"], inv)
    setups = [rng.sample(range(products), 15) for _ in range(40)]
    orders = []
    ids = []
    for c in range(customers):
        cid = rng.choice([f"MÜŞ-{c:04d}", f"klient_{c}", f"KH{c:05d}"])
        ids.append(cid)
        setup = setups[c % len(setups)]
        day0 = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(400))
        for k in range(rng.randint(3, 12)):
            item = rng.choice(setup) if rng.random() < 0.8 else rng.randrange(products)
            at = day0 + timedelta(days=k * rng.randint(2, 20), seconds=rng.randrange(86400))
            zone = timezone(timedelta(hours=rng.choice([3, 1, 7])))
            ts = rng.choice([at.date().isoformat(), at.astimezone(zone).isoformat(timespec="seconds"),
                             at.strftime("%Y-%m-%d %H:%M:%S")])
            orders.append([cid, cat[item]["sku"], ts])
            if rng.random() < 0.03:
                orders.append([cid, cat[item]["sku"], ts])  # the same line twice
    write(out / "retail9_orders.csv", ["customer_id", "sku", "ts"], orders)
    return {"catalogue": cat, "customers": ids}


CATEGORIES = ["Food Delivery", "Ride Hailing", "Groceries", "Pharmacy"]
SCALE = {"VND": 180_000.0, "PLN": 45.0, "KWD": 3.2, "TRY": 350.0}


def fraud(out: Path, seed: int = 9911, customers: int = 400, n_train: int = 10_000, n_later: int = 3000,
          rate: float = 0.025) -> dict:
    rng = random.Random(seed)
    homes = {"VND": "VN", "PLN": "PL", "KWD": "KW", "TRY": "TR"}
    people = []
    for c in range(customers):
        cur = rng.choice(list(SCALE))
        people.append({"id": f"U{c:06d}", "cur": cur, "home": homes[cur], "scale": SCALE[cur] * math.exp(rng.gauss(0, 0.4)),
                       "cats": rng.sample(CATEGORIES, 2)})

    def amount(v: float, cur: str) -> str:
        if cur == "VND":
            return str(int(round(v, -3)))
        if cur == "KWD":
            return f"{v:.3f}"
        return f"{v:.2f}"

    def payment(n: int, bad: bool, eur_ok: bool) -> dict:
        p = rng.choice(people)
        row = {"tx_id": f"{seed}-{n:06d}", "customer_id": p["id"], "amount": p["scale"] * math.exp(rng.gauss(0, 0.35)),
               "currency": p["cur"], "merchant_category": rng.choice(p["cats"]), "country": p["home"],
               "home_country": p["home"], "hour": rng.choice(range(7, 24)), "new_device": int(rng.random() < 0.03),
               "tx_last_24h": rng.choice([0, 1, 1, 2, 3, 4]), "is_fraud": 0}
        if eur_ok and rng.random() < 0.002:  # a few payments in euros on a trip
            row.update(currency="EUR", amount=rng.uniform(8, 60), country=rng.choice(["DE", "FR"]))
        if bad:
            row["is_fraud"] = 1
            kind = rng.randrange(3)
            if kind == 0:  # card testing on gift cards and vouchers
                row.update(amount=p["scale"] * rng.uniform(0.02, 0.1), tx_last_24h=rng.randint(7, 20), hour=rng.randint(0, 4),
                           merchant_category=rng.choice(["Gift-Cards", "Prepaid Cards", "Digital Downloads"]))
            elif kind == 1:  # a stolen account spending abroad on phones
                row.update(country=rng.choice(["NG", "RU", "BR"]), new_device=1, amount=p["scale"] * rng.uniform(4, 10),
                           merchant_category=rng.choice(["MOBILE PHONES", "crypto exchange"]))
            else:  # a new device ordering rides in bulk
                row.update(new_device=1, tx_last_24h=rng.randint(5, 12), amount=p["scale"] * rng.uniform(3, 7))
        row["amount_text"] = amount(row["amount"], row["currency"])
        return row

    def flag(v: int) -> str:
        return rng.choice(["TRUE", "yes", "1", "True"]) if v else rng.choice(["False", "no", "0", "FALSE"])

    train = [payment(i, rng.random() < rate, True) for i in range(n_train)]
    later = [payment(n_train + i, rng.random() < rate, True) for i in range(n_later)]
    cols = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
            "new_device", "tx_last_24h", "is_fraud"]
    write(out / f"fraud9_train_{seed}.csv", cols,
          [[r["tx_id"], r["customer_id"], r["amount_text"], r["currency"], r["merchant_category"], r["country"],
            r["home_country"], r["hour"], flag(r["new_device"]), r["tx_last_24h"], flag(r["is_fraud"])] for r in train])
    shuffled = ["customer_id", "tx_last_24h", "currency", "amount", "tx_id", "new_device", "home_country", "country",
                "merchant_category", "hour", "app_version"]
    write(out / f"fraud9_later_{seed}.csv", shuffled,
          [[r["customer_id"], r["tx_last_24h"], r["currency"], r["amount_text"], r["tx_id"], flag(r["new_device"]),
            r["home_country"], r["country"], r["merchant_category"], r["hour"], rng.choice(["4.2.0", "4.3.1 (beta)"])]
           for r in later], end="\r\n", bom=True, quote_all=True)
    write(out / f"fraud9_truth_{seed}.csv", ["tx_id", "is_fraud"], [[r["tx_id"], r["is_fraud"]] for r in later])
    return {"train": train, "later": later}


PLANS = {"Hemat": 149_000, "Premium ⚡": 499_000, "Gói Gia đình": 899_000, "Kurumsal": 699_000, "": 299_000}


def churn(out: Path, seed: int = 9921, n_train: int = 2000, n_customers: int = 1500) -> dict:
    rng = random.Random(seed)

    def person(i: int, prefix: str) -> dict:
        plan = rng.choice(list(PLANS))
        tenure = int(rng.expovariate(1 / 14))
        charges = round(PLANS[plan] * rng.uniform(0.9, 1.4), -2)
        tickets = min(40, int(rng.expovariate(1 / 1.5)))
        idle = int(rng.expovariate(1 / 9))
        z = (-1.0 + 0.08 * idle - 0.06 * min(tenure, 36) + 0.3 * tickets + 0.7 * (plan == "Hemat")
             - 0.8 * (plan == "Kurumsal") + 0.9 * (charges > 1.25 * PLANS[plan]) + rng.gauss(0, 0.5))
        p = 1 / (1 + math.exp(-z))
        return {"customer_id": f"{prefix}{i:05d}", "tenure_months": tenure, "monthly_charges": int(charges),
                "support_tickets_90d": tickets, "last_login_days": idle,
                "plan": unicodedata.normalize("NFD", plan) if rng.random() < 0.2 else plan,
                "churned": int(rng.random() < p), "p": p}

    header = [" Customer_ID ", "Tenure_Months", "Monthly_Charges", "Support_Tickets_90d", "Last_Login_Days", "Plan"]
    cols = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan"]
    train = [person(i, "OJK-") for i in range(n_train)]
    train.append(dict(train[7]))  # one customer listed twice
    labels = {0: ["0", "no", "FALSE"], 1: ["1", "TRUE", "yes"]}
    write(out / "churn9_train.csv", [*header, "Churned"],
          [[r[c] for c in cols] + [rng.choice(labels[r["churned"]])] for r in train], bom=True)
    later = [person(i, "SGN-") for i in range(n_customers)]
    write(out / "churn9_customers.csv", header, [[r[c] for c in cols] for r in later], end="\r\n")
    write(out / "churn9_truth.csv", ["customer_id", "churned", "p"],
          [[r["customer_id"], r["churned"], round(r["p"], 6)] for r in later])
    holdout = [person(i, "HLD-") for i in range(500)]
    write(out / "churn9_holdout.csv", [*header, "Churned"], [[r[c] for c in cols] + [r["churned"]] for r in holdout])
    calm = [person(i, "CLM-") for i in range(400)]
    write(out / "churn9_batch.csv", header, [[r[c] for c in cols] for r in calm])
    dong = [{**person(i, "VN-"), "plan": rng.choice(["Gói Cơ bản", "Gói Gia đình"])} for i in range(600)]
    for r in dong:  # Vietnamese customers billed in dong (about 1.6 to the rupiah) on plans of their own
        r["monthly_charges"] = int(r["monthly_charges"] * 1.6)
    write(out / "churn9_batch_dong.csv", header, [[r[c] for c in cols] for r in dong])
    write(out / "churn9_batch_tiny.csv", header, [[r[c] for c in cols] for r in calm[:12]])
    return {"train": train, "later": later}


def main(argv: list[str]) -> None:
    out = Path(argv[1] if len(argv) > 1 else ".")
    shift = int(argv[argv.index("--seed-shift") + 1]) if "--seed-shift" in argv else 0
    out.mkdir(parents=True, exist_ok=True)
    retail(out, 9901 + shift)
    for s in (9911, 9912):
        fraud(out, s + shift)
    churn(out, 9921 + shift)


if __name__ == "__main__":
    main(sys.argv)
