"""Scoring rows with a registered model inside a step, with the model version in the audit and in
the store; outcomes fed back as labels; performance per model version; and the monitor that says
when to retrain (prediction drift, a performance drop), as an event threshold rules act on."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from ..storage import _sealed as sealed
from ._drift import checked_reference, compare, save_reference
from ._registry import Registry, approval_rule, registry_for
from ._table import Rows

PREDICTIONS = "ml_predictions"
OUTCOMES = "ml_outcomes"
log = logging.getLogger("podium.ml")


def _named(model: str) -> str:
    """``model``, if it can key its rows: they are stored as ``MODEL:...`` and read by that prefix, so
    the rows of a model ``churn:x`` were read as ``churn``'s too (its sealed count then hid as many
    of ``churn``'s deleted)."""
    if not isinstance(model, str) or not model or ":" in model:
        from ..errors import DefinitionError

        raise DefinitionError(
            f"model name {model!r} cannot key its predictions and outcomes: a name holds no ':' (the rows of a "
            "model are stored as MODEL:ENTITY and read by that prefix); name it without one, e.g. "
            f"{str(model).replace(':', '-')!r}"
        )
    return model


def _scores_ref(model: str, version: str) -> str:
    return f"{model}@{version}:scores"


async def predict(
    ctx: Any,
    model: str,
    rows: Rows,
    *,
    registry: Registry | str | None = None,
    version: str | None = None,
    id_field: str = "customer_id",
    executor: str | None = None,
) -> list[dict[str, Any]]:
    """Score ``rows`` with ``model`` (its champion, or ``version``) as a durable sub-step of the step
    in ``ctx``: ``[{id, score, model, version}]``. The model name and version go to the audit log and,
    with every id and score, to the store, so "which model version made this decision" has an
    answer and outcomes recorded later (:func:`record_outcome`) measure that version. The scoring runs
    on ``executor`` (default: the step's, ``@wf.step(executor="ray")``), else in a thread here."""
    model = _named(model)
    reg = registry if isinstance(registry, Registry) else registry_for(registry)
    uri = reg.uri
    label = f"predict:{model}"
    live = not ctx.replaying(label)
    if live and version is not None and approval_rule() == "always":  # a person decides what scores too
        version = await asyncio.to_thread(reg.servable, model, str(version))
    where = executor or getattr(ctx, "executor", None)
    scored: dict[str, Any] = await ctx.call(_score, uri, model, rows, version, name=label, executor=where)
    v, scores = scored["version"], scored["scores"]
    ids = [str(r.get(id_field, i)) for i, r in enumerate(rows)]
    if live:
        await ctx.governance.audit("model.predict", step=ctx.step_id, model=model, version=v, rows=len(rows))
        key = f"{model}:{ctx.run_id}:{ctx.step_id}:{ctx.iteration}:{ctx.index}"
        entry = {"model": model, "version": v, "ids": ids, "scores": scores, "at": time.time(), "run_id": ctx.run_id}
        await _keep(ctx.store, PREDICTIONS, "prediction", model, key, entry)
    return [{"id": i, "score": round(s, 6), "model": model, "version": v} for i, s in zip(ids, scores, strict=True)]


def _score(uri: str, model: str, rows: Rows, version: str | None) -> dict[str, Any]:
    # By URI, not by Registry object: it may run in another process (Ray), where registry_for caches.
    v, scores = registry_for(uri).score(model, rows, version)
    return {"version": v, "scores": scores}


async def remember_scores(store: Any, model: str, version: str, scores: list[float], *, audited: bool = True) -> None:
    """Keep a version's scores on its holdout: the reference prediction drift is measured against
    (signed into the audit log as :func:`podium.ml.save_reference` does, unless not ``audited``)."""
    await save_reference(store, _scores_ref(model, version), [{"score": s} for s in scores], owner=model, audited=audited)


async def record_outcome(store: Any, model: str, entity: str, outcome: int | bool, **details: Any) -> None:
    """What really happened to ``entity`` (did the customer churn?): a label for the predictions made
    about it, which :func:`performance` scores per model version. Sealed with the audit key and
    counted per model (see :mod:`podium.storage._sealed`): one edited, written or deleted in the
    store behind the engine's back is not measured, and the monitor says so."""
    entry = {"outcome": int(outcome), "at": time.time(), **details}
    await _keep(store, OUTCOMES, "outcome", _named(model), f"{model}:{entity}", entry)


