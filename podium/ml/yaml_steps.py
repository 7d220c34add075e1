"""The ML loop in workflow files: ``uses: read_csv``, ``train``, ``promote`` and ``predict``.

Registered through the ``podium.step_types`` entry-point group (pyproject.toml). Files are read
only under a folder an admin registered (``root:``, see ``podium tools add NAME --files DIR``), and the
MLflow registry is the operator's (``$PODIUM_MLFLOW_URI``, default ``$PODIUM_HOME/mlflow.db``), never
named by the file. Training and scoring run on the step's ``executor:`` (``ray``) when it has one::

    - id: train
      uses: train
      executor: ray
      with: {model: churn, target: churned, csv: train.csv, holdout_csv: holdout.csv, root: churn-data,
             reference: churn-train}
    - id: deploy
      uses: promote          # deploy only if better on the holdout; action: rollback puts the previous back
      with: {model: churn, version: "{{ steps.train.output.version }}", target: churned,
             holdout_csv: holdout.csv, root: churn-data}
    - id: score
      uses: predict
      with: {model: churn, csv: customers.csv, root: churn-data, threshold: 0.7, monitor: true}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..yaml import StepType
from ._owners import check_owner, check_reference
from ._table import Rows, read_csv


def _uri() -> str:
    from ._registry import default_uri

    return os.environ.get("PODIUM_MLFLOW_URI") or default_uri()


async def _rows(ctx: Any, csv: str | None, rows: Rows | None, root: str | None, what: str) -> Rows:
    out: Rows = []
    if csv is not None:
        from ..governance.capabilities import confine_paths

        [path] = await confine_paths(
            ctx.store, [csv], root, where=f"step {ctx.step_id!r} ({what})", discover=lambda p: [p]
        )
        out += read_csv(path)
    return out + list(rows or [])


def _train(uri: str, model: str, rows: Rows, holdout: float | Rows, **kw: Any) -> dict[str, Any]:
    # Module-level and by URI: it may run in a Ray worker (the Registry holds a lock and a cache).
    from ._registry import registry_for

    reg = registry_for(uri)
    trained = reg.train(model, rows, holdout=holdout, **kw)
    test = holdout if isinstance(holdout, list) else None
    trained["holdout_scores"] = reg.score(model, test, trained["version"])[1] if test else []
    return trained


def _promote(uri: str, model: str, version: str, holdout: Rows, **kw: Any) -> dict[str, Any]:
    from ._registry import registry_for

    return registry_for(uri).promote(model, version, holdout, **kw)


def _deploy(uri: str, model: str, version: str) -> None:
    from ._registry import registry_for

    registry_for(uri).deploy(model, version)


def _rollback(uri: str, model: str) -> dict[str, Any]:
    from ._registry import registry_for

    return registry_for(uri).rollback(model)


async def _read_csv(ctx: Any, csv: str, root: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Reads a CSV file under a registered folder as records: {rows, count}."""
    rows = await _rows(ctx, csv, None, root, "read_csv")
    rows = rows[:limit] if limit is not None else rows
    return {"rows": rows, "count": len(rows)}


