"""The model lifecycle on MLflow: train, evaluate on a holdout, deploy only if better than the
champion (the registered model's ``champion`` alias), roll back, and load a model to score rows.

MLflow is used through its client (``MlflowClient``) with an explicit tracking and registry URI, so
two registries in one process never share global state. The default is a local SQLite database
with file artifacts beside it; ``http(s)://`` names any MLflow server.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NonRetryableError
from ._table import Rows, column, is_numeric

CHAMPION = "champion"
_HISTORY = "podium.champions"  # registered-model tag: the champion versions, oldest first
_LOWER_IS_BETTER = {"log_loss", "brier"}
METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "brier")


def _mlflow() -> Any:
    try:
        import mlflow
        import mlflow.sklearn
    except ImportError:
        raise ConfigError("the model lifecycle needs MLflow and scikit-learn: pip install 'podium[ml]'") from None
    return mlflow


def default_uri() -> str:
    home = Path(os.environ.get("PODIUM_HOME") or Path.home() / ".podium")
    return f"sqlite:///{home / 'mlflow.db'}"


class Registry:
    """Models in MLflow. ``Registry()`` keeps them in ``$PODIUM_HOME/mlflow.db`` (SQLite) with file
    artifacts in ``$PODIUM_HOME/mlartifacts``; ``Registry("sqlite:///path.db")`` or
    ``Registry("http://mlflow:5000")`` elsewhere."""

    def __init__(self, uri: str | None = None, *, artifacts: str | None = None, experiment: str = "podium") -> None:
        self.uri = uri or default_uri()
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            artifacts = artifacts or (db.parent / "mlartifacts").as_uri()
        elif not self.uri.startswith(("http://", "https://", "postgresql", "mysql", "databricks")):
            raise ConfigError(
                f"MLflow registry {self.uri!r} is not a URI MLflow serves: use sqlite:///PATH.db or http(s)://HOST"
            )
        self.artifacts = artifacts
        self.experiment = experiment
        self._client: Any = None
        self._experiment_id: str | None = None
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Registry {self.uri}>"

    @property
    def client(self) -> Any:
        if self._client is None:
            mlflow = _mlflow()
            self._client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is None:
            with self._lock:
                exp = self.client.get_experiment_by_name(self.experiment)
                self._experiment_id = (
                    exp.experiment_id
                    if exp is not None
                    else self.client.create_experiment(self.experiment, artifact_location=self.artifacts)
                )
        return self._experiment_id

    # -- training --------------------------------------------------------------------------------

    def train(
        self,
        name: str,
        rows: Rows,
        *,
        target: str,
        features: Sequence[str] | None = None,
        estimator: Any = None,
        params: dict[str, Any] | None = None,
        holdout: float | Rows = 0.25,
        metric: str = "roc_auc",
        seed: int = 0,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Fit a model of ``target`` on ``rows``, evaluate it on the holdout (a share of ``rows`` or
        rows of its own), log the run in MLflow and register it as a new version of ``name``.
        ``estimator``: a scikit-learn estimator, a ``sklearn.`` class name, or any callable
        ``fit(frame, labels) -> model`` whose model has ``predict_proba``. Returns ``{model, version,
        metrics, run_id, features}``; the new version is not deployed (see :meth:`promote`)."""
        _check_metric(metric)
        if not rows:
            raise NonRetryableError(f"model {name!r}: no training rows")
        feats = list(features or [c for c in rows[0] if c != target])
        if isinstance(holdout, float):
            train, test = _split(rows, target, holdout, seed)
        else:
            train, test = rows, list(holdout)
        model = self._fit(estimator, params or {}, train, feats, target, seed)
        figures = evaluate_model(model, test, feats, target)
        mlflow = _mlflow()
        c = self.client
        run = c.create_run(self._experiment(), tags={"podium.model": name, **(tags or {})})
        rid = run.info.run_id
        for k, v in (params or {}).items():
            c.log_param(rid, k, v)
        c.log_param(rid, "features", ",".join(feats))
        c.log_param(rid, "rows", len(train))
        for k, v in figures.items():
            c.log_metric(rid, k, v)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model")
            mlflow.sklearn.save_model(
                model, path, serialization_format="skops", skops_trusted_types=_trusted(model, name),
                pip_requirements=["scikit-learn", "pandas", "skops"],
            )
            Path(path, "podium.json").write_text(json.dumps({"features": feats, "target": target}))
            c.log_artifacts(rid, path, "model")
        c.set_terminated(rid)
        try:
            c.get_registered_model(name)
        except Exception:
            c.create_registered_model(name)
        mv = c.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=rid)
        return {"model": name, "version": str(mv.version), "metrics": figures, "run_id": rid, "features": feats}

    def _fit(self, estimator: Any, params: dict[str, Any], rows: Rows, feats: list[str], target: str, seed: int) -> Any:
        frame, y = _frame(rows, feats), [int(r[target]) for r in rows]
        if callable(estimator) and not hasattr(estimator, "fit") and not isinstance(estimator, type):
            return estimator(frame, y)  # any Python callable that trains
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        if estimator is None:
            est = LogisticRegression(max_iter=1000, **params)
        elif isinstance(estimator, str):
            est = _sklearn_class(estimator)(**params)
        elif isinstance(estimator, type):
            est = estimator(**params)
        else:
            from sklearn.base import clone

            est = clone(estimator).set_params(**params)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        num = [f for f in feats if is_numeric(column(rows, f))]
        cat = [f for f in feats if f not in num]
        prep = ColumnTransformer(
            [("num", StandardScaler(), num), ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat)]
        )
        return Pipeline([("prep", prep), ("model", est)]).fit(frame, y)

    # -- deciding --------------------------------------------------------------------------------

    def champion(self, name: str) -> str | None:
        """The deployed version of ``name``, or None."""
        try:
            return str(self.client.get_model_version_by_alias(name, CHAMPION).version)
        except Exception:
            return None

    def evaluate(self, name: str, version: str, rows: Rows, *, target: str) -> dict[str, float]:
        """The metrics of version ``version`` of ``name`` on ``rows``."""
        model, feats = self.load(name, version)
        return evaluate_model(model, rows, feats, target)

    def promote(
        self,
        name: str,
        version: str,
        holdout: Rows,
        *,
        target: str,
        metric: str = "roc_auc",
        min_gain: float = 0.0,
        apply: bool = True,
    ) -> dict[str, Any]:
        """Deploy ``version`` (alias ``champion``) only if it beats the champion on ``holdout`` by
        more than ``min_gain`` on ``metric`` (both scored on the same rows). Returns the decision
        with both figures. ``apply=False``: the decision only (``deploy`` applies it later)."""
        _check_metric(metric)
        current = self.champion(name)
        cand = self.evaluate(name, version, holdout, target=target)[metric]
        champ = None if current is None else self.evaluate(name, current, holdout, target=target)[metric]
        lower = metric in _LOWER_IS_BETTER
        better = champ is None or ((champ - cand) if lower else (cand - champ)) > min_gain
        if better and current != version and apply:
            self._set_champion(name, version)
        return {
            "model": name,
            "version": version,
            "deployed": bool(better),
            "metric": metric,
            "candidate": round(cand, 6),
            "champion": None if champ is None else round(champ, 6),
            "champion_version": current,
            "now_serving": version if better else current,
        }

    def deploy(self, name: str, version: str) -> None:
        """Make ``version`` the champion (after a person approved :meth:`promote`'s decision)."""
        if self.champion(name) != version:
            self._set_champion(name, self.resolve(name, version))

    def _set_champion(self, name: str, version: str) -> None:
        c = self.client
        history = self.history(name)
        c.set_registered_model_alias(name, CHAMPION, version)
        c.set_registered_model_tag(name, _HISTORY, json.dumps([*history, version][-50:]))

    def history(self, name: str) -> list[str]:
        """The versions that were champion, oldest first (the last is the current one)."""
        tags = self.client.get_registered_model(name).tags or {}
        return list(json.loads(tags.get(_HISTORY, "[]")))

    def rollback(self, name: str) -> dict[str, Any]:
        """Put the previous champion back."""
        history = self.history(name)
        if len(history) < 2:
            raise NonRetryableError(f"model {name!r} has no earlier champion to roll back to (champions: {history})")
        c = self.client
        c.set_registered_model_alias(name, CHAMPION, history[-2])
        c.set_registered_model_tag(name, _HISTORY, json.dumps(history[:-1]))
        return {"model": name, "rolled_back": history[-1], "now_serving": history[-2]}

    # -- scoring ---------------------------------------------------------------------------------

    def resolve(self, name: str, version: str | None = None) -> str:
        """A version number for ``version`` (a number, an alias, or None for the champion)."""
        ref = version or CHAMPION
        if str(ref).isdigit():
            return str(ref)
        try:
            return str(self.client.get_model_version_by_alias(name, ref).version)
        except Exception:
            raise NonRetryableError(
                f"model {name!r} has no version with alias {ref!r} in {self.uri}; train and promote one first"
            ) from None

    def servable(self, name: str, version: str) -> str:
        """The version number of ``version`` if a person let it serve under ``PODIUM_ML_APPROVE=always``
        (the champion, or a version that was champion before: a rollback's target), else a refusal."""
        v = self.resolve(name, version)
        allowed = [*self.history(name), *([c] if (c := self.champion(name)) else [])]
        if v not in allowed:
            raise NonRetryableError(
                f"version {v} of model {name!r} was never deployed, and with PODIUM_ML_APPROVE=always only a "
                f"version a person let serve may score (champions so far: {', '.join(dict.fromkeys(allowed)) or 'none'}): "
                "leave version out to score with the champion, or promote this version and have it approved"
            )
        return v

    def load(self, name: str, version: str) -> tuple[Any, list[str]]:
        """The model object of ``name`` at ``version`` and its features (cached: versions never change)."""
        key = (name, str(version))
        if key not in self._cache:
            mlflow = _mlflow()
            mv = self.client.get_model_version(name, str(version))
            path = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, tracking_uri=self.uri)
            meta = json.loads(Path(path, "podium.json").read_text())
            self._cache[key] = (_load_skops(Path(path, "model.skops"), name, str(version)), meta["features"])
        found: tuple[Any, list[str]] = self._cache[key]
        return found

    def score(self, name: str, rows: Rows, version: str | None = None) -> tuple[str, list[float]]:
        """Probabilities of the positive class for ``rows``, by the champion (or ``version``)."""
        v = self.resolve(name, version)
        model, feats = self.load(name, v)
        if not rows:
            return v, []
        missing = sorted(set(feats) - set(rows[0]))
        if missing:
            raise NonRetryableError(f"model {name!r} v{v} needs column(s) {', '.join(missing)}, which the rows lack")
        scores = [float(p) for p in _proba(model, _frame(rows, feats))]
        bad = [i for i, p in enumerate(scores) if not math.isfinite(p)]
        if bad:  # a limit on a score passes NaN whichever way it is written; drift leaves it out
            raise NonRetryableError(
                f"model {name!r} v{v} scored {len(bad)} of {len(rows)} row(s) {scores[bad[0]]} (row {bad[0]} first), "
                "not a number: its weights are NaN or infinite (the artifact in the registry), or a row's features "
                "overflow it; retrain the model, or put the previous champion back (a promote step with action: rollback, or Registry.rollback)"
            )
        return v, scores


