"""Scenario ``churn`` (seed 000): a churn score turned into a retention campaign across the CRM, the
support desk and the marketing tool, with a person where it matters and outcome tracking.

training CSV -> data gate (repeats and impossible values set aside) -> train (MLflow; deploy if better)
-> score customers with the champion -> high risk: act; near the threshold: a person decides ->
the LLM writes the offer text (a template when its draft fails the checks) -> per customer, through
connectors: CRM task + support-desk priority + marketing offer (offers worth more than
``approve_offer_above`` wait for the retention lead; if one action fails, the done ones are undone)
-> outcomes recorded (``record_outcome``) and measured.

    podium demo churn
    podium run examples/scenarios/churn.py:workflow --input '{"train": "examples/scenarios/data/churn_train.csv",
        "customers": "examples/scenarios/data/churn_customers.csv"}'
    podium run examples/scenarios/churn.py:outcomes --input '{"outcomes": "examples/scenarios/data/churn_outcomes.csv"}'

Input: ``train`` (labelled CSV: customer_id, tenure_months, monthly_charges, support_tickets_90d,
last_login_days, plan, churned) and ``customers`` (the same columns without churned; with churned
filled in, the output measures the scores: ROC AUC). Optional: ``holdout`` (labelled CSV to test
on; default a stratified quarter of ``train``), ``outcomes`` (CSV customer_id, churned: what happened
later, recorded now), ``threshold`` (0.5: high risk at or above), ``review_margin`` (0.05: scores in
[threshold - margin, threshold) go to a person), ``approve_offer_above`` (60: an offer worth more,
in the customer's currency, needs the retention lead), ``max_customers`` (50 treated per run, the
riskiest first), ``campaign`` (``CMP-RETAIN``), ``review_timeout`` (seconds; unanswered: nobody in
the grey zone is treated), ``estimator`` (a scikit-learn class name), ``registry`` (an MLflow URI).

The systems are the connectors ``crm``, ``support_desk`` and ``marketing`` the client holds, else
the sandbox company's. The model decides who is at risk; the 135M local model only writes the offer.
A stronger writer is one line: ``PODIUM_MODEL=openai:gpt-4o-mini``. See docs/scenarios.md.
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium import ConfigError, Workflow, ai
from podium.errors import NonRetryableError
from podium.validators import BannedContent, check_output

try:
    from . import _churn_format as fmt
    from ._common import DATA, as_listed, id_list, number, path_of, system
except ImportError:  # loaded by file path: podium run examples/scenarios/churn.py:workflow
    sys.path.insert(0, str(Path(__file__).parent))
    import _churn_format as fmt  # type: ignore[no-redef]
    from _common import DATA, as_listed, id_list, number, path_of, system  # type: ignore[no-redef]

MODEL = "scenario-churn"
CAMPAIGN = "CMP-RETAIN"
DISCOUNT, MONTHS = 0.20, 3
"""The retention offer: 20% off for 3 months (the sandbox's CMP-RETAIN campaign)."""
MONITOR_MIN = 100
"""Scores a batch needs before its score distribution is compared with the model's holdout scores."""
TRAINED = "scenario_churn_treated"
#: run id -> the customers that run scored: an outcome of anyone else is no outcome of the model's
SCORED = "scenario_churn_scored"
"""Store namespace: who was treated, by which run (the outcomes workflow reads it)."""

#: What ``podium demo churn`` checks before it starts: module -> the extra that installs it.
NEEDS = {"sklearn": "ml", "mlflow": "ml"}
SAMPLE_INPUT = {
    "train": "examples/scenarios/data/churn_train.csv",
    "customers": "examples/scenarios/data/churn_customers.csv",
}
#: ``podium demo churn``: the shipped samples, and what happened to those customers later (so the
#: demo closes the loop: outcomes recorded against the model version that scored them).
DEMO_INPUTS = [{"outcomes": str(DATA / "churn_outcomes.csv")}]

OFFER_TEMPLATE = ("We would like to keep you with us: for the next {months} months you get {pct}% off your "
                  "monthly plan. The discount is applied automatically; reply to this e-mail with any question.")
_BANNED = BannedContent([
    "re:\\b(unable|not able|cannot|can't) (to )?(assist|help|provide|offer)", "re:\\bas an ai\\b",
    "re:\\blanguage model\\b", "re:https?://", "re:\\bfree\\b", "re:\\b(guarantee|guaranteed|forever|lifetime)\\b",
])


@dataclass(frozen=True)
class Settings:
    threshold: float
    margin: float
    approve_above: float
    max_customers: int
    campaign: str
    review_timeout: float | None


def settings(input: dict[str, Any]) -> Settings:
    """The run's thresholds, checked (a wrong one names the input field)."""
    def given(name: str, default: float, what: str = "a number", **rule: Any) -> Any:
        # a finite number, or text holding one: "nan" skipped the offer approval (no offer is worth more than
        # nan) and "inf" customers stopped the run with an OverflowError
        return number(input, name, default, hint=f"{what} (default {default:g})", **rule)

    threshold = number(input, "threshold", 0.5, low=0, high=1, above=True,
                       hint="a churn probability above 0 and below 1 (default 0.5)")
    if threshold >= 1:
        raise ConfigError(f"input field 'threshold' is {input.get('threshold')!r}; give a churn probability above 0 "
                          "and below 1 (default 0.5)")
    # the review band lies just below the threshold: 0.05 wide, or half the threshold when that is less (a
    # threshold lowered to 0.04 for a population that churns little failed "need review_margin < threshold"
    # though no review_margin was given)
    default_margin = min(0.05, threshold / 2)
    margin = number(input, "review_margin", default_margin, low=0,
                    hint=f"a width >= 0 and below the threshold {threshold:g} (default {default_margin:g})")
    if margin >= threshold:
        raise ConfigError(f"input field 'review_margin' is {input.get('review_margin')!r}; the band a person reviews "
                          f"lies below the threshold {threshold:g}, so give a width >= 0 and below {threshold:g} "
                          f"(default {default_margin:g})")
    s = Settings(threshold, margin,
                 given("approve_offer_above", 60.0, "an amount >= 0", low=0),
                 given("max_customers", 50, "a whole number >= 0", low=0, whole=True),
                 str(input.get("campaign") or CAMPAIGN),
                 given("review_timeout", 0, "seconds >= 0", low=0) or None)
    return s


def _input(input: Any) -> dict[str, Any]:
    if input is None:
        return {}
    if not isinstance(input, dict):
        raise ConfigError('the churn scenario takes a JSON object, e.g. {"train": "train.csv", "customers": "customers.csv"}')
    return input





def split(rows: list[dict[str, Any]], share: float = 0.25) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A stratified, seeded split of labelled rows: (to fit on, to test on)."""
    rng = random.Random(0)
    fit: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for label in (0, 1):
        group = [r for r in rows if r[fmt.TARGET] == label]
        rng.shuffle(group)
        k = max(1, round(len(group) * share))
        test += group[:k]
        fit += group[k:]
    return fit, test


workflow = Workflow("scenario-churn", output=lambda track: track,
                    description="train -> score -> CRM task + support priority + marketing offer for high risk -> outcomes")


@workflow.step(gate=fmt.TRAIN_GATE)
def data(input: Any) -> dict[str, Any]:
    """Read the files in the documented columns (a bad cell is an error with its file:line and
    column); the gate then sets aside repeated customers and impossible values."""
    input = _input(input)
    settings(input)
    fmt.require_ml()
    train_path = path_of(input, "train", "churn_train.csv")
    customers_path = path_of(input, "customers", "churn_customers.csv")
    holdout = fmt.read(path_of(input, "holdout", "churn_holdout.csv"), labelled=True) if input.get("holdout") else None
    if input.get("outcomes"):  # checked now: a mistake found in the last step failed the run after its actions
        fmt.read_outcomes(path_of(input, "outcomes", "churn_outcomes.csv"))
    aside: list[dict[str, Any]] = []  # customers with impossible values: reported, never scored
    customers = fmt.read(customers_path, labelled=None, aside=aside)
    return {"rows": fmt.read(train_path, labelled=True), "customers": customers, "impossible_values": aside,
            "holdout": holdout, "train_path": train_path, "registry": fmt.registry_uri(input)}


@workflow.step
async def train(ctx: Any, input: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Train in MLflow, test on the holdout, deploy if better than the champion."""
    from podium.ml import registry_for, remember_scores

    rows = data["rows"]
    fmt.check_labels(data["train_path"], rows)
    holdout, dropped = data["holdout"], 0
    if holdout:  # customers the model learns from are no test of it (ml_pipeline drops them too)
        path = str(_input(input).get("holdout"))
        holdout = fmt.holdout_unseen(rows, data["holdout"], path)
        dropped = len(data["holdout"]) - len(holdout)
        fmt.check_labels(path, holdout, least=5, what="testing")
    fit, test = (rows, holdout) if holdout else split(rows)
    reg = registry_for(data["registry"])
    estimator = _input(input).get("estimator")
    trained = await ctx.call(reg.train, MODEL, fit, target=fmt.TARGET, features=list(fmt.FEATURES), holdout=test,
                             estimator=estimator, name="train")
    decision = await ctx.call(reg.promote, MODEL, trained["version"], test, target=fmt.TARGET, name="promote")
    await ctx.governance.audit("model.promote", step=ctx.step_id, **decision)
    scores = await ctx.call(lambda: reg.score(MODEL, test, trained["version"])[1], name="holdout_scores")
    await remember_scores(ctx.store, MODEL, trained["version"], scores)
    return {"version": trained["version"], "metrics": trained["metrics"], "decision": decision,
            "holdout_rows": len(test), "holdout_dropped": dropped, "quarantined": data["quality"]["quarantined"]}


@workflow.step
async def score(ctx: Any, data: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    """Score every customer with the serving model (its version audited with each score) and watch
    the scores for drift against its holdout scores (an ``ml.monitor`` event)."""
    from podium.ml import monitor, predict

    seen: set[str] = set()
    customers: list[dict[str, Any]] = []
    repeated: list[dict[str, Any]] = []
    for c in data["customers"]:
        (repeated if c[fmt.ID] in seen else customers).append(c)
        seen.add(c[fmt.ID])
    scored = await predict(ctx, MODEL, customers, registry=data["registry"])
    version = scored[0]["version"]
    if len(scored) >= MONITOR_MIN:
        watch = await monitor(ctx, MODEL, [s["score"] for s in scored], version)
    else:  # a PSI over a handful of scores is noise, not drift
        watch = {"retrain": 0, "reasons": [f"not checked: fewer than {MONITOR_MIN} scores"]}
    out: dict[str, Any] = {
        "version": version,
        "scores": [{"customer_id": c[fmt.ID], "score": round(s["score"], 4), "plan": c["plan"],
                    "monthly_charges": c["monthly_charges"]} for c, s in zip(customers, scored, strict=True)],
        "monitor": {k: watch.get(k) for k in ("score_psi", "retrain", "reasons")},
        "unseen_plans": fmt.unseen_plans(data["rows"], customers),
        "repeated_customers": sorted({c[fmt.ID] for c in repeated}),
        "impossible_values": data.get("impossible_values", []),
    }
    known = [(c[fmt.TARGET], s["score"]) for c, s in zip(customers, scored, strict=True) if fmt.TARGET in c]
    if known:  # labelled rows (all, or those known so far: before, a partly labelled file measured none)
        labels = [y for y, _ in known]
        out["quality"] = {"customers": len(known), "roc_auc": fmt.auc(labels, [p for _, p in known]),
                          "churn_rate": round(sum(labels) / len(labels), 4),
                          **({"unlabelled": len(customers) - len(known)} if len(known) < len(customers) else {})}
    return out


@workflow.step
async def review(ctx: Any, input: Any, score: dict[str, Any]) -> dict[str, Any]:
    """At or above the threshold the model's decision stands; just below it a person decides whom
    to treat (approve: all of them; edit ``treat`` to a subset; reject or no answer: none)."""
    s = settings(_input(input))
    high = [x["customer_id"] for x in score["scores"] if x["score"] >= s.threshold]
    grey = [x for x in score["scores"] if s.threshold - s.margin <= x["score"] < s.threshold]
    out: dict[str, Any] = {"high": high, "grey": [x["customer_id"] for x in grey], "treat": list(high), "asked": bool(grey)}
    if grey:
        payload = {"customers": grey, "treat": [x["customer_id"] for x in grey]}
        answer = await ctx.approval(
            payload, role="retention-lead",
            title=f"{len(grey)} customer(s) scored {s.threshold - s.margin:.2f}-{s.threshold:.2f}, just under the churn "
            "threshold: approve to treat them, edit 'treat' to choose, reject for none",
            timeout=s.review_timeout, default={"approved": False, "by": "sla", "payload": payload})
        chosen: list[str] = []
        if answer.get("approved"):
            given = answer.get("payload")
            # the person's list (ids as text: [1042] is customer "1042"; "C1, C2" is two); one that cannot
            # be read treats nobody (it treated the whole grey zone); only customers of the grey zone
            listed = given.get("treat", payload["treat"]) if isinstance(given, dict) else payload["treat"]
            ids = id_list(listed)
            ids = None if ids is None else as_listed(ids, payload["treat"])  # [123] is customer "000123"
            chosen = [i for i in payload["treat"] if i in set(ids or [])]
            if ids is None:
                out["unreadable_treat_list"] = repr(listed)[:200]
        out["treat"] += chosen
        out["review"] = {"by": answer.get("by", ""), "approved": bool(answer.get("approved")), "chosen": chosen}
    return out


async def offer_problems(text: str) -> list[str]:
    """Why a drafted offer cannot be sent (empty: it can)."""
    problems = [p["problem"] for p in await check_output(text, [_BANNED])]
    words = len(text.split())
    if not 8 <= words <= 80:
        problems.append(f"is {words} words long (8 to 80)")
    if f"{round(DISCOUNT * 100)}%" not in text:
        problems.append(f"does not state the discount ({round(DISCOUNT * 100)}%)")
    if re.search(r"[{}<>\[\]]|\d{3,}", text):
        problems.append("contains template text, markup or made-up figures")
    sentences = [x.strip().lower() for x in re.split(r"(?<=[.!?])\s+", text) if x.strip()]
    if len(set(sentences)) < len(sentences):
        problems.append("repeats itself")
    if text and text[-1] not in ".!?":
        problems.append("was cut off")
    return problems


@workflow.step
async def offer(ctx: Any, review: dict[str, Any]) -> dict[str, Any]:
    """The model writes the offer e-mail once for the campaign; the checked template goes out when
    its draft fails the checks or no model answers."""
    template = OFFER_TEMPLATE.format(months=MONTHS, pct=round(DISCOUNT * 100))
    if not review["treat"]:
        return {"text": template, "source": "template", "problems": []}
    try:
        reply = await ai.llm(
            ctx, f"Write a two-sentence e-mail to a customer who may cancel their subscription. Offer exactly this: "
            f"{round(DISCOUNT * 100)}% off the monthly plan for {MONTHS} months, applied automatically. "
            "Be warm and plain. No greeting, no signature, no links.",
            system="You write short, honest retention offers for Northwind Gear.", max_tokens=90, temperature=0.0,
            name="offer_text")
        text, model = reply.text.strip(), reply.model
        problems = await offer_problems(text)
    except Exception as exc:  # no model reachable: the template is sent (control signals are not Exceptions)
        text, model, problems = "", None, [f"no draft: {type(exc).__name__}: {exc}"[:200]]
    if problems:
        return {"text": template, "source": "template", "problems": problems, "draft": text, "model": model}
    return {"text": text, "source": "model", "problems": [], "model": model}


@workflow.step
async def retain(ctx: Any, input: Any, score: dict[str, Any], review: dict[str, Any], offer: dict[str, Any]) -> dict[str, Any]:
    """For each customer to treat, riskiest first: a CRM task, a high-priority support ticket and the
    offer, through the connectors, with ``podium.ml.act``: an offer worth more than
    ``approve_offer_above`` waits for the retention lead (declined: skipped); if an action fails the
    done ones are undone and the customer is reported ``compensated``."""
    from podium.ml import Action, act

    s = settings(_input(input))
    by_id = {x["customer_id"]: x for x in score["scores"]}
    chosen = sorted((by_id[i] for i in review["treat"]), key=lambda x: (-x["score"], x["customer_id"]))
    done: dict[str, Any] = {}
    for c in chosen[: s.max_customers]:
        cid, value = c["customer_id"], round(DISCOUNT * MONTHS * float(c["monthly_charges"]), 2)
        actions = [
            Action(name=f"crm_task:{cid}",
                   do=("crm", "createTask", {"customer_id": cid, "body": {
                       "title": f"Retention call: churn risk {c['score']:.2f} (model v{score['version']})",
                       "owner": "retention-team"}}),
                   undo=("crm", "deleteTask", lambda r, cid=cid: {"customer_id": cid, "task_id": str(r["task_id"])})),
            Action(name=f"support_priority:{cid}",
                   do=("support_desk", "createTicket", {"body": {
                       "customer_id": cid, "priority": "high",
                       "message": f"Churn risk {c['score']:.2f}: answer this customer's requests first for {MONTHS} months."}}),
                   undo=("support_desk", "updateTicket", lambda r: {"ticket_id": str(r["ticket_id"]), "body": {"status": "cancelled"}})),
            Action(name=f"offer:{cid}",
                   do=("marketing", "addToCampaign", {"campaign_id": s.campaign, "body": {"customer_id": cid, "note": offer["text"]}}),
                   undo=("marketing", "removeFromCampaign", {"campaign_id": s.campaign, "customer_id": cid}),
                   approve=value > s.approve_above, role="retention-lead"),
        ]
        context = {"customer_id": cid, "score": c["score"], "offer_value": value, "offer": offer["text"]}
        try:
            result = await act(ctx, actions, context=context, connect=lambda name: system(ctx, name))
        except NonRetryableError as exc:
            done[cid] = {"status": "compensated", "actions": [], "declined": [], "error": str(exc)}
            continue
        names = [n.split(":")[0] for n in result["done"]]
        declined = [n.split(":")[0] for n in result["declined"]]
        done[cid] = {"status": "treated" if not declined else "partly treated", "actions": names, "declined": declined,
                     "offer_value": value}
    high = set(review["high"])
    actions_high = sum(len(d["actions"]) for cid, d in done.items() if cid in high)
    await ctx.metric("churn_high_risk_customers", len(high))
    await ctx.metric("retention_actions", sum(len(d["actions"]) for d in done.values()), kind="counter")
    return {"customers": done, "not_reached": [c["customer_id"] for c in chosen[s.max_customers:]],
            "actions_per_high_risk": round(actions_high / len(high), 3) if high else None}


async def close_loop(ctx: Any, path: str, treated: set[str]) -> dict[str, Any]:
    """Record what happened to customers (``customer_id, churned``) against the predictions made
    about them, and measure: ROC AUC per model version, retention of treated vs untreated."""
    from podium.ml import performance, record_outcome

    rows = fmt.read_outcomes(path)
    runs = [json.loads(v) for v in (await ctx.store.kv_list(SCORED)).values() if v]
    not_scored: list[str] = []
    if runs:  # (runs before the eleventh session kept no list: then every outcome counts, as it did)
        scored = set().union(*runs) | treated
        not_scored = sorted(c for c in rows if c not in scored)
        # another system's id or a typo was recorded and counted in the untreated group's retention
        rows = {c: v for c, v in rows.items() if c in scored}
    for cid, churned in rows.items():
        await record_outcome(ctx.store, MODEL, cid, churned, treated=cid in treated, run_id=ctx.run_id)
    rates: dict[str, Any] = {}
    for group, members in (("treated", [c for c in rows if c in treated]), ("untreated", [c for c in rows if c not in treated])):
        if members:
            rates[group] = round(1 - sum(rows[c] for c in members) / len(members), 4)
            await ctx.metric("retention_rate", rates[group], group=group)
    return {"recorded": len(rows), "performance": await performance(ctx.store, MODEL), "retention_rate": rates,
            **({"not_scored": not_scored} if not_scored else {})}


@workflow.step
async def track(ctx: Any, input: Any, train: dict[str, Any], score: dict[str, Any], review: dict[str, Any],
                offer: dict[str, Any], retain: dict[str, Any]) -> dict[str, Any]:
    """Remember who was treated (for outcomes recorded later), close the loop with ``outcomes`` when
    given, and return the per-customer result."""
    treated = {cid for cid, d in retain["customers"].items() if d["actions"]}
    await ctx.store.kv_put(SCORED, ctx.run_id, json.dumps([x["customer_id"] for x in score["scores"]]))
    for cid in sorted(treated):
        entry = {"run_id": ctx.run_id, "actions": retain["customers"][cid]["actions"], "version": score["version"]}
        await ctx.store.kv_put(TRAINED, cid, json.dumps(entry))
    high, grey = set(review["high"]), set(review["grey"])
    customers = []
    for x in score["scores"]:
        cid = x["customer_id"]
        d = retain["customers"].get(cid, {})
        customers.append({"customer_id": cid, "score": x["score"],
                          "risk": "high" if cid in high else "review" if cid in grey else "low",
                          "status": d.get("status", "not treated"), "actions": d.get("actions", []),
                          "declined": d.get("declined", [])})
    out: dict[str, Any] = {
        "customers": customers,
        "model": {"name": MODEL, "version": score["version"], "deployed": train["decision"]["deployed"],
                  "holdout_auc": train["metrics"].get("roc_auc"), "trained_version": train["version"],
                  "holdout_dropped": train.get("holdout_dropped", 0),
                  "quarantined_rows": train["quarantined"]},
        "high_risk": len(high), "reviewed": len(grey), "treated": len(treated),
        # the scores are churn probabilities: their sum is how many of these customers the model expects to
        # lose, beside how many the threshold acts on (4th unseen-data round: 321 expected, 317 churned, 5
        # at or above 0.5 among 2,000; a population with little churn needs a lower threshold)
        "expected_churners": round(sum(x["score"] for x in score["scores"]), 1),
        "actions_per_high_risk": retain["actions_per_high_risk"],
        "compensated": sorted(c for c, d in retain["customers"].items() if d["status"] == "compensated"),
        "not_reached": retain["not_reached"],
        "review": review.get("review"), "offer": {k: offer[k] for k in ("text", "source", "problems")},
        "monitor": score["monitor"], "unseen_plans": score["unseen_plans"],
        "impossible_values": score.get("impossible_values", []),
        # scored on their first row; before, the later rows were set aside without a word
        "repeated_customers": score.get("repeated_customers", []),
    }
    if "quality" in score:
        out["quality"] = {**score["quality"], "holdout_auc": train["metrics"].get("roc_auc"),
                          "actions_per_high_risk": retain["actions_per_high_risk"]}
    if _input(input).get("outcomes"):
        out["outcomes"] = await close_loop(ctx, path_of(_input(input), "outcomes", "churn_outcomes.csv"), treated)
    return out


outcomes = Workflow("scenario-churn-outcomes", output=lambda record: record,
                    description="what happened to the customers: labels per model version, retention treated vs untreated")


@outcomes.step
async def record(ctx: Any, input: Any) -> dict[str, Any]:
    """``{"outcomes": CSV of customer_id, churned}``: recorded against the scores the churn runs
    made; treated customers are those a churn run acted on."""
    path = path_of(_input(input), "outcomes", "churn_outcomes.csv")
    treated = {k for k, v in (await ctx.store.kv_list(TRAINED)).items() if v}
    return await close_loop(ctx, path, treated)
