"""Fraud data for the third unseen-data round (docs/status.md, seventh session): an independent
generator, not make_fraud_data.py nor make_fraud_fresh.py. 500 customers in BR, IN, ZA, MX, ES paying in
BRL, INR, ZAR, MXN, EUR (INR amounts ~90x EUR's); ~2% fraud in three patterns of its own (account
takeover abroad at night on a new device, card testing: bursts of small gift-card or digital payments,
and a quiet one: a mid-sized payment at home on a new device); legitimate travel, new phones, big
purchases and busy days. Categories written as exports write them (``Gift Cards``, ``ELECTRONICS``,
``digital goods``). ``python make_fraud.py OUT`` writes fraud3_train.csv (9,000), fraud3_holdout.csv
(4,000, later), fraud3_one.csv (one row) and fraud3_empty.csv (header only)."""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from export import header_only, write

COLUMNS = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
           "new_device", "tx_last_24h", "is_fraud"]
HOMES = {"BR": ("BRL", 5.5), "IN": ("INR", 90.0), "ZA": ("ZAR", 19.0), "MX": ("MXN", 18.0), "ES": ("EUR", 1.0)}
CATS = ["groceries", "Restaurants", "fuel", "ELECTRONICS", "Gift Cards", "travel", "digital goods", "pharmacy",
        "fashion", "Home & Garden"]
NAMES = ["João", "Ananya", "Thandiwe", "Ximena", "Íñigo", "Łucja", "Nguyễn", "Søren"]


def main(out: Path, n_train: int = 9000, n_holdout: int = 4000) -> dict:
    rng = random.Random(777)
    customers = []
    for i in range(500):
        home = rng.choice(list(HOMES))
        customers.append({"id": f"{NAMES[i % 8]}·{i:04d}", "home": home, "cur": HOMES[home][0], "rate": HOMES[home][1],
                          "spend": rng.lognormvariate(3.3, 0.7), "night": rng.random() < 0.1})
    tx = iter(range(10**7))

    def one(c: dict, fraud: str | None) -> dict:
        country, device, burst, hour = c["home"], int(rng.random() < 0.02), int(rng.expovariate(1 / 1.2)), \
            rng.choice(range(24)) if c["night"] else rng.randint(7, 22)
        amount, cat = rng.lognormvariate(math.log(c["spend"]), 0.6), rng.choice(CATS[:3] + CATS[7:])
        if rng.random() < 0.04:  # legit travel
            country = rng.choice([h for h in HOMES if h != c["home"]] + ["US", "PT", "TH"])
        if rng.random() < 0.03:  # legit big purchase
            amount, cat = amount * rng.uniform(4, 12), rng.choice(["ELECTRONICS", "travel", "fashion"])
        if rng.random() < 0.02:
            burst = rng.randint(5, 9)  # legit busy day
        if fraud == "takeover":
            country, device, hour = rng.choice(["RU", "NG", "US", "GB", "CN"]), int(rng.random() < 0.8), rng.randint(0, 5)
            amount, cat = c["spend"] * rng.uniform(5, 25), rng.choice(["ELECTRONICS", "Gift Cards", "travel"])
        elif fraud == "testing":
            amount, cat, burst = rng.uniform(0.5, 3) / 1.0, rng.choice(["Gift Cards", "digital goods"]), rng.randint(6, 20)
        elif fraud == "quiet":
            amount, device, cat = c["spend"] * rng.uniform(2.5, 6), 1, rng.choice(["ELECTRONICS", "fashion"])
        return {"tx_id": f"T3-{next(tx):07d}", "customer_id": c["id"], "amount": round(amount * c["rate"], 2),
                "currency": c["cur"].lower() if rng.random() < 0.05 else c["cur"], "merchant_category": cat,
                "country": country, "home_country": c["home"].lower() if rng.random() < 0.05 else c["home"],
                "hour": hour, "new_device": rng.choice(["1", "true", "yes"]) if device else rng.choice(["0", "false", "no"]),
                "tx_last_24h": burst, "is_fraud": int(bool(fraud))}

    def many(n: int) -> list[dict]:
        rows = []
        for _ in range(n):
            f = rng.random()
            kind = "takeover" if f < 0.008 else "testing" if f < 0.014 else "quiet" if f < 0.02 else None
            rows.append(one(rng.choice(customers), kind))
        return rows

    train, holdout = many(n_train), many(n_holdout)
    write(out / "fraud3_train.csv", train, COLUMNS, seed=11, bom=True, crlf=True, extra=True, shuffle=True)
    write(out / "fraud3_holdout.csv", holdout, COLUMNS, seed=12, spaces=True, header_case=True, blank_tail=True)
    write(out / "fraud3_one.csv", holdout[:1], COLUMNS[:-1], seed=13)
    header_only(out / "fraud3_empty.csv", COLUMNS[:-1])
    return {"train_fraud": sum(r["is_fraud"] for r in train), "holdout_fraud": sum(r["is_fraud"] for r in holdout)}


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