# Models are stored with skops (no pickle) and loaded with Podium's own allow-list of the types they
# may hold, never the list written in the model's metadata (whoever wrote the model wrote that too).
# Beyond what skops trusts itself (estimators, arrays, NumPy ufuncs), a model may hold scikit-learn
# classes only: a function or method in a model is code its scoring calls (a FunctionTransformer's
# ``func``), and skops builds some objects by calling their class with the file's arguments
# (``numpy.memmap(PATH, mode="w+")`` creates or empties any file the engine may write).
# Not every scikit-learn class is model state: its callbacks open sockets when built from a file
# (``ScoringMonitor.__setstate__`` connects to the address it holds), ``sklearn.utils`` holds
# ``Parallel`` and wrappers that call what they are given, ``sklearn.datasets`` downloads, and its
# build scripts and test modules run code when imported. Those packages are refused, and a module
# is imported only as a public package of scikit-learn imports it: a model's classes are there
# (``sklearn.tree._tree`` once ``sklearn.tree`` is), and a file cannot have a module imported.
_NOT_MODEL_STATE = frozenset(
    ("_testing", "_mocking", "tests", "externals", "conftest", "_build_utils", "experimental", "callback", "utils", "datasets")
)


def _model_module(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "sklearn" and not any(p in _NOT_MODEL_STATE or p.startswith("__") for p in parts)


def _sklearn_class_named(name: str) -> bool:
    parts = name.split(".")
    if len(parts) < 3 or not _model_module(name):
        return False
    if not parts[1].startswith("_"):
        try:  # the public package, which imports the modules its classes are defined in
            importlib.import_module(f"sklearn.{parts[1]}")
        except ImportError:
            return False
    for cut in range(len(parts) - 1, 0, -1):  # the longest module imported, then its attributes
        found: Any = sys.modules.get(".".join(parts[:cut]))
        if found is None:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr, None)
        home = getattr(found, "__module__", "") or ""  # where it is defined, not where it was imported
        return isinstance(found, type) and _model_module(home)
    return False


