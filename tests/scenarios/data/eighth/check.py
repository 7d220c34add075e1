"""The eighth round's own checks of a run's output against the files, with the ``csv`` module alone (none of the
scenarios' readers):

    python check.py pricing OUT.txt CATALOGUE POS VENDOR CHANGE_PCT
    python check.py recommend OUT.txt CATALOGUE INVENTORY ORDERS CUSTOMER
    python check.py fraud OUT.txt TRUTH
    python check.py churn OUT.txt TRUTH

OUT.txt is what ``podium demo NAME --input ...`` or ``podium run -q`` printed: the last JSON object in it that
starts a line is taken as the run's output.
"""
from __future__ import annotations

import csv
import json
import sys
import unicodedata
from pathlib import Path


def output(path: str) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            found = json.JSONDecoder().raw_decode(text[start:])[0]
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict) and len(found) > 2:
            return found
    raise SystemExit(f"{path}: no JSON output found")


def table(path: str) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]


def fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


OPEN = {"open", "backordered", "back ordered", "on backorder", "partially received", "partly received",
        "partially delivered"}


def pricing(out_path: str, catalogue: str, pos: str, vendor: str, change: str) -> dict:
    out = output(out_path)
    pct = float(change.rstrip("%"))
    mine = {r["sku"]: r for r in table(catalogue) if fold(r["vendor"]) == fold(vendor)}
    below = set()
    for sku, r in mine.items():
        cost = float(r["unit_cost"]) * (1 + pct / 100)
        price = float(r["list_price"])
        if r["min_margin_pct"] and (price - cost) / price * 100 < float(r["min_margin_pct"]):
            below.add(sku)
    by_key: dict[str, list[str]] = {}
    for sku in (r["sku"] for r in table(catalogue)):
        by_key.setdefault(unicodedata.normalize("NFC", sku).strip().casefold(), []).append(sku)
    flagged = set()
    for po in table(pos):
        sku = po["sku"]
        found = by_key.get(unicodedata.normalize("NFC", sku).strip().casefold(), [])
        if sku not in mine and len(found) == 1:
            sku = found[0]
        status = " ".join(po["status"].replace("_", " ").replace("-", " ").lower().split())
        if sku in below and status in OPEN:
            flagged.add(po["po_id"])
    got_below = {s["sku"] for s in out.get("skus", []) if s.get("below_margin")}
    got_flagged = set(out.get("flagged_pos") or [])
    channels: dict[str, int] = {}
    for r in mine.values():
        for c in {c.strip() for c in r["channels"].split(";") if c.strip()}:
            channels[c] = channels.get(c, 0) + 1
    return {"products": len(mine), "below": len(below), "below_equal": got_below == below,
            "below_missing": sorted(below - got_below)[:5], "below_extra": sorted(got_below - below)[:5],
            "flagged": len(flagged), "flagged_equal": got_flagged == flagged,
            "channels_equal": channels == out.get("channels_updated"), "applied": out.get("applied")}


def recommend(out_path: str, catalogue: str, inventory: str, orders: str, customer: str) -> dict:
    out = output(out_path)
    cat = {unicodedata.normalize("NFC", r["sku"]).casefold(): r for r in table(catalogue)}
    stock: dict[str, int] = {}
    for r in table(inventory):
        key = unicodedata.normalize("NFC", r["sku"]).casefold()
        stock[key] = stock.get(key, 0) + int(float(r["qty"]))
    owned = {unicodedata.normalize("NFC", r["sku"]).casefold() for r in table(orders)
             if unicodedata.normalize("NFC", r["customer_id"]).casefold() == unicodedata.normalize("NFC", customer).casefold()}
    problems = []
    for rec in out["recommendations"]:
        key = unicodedata.normalize("NFC", rec["sku"]).casefold()
        if key not in cat:
            problems.append((rec["sku"], "not in catalogue"))
        elif abs(float(cat[key]["list_price"]) - rec["price"]) > 1e-9:
            problems.append((rec["sku"], "price", rec["price"], cat[key]["list_price"]))
        if stock.get(key, 0) <= 0:
            problems.append((rec["sku"], "out of stock"))
        elif stock[key] != rec["in_stock"]:
            problems.append((rec["sku"], "stock", rec["in_stock"], stock[key]))
        if key in owned:
            problems.append((rec["sku"], "owned"))
    return {"recommended": len(out["recommendations"]), "owned": len(owned), "problems": problems,
            "quality": out.get("quality")}


def fraud(out_path: str, truth: str) -> dict:
    out = output(out_path)
    label = {r["tx_id"]: r["is_fraud"] == "1" for r in table(truth)}
    rows = out["transactions"] if "transactions" in out else out["decisions"]
    first = {r["tx_id"]: r["first_decision"] for r in rows}
    legit = [t for t, f in label.items() if not f]
    bad = [t for t, f in label.items() if f]
    missing = [t for t in label if t not in first]
    return {"payments": len(label), "scored": len(first), "missing": missing[:5], "fraud": len(bad),
            "false_block": round(sum(first.get(t) == "block" for t in legit) / len(legit), 4),
            "legit_reviewed": round(sum(first.get(t) == "review" for t in legit) / len(legit), 4),
            "fraud_blocked": round(sum(first.get(t) == "block" for t in bad) / len(bad), 3),
            "fraud_blocked_or_reviewed": round(sum(first.get(t) in ("block", "review") for t in bad) / len(bad), 3)}


def auc(scores: list[float], labels: list[bool]) -> float:
    pairs = sorted(zip(scores, labels, strict=True))
    rank, i, pos_rank = 1, 0, 0.0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (rank + rank + j - i - 1) / 2
        pos_rank += mid * sum(1 for k in range(i, j) if pairs[k][1])
        rank += j - i
        i = j
    p = sum(labels)
    n = len(labels) - p
    return (pos_rank - p * (p + 1) / 2) / (p * n)


def churn(out_path: str, truth: str) -> dict:
    out = output(out_path)
    label = {r["customer_id"]: r["churned"] == "1" for r in table(truth)}
    scored = {c["customer_id"]: c["score"] for c in out["customers"]}
    both = [c for c in label if c in scored]
    return {"customers": len(label), "scored": len(scored), "missing": [c for c in label if c not in scored][:5],
            "auc": round(auc([scored[c] for c in both], [label[c] for c in both]), 3), "churned": sum(label.values()),
            "expected_churners": out.get("expected_churners"), "high_risk": out.get("high_risk")}


if __name__ == "__main__":
    result = {"pricing": pricing, "recommend": recommend, "fraud": fraud, "churn": churn}[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(result, ensure_ascii=False, default=str))
