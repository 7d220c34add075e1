"""Outcomes and predictions edited in the store (helper seal11, eleventh session).

The monitor measures a model version's ROC AUC from the predictions it made (``ml_predictions``)
and the outcomes fed back (``ml_outcomes``), and asks for retraining when it falls below
``min_auc``. The attacker writes the database but does not hold the audit key: flipping the labels
the model got wrong, deleting those outcomes, or raising the scores it gave them, made a poor
model look perfect, and the monitor stopped asking for retraining. Each test failed on the code
before its fix (docs/status.md, "ML outcomes, quarantines and file drop marks, sealed").
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

from store_attacker import sql

from podium import Client, Workflow
from podium.ml import Registry, monitor, performance, predict, record_outcome

ROWS = [{"customer_id": f"C{i}", "x": float(i % 20)} for i in range(40)]
WRONG = {f"C{i}" for i in range(40) if i % 4 == 0}  # the outcomes the model gets wrong: 10 of 40


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    reg = Registry(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")
    rows = [{"x": float(i % 20), "y": int(i % 20 >= 10)} for i in range(200)]
    v = reg.train("churn", rows, target="y")["version"]
    reg.promote("churn", v, rows, target="y")
    return reg


def _workflows(registry: Registry) -> tuple[Workflow, Workflow]:
    score, watch = Workflow("score"), Workflow("watch")

    @score.step
    async def scored(ctx: Any, input: Any) -> Any:
        return await predict(ctx, "churn", input, registry=registry)

    @watch.step
    async def check(ctx: Any, input: Any) -> Any:
        return await monitor(ctx, "churn", [], input["version"], min_auc=0.9)

    return score, watch


async def _scored(c: Client, registry: Registry) -> str:
    score, _ = _workflows(registry)
    out = await c.run(score, ROWS)
    for o in out:
        truth = int(float(o["id"][1:]) % 20 >= 10)
        await record_outcome(c.store, "churn", o["id"], 1 - truth if o["id"] in WRONG else truth)
    return str(out[0]["version"])


def _flip(url: str) -> None:
    for cid in WRONG:  # the label the model predicted, so that it looks right
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_outcomes' AND key = ?",
            json.dumps({"outcome": int(int(cid[1:]) % 20 >= 10), "at": 1.0}), f"churn:{cid}")  # fmt: skip


def _delete(url: str) -> None:
    for cid in WRONG:
        sql(url, "DELETE FROM kv WHERE ns = 'ml_outcomes' AND key = ?", f"churn:{cid}")


def _delete_with_count(url: str) -> None:
    _delete(url)
    sql(url, "DELETE FROM kv WHERE ns = 'sealed_tallies' AND key = 'outcomes:churn'")


def _delete_everything(url: str) -> None:
    for ns in ("ml_outcomes", "ml_predictions"):
        sql(url, "DELETE FROM kv WHERE ns = ? AND key LIKE ?", ns, "churn:%")
    sql(url, "DELETE FROM kv WHERE ns = 'sealed_tallies'")


@pytest.mark.parametrize(
    "attack", [_flip, _delete, _delete_with_count, _delete_everything],
    ids=["flipped", "deleted", "deleted with their count", "everything deleted"],
)  # fmt: skip
async def test_attack_outcomes_edited_in_the_store_do_not_silence_retraining(url: str, registry: Registry, attack: Any) -> None:
    async with Client(url) as c:
        version = await _scored(c, registry)
        _, watch = _workflows(registry)
        before = await c.run(watch, {"version": version})
        assert before["retrain"] == 1 and before["roc_auc"] < 0.9, before
    attack(url)
    async with Client(url) as c:
        after = await c.run(watch, {"version": version})
        assert after["retrain"] == 1, f"the outcomes changed in the store silenced retraining: {after}"
        assert any("outcomes" in r and "churn" in r for r in after["reasons"]), after["reasons"]
        assert all("flatter" in r or "not measured" in r for r in after["reasons"]), after["reasons"]
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "outcomes:model:churn"]
        assert len(denied) == 1, denied  # once per check, not once per row
        _, problem = await c.verify_audit()
        assert problem is not None and "outcome" in problem and "churn" in problem, problem


async def test_attack_a_prediction_edited_in_the_store_is_not_measured(url: str, registry: Registry) -> None:
    async with Client(url) as c:
        version = await _scored(c, registry)
        before = (await performance(c.store, "churn"))[version]
    # the scores of the wrong ones turned round, so that the model looks right about them
    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        [(key, raw)] = db.execute("SELECT key, value FROM kv WHERE ns = 'ml_predictions'").fetchall()
        db.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            [(key, raw)] = conn.execute("SELECT key, value FROM kv WHERE ns = 'ml_predictions'").fetchall()
    entry = json.loads(raw)
    entry["scores"] = [1 - s if i in WRONG else s for i, s in zip(entry["ids"], entry["scores"], strict=True)]
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_predictions' AND key = ?", json.dumps(entry), key)
    async with Client(url) as c:
        _, watch = _workflows(registry)
        after = await c.run(watch, {"version": version})
        assert after["retrain"] == 1 and any("prediction" in r for r in after["reasons"]), after
        assert (await performance(c.store, "churn")).get(version, {}).get("roc_auc") != 1.0
        assert before["roc_auc"] < 0.9


async def test_outcomes_recorded_again_stay_counted_once(url: str, registry: Registry) -> None:
    async with Client(url) as c:
        version = await _scored(c, registry)
        await record_outcome(c.store, "churn", "C1", 0)  # recorded again: replaces, not a 41st
        _, watch = _workflows(registry)
        out = await c.run(watch, {"version": version})
        assert not any("outcomes" in r for r in out["reasons"]), out["reasons"]
        assert (await performance(c.store, "churn"))[version]["n"] == 40.0
        assert not [e for e in await c.audit_log() if e.action == "access.denied"]
        _, problem = await c.verify_audit()
        assert problem is None, problem


async def test_rows_of_an_earlier_release_are_measured_once_an_admin_seals_them(url: str, registry: Registry) -> None:
    from click.testing import CliRunner

    from podium.cli import cli

    async with Client(url) as c:
        version = await _scored(c, registry)
        before = (await performance(c.store, "churn"))[version]
    for ns in ("ml_outcomes", "ml_predictions"):  # as an earlier release kept them: plain JSON, no count
        if url.startswith("sqlite"):
            import sqlite3

            db = sqlite3.connect(url.removeprefix("sqlite:///"))
            rows = db.execute("SELECT key, value FROM kv WHERE ns = ?", (ns,)).fetchall()
            db.close()
        else:
            import psycopg

            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT key, value FROM kv WHERE ns = %s", (ns,)).fetchall()
        for key, raw in rows:
            entry = {k: v for k, v in json.loads(raw).items() if k != "$seal"}
            sql(url, "UPDATE kv SET value = ? WHERE ns = ? AND key = ?", json.dumps(entry), ns, key)
    sql(url, "DELETE FROM kv WHERE ns = 'sealed_tallies'")
    async with Client(url) as c:
        assert (await performance(c.store, "churn")).get(version) is None  # nothing sealed: nothing measured
    out = await asyncio.to_thread(CliRunner().invoke, cli, ["ml", "seal", "churn"], env={"PODIUM_DB": url})
    assert out.exit_code == 0 and "sealed 40 outcome(s) and 1 prediction row(s)" in out.output, out.output
    async with Client(url) as c:
        assert (await performance(c.store, "churn"))[version] == before
        assert [e for e in await c.audit_log() if e.action == "ml.seal" and e.target == "model:churn"]
        _, problem = await c.verify_audit()
        assert problem is None, problem


async def test_a_count_deleted_then_rebuilt_by_the_next_outcome_still_says_so(url: str, registry: Registry) -> None:
    async with Client(url) as c:
        version = await _scored(c, registry)
    _delete_with_count(url)
    async with Client(url) as c:
        await record_outcome(c.store, "churn", "C99", 1)  # a new one: the count is rebuilt from the rows there
        _, watch = _workflows(registry)
        after = await c.run(watch, {"version": version})
        assert after["retrain"] == 1 and any("rebuilt" in r and "podium ml seal churn" in r for r in after["reasons"]), after
        _, problem = await c.verify_audit()
        assert problem is not None and "rebuilt" in problem, problem