def _untrusted(types: list[str], what: str) -> list[str]:
    bad = [t for t in types if not _sklearn_class_named(t)]
    if bad:
        raise NonRetryableError(
            f"{what} holds {', '.join(bad[:5])}, which Podium does not load: beyond scikit-learn's estimators and "
            "the classes of their fitted state, arrays and NumPy ufuncs, a model's functions, methods and other types "
            "(scikit-learn's callbacks, utils and datasets included) are code that runs when it is loaded or scores. Train a scikit-learn model (a pipeline of scikit-learn estimators; a "
            "FunctionTransformer only with a NumPy ufunc such as numpy.log1p)"
        )
    return types


def _trusted(model: Any, name: str) -> list[str]:
    import skops.io

    return _untrusted(skops.io.get_untrusted_types(data=skops.io.dumps(model)), f"the model trained for {name!r}")


def _load_skops(path: Path, name: str, version: str) -> Any:
    import skops.io

    if not path.exists():
        raise NonRetryableError(f"model {name!r} v{version} was not stored by Podium (no model.skops); retrain it")
    types = _untrusted(skops.io.get_untrusted_types(file=str(path)), f"model {name!r} v{version}")
    return _check_trees(skops.io.load(str(path), trusted=types), f"model {name!r} v{version}")


def _check_trees(model: Any, what: str) -> Any:
    """``model``, once each decision tree in it is sound: scikit-learn's Cython walks a tree's nodes
    unchecked, so a child index past the end crashes the engine's process when it scores and one
    pointing back loops forever. Each child must be a later node of its tree, each split a feature
    (of the tree, or of the histogram boosting model holding it) and each category set one it has."""
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.metrics import DistanceMetric
    from sklearn.neighbors._base import NeighborsBase
    from sklearn.tree._tree import Tree

    def sound(n: int, left: Any, right: Any, leaf: Any, feature: Any, features: int | None) -> bool:
        at = np.arange(n)
        left, right, feature = (np.asarray(a, dtype=np.int64) for a in (left, right, feature))
        split = (left > at) & (left < n) & (right > at) & (right < n) & (feature >= 0) & (feature < (features or 0))
        return n >= 1 and bool(np.all(leaf | split))

    seen: set[int] = set()
    todo: list[tuple[Any, int | None]] = [(model, None)]
    while todo:
        obj, features = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, NeighborsBase) and _search_tree(getattr(obj, "_tree", None)):
            # a KD-tree's or ball tree's arrays are read unchecked too: search the training data itself
            # (the same neighbours, exactly), the file's tree dropped
            vars(obj).update(_tree=None, _fit_method="brute")  # scikit-learn's own fields of the estimator
        if isinstance(obj, DistanceMetric) or _search_tree(obj):
            raise NonRetryableError(
                f"{what} holds a nearest-neighbour search tree or distance metric outside a neighbours model "
                f"({type(obj).__name__}), whose arrays scikit-learn reads unchecked; Podium does not load it: use a "
                "scikit-learn classifier or regressor (a k-nearest-neighbours model is fine)"
            )
        if isinstance(obj, Tree):
            ok = sound(obj.node_count, obj.children_left, obj.children_right, obj.children_left == -1, obj.feature, obj.n_features)
            ok = ok and bool(np.all(obj.children_right[obj.children_left == -1] == -1))
        elif isinstance(obj, TreePredictor):
            nodes = obj.nodes
            ok = sound(len(nodes), nodes["left"], nodes["right"], nodes["is_leaf"] != 0, nodes["feature_idx"], features)
            cats = (nodes["is_categorical"] != 0) & (nodes["is_leaf"] == 0)
            ok = ok and bool(np.all(nodes["bitset_idx"][cats] < len(obj.raw_left_cat_bitsets)))
        else:
            ok = True
            if isinstance(obj, dict):
                todo.extend((v, features) for v in obj.values())
            elif isinstance(obj, (list, tuple)) or (isinstance(obj, np.ndarray) and obj.dtype == object):
                todo.extend((v, features) for v in (obj.ravel() if isinstance(obj, np.ndarray) else obj))
            elif type(obj).__module__.startswith("sklearn.") and hasattr(obj, "__dict__"):
                inner = getattr(obj, "n_features_in_", features)  # what a boosting model's trees split on
                todo.extend((v, inner if isinstance(inner, int) else None) for v in vars(obj).values())
        if not ok:
            raise NonRetryableError(
                f"{what} holds a decision tree whose nodes point outside it, back up, or to a feature or category "
                "set it does not have; Podium does not load it (scikit-learn would read memory past the tree): "
                "retrain the model"
            )
    return model


