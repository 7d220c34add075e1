"""A model in the MLflow registry is data, written by whoever may write there (a data scientist's
MLflow account, the artifact store): loading or scoring it must not run code or touch files.

Attack (sixth review): the allow-list took any type named under ``sklearn.``, ``numpy.`` or
``scipy.``. A FunctionTransformer's ``func`` is such a type, and scoring calls it: a chain of NumPy
functions turned the rows into a string and ``numpy.testing``'s ``runstring`` executed it in the
engine. And skops builds some objects by calling their class with the file's arguments: a
``numpy.memmap(PATH, mode="w+")`` node emptied a file of the engine's at load time."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("skops", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client
from podium.ml import Registry

PREDICT = (
    "name: scoring\nsteps:\n  - id: score\n    uses: predict\n    with:\n      model: churn\n"
    '      rows: [{"customer_id": "c1", "x": 1.0}]\n'
)


def _fitted() -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(np.array([[0.0], [1.0], [0.0], [1.0]]), [0, 1, 0, 1])


def _publish(registry: Registry, data: bytes) -> None:
    """What someone with write access to the MLflow registry does: a version of ``churn`` made champion."""
    c = registry.client
    run = c.create_run(registry._experiment())
    with tempfile.TemporaryDirectory() as d:
        Path(d, "model.skops").write_bytes(data)
        Path(d, "podium.json").write_text(json.dumps({"features": ["x"], "target": "y"}))
        c.log_artifacts(run.info.run_id, d, "model")
    if not c.search_registered_models("name='churn'"):
        c.create_registered_model("churn")
    mv = c.create_model_version("churn", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    c.set_registered_model_alias("churn", "champion", mv.version)


async def _score(tmp_path: Path) -> Any:
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        h = await c.start(pyaml.load_text(PREDICT), {})
        return await c.wait(h.id, timeout=300)


def _score_in_a_process(tmp_path: Path) -> tuple[str, str | None]:
    """Run the scoring workflow in a process of its own (a model that crashes the engine takes only
    that process with it): the run's (status, error), after asserting the process lived."""
    import subprocess
    import sys

    script = (
        "import asyncio, json, podium.yaml as pyaml\nfrom podium import Client\n"
        "async def main():\n"
        f"    async with Client('sqlite:///{tmp_path}/podium.db') as c:\n"
        f"        h = await c.start(pyaml.load_text({PREDICT!r}), {{}})\n"
        "        rec = await c.wait(h.id, timeout=300)\n"
        "        print(json.dumps([rec.status.value, rec.error]))\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_MLFLOW_URI"} | {"PODIUM_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the engine's process died (exit {proc.returncode}): {proc.stderr[-500:]}"
    status, error = json.loads(proc.stdout.strip().splitlines()[-1])
    return status, error


async def test_attack_a_models_function_runs_code_when_it_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import skops.io as sio
    from numpy.testing._private.utils import runstring
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    evil = Pipeline([
        ("text", FunctionTransformer(np.full_like, kw_args={"fill_value": code, "dtype": "U200"})),
        ("first", FunctionTransformer(np.take, kw_args={"indices": 0})),
        ("run", FunctionTransformer(runstring, kw_args={"dict": {}})),
        ("model", _fitted()),
    ])
    _publish(Registry(), sio.dumps(evil))
    rec = await _score(tmp_path)
    assert not marker.exists(), "scoring with the registry's model ran its code"
    assert rec.status.value == "failed"
    assert "numpy.full_like" in (rec.error or "") and "Podium does not load" in (rec.error or "")
    assert json.loads(rec.error or "{}")["message"].startswith("model 'churn' v1 holds numpy.full_like")


async def test_attack_loading_a_model_empties_a_file_of_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    victim = tmp_path / "precious.db"
    victim.write_bytes(b"the engine's data")

    def schema_of(obj: Any) -> tuple[Any, zipfile.ZipFile]:
        z = zipfile.ZipFile(io.BytesIO(sio.dumps(obj)))
        return json.loads(z.read("schema.json")), z

    args, _ = schema_of((str(victim), "uint8", "w+", 0, (4,)))  # numpy.memmap(PATH, 'uint8', 'w+', 0, (4,))
    schema, z = schema_of(Pipeline([("model", _fitted())]))
    schema["content"]["content"]["memory"] = {
        "__class__": "memmap", "__module__": "numpy", "__loader__": "ConstructorFromReduceNode", "content": args,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as w:
        for n in z.namelist():
            w.writestr(n, json.dumps(schema) if n == "schema.json" else z.read(n))
    _publish(Registry(), out.getvalue())
    rec = await _score(tmp_path)
    assert victim.read_bytes() == b"the engine's data", "loading the registry's model wrote a file"
    assert rec.status.value == "failed" and "numpy.memmap" in (rec.error or "")


def test_podiums_own_models_still_load(tmp_path: Path) -> None:
    """Estimators whose fitted state holds scikit-learn's own classes (trees, kernels, optimizers)."""
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    rows = [{"x": float(i % 7), "c": "ab"[i % 2], "y": (i // 3) % 2} for i in range(60)]
    for est in ("sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.ensemble.RandomForestClassifier",
                "sklearn.neighbors.KNeighborsClassifier", "sklearn.neural_network.MLPClassifier",
                "sklearn.gaussian_process.GaussianProcessClassifier"):
        out = reg.train(est.rpartition(".")[2].lower(), rows, target="y", estimator=est)
        assert len(reg.score(out["model"], rows[:3], out["version"])[1]) == 3
    assert os.path.exists(tmp_path / "mlflow.db")


def _with_node(model: Any, attr: str, node: dict[str, Any]) -> bytes:
    """``model`` (a Pipeline) as skops bytes, its attribute ``attr`` replaced by the schema ``node``."""
    import skops.io as sio

    z = zipfile.ZipFile(io.BytesIO(sio.dumps(model)))
    schema = json.loads(z.read("schema.json"))
    schema["content"]["content"][attr] = node
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as w:
        for n in z.namelist():
            w.writestr(n, json.dumps(schema) if n == "schema.json" else z.read(n))
    return out.getvalue()


def _node_of(obj: Any, offset: int) -> Any:
    """The skops schema of ``obj`` (JSON data only), its object ids moved out of the model's way."""
    import skops.io as sio

    def moved(n: Any) -> Any:
        if isinstance(n, dict):
            return {k: (v + offset if k == "__id__" else moved(v)) for k, v in n.items()}
        return [moved(v) for v in n] if isinstance(n, list) else n

    return moved(json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(obj))).read("schema.json")))


async def test_attack_loading_a_model_connects_wherever_the_file_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seventh review: "scikit-learn classes only" took every class defined under ``sklearn.``. Its
    callback ``ScoringMonitor`` opens a connection when it is built from a file (``__setstate__``
    checks whether the listener it names, any host and port, still answers): loading the model made
    the engine connect where the model's writer said (an internal service, a port scan), or, the
    address not answering, open a socket listener with a thread of its own in the engine."""
    import socket
    import threading

    from sklearn.pipeline import Pipeline

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    port = server.getsockname()[1]
    called: list[Any] = []
    threading.Thread(target=lambda: called.append(server.accept()), daemon=True).start()
    state = _node_of({"_log": [], "_listener_handle": 0}, 10**15)
    state["content"]["_listener_handle"] = {  # sklearn.callback._transport.ListenerHandle(("127.0.0.1", PORT), None)
        "__class__": "ListenerHandle", "__module__": "sklearn.callback._transport",
        "__loader__": "ConstructorFromReduceNode", "content": _node_of((("127.0.0.1", port), None), 2 * 10**15),
    }
    monitor = {"__class__": "ScoringMonitor", "__module__": "sklearn.callback._scoring_monitor", "__loader__": "ObjectNode", "content": state}
    _publish(Registry(), _with_node(Pipeline([("model", _fitted())]), "memory", monitor))
    rec = await _score(tmp_path)
    server.close()
    assert not called, "loading the registry's model connected to the address the model named"
    assert rec.status.value == "failed" and "sklearn.callback" in (rec.error or "")


async def test_checking_a_model_imports_no_module_its_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seventh review: to check a type the model names, the allow-list imported the module the file
    named, any under ``sklearn.``: ``sklearn._build_utils.version`` (a build script) reads a file and
    prints when imported, and ``sklearn.conftest`` imports pytest. What only a file names is not
    imported: a model's classes are in the modules scikit-learn's public packages import."""
    import sys

    from sklearn.pipeline import Pipeline

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    if "sklearn._build_utils.version" in sys.modules:
        pytest.skip("this process imported scikit-learn's build script already")
    node = {"__class__": "Version", "__module__": "sklearn._build_utils.version", "__loader__": "ObjectNode"}
    _publish(Registry(), _with_node(Pipeline([("model", _fitted())]), "memory", node))
    rec = await _score(tmp_path)
    assert "sklearn._build_utils.version" not in sys.modules, "checking the model imported the module it named"
    assert rec.status.value == "failed" and "sklearn._build_utils.version.Version" in (rec.error or "")


def test_attack_a_tree_pointing_outside_itself_crashes_the_engine(tmp_path: Path) -> None:
    """Seventh review: a decision tree is data skops trusts (``sklearn.tree._tree.Tree``), and
    scikit-learn's Cython walks its nodes without bounds checks. A model whose root's children
    point past the last node crashed the engine's process (segmentation fault) at its first
    ``uses: predict``: every run it drove stopped with it. Trees are checked at load: every child
    is a later node of the same tree (no index outside it, no loop), every split a feature it has."""

    import numpy as np
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(random_state=0).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 1, 0, 1])
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = nodes["right_child"][0] = 10**8
    model.tree_.__setstate__({**state, "nodes": nodes})
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    _publish(reg, sio.dumps(Pipeline([("model", model)])))
    status, error = _score_in_a_process(tmp_path)
    assert status == "failed" and "tree" in error and "node" in error, error


