"""Synthetic churn data in the documented column format, reproducible by seed:

    customer_id, tenure_months, monthly_charges, support_tickets_90d, last_login_days, plan, churned

``python examples/churn/make_data.py [OUT_DIR]`` writes train.csv, holdout.csv, batch_clean.csv,
batch_drift.csv (a later population: newer customers, higher prices, and support tickets that now
weigh more on churn), batch_schema.csv (an export whose schema changed) and customers.csv (to score,
no ``churned``) with outcomes.csv (what happened to them). The figures follow published telco-churn shapes: churn about 25%, higher for new
customers on monthly plans with many tickets and stale logins.
"""

from __future__ import annotations

import csv
import math
import random
import sys
from pathlib import Path

COLUMNS = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan", "churned"]
PLANS = {"basic": 0.45, "standard": 0.0, "premium": -0.55}


def customers(n: int, *, seed: int, start: int = 0, drift: bool = False) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tenure = max(1, min(72, int(rng.expovariate(1 / (9 if drift else 22))) + 1))
        plan = rng.choices(list(PLANS), weights=[5, 3, 2] if drift else [3, 4, 3])[0]
        base = {"basic": 45, "standard": 70, "premium": 95}[plan] * (1.18 if drift else 1.0)
        charges = round(max(15.0, rng.gauss(base, 12)), 2)
        tickets = min(12, int(rng.expovariate(1 / (2.2 if drift else 1.2))))
        login = min(90, int(rng.expovariate(1 / (14 if drift else 8))))
        ticket_weight = 0.55 if drift else 0.3
        logit = (
            -0.9 - 0.045 * tenure + 0.02 * (charges - 65) + ticket_weight * tickets + 0.05 * login + PLANS[plan]
        )
        churned = int(rng.random() < 1 / (1 + math.exp(-logit)))
        out.append(
            {
                "customer_id": f"C{start + i:05d}",
                "tenure_months": tenure,
                "monthly_charges": charges,
                "support_tickets_90d": tickets,
                "last_login_days": login,
                "plan": plan,
                "churned": churned,
            }
        )
    return out


def write(path: Path, rows: list[dict], columns: list[str] = COLUMNS) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write(out / "train.csv", customers(2000, seed=1))
    write(out / "holdout.csv", customers(600, seed=2, start=2000))
    write(out / "batch_clean.csv", customers(500, seed=3, start=3000))
    write(out / "batch_drift.csv", customers(1500, seed=4, start=4000, drift=True))
    schema = customers(200, seed=5, start=6000)
    for r in schema:  # an upstream export renamed a column and sends charges as text with a currency
        r["monthly_fee"] = f"${r.pop('monthly_charges')}"
    write(out / "batch_schema.csv", schema, [c if c != "monthly_charges" else "monthly_fee" for c in COLUMNS])
    write(out / "customers.csv", customers(300, seed=6, start=7000, drift=True), COLUMNS[:-1])
    # What happened to those customers afterwards (the outcome-tracking half of the example).
    write(out / "outcomes.csv", customers(300, seed=6, start=7000, drift=True), ["customer_id", "churned"])


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data")