def _search_tree(obj: Any) -> bool:
    """Whether ``obj`` is a scikit-learn KD-tree or ball tree (their 32- and 64-bit kinds)."""
    return any(c.__name__.startswith("BinaryTree") and c.__module__.startswith("sklearn.neighbors.") for c in type(obj).__mro__)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"metric {metric!r} is not one of {', '.join(METRICS)}")


def _sklearn_class(name: str) -> Any:
    # Only scikit-learn estimator classes of its public modules: a workflow file names this, and
    # scikit-learn also holds functions that run code (a Python script in a subprocess) or delete
    # folders, which would be called with the file's params.
    mod, _, cls = name.rpartition(".")
    fix = "name a scikit-learn estimator class of a public module, e.g. sklearn.ensemble.RandomForestClassifier"
    if not mod.startswith("sklearn.") or not cls or any(not p or p.startswith("_") for p in name.split(".")):
        raise ConfigError(f"estimator {name!r} is not a scikit-learn estimator class: {fix}")
    try:
        found = getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError):
        raise ConfigError(f"estimator {name!r} is not a scikit-learn estimator class (not found): {fix}") from None
    from sklearn.base import BaseEstimator

    if not isinstance(found, type) or not issubclass(found, BaseEstimator) or found is BaseEstimator:
        raise ConfigError(f"estimator {name!r} is not a scikit-learn estimator class: {fix}")
    from sklearn.base import ClassifierMixin, RegressorMixin

    if not issubclass(found, ClassifierMixin | RegressorMixin):  # a clusterer or transformer predicts nothing
        raise ConfigError(
            f"estimator {name!r} is not a classifier or a regressor, so it cannot predict the target: {fix}"
        )
    return found