def test_attack_a_boosted_tree_pointing_outside_itself_crashes_the_engine(tmp_path: Path) -> None:
    """The same with histogram gradient boosting (its ``TreePredictor`` nodes, read unchecked)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from podium.ml._registry import _check_trees

    x, y = np.arange(40.0).reshape(-1, 1), (np.arange(40) // 3) % 2
    model = HistGradientBoostingClassifier(max_iter=2).fit(x, y)
    assert _check_trees(model, "m") is model
    nodes = model._predictors[0][0].nodes
    for field, value in (("left", 10**8), ("left", 0), ("feature_idx", 5)):
        before = nodes[field][0]
        nodes[field][0] = value
        with pytest.raises(Exception, match="decision tree whose nodes point outside it"):
            _check_trees(model, "m")
        nodes[field][0] = before
    assert len(model.predict(x[:3])) == 3


def test_attack_a_neighbours_search_tree_pointing_outside_its_data_crashes_the_engine(tmp_path: Path) -> None:
    """Sixth session (a review's suspicion, confirmed): a k-nearest-neighbours model built with a
    KD-tree (or ball tree) holds the tree's arrays, which scikit-learn's Cython reads unchecked; a
    model file whose tree indexes point past its data crashed the engine's process (segmentation
    fault) at ``uses: predict``. Now a loaded neighbours model searches its training data directly
    (``brute``: the same neighbours, exactly), the file's tree dropped; a search tree anywhere else
    in a model is refused."""

    import numpy as np
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    model = KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree").fit(np.arange(8.0).reshape(-1, 1), [0, 1] * 4)
    state = list(model._tree.__getstate__())
    state[1] = np.full_like(np.asarray(state[1]), 10**9)  # idx_array: every point far past the data
    model._tree.__setstate__(tuple(state))
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    _publish(reg, sio.dumps(Pipeline([("model", model)])))
    status, error = _score_in_a_process(tmp_path)
    assert status == "completed", error


def test_a_search_tree_outside_a_neighbours_model_is_refused() -> None:
    import numpy as np
    from sklearn.neighbors import KDTree, KernelDensity, KNeighborsClassifier

    from podium.ml._registry import _check_trees

    x = np.arange(8.0).reshape(-1, 1)
    knn = KNeighborsClassifier(n_neighbors=3, algorithm="ball_tree").fit(x, [0, 1] * 4)
    before = knn.predict(x)
    assert _check_trees(knn, "m") is knn and knn._tree is None and knn._fit_method == "brute"
    assert list(knn.predict(x)) == list(before)
    for held in (KernelDensity().fit(x), {"index": KDTree(x)}):
        with pytest.raises(Exception, match="search tree"):
            _check_trees(held, "m")
