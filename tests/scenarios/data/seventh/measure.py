"""The seventh round's checks against what the generator knows, computed from the files independently of
the scenarios' readers (the ``csv`` module only):

    python measure.py pricing OUTPUT.txt CATALOGUE.csv POS.csv VENDOR CHANGE_PCT
    python measure.py recommend OUTPUT.txt CATALOGUE.csv INVENTORY.csv ORDERS.csv CUSTOMER

OUTPUT.txt is what ``podium demo NAME --input ...`` printed (its last JSON object is the run's output), or what ``podium run -q`` printed (the output alone)."""
from __future__ import annotations

import csv
import json
import sys
import unicodedata


def output(path: str) -> dict:
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8")
    if text.startswith("{"):  # podium run -q: the output alone
        return json.loads(text)
    start = text.rindex("\ncompleted run")
    body = text[text.index("\n{", start) + 1:]
    return json.JSONDecoder().raw_decode(body)[0]


def rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)]


def key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


OPEN = {"open", "partially received", "partly received", "partially delivered"}


def pricing(out_path: str, catalogue: str, pos: str, vendor: str, change: str) -> dict:
    out = output(out_path)
    pct = float(change.rstrip("%"))
    products = {r["sku"]: r for r in rows(catalogue)}
    below = {s for s, r in products.items() if key(r["vendor"]) == key(vendor) and r["min_margin_pct"] != ""
             and (float(r["list_price"]) - float(r["unit_cost"]) * (1 + pct / 100)) / float(r["list_price"]) * 100
             < float(r["min_margin_pct"])}
    by_key = {}
    for s in products:
        by_key.setdefault(s.strip().casefold(), []).append(s)
    flagged = set()
    for o in rows(pos):
        found = by_key.get(o["sku"].strip().casefold(), [])
        sku = o["sku"] if o["sku"] in products else found[0] if len(found) == 1 else None
        status = " ".join(o["status"].replace("_", " ").replace("-", " ").lower().split())
        if sku in below and status in OPEN:
            flagged.add(o["po_id"])
    got_below = set(out["below_margin_skus"])
    got_flagged = {f if isinstance(f, str) else f["po_id"] for f in out["flagged_pos"]}
    return {"below_expected": len(below), "below_got": len(got_below), "below_equal": below == got_below,
            "flagged_expected": len(flagged), "flagged_got": len(got_flagged), "flagged_equal": flagged == got_flagged,
            "applied": out["applied"], "approval": out["approval"]}


def recommend(out_path: str, catalogue: str, inventory: str, orders: str, customer: str) -> dict:
    out = output(out_path)
    products = {r["sku"].casefold(): r for r in rows(catalogue)}
    stock: dict[str, int] = {}
    for r in rows(inventory):
        stock[r["sku"].casefold()] = stock.get(r["sku"].casefold(), 0) + int(float(r["qty"]))
    owned = {o["sku"].casefold() for o in rows(orders) if o["customer_id"].casefold() == customer.casefold()}
    problems = []
    for rec in out["recommendations"]:
        k = rec["sku"].casefold()
        if stock.get(k, 0) <= 0:
            problems.append(f"{rec['sku']} out of stock")
        if k not in products or abs(float(products[k]["list_price"]) - rec["price"]) > 1e-9:
            problems.append(f"{rec['sku']} price {rec['price']}")
        if k in owned:
            problems.append(f"{rec['sku']} owned")
    return {"recommended": len(out["recommendations"]), "problems": problems, "quality": out.get("quality")}


if __name__ == "__main__":
    print(json.dumps({"pricing": pricing, "recommend": recommend}[sys.argv[1]](*sys.argv[2:]), indent=1))
