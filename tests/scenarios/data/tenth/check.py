"""The tenth round's own checks of a run's output against the files, with the ``csv`` module alone (none of the
scenarios' readers, none of their rules):

    python check.py pricing OUT.txt CATALOGUE POS VENDOR_AS_IN_THE_CATALOGUE CHANGE_PCT
    python check.py recommend OUT.txt CATALOGUE INVENTORY ORDERS CUSTOMER
    python check.py fraud OUT.txt TRUTH
    python check.py churn OUT.txt TRUTH   (with a column p, the true churn probability: the AUC it reaches too)

OUT.txt is what ``podium demo NAME --input ...`` or ``podium run -q`` printed: the last JSON object in it that
starts a line is the run's output. The vendor is given as the catalogue spells it (whatever the run was typed
with), so the truth does not depend on the scenario's own comparison of names.
"""
from __future__ import annotations

import csv
import json
import sys
import unicodedata
from pathlib import Path


def output(path: str) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    for start in reversed([i for i, c in enumerate(text) if c == "{" and (i == 0 or text[i - 1] == "\n")]):
        try:
            found = json.JSONDecoder().raw_decode(text[start:])[0]
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict) and len(found) > 2:
            return found
    raise SystemExit(f"{path}: no JSON output found")


def table(path: str) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip().lower() for h in rows[0]]
    return [{h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(header) if h}
            for r in rows[1:] if any(c.strip() for c in r)]


def key(text: str) -> str:
    """A name as a person means it: Unicode form (full-width letters as the letters they are), case, spaces."""
    text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


OPEN = {"open", "backordered", "back ordered", "on backorder", "partially received", "partly received",  # the docs
        "partially delivered"}


def pricing(out_path: str, catalogue: str, pos: str, vendor: str, change: str) -> dict:
    out = output(out_path)
    pct = float(change.strip().rstrip("%"))
    cat = table(catalogue)
    mine = {r["sku"]: r for r in cat if unicodedata.normalize("NFC", r["vendor"]) == unicodedata.normalize("NFC", vendor)}
    below = {sku for sku, r in mine.items() if r["min_margin_pct"] and (
        (float(r["list_price"]) - float(r["unit_cost"]) * (1 + pct / 100)) / float(r["list_price"]) * 100
        < float(r["min_margin_pct"]))}
    skus = {key(r["sku"]): r["sku"] for r in cat}
    flagged = {po["po_id"] for po in table(pos)
               if skus.get(key(po["sku"])) in below and key(po["status"].replace("_", " ").replace("-", " ")) in OPEN}
    channels: dict[str, int] = {}
    for r in mine.values():
        for c in {c.strip() for c in r["channels"].split(";") if c.strip()}:
            channels[c] = channels.get(c, 0) + 1
    got_below = {s["sku"] for s in out.get("skus", []) if s.get("below_margin")}
    got_flagged = set(out.get("flagged_pos") or [])
    return {"products": len(mine), "found": out.get("vendor_found", len(out.get("skus", [])) > 0),
            "below": len(below), "below_equal": got_below == below, "below_missing": sorted(below - got_below)[:5],
            "flagged": len(flagged), "flagged_equal": got_flagged == flagged,
            "flagged_missing": sorted(flagged - got_flagged)[:5], "flagged_extra": sorted(got_flagged - flagged)[:5],
            "channels_equal": channels == out.get("channels_updated"), "applied": out.get("applied")}


def recommend(out_path: str, catalogue: str, inventory: str, orders: str, customer: str) -> dict:
    out = output(out_path)
    cat = {key(r["sku"]): r for r in table(catalogue)}
    stock: dict[str, int] = {}
    for r in table(inventory):
        stock[key(r["sku"])] = stock.get(key(r["sku"]), 0) + int(float(r["qty"]))
    owned = {key(r["sku"]) for r in table(orders) if key(r["customer_id"]) == key(customer)}
    problems = []
    for rec in out["recommendations"]:
        k = key(rec["sku"])
        if k not in cat:
            problems.append((rec["sku"], "not in catalogue"))
            continue
        if abs(float(cat[k]["list_price"]) - rec["price"]) > 1e-9:
            problems.append((rec["sku"], "price", rec["price"], cat[k]["list_price"]))
        if stock.get(k, 0) <= 0:
            problems.append((rec["sku"], "out of stock"))
        elif stock[k] != rec["in_stock"]:
            problems.append((rec["sku"], "stock", rec["in_stock"], stock[k]))
        if k in owned:
            problems.append((rec["sku"], "owned"))
    return {"recommended": len(out["recommendations"]), "owned": len(owned), "problems": problems,
            "quality": out.get("quality"), "note": out.get("note")}


def fraud(out_path: str, truth: str) -> dict:
    out = output(out_path)
    label = {r["tx_id"]: r["is_fraud"] == "1" for r in table(truth)}
    rows = out["transactions"] if "transactions" in out else out["decisions"]
    first = {r["tx_id"]: r["first_decision"] for r in rows}
    reasons: dict[str, int] = {}
    for r in rows:
        for why in r.get("reasons") or []:
            reasons[why] = reasons.get(why, 0) + 1
    legit = [t for t, f in label.items() if not f]
    bad = [t for t, f in label.items() if f]
    return {"payments": len(label), "scored": len(first), "missing": [t for t in label if t not in first][:5],
            "fraud": len(bad), "false_block": round(sum(first.get(t) == "block" for t in legit) / len(legit), 4),
            "legit_reviewed": round(sum(first.get(t) == "review" for t in legit) / len(legit), 4),
            "fraud_blocked": round(sum(first.get(t) == "block" for t in bad) / len(bad), 3),
            "fraud_blocked_or_reviewed": round(sum(first.get(t) in ("block", "review") for t in bad) / len(bad), 3),
            "unknown_currency": reasons.get("unknown_currency", 0)}


def auc(scores: list[float], labels: list[bool]) -> float:
    """The Mann-Whitney statistic: the share of (churned, stayed) pairs ranked right, ties counting half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = sorted(s for s, y in zip(scores, labels, strict=True) if not y)
    import bisect
    won = sum(bisect.bisect_left(neg, s) + (bisect.bisect_right(neg, s) - bisect.bisect_left(neg, s)) / 2 for s in pos)
    return won / (len(pos) * len(neg))


def churn(out_path: str, truth_path: str) -> dict:
    out = output(out_path)
    label = {r["customer_id"]: r["churned"] == "1" for r in table(truth_path)}
    scored = {c["customer_id"]: c["score"] for c in out["customers"]}
    truth = {r["customer_id"]: float(r["p"]) for r in table(truth_path) if r.get("p")}
    both = [c for c in label if c in scored]
    return {"customers": len(label), "scored": len(scored), "missing": [c for c in label if c not in scored][:5],
            "auc": round(auc([scored[c] for c in both], [label[c] for c in both]), 3),
            "truth_auc": round(auc([truth[c] for c in label], list(label.values())), 3) if truth else None,
            "churned": sum(label.values()),
            "expected_churners": out.get("expected_churners"), "high_risk": out.get("high_risk"),
            "impossible": len(out.get("impossible_values") or [])}


if __name__ == "__main__":
    result = {"pricing": pricing, "recommend": recommend, "fraud": fraud, "churn": churn}[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(result, ensure_ascii=False, default=str))