def _frame(rows: Rows, feats: Sequence[str]) -> Any:
    import pandas as pd

    return pd.DataFrame([{f: r.get(f) for f in feats} for r in rows], columns=list(feats))


def _proba(model: Any, frame: Any) -> Any:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(frame)[:, 1]
    return model.predict(frame)


def _split(rows: Rows, target: str, share: float, seed: int) -> tuple[Rows, Rows]:
    import random

    if not 0 < share < 1:
        raise ConfigError(f"holdout share must be between 0 and 1, got {share}")
    rng = random.Random(seed)
    train, test = [], []
    by_label: dict[Any, Rows] = {}
    for r in rows:
        by_label.setdefault(r[target], []).append(r)
    for group in by_label.values():  # stratified: the holdout keeps the label balance
        g = list(group)
        rng.shuffle(g)
        k = max(1, round(len(g) * share))
        test += g[:k]
        train += g[k:]
    return train, test


def evaluate_model(model: Any, rows: Rows, feats: Sequence[str], target: str) -> dict[str, float]:
    """Classification metrics of ``model`` on ``rows``."""
    from sklearn import metrics as m

    y = [int(r[target]) for r in rows]
    p = _proba(model, _frame(rows, feats))
    pred = [int(x >= 0.5) for x in p]
    out = {"accuracy": m.accuracy_score(y, pred), "f1": m.f1_score(y, pred, zero_division=0), "brier": m.brier_score_loss(y, p)}
    if len(set(y)) > 1:
        out["roc_auc"] = m.roc_auc_score(y, p)
        out["log_loss"] = m.log_loss(y, p, labels=[0, 1])
    return {k: round(float(v), 6) for k, v in out.items()}


_registries: dict[str, Registry] = {}


def approval_rule() -> str:
    """The operator's rule for deployments: ``never`` (the holdout decides; the default) or
    ``always`` (a person approves each deployment and rollback, and only what a person let serve
    scores). A workflow file cannot change it."""
    rule = os.environ.get("PODIUM_ML_APPROVE", "never").strip().lower() or "never"
    if rule not in ("never", "always"):
        raise ConfigError(f"PODIUM_ML_APPROVE={rule!r}: use never (the holdout decides) or always (a person approves)")
    return rule


def registry_for(uri: str | None = None) -> Registry:
    """One :class:`Registry` per URI in this process (models stay loaded between steps)."""
    key = uri or default_uri()
    if key not in _registries:
        _registries[key] = Registry(key)
    return _registries[key]


