"""Goal-driven orchestration: "a vendor raised prices 14%: protect our margins".

Nine specialists (inventory, pricing, finance, CRM, marketing, support, billing, knowledge) are
plain Python functions over a small SQLite shop database shipped here (``margins.sql``). The goal
is planned by the rule-based planner, the plan waits for a person's approval (it changes prices),
runs as a durable child run, and when the storefront refuses the price update (an injected fault)
the rest of the plan is re-planned: a price-change request for review instead.

Run it:  python -m examples.margins          (embedded SQLite, no key, no network)
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from podium.goals import GoalPolicy, Skill, Skills

HERE = Path(__file__).parent
# The shop database; PODIUM_MARGINS_DB points a server process (podium serve) at the one a test made.
DB = {"path": os.environ.get("PODIUM_MARGINS_DB") or os.path.join(tempfile.gettempdir(), "podium-margins.db")}


def use_db(path: str, *, faults: tuple[str, ...] = ()) -> str:
    """Create the shop database at ``path`` from margins.sql; ``faults`` names skills that will fail."""
    DB["path"] = path
    if os.path.exists(path):
        os.remove(path)
    with sqlite3.connect(path) as con:
        con.executescript((HERE / "margins.sql").read_text())
        con.executemany("INSERT INTO faults(skill) VALUES (?)", [(f,) for f in faults])
    return path


def _db() -> sqlite3.Connection:
    if not os.path.exists(DB["path"]):
        use_db(DB["path"])
    con = sqlite3.connect(DB["path"])
    con.row_factory = sqlite3.Row
    return con


def _fault(skill: str) -> None:
    with _db() as con:
        if con.execute("SELECT 1 FROM faults WHERE skill = ?", (skill,)).fetchone():
            raise RuntimeError(f"{skill}: the storefront API refused the change (HTTP 423 locked)")


def inventory_check(vendor: str) -> dict[str, Any]:
    with _db() as con:
        rows = con.execute("SELECT sku, stock FROM products WHERE vendor = ?", (vendor,)).fetchall()
    return {"vendor": vendor, "skus": [r["sku"] for r in rows], "units": sum(r["stock"] for r in rows),
            "confidence": 1.0 if rows else 0.2}


def pricing_analyze(vendor: str, increase_pct: float) -> dict[str, Any]:
    with _db() as con:
        rows = con.execute("SELECT sku, cost, price FROM products WHERE vendor = ?", (vendor,)).fetchall()
    before = after = 0.0
    proposed: dict[str, float] = {}
    for r in rows:
        new_cost = r["cost"] * (1 + increase_pct / 100)
        before += (r["price"] - r["cost"]) / r["price"]
        after += (r["price"] - new_cost) / r["price"]
        target = (r["price"] - r["cost"]) / r["price"]  # keep the old margin rate
        proposed[r["sku"]] = round(new_cost / (1 - target), 2)
    k = max(1, len(rows))
    return {"skus": sorted(proposed), "margin_before": round(before / k, 4), "margin_after": round(after / k, 4),
            "proposed": proposed}


def pricing_update(proposed: dict[str, float]) -> dict[str, Any]:
    _fault("pricing_update")
    with _db() as con:
        con.executemany("UPDATE products SET price = ? WHERE sku = ?", [(p, s) for s, p in proposed.items()])
    return {"updated": len(proposed), "proposed": proposed}


def pricing_request(proposed: dict[str, float]) -> dict[str, Any]:
    with _db() as con:
        cur = con.execute("INSERT INTO price_requests(body) VALUES (?)", (repr(sorted(proposed.items())),))
    return {"request_id": f"PR-{cur.lastrowid}", "updated": 0}


def finance_alert(vendor: str, margin_after: float) -> dict[str, Any]:
    message = f"{vendor}: average margin would fall to {margin_after:.1%} without a price change"
    with _db() as con:
        con.execute("INSERT INTO alerts(message) VALUES (?)", (message,))
    return {"alerted": True, "message": message}


def crm_update(customer: str, note: str) -> dict[str, Any]:
    _fault("crm_update")
    with _db() as con:
        con.execute("INSERT INTO crm_notes(customer, note) VALUES (?, ?)", (customer, note))
    return {"updated": True, "customer": customer}


def marketing_campaign(skus: list[str], message: str = "New season prices") -> dict[str, Any]:
    with _db() as con:
        cur = con.execute("INSERT INTO campaigns(skus, message) VALUES (?, ?)", (",".join(skus), message))
    return {"campaign_id": f"C-{cur.lastrowid}", "skus": skus}


def support_reply(customer: str, question: str) -> dict[str, Any]:
    _fault("support_reply")
    return {"reply": f"Hello {customer}, thanks for asking about {question[:60]!r}; we are on it.",
            "customer": customer, "confidence": 0.9}


def billing_adjust(customer: str, amount: float) -> dict[str, Any]:
    with _db() as con:
        con.execute("INSERT INTO credits(customer, amount) VALUES (?, ?)", (customer, amount))
    return {"credited": amount, "customer": customer}


def knowledge_lookup(question: str) -> dict[str, Any]:
    with _db() as con:
        rows = con.execute("SELECT topic, answer FROM handbook").fetchall()
    words = set(question.lower().split())
    best = max(rows, key=lambda r: len(words & set(r["topic"].split())), default=None)
    score = len(words & set(best["topic"].split())) if best else 0
    return {"answer": best["answer"] if best and score else "", "source": best["topic"] if best else "",
            "confidence": min(1.0, score / 2)}


def _obj(props: dict[str, Any], required: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props if required is None else required)}


S, N, INT = {"type": "string"}, {"type": "number"}, {"type": "integer"}
skills = Skills(
    [
        Skill(name="inventory_check", description="Which products a vendor supplies and how many are in stock",
              fn=inventory_check, input=_obj({"vendor": S}),
              output=_obj({"vendor": S, "skus": {"type": "array"}, "units": INT, "confidence": N}),
              keywords=("vendor", "inventory", "stock"), cost=0.0005, latency=0.2),
        Skill(name="pricing_analyze", description="Margins before and after a cost increase, and prices that keep them",
              fn=pricing_analyze, input=_obj({"vendor": S, "increase_pct": N}),
              output=_obj({"skus": {"type": "array"}, "margin_before": N, "margin_after": N, "proposed": {"type": "object"}}),
              keywords=("price", "pricing", "margin"), cost=0.002, latency=1.0),
        Skill(name="pricing_update", description="Change the storefront prices (writes)", fn=pricing_update,
              input=_obj({"proposed": {"type": "object"}}), output=_obj({"updated": INT, "proposed": {"type": "object"}}),
              keywords=("protect", "reprice"), tags=("write",), fallback="pricing_request", cost=0.001, latency=0.5),
        Skill(name="pricing_request", description="File a price-change request for the category manager to review",
              fn=pricing_request, input=_obj({"proposed": {"type": "object"}}),
              output=_obj({"request_id": S, "updated": INT}), cost=0.0005, latency=0.2),
        Skill(name="finance_alert", description="Tell finance about a margin change", fn=finance_alert,
              input=_obj({"vendor": S, "margin_after": N}), output=_obj({"alerted": {"type": "boolean"}, "message": S}),
              keywords=("finance", "margin", "alert"), cost=0.0002, latency=0.1),
        Skill(name="crm_update", description="Add a note to a customer's CRM record (writes)", fn=crm_update,
              input=_obj({"customer": S, "note": S}), output=_obj({"updated": {"type": "boolean"}, "customer": S}),
              keywords=("crm", "account note", "customer record"), tags=("write",), cost=0.0005, latency=0.3),
        Skill(name="marketing_campaign", description="Start a campaign for some products", fn=marketing_campaign,
              input=_obj({"skus": {"type": "array", "items": S}, "message": S}, ("skus",)),
              output=_obj({"campaign_id": S, "skus": {"type": "array"}}),
              keywords=("marketing", "campaign", "promot"), cost=0.003, latency=1.0),
        Skill(name="support_reply", description="Answer a customer's support question", fn=support_reply,
              input=_obj({"customer": S, "question": S}), output=_obj({"reply": S, "customer": S, "confidence": N}),
              keywords=("support", "ticket", "reply", "answer the customer"), fallback="knowledge_lookup",
              cost=0.002, latency=1.0),
        Skill(name="billing_adjust", description="Credit a customer's account (writes)", fn=billing_adjust,
              input=_obj({"customer": S, "amount": N}), output=_obj({"credited": N, "customer": S}),
              keywords=("billing", "refund", "credit", "invoice"), tags=("write",), cost=0.0005, latency=0.3),
        Skill(name="knowledge_lookup", description="Look an answer up in the company handbook", fn=knowledge_lookup,
              input=_obj({"question": S}), output=_obj({"answer": S, "source": S, "confidence": N}),
              keywords=("handbook", "knowledge", "look up", "how do"), cost=0.0005, latency=0.3),
    ],
    name="shop",
)

GOAL = "A vendor raised prices 14%: protect our margins"
CONTEXT = {"vendor": "Acme Foods", "increase_pct": 14}
POLICY = GoalPolicy(approve="skills", approve_skills=("write",), max_cost=0.05, max_replans=2)


async def main(db: str = "sqlite:///margins-demo.db") -> dict[str, Any]:
    import podium
    from podium import goals

    use_db(DB["path"], faults=("pricing_update",))
    async with podium.Client(db) as client:
        handle = await goals.pursue(client, GOAL, skills=skills, context=CONTEXT, policy=POLICY)
        await goals.settle(client, handle.id)  # parks at the plan's approval
        print(await goals.show_plan(client, handle.id))
        [request] = await client.approvals(run_id=handle.id)
        print(f"\napproving {request['name']} (a person would run: podium approvals approve {handle.id})")
        await client.decide(handle.id, request["name"], approve=True, comment="ok, go")
        result = await handle.result(timeout=120)
        print("\n" + await goals.show_plan(client, handle.id))
        print("\nresult:", result)
        return dict(result)


if __name__ == "__main__":
    asyncio.run(main())