def _check_params(params: Any, where: str) -> None:
    """A workflow file's estimator options are values, never places: a path option (``memory``, a
    cache folder; ``input='filename'`` readers) would make scikit-learn write or read where the
    engine may, outside the folders registered for the file."""
    stack = [("params", params)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                if str(k) in ("memory", "input", "data_home", "cache_dir", "path", "filename"):
                    raise ConfigError(
                        f"{where}: {at}.{k} names a place to read or write; estimator options in a workflow file "
                        "are values, never places (set it in Python, Registry.train, if you need it)"
                    )
                stack.append((f"{at}.{k}", v))
        elif isinstance(value, list | tuple):
            stack.extend((f"{at}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, str) and ("/" in value or "\\" in value or value.startswith("~")):
            raise ConfigError(
                f"{where}: {at} looks like a path ({len(value)} characters with a '/'); estimator options in a "
                "workflow file are values, never places to read or write"
            )


async def _train_step(
    ctx: Any, model: str, target: str, csv: str | None = None, rows: Rows | None = None, root: str | None = None,
    holdout: Any = 0.25, holdout_csv: str | None = None, estimator: str | None = None,
    params: dict[str, Any] | None = None, features: list[str] | None = None, metric: str = "roc_auc",
    reference: str | None = None, seed: int = 0,
) -> dict[str, Any]:
    """Trains a model (scikit-learn) on CSV rows and/or records, registers it in MLflow: {version, metrics}."""
    from ._drift import save_reference
    from ._predict import remember_scores

    _check_params(params, f"step {ctx.step_id!r}")
    await check_owner(ctx, model, "train")
    data = await _rows(ctx, csv, rows, root, "train")
    test: float | Rows = await _rows(ctx, holdout_csv, None, root, "train") if holdout_csv else holdout
    if reference:  # what drift rules of later gates compare with: the model's own
        await check_reference(ctx, reference, model)
        await save_reference(
            ctx.store, reference, data, [c for c in (features or list(data[0]) if data else []) if c != target],
            owner=model, audited=ctx.governance.service.audit_enabled,
        )
    trained: dict[str, Any] = await ctx.call(
        _train, _uri(), model, data, test, target=target, features=features, estimator=estimator, params=params,
        metric=metric, seed=seed, name="train", executor=ctx.executor,
    )
    scores = trained.pop("holdout_scores", [])
    if scores:  # the reference prediction drift (monitor) is measured against
        await remember_scores(ctx.store, model, trained["version"], scores, audited=ctx.governance.service.audit_enabled)
    await ctx.governance.audit("model.train", step=ctx.step_id, model=model, version=trained["version"],
                               metrics=trained["metrics"])
    return trained


async def _promote_step(
    ctx: Any, model: str, version: str | None = None, target: str | None = None, holdout: Rows | None = None,
    holdout_csv: str | None = None, root: str | None = None, metric: str = "roc_auc", min_gain: float = 0.0,
    action: str = "promote",
) -> dict[str, Any]:
    """Deploys a model version only if it beats the champion on the holdout; or rolls back. With
    the operator's ``PODIUM_ML_APPROVE=always`` a person approves each deployment and rollback."""
    from ..errors import NonRetryableError

    ask = _approval_rule() == "always"
    await check_owner(ctx, model, action)
    if action == "rollback":
        if ask:
            decision = await ctx.approval(
                {"model": model, "action": "rollback"},
                title=f"roll back model {model} to its previous champion (PODIUM_ML_APPROVE=always)",
            )
            if not decision.get("approved"):
                refused = {"model": model, "rolled_back": None, "refused_by": decision.get("by")}
                await ctx.governance.audit("model.rollback", step=ctx.step_id, **refused)
                return refused
        out: dict[str, Any] = await ctx.call(_rollback, _uri(), model, name="rollback")
        await ctx.governance.audit("model.rollback", step=ctx.step_id, **out)
        return out
    if version is None or target is None or (holdout is None and holdout_csv is None):
        raise NonRetryableError(
            f"step {ctx.step_id!r} (promote): give version, target and holdout (records) or holdout_csv"
        )
    test = await _rows(ctx, holdout_csv, holdout, root, "promote")
    out = await ctx.call(_promote, _uri(), model, str(version), test, target=target, metric=metric,
                         min_gain=min_gain, apply=not ask, name="promote", executor=ctx.executor)
    if ask and out["deployed"]:  # better on the holdout: a person decides whether it serves
        champion = "no champion yet" if out["champion"] is None else f"champion v{out['champion_version']} {out['champion']}"
        decision = await ctx.approval(
            {k: out[k] for k in ("model", "version", "metric", "candidate", "champion", "champion_version")},
            title=f"deploy model {model} version {out['version']}: {metric} {out['candidate']} against {champion} "
            "(PODIUM_ML_APPROVE=always)",
        )
        if decision.get("approved"):
            await ctx.call(_deploy, _uri(), model, out["version"], name="deploy")
            out["approved_by"] = decision.get("by")
        else:
            out.update(deployed=False, now_serving=out["champion_version"], refused_by=decision.get("by"))
    await ctx.governance.audit("model.promote", step=ctx.step_id, **out)
    return out


def _approval_rule() -> str:
    """The operator's rule for deployments (``PODIUM_ML_APPROVE``: never or always)."""
    from ._registry import approval_rule

    return approval_rule()


async def _predict_step(
    ctx: Any, model: str, csv: str | None = None, rows: Rows | None = None, root: str | None = None,
    version: str | None = None, id_field: str = "customer_id", threshold: float | None = None,
    monitor: bool = False,
) -> dict[str, Any]:
    """Scores records with the champion (or a version); the model version is audited with each."""
    from ._predict import monitor as watch
    from ._predict import predict

    data = await _rows(ctx, csv, rows, root, "predict")
    scored = await predict(ctx, model, data, registry=_uri(), version=version, id_field=id_field)
    v = scored[0]["version"] if scored else None
    out: dict[str, Any] = {"model": model, "version": v, "count": len(scored), "scores": scored}
    if threshold is not None:
        out["high"] = sorted((s for s in scored if s["score"] >= threshold), key=lambda s: -s["score"])
    if monitor and v is not None:
        out["monitor"] = await watch(ctx, model, [s["score"] for s in scored], v)
    return out


def _path_uses(fields: tuple[str, ...]) -> Any:
    def uses(w: Mapping[str, Any]) -> list[Any]:
        """A file is read only under a folder an admin registered (``root:`` names it)."""
        from ..governance.capabilities import Use, is_template, templated

        found: list[Any] = []
        root = w.get("root")
        if root is not None:
            if is_template(root):
                return [templated(("root",), "root")]
            found.append(Use(at=("root",), kinds=("files",), name=str(root)))
        for f in fields:
            path = w.get(f)
            if not isinstance(path, str):
                continue
            if is_template(path):
                if root is None:
                    found.append(Use(at=(f,), problem=f"a computed {f} (a template) needs root: the registered "
                                     "folder it must stay in", hint="add root: NAME (podium tools list)"))
                continue
            found.append(Use(at=(f,), path=path, root=None if root is None else str(root)))
        return found

    return uses


_S: dict[str, Any] = {"type": "string"}
_ROWS: dict[str, Any] = {"type": "array", "items": {"type": "object"}, "description": "records (a step's output)"}
_CSV: dict[str, Any] = {**_S, "description": "a CSV file with a header, under the registered folder 'root'"}
_ROOT: dict[str, Any] = {**_S, "description": "a registered files folder (podium tools add NAME --files DIR)"}
_METRIC: dict[str, Any] = {"enum": ["roc_auc", "accuracy", "f1", "log_loss", "brier"], "default": "roc_auc"}
_MODEL: dict[str, Any] = {**_S, "minLength": 1, "description": "the registered model's name"}

read_csv_step = StepType(
    name="read_csv",
    fn=_read_csv,
    args={"type": "object", "additionalProperties": False, "required": ["csv"],
          "properties": {"csv": _CSV, "root": _ROOT, "limit": {"type": "integer", "minimum": 0}}},
    output={"type": "object", "properties": {"rows": {"type": "array"}, "count": {"type": "integer"}}},
    description="Read a CSV file under a registered folder as records",
    capabilities=_path_uses(("csv",)),
)
train_step = StepType(
    name="train",
    fn=_train_step,
    args={
        "type": "object", "additionalProperties": False, "required": ["model", "target"],
        "properties": {
            "model": _MODEL, "target": {**_S, "description": "the label column (0/1)"},
            "csv": _CSV, "rows": _ROWS, "root": _ROOT,
            "holdout": {"description": "a share of the rows (0-1), or records", "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, _ROWS]},
            "holdout_csv": _CSV,
            "estimator": {**_S, "description": "a scikit-learn class, e.g. sklearn.ensemble.RandomForestClassifier"},
            "params": {"type": "object"}, "features": {"type": "array", "items": _S}, "metric": _METRIC,
            "reference": {**_S, "description": "save the training rows as this drift reference"},
            "seed": {"type": "integer"},
        },
    },
    output={"type": "object", "properties": {"version": _S, "metrics": {"type": "object"}, "run_id": _S}},
    description="Train a scikit-learn model and register it in MLflow (not deployed: see promote)",
    capabilities=_path_uses(("csv", "holdout_csv")),
)
promote_step = StepType(
    name="promote",
    fn=_promote_step,
    args={
        "type": "object", "additionalProperties": False, "required": ["model"],
        "properties": {
            "model": _MODEL, "version": {"type": ["string", "integer"]}, "target": _S, "holdout": _ROWS,
            "holdout_csv": _CSV, "root": _ROOT, "metric": _METRIC, "min_gain": {"type": "number", "minimum": 0},
            "action": {"enum": ["promote", "rollback"], "default": "promote"},
        },
    },
    output={"type": "object", "properties": {"deployed": {"type": "boolean"}, "now_serving": {}}},
    description="Deploy a model version only if it beats the champion on the holdout, or roll back",
    capabilities=_path_uses(("holdout_csv",)),
)
predict_step = StepType(
    name="predict",
    fn=_predict_step,
    args={
        "type": "object", "additionalProperties": False, "required": ["model"],
        "properties": {
            "model": _MODEL, "csv": _CSV, "rows": _ROWS, "root": _ROOT, "version": {"type": ["string", "integer"]},
            "id_field": {**_S, "default": "customer_id"}, "threshold": {"type": "number"},
            "monitor": {"type": "boolean", "default": False, "description": "emit ml.monitor (prediction drift)"},
        },
    },
    output={"type": "object", "properties": {"version": {}, "scores": {"type": "array"}, "high": {"type": "array"}}},
    description="Score records with the deployed model; the model version is audited with every score",
    capabilities=_path_uses(("csv",)),
)
