"""Generate the churn-format sample data of the ``churn`` and ``ml_pipeline`` scenarios (deterministic:
seeded), with the generator of ``examples/churn/make_data.py``:

    python examples/scenarios/make_churn_data.py              # writes data/churn_*.csv
    python examples/scenarios/make_churn_data.py OUT --seed 7 # a fresh set the scenarios never saw

Columns: ``customer_id, tenure_months, monthly_charges, support_tickets_90d, last_login_days, plan,
churned`` (files to score have no ``churned``). About a quarter of customers churn, more often new
ones on cheap plans with many tickets and stale logins. Files:

- ``churn_train.csv`` (2,000 labelled) and ``churn_holdout.csv`` (600 labelled, other customers);
- ``churn_customers.csv`` (40 to score) and ``churn_outcomes.csv`` (what happened to them later:
  ``customer_id, churned``);
- ``churn_batch.csv`` (500 to score, the training population) and ``churn_batch_drift.csv`` (500 of
  a later population: newer customers, higher prices, more tickets).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.churn.make_data import COLUMNS, customers, write  # noqa: E402


def main(out: Path = Path(__file__).parent / "data", seed: int = 0) -> dict[str, Path]:
    """Write the six files into ``out``; ``seed`` 0 gives the shipped samples, any other a fresh set."""
    out.mkdir(parents=True, exist_ok=True)
    base = 100 + 10 * seed
    files = {name: out / f"churn_{name}.csv" for name in ("train", "holdout", "customers", "outcomes", "batch", "batch_drift")}
    write(files["train"], customers(2000, seed=base + 1))
    write(files["holdout"], customers(600, seed=base + 2, start=20000))
    scored = customers(40, seed=base + 3, start=30000)
    write(files["customers"], scored, COLUMNS[:-1])
    write(files["outcomes"], scored, ["customer_id", "churned"])
    write(files["batch"], customers(500, seed=base + 4, start=40000), COLUMNS[:-1])
    write(files["batch_drift"], customers(500, seed=base + 5, start=50000, drift=True), COLUMNS[:-1])
    return files


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in main(args.out, args.seed).values():
        print(path)
