"""Generate the synthetic card transactions of the fraud scenario (deterministic: seeded).

    python examples/scenarios/make_fraud_data.py          # writes data/fraud_*.csv

Customers have a home country, a typical spend and favourite merchant categories. Legitimate
transactions mostly follow them (with travel, big purchases, new phones and busy days, so every
signal has false alarms); fraud (about 3%) drifts from them on some signals, not all: card testing
(small amounts, high velocity), account takeover (new device, foreign country), big-ticket fraud
(large amounts, risky categories). ``fraud_train.csv`` and ``fraud_holdout.csv`` are disjoint
transactions of the same customers (holdout is later in time); ``fraud_transactions.csv`` is a small
unlabelled batch to score.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

COLUMNS = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country",
           "hour", "new_device", "tx_last_24h", "is_fraud"]
COUNTRIES = {"DE": "EUR", "FR": "EUR", "ES": "EUR", "IT": "EUR", "NL": "EUR", "GB": "GBP", "US": "USD", "PL": "PLN"}
CATEGORIES = ["grocery", "restaurant", "fuel", "clothing", "travel", "electronics", "pharmacy", "entertainment",
              "gift_cards", "crypto"]
RISKY = ["electronics", "gift_cards", "crypto", "travel"]


def _customers(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        home = rng.choices(list(COUNTRIES), weights=[30, 15, 10, 10, 8, 12, 10, 5])[0]
        out.append({"id": f"C{i:04d}", "home": home, "mu": rng.uniform(2.3, 4.3),
                    "cats": rng.sample(CATEGORIES[:8], 3), "busy": rng.uniform(0.5, 2.5)})
    return out


def _legit(rng: random.Random, c: dict) -> dict:
    travelling = rng.random() < 0.05
    country = rng.choice([k for k in COUNTRIES if k != c["home"]]) if travelling else c["home"]
    big = rng.random() < 0.04  # the odd big purchase
    amount = math.exp(rng.gauss(c["mu"] + (1.6 if big else 0.0), 0.6))
    cat = rng.choice(c["cats"]) if rng.random() < 0.8 else rng.choice(CATEGORIES)
    hour = int(rng.gauss(14, 4)) % 24
    return {"amount": amount, "country": country, "cat": cat, "hour": hour,
            "new_device": int(rng.random() < 0.03), "tx_last_24h": _poisson(rng, c["busy"])}


def _fraud(rng: random.Random, c: dict) -> dict:
    kind = rng.choices(["testing", "takeover", "big"], weights=[3, 4, 3])[0]
    foreign = rng.choice([k for k in COUNTRIES if k != c["home"]] + ["NG", "BR", "RU", "CN"])
    if kind == "testing":
        amount, cat = rng.uniform(1.0, 15.0), rng.choice(CATEGORIES)
        country, device, velocity = (foreign if rng.random() < 0.3 else c["home"]), int(rng.random() < 0.3), _poisson(rng, 7)
    elif kind == "takeover":
        amount, cat = math.exp(rng.gauss(c["mu"] + 1.0, 0.8)), rng.choice(RISKY + c["cats"])
        country, device, velocity = (foreign if rng.random() < 0.6 else c["home"]), int(rng.random() < 0.75), _poisson(rng, 3)
    else:
        amount, cat = math.exp(rng.gauss(c["mu"] + 2.0, 0.7)), rng.choice(RISKY)
        country, device, velocity = (foreign if rng.random() < 0.4 else c["home"]), int(rng.random() < 0.35), _poisson(rng, 2)
    hour = rng.choice(range(24)) if rng.random() < 0.5 else int(rng.gauss(3, 2)) % 24
    return {"amount": amount, "country": country, "cat": cat, "hour": hour, "new_device": device, "tx_last_24h": velocity}


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def rows(seed: int, customers: list[dict], n: int, start: int, fraud_rate: float = 0.03) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = rng.choice(customers)
        fraud = rng.random() < fraud_rate
        t = _fraud(rng, c) if fraud else _legit(rng, c)
        out.append({"tx_id": f"T{start + i:06d}", "customer_id": c["id"], "amount": round(t["amount"], 2),
                    "currency": COUNTRIES.get(t["country"], "USD"), "merchant_category": t["cat"],
                    "country": t["country"], "home_country": c["home"], "hour": t["hour"],
                    "new_device": t["new_device"], "tx_last_24h": t["tx_last_24h"], "is_fraud": int(fraud)})
    return out


def write(path: Path, records: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(records)


def main(out: Path = Path(__file__).parent / "data") -> None:
    customers = _customers(random.Random(17), 250)
    write(out / "fraud_train.csv", rows(1, customers, 4000, 0), COLUMNS)
    write(out / "fraud_holdout.csv", rows(2, customers, 2500, 10000), COLUMNS)
    batch = rows(3, customers, 12, 20000, fraud_rate=0.0)
    batch += rows(4, customers, 4, 20012, fraud_rate=1.0)
    write(out / "fraud_transactions.csv", batch, COLUMNS[:-1])


if __name__ == "__main__":
    main()
