"""Fresh churn data for docs/status.md (2026-12-06, fifth session): an independent generator, not
examples/scenarios/make_churn_data.py. python tests/scenarios/data/make_churn_fresh.py OUT_DIR writes
churn_*_unseen.csv: plans Monthly/Annual/Student/Business (3% empty), columns reordered, an extra column
holding a quoted comma, a BOM and CRLF; 2,500 training, 700 holdout, 400 labelled customers, a batch like
the training data and a shifted one (longer tenure, other plan mix, charges x1.25, fewer tickets)."""
import csv
import math
import random
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
rng = random.Random(4242)
plans = {"Monthly": 0.7, "Annual": -0.9, "Student": 0.3, "Business": -0.4}
def person(i, shift=False):
    tenure = max(0, int(rng.expovariate(1 / (40 if shift else 18))))
    charges = round(rng.uniform(15, 140) * (1.25 if shift else 1), 2)
    tickets = min(int(rng.expovariate(1 / (0.8 if shift else 1.8))), 20)
    login = int(rng.expovariate(1 / 12))
    plan = rng.choices(list(plans), [0.2, 0.5, 0.1, 0.2] if shift else [0.45, 0.25, 0.2, 0.1])[0]
    z = -1.2 - 0.035 * tenure + 0.012 * (charges - 70) + 0.35 * tickets + 0.05 * login + plans[plan]
    churned = int(rng.random() < 1 / (1 + math.exp(-z)))
    return {"customer_id": f"K{i:06d}" if i % 13 else f"ünde-{i}", "tenure_months": tenure, "monthly_charges": charges,
            "support_tickets_90d": tickets, "last_login_days": login, "plan": "" if rng.random() < 0.03 else plan,
            "churned": churned, "region": rng.choice(["Nord", "Süd, Ost"])}
def write(path, rows, label=True):
    cols = ["plan", "region", "last_login_days", "customer_id", "monthly_charges", "tenure_months", "support_tickets_90d"] + (["churned"] if label else [])
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([r[c] for c in cols])
k = 0
def many(n, shift=False):
    global k
    rows = [person(k + j, shift) for j in range(n)]
    k += n
    return rows
train, hold, cust, batch, drift = many(2500), many(700), many(400), many(600), many(600, True)
write(out / "churn_train_unseen.csv", train)
write(out / "churn_holdout_unseen.csv", hold)
write(out / "churn_customers_unseen.csv", cust)
write(out / "churn_batch_unseen.csv", batch, False)
write(out / "churn_batch_shifted_unseen.csv", drift, False)
write(out / "churn_customers_shifted_labelled_unseen.csv", drift)
print(sum(r["churned"] for r in train) / len(train), sum(r["churned"] for r in drift) / len(drift))
