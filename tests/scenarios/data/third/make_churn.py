"""Churn data for the third unseen-data round (docs/status.md, seventh session): an independent
generator with a non-linear truth (short tenure and high charges together, a login gap that saturates),
~13% churn, plans Básico/Plus/Família/Empresa (4% empty, written in other cases), ids with non-ASCII
letters, through ``export.write``. ``python make_churn.py OUT`` writes train (6,000), holdout (1,500),
customers (1,200, labelled) with each row's true probability in ``truth.json``, a batch like the
training data (1,000), a shifted one (1,000), small batches (1, 5, 30 rows), a one-row and a
header-only customers file."""
from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from export import header_only, write

COLUMNS = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan"]
PLANS = {"Básico": 0.5, "Plus": 0.0, "Família": -0.6, "Empresa": -1.0}
PREFIX = ["Łódź", "Ñandú", "Øre", "Zoë", "Şeker", "Đặng", "Ærø", "Chloé"]


def person(rng: random.Random, i: int, shift: bool = False) -> dict:
    tenure = min(int(rng.lognormvariate(3.4 if shift else 2.6, 0.9)), 240)
    charges = round(rng.gammavariate(4, 14) * (1.3 if shift else 1.0), 2)
    tickets = int(rng.paretovariate(2.5 if shift else 1.6)) - 1
    login = min(int(rng.expovariate(1 / (6 if shift else 14))), 400)
    plan = rng.choices(list(PLANS), [0.1, 0.3, 0.3, 0.3] if shift else [0.4, 0.3, 0.2, 0.1])[0]
    z = (-2.6 + 1.6 * (tenure < 6) * (charges > 60) + 0.9 * math.tanh(login / 20) + 0.45 * min(tickets, 4)
         - 0.012 * tenure + PLANS[plan] + 0.004 * (charges - 55))
    p = 1 / (1 + math.exp(-z))
    shown = "" if rng.random() < 0.04 else rng.choice([plan, plan.upper(), plan.lower()])
    return {"customer_id": f"{PREFIX[i % len(PREFIX)]}-{i:05d}", "tenure_months": tenure, "monthly_charges": charges,
            "support_tickets_90d": tickets, "last_login_days": login, "plan": shown,
            "churned": rng.choice(["1", "yes", "TRUE"]) if rng.random() < p else rng.choice(["0", "no", "False"]),
            "p": p}


def main(out: Path) -> dict:
    rng = random.Random(20261206)
    n = iter(range(10**6))
    make = lambda k, shift=False: [person(rng, next(n), shift) for _ in range(k)]  # noqa: E731
    sets = {"train": make(6000), "holdout": make(1500), "customers": make(1200), "batch": make(1000),
            "shifted": make(1000, True), "small30": make(30), "small5": make(5), "one": make(1)}
    labelled = [*COLUMNS, "churned"]
    for seed, (name, rows) in enumerate(sets.items()):
        cols = labelled if name in ("train", "holdout", "customers") else COLUMNS
        write(out / f"churn3_{name}.csv", rows, cols, seed=seed)
    header_only(out / "churn3_empty.csv", COLUMNS)
    truth = {r["customer_id"]: r["p"] for r in sets["customers"] + sets["holdout"]}
    (out / "churn3_truth.json").write_text(json.dumps(truth))
    return {k: sum(r["churned"] in ("1", "yes", "TRUE") for r in v) / len(v) for k, v in sets.items()}


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
