"""The third unseen-data round (docs/status.md, seventh session): ml_pipeline and churn on the round's
own churn data (``data/third/make_churn.py``). ml_pipeline flagged a batch of 30 customers like the
training data as drift and started a retraining (PSI over a few rows is noise), and scored impossible
tickets or last-login values; churn read its outcomes file in its last step, so a mistake there failed
the run after the customers were treated."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="these scenarios need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="these scenarios need the ml extra: pip install 'podium[ml]'")

from podium import Client, RunFailed

sys.path.insert(0, str(Path(__file__).parent / "data" / "third"))
from export import write

pytestmark = pytest.mark.timeout(900)


def _churn_sets(tmp_path: Path) -> dict[str, str]:
    import make_churn

    rng = random.Random(11)
    made = {"train": [make_churn.person(rng, i) for i in range(2000)],
            "holdout": [make_churn.person(rng, 10_000 + i) for i in range(600)],
            "calm": [make_churn.person(rng, 20_000 + i) for i in range(30)],
            "shifted": [make_churn.person(rng, 30_000 + i, shift=True) for i in range(40)]}
    columns = [*make_churn.COLUMNS, "churned"]
    out = {}
    for seed, (name, rows) in enumerate(made.items()):
        out[name] = str(write(tmp_path / f"{name}.csv", rows, columns if name in ("train", "holdout") else
                              make_churn.COLUMNS, seed=seed))
    impossible = [{**make_churn.person(rng, 40_000 + i), "support_tickets_90d": 99_999 if i == 0 else 1,
                   "last_login_days": -4 if i == 1 else 3} for i in range(25)]
    out["impossible"] = str(write(tmp_path / "impossible.csv", impossible, make_churn.COLUMNS, seed=9))
    return out


async def test_ml_pipeline_judges_a_small_batch_by_what_it_can_tell(tmp_path, monkeypatch):
    """30 customers like the training data: not drift (before: drift in three features, score PSI 0.9,
    retraining flagged). 40 of the shifted population: drift, by the KS test. 25 customers, two with
    impossible tickets or last login: those two quarantined, not scored."""
    from examples.scenarios import ml_pipeline

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    files = _churn_sets(tmp_path)
    base = {"train": files["train"], "holdout": files["holdout"], "registry": f"sqlite:///{tmp_path}/mlflow.db"}
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        calm = await c.run(ml_pipeline.workflow, {**base, "batch": files["calm"]})
        shifted = await c.run(ml_pipeline.workflow, {**base, "batch": files["shifted"]})
        odd = await c.run(ml_pipeline.workflow, {**base, "batch": files["impossible"]})
    assert calm["drifted"] is False and calm["retraining"]["flagged"] is False, calm["drift"]
    assert calm["drift"]["checked"].startswith("KS per feature only (30 rows")
    assert shifted["drifted"] is True and shifted["retraining"]["flagged"] is True, shifted["drift"]
    assert odd["quarantined"]["batch"] == 2 and odd["batch_rows"] == 23, odd["quarantined"]
    assert odd["drift"]["checked"].startswith("KS per feature only")


def test_the_drift_rule_leaves_psi_out_on_a_few_rows_and_tells_nothing_on_fewer():
    from podium.ml import Drift
    from podium.ml._drift import summarize

    rng = random.Random(0)
    ref = summarize([{"x": rng.gauss(0, 1)} for _ in range(2000)], ["x"])
    few = [{"x": rng.gauss(0, 1)} for _ in range(30)]
    ok, detail, _, _ = Drift(reference="r", columns=["x"], on="warn", psi_rows=200).check(few, {"r": ref})
    assert ok and "KS only: 30 row(s), under 200" in detail
    moved = [{"x": rng.gauss(1.5, 1)} for _ in range(30)]
    assert not Drift(reference="r", columns=["x"], on="warn", psi_rows=200).check(moved, {"r": ref})[0]
    ok, detail, _, _ = Drift(reference="r", columns=["x"], on="warn", min_rows=50).check(moved, {"r": ref})
    assert ok and detail == "not checked: 30 row(s), under 50"


async def test_churn_checks_the_outcomes_file_before_anything_is_done(tmp_path, monkeypatch):
    """Before: read in the last step, an outcome written ``maybe`` failed the run after the model was
    trained and the customers treated."""
    from examples.scenarios import churn

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    files = _churn_sets(tmp_path)
    later = tmp_path / "later.csv"
    later.write_text("customer_id,churned\nŁódź-1,1\nZoë-2,maybe\n", encoding="utf-8")
    inp = {"train": files["train"], "customers": files["calm"], "outcomes": str(later), "review_timeout": 1,
           "approve_offer_above": 10_000, "registry": f"sqlite:///{tmp_path}/mlflow.db"}  # nobody to wait for
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        with pytest.raises(RunFailed, match=r"later.csv:3: column 2 \(churned\) is 'maybe'") as failed:
            await c.run(churn.workflow, inp)
        steps = {v.step for v in (await c.history(failed.value.run_id)).steps}
    assert "data" in steps and not steps & {"train", "score", "retain"}, steps
