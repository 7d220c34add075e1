"""Fresh fraud data for docs/status.md (2026-12-06, fifth session): an independent generator, not
examples/scenarios/make_fraud_data.py. python tests/scenarios/data/make_fraud_fresh.py OUT_DIR writes
fraud_train_unseen.csv (4,000) and fraud_later_unseen.csv (2,000): 300 customers in GB, CH, SE, PL paying
in GBP, CHF, SEK, PLN (2% written in lower case), categories as an export writes them ("Gift Cards"),
flags as 1/true/yes, columns reordered, an extra column with a quoted comma, CRLF; ~3% fraud."""
import csv
import math
import random
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
rng = random.Random(8080)
homes = {"GB": "GBP", "CH": "CHF", "SE": "SEK", "PL": "PLN"}
scale = {"GBP": 1.0, "CHF": 1.1, "SEK": 11.5, "PLN": 4.3}
cats = ["Groceries", "Fuel", "Restaurant", "Electronics", "Gift Cards", "Travel", "Pharmacy", "Clothing"]
customers = []
for i in range(300):
    home = rng.choice(list(homes))
    customers.append({"id": f"Kund-{i:04d}-ø" if i % 9 == 0 else f"acct{i:05d}", "home": home, "cur": homes[home],
                      "typical": math.exp(rng.gauss(3.3, 0.7)), "night": rng.random() < 0.1})
def tx(c, fraud_kind=None):
    cur = c["cur"]
    amt = c["typical"] * math.exp(rng.gauss(0, 0.6))
    cat = rng.choice(cats)
    country, hour, dev, vel = c["home"], rng.choice(range(7, 23)) if not c["night"] else rng.randrange(24), int(rng.random() < 0.03), rng.choice([0, 0, 1, 1, 2, 3])
    if rng.random() < 0.05:  # travel
        country = rng.choice(["FR", "ES", "US", "DE"])
    if rng.random() < 0.02:  # big purchase
        amt *= rng.uniform(5, 15)
        cat = rng.choice(["Electronics", "Travel"])
    if rng.random() < 0.02:  # busy day
        vel = rng.randint(5, 9)
    if fraud_kind == "testing":
        amt, cat, hour, dev, vel = rng.uniform(0.5, 3), "Gift Cards", rng.randrange(0, 6), 1, rng.randint(6, 14)
    elif fraud_kind == "takeover":
        country, dev, amt, hour = rng.choice(["NG", "RU", "BR", "VN"]), 1, amt * rng.uniform(3, 10), rng.randrange(24)
    elif fraud_kind == "bigticket":
        amt, cat, vel = c["typical"] * rng.uniform(8, 30), rng.choice(["Electronics", "Gift Cards"]), rng.randint(2, 6)
    return {"amount": round(amt * scale[cur], 2), "currency": cur if rng.random() > 0.02 else cur.lower(), "merchant_category": cat,
            "country": country, "home_country": c["home"].lower() if rng.random() < 0.1 else c["home"], "hour": hour,
            "new_device": rng.choice(["1", "true", "yes"]) if dev else rng.choice(["0", "false", "no"]), "tx_last_24h": vel,
            "is_fraud": int(fraud_kind is not None)}
def make(n, start, path, label=True):
    cols = ["is_fraud", "hour", "currency", "tx_id", "amount", "device_os", "customer_id", "merchant_category", "country", "home_country", "tx_last_24h", "new_device"]
    if not label:
        cols.remove("is_fraud")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(cols)
        fraud = 0
        for k in range(n):
            c = rng.choice(customers)
            kind = rng.choice(["testing", "takeover", "bigticket"]) if rng.random() < 0.03 else None
            fraud += kind is not None
            r = {**tx(c, kind), "tx_id": f"TX-{start + k:06d}", "customer_id": c["id"], "device_os": rng.choice(["iOS 17", "Android, 14"])}
            w.writerow([r[x] for x in cols])
    return fraud
print(make(4000, 0, out / "fraud_train_unseen.csv"), make(2000, 500000, out / "fraud_later_unseen.csv"))