_TALLY = {OUTCOMES: "outcomes", PREDICTIONS: "predictions"}


async def _keep(store: Any, ns: str, kind: str, model: str, key: str, entry: dict[str, Any]) -> None:
    text = sealed.seal(store, kind, key, entry)
    if await store.kv_swap(ns, key, None, text):  # a new row: counted (one recorded again replaces, uncounted)

        async def recount() -> int:
            return len(_rows(store, ns, kind, model, await store.kv_list(ns), sealed.Verifier(store))[0])

        await sealed.count_new(store, _TALLY[ns], model, recount=recount)
    else:
        await store.kv_put(ns, key, text)


def _rows(store: Any, ns: str, kind: str, model: str, stored: dict[str, str], verifier: sealed.Verifier | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The rows of ``model`` whose seal holds (every row when ``verifier`` is None: auditing off),
    and the keys of those whose seal does not."""
    good: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    for k, raw in stored.items():
        if not raw or not k.startswith(model + ":"):
            continue
        if verifier is None:
            entry = json.loads(raw)
            entry.pop(sealed.SEAL, None)
            good[k] = entry
            continue
        entry, holds = sealed.opened(store, kind, k, raw, verifier)
        if entry is not None and holds:
            good[k] = entry
        else:
            bad.append(k)
    return good, bad


def not_measured(model: str, ns: str, bad: list[str], total: int) -> str:
    what = "ML outcomes" if ns == OUTCOMES else "ML predictions"
    shown = ", ".join(repr(k.partition(":")[2]) for k in sorted(bad)[:3]) + (", ..." if len(bad) > 3 else "")
    return (
        f"{what} of model {model!r}: {len(bad)} of {total} in the store are not sealed with the audit key ({shown}): "
        "written or edited behind the engine's back, or kept by a release before they were sealed, so they are not "
        "measured; record them again, or after an upgrade seal the rows you trust: podium ml seal " + model
    )


async def measured(store: Any, model: str, *, checked: bool = True) -> tuple[dict[str, dict[str, float]], list[str]]:
    """:func:`performance`, and what is wrong with the rows it measured from: outcomes or predictions
    not sealed (left out), or fewer than the sealed count of them (some deleted). With ``checked``
    false (auditing off) every row counts as stored."""
    verifier = sealed.Verifier(store) if checked else None
    problems: list[str] = []
    kept: dict[str, dict[str, dict[str, Any]]] = {}
    tallies = await store.kv_list(sealed.TALLIES) if checked else {}
    for ns, kind in ((OUTCOMES, "outcome"), (PREDICTIONS, "prediction")):
        good, bad = _rows(store, ns, kind, model, await store.kv_list(ns), verifier)
        kept[ns] = good
        if bad:
            problems.append(not_measured(model, ns, bad, len(good) + len(bad)))
        if checked:
            what = f"ML {_TALLY[ns]} of model {model!r}"
            tally = await sealed.tally_problem(
                store, _TALLY[ns], model, tallies.get(f"{_TALLY[ns]}:{model}"), len(good) + len(bad), what, verifier,
                sealed_rows=len(good), reset=f"podium ml seal {model}",
            )
            problems += [f"{tally}; the figures may flatter the model"] if tally else []
    return _figures(kept[OUTCOMES], kept[PREDICTIONS], model), problems


async def performance(store: Any, model: str) -> dict[str, dict[str, float]]:
    """Per model version: how its predictions fared against the outcomes recorded since
    (``n``, ``roc_auc`` when both outcomes occur, ``accuracy`` at 0.5, ``positive_rate``), from the
    rows whose seal holds (:func:`measured` says what was left out)."""
    figures, problems = await measured(store, model)
    for p in problems:
        log.warning("%s", p)
    return figures


def _figures(outcome_rows: dict[str, dict[str, Any]], prediction_rows: dict[str, dict[str, Any]], model: str) -> dict[str, dict[str, float]]:
    outcomes = {k.partition(":")[2]: e["outcome"] for k, e in outcome_rows.items()}
    latest: dict[tuple[str, str], tuple[float, float]] = {}
    for e in prediction_rows.values():
        for i, s in zip(e["ids"], e["scores"], strict=True):
            if i in outcomes and latest.get((e["version"], i), (0.0, 0.0))[0] <= e["at"]:
                latest[(e["version"], i)] = (e["at"], s)
    out: dict[str, dict[str, float]] = {}
    for version in sorted({v for v, _ in latest}, key=lambda x: int(x) if x.isdigit() else 0):
        pairs = [(outcomes[i], s) for (v, i), (_, s) in latest.items() if v == version]
        y = [a for a, _ in pairs]
        p = [s for _, s in pairs]
        figures = {
            "n": float(len(pairs)),
            "accuracy": round(sum(int(s >= 0.5) == a for a, s in pairs) / len(pairs), 4),
            "positive_rate": round(sum(y) / len(y), 4),
        }
        if len(set(y)) > 1:
            from sklearn.metrics import roc_auc_score

            figures["roc_auc"] = round(float(roc_auc_score(y, p)), 4)
        out[version] = figures
    return out


async def seal_rows(store: Any, model: str) -> dict[str, int]:
    """Seal ``model``'s outcomes and predictions as the store holds them now, and count them: for rows
    kept by a release before they were sealed (``podium ml seal MODEL``), once the store is trusted.
    Returns how many rows of each were sealed."""
    done: dict[str, int] = {}
    for ns, kind in ((OUTCOMES, "outcome"), (PREDICTIONS, "prediction")):
        rows, _ = _rows(store, ns, kind, model, await store.kv_list(ns), None)
        for k, entry in rows.items():
            await store.kv_put(ns, k, sealed.seal(store, kind, k, entry))
        key = f"{_TALLY[ns]}:{model}"
        await sealed.start_count(store, _TALLY[ns], model)
        await store.kv_put(sealed.TALLIES, key, sealed.seal(store, "tally", key, {"n": len(rows)}))
        done[_TALLY[ns]] = len(rows)
    return done


async def monitor(
    ctx: Any,
    model: str,
    scores: list[float],
    version: str,
    *,
    psi: float = 0.2,
    min_auc: float | None = None,
    topic: str = "ml.monitor",
) -> dict[str, Any]:
    """Look at a batch of ``scores`` by ``version``: prediction drift (PSI against the version's
    holdout scores, see :func:`remember_scores`) and, when outcomes are in, its ROC AUC. Emits
    ``topic`` with the figures and ``retrain`` (1 or 0), once per step execution, so a threshold rule
    (``Rule(when="retrain >= 1", event="ml.monitor", workflow="churn-retrain")``) starts retraining."""
    ref, problem = await checked_reference(ctx.store, _scores_ref(model, version), audited=ctx.governance.service.audit_enabled)
    figures: dict[str, Any] = {"model": model, "version": version, "rows": len(scores)}
    reasons = []
    if problem:  # the holdout scores were edited in the store: an alarm, not a silence
        ctx.log.warning("%s", problem)
        await ctx.governance.service.record(
            "access.denied", f"reference:{_scores_ref(model, version)}", actor="engine", run=ctx.run_id,
            step=ctx.step_id, reason="record not backed by the audit log", problem=problem,
        )
        reasons.append(problem)
    if ref is not None and scores and "score" in ref["columns"]:
        drift = compare(ref["columns"]["score"], [{"score": s} for s in scores], "score")
        figures["score_psi"] = drift["psi"]
        if drift["psi"] > psi:
            reasons.append(f"prediction drift (PSI {drift['psi']} > {psi})")
    if min_auc is not None:
        service = ctx.governance.service
        perf, problems = await measured(ctx.store, model, checked=service.audit_enabled)
        if problems:  # rows changed in the store: an alarm (once per check), not a flattering figure
            for p in problems:
                ctx.log.warning("%s", p)
            await service.record(
                "access.denied", f"outcomes:model:{model}", actor="engine", run=ctx.run_id, step=ctx.step_id,
                reason="record not backed by the audit log", problem="; ".join(problems),
            )
            reasons.extend(problems)
        auc = perf.get(version, {}).get("roc_auc")
        if auc is not None:
            figures["roc_auc"] = auc
            if auc < min_auc:
                reasons.append(f"ROC AUC {auc} < {min_auc}")
    figures["retrain"] = int(bool(reasons))
    figures["reasons"] = reasons
    figures["idempotency_key"] = f"{ctx.run_id}:{ctx.step_id}:{ctx.iteration}:{ctx.index}"
    await ctx.emit(topic, figures)
    return figures
