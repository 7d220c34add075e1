"""Drift references edited in the store (helper seal10b, tenth session).

A drift reference (``ml_references``) is the summary of known-good data that a gate's ``drift`` rule
and the monitor compare new data with; ``ml_reference_owners`` says which model's training may
replace it. The attacker writes the database but does not hold the audit key: replacing the
reference with a summary of drifted data made the drifted batch pass team A's gate, and deleting
both rows let team B's training save the reference again as its own. Each test failed on the code
before its fix (docs/status.md, "Drift references, fire times and learned contracts, sealed").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

from store_attacker import sql

from podium import Client, RunFailed, Workflow
from podium.ml import Drift, Gate, save_reference
from podium.ml._drift import summarize

from .test_reference_owners import DRIFTED, KNOWN, _train


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)


def _gated() -> Workflow:
    """A batch step whose gate reports (``warn``, so the run ends; ``halt`` and ``escalate`` park it
    for a person on the same failing rule)."""
    wf = Workflow("score-batch")

    @wf.step(gate=Gate(name="quality", rows="rows", report="quality", rules=[Drift(reference="churn-train", columns=["x"], on="warn")]))
    def batch(input: Any) -> Any:
        return {"rows": input}

    return wf


async def _judged(c: Client, rows: list[dict[str, Any]]) -> dict[str, Any]:
    report: dict[str, Any] = (await c.run(_gated(), rows))["quality"]
    return report


async def test_attack_a_drift_reference_edited_in_the_store_does_not_let_drifted_data_pass(url: str) -> None:
    async with Client(url) as c:
        await c.run(_train("team-a", "churn", "churn-train", KNOWN), {})
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_references' AND key = 'churn-train'", json.dumps(summarize(DRIFTED, ["x"])))
    async with Client(url) as c:
        report = await _judged(c, DRIFTED)
        assert not report["passed"], "the edited reference let the drifted data through"
        detail = report["details"]["drift:churn-train"]
        assert "drift reference 'churn-train'" in detail and "not the one" in detail and "save it again" in detail, detail
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "reference:churn-train"]
        assert denied and "record not backed by the audit log" in (denied[0].data or "")
        _, problem = await c.verify_audit()
        assert problem is not None and "drift reference 'churn-train'" in problem, problem
        # the model's own training saves it again: in force, and the gate judges by it
        await c.run(_train("team-a", "churn", "churn-train", KNOWN), {})
        report = await _judged(c, DRIFTED)
        assert not report["passed"] and "drift in x" in report["details"]["drift:churn-train"]
        assert (await _judged(c, KNOWN[:100]))["passed"]


async def test_attack_a_reference_saved_in_python_and_edited_is_refused(url: str) -> None:
    async with Client(url) as c:
        await c.governance.refresh()
        await save_reference(c.store, "churn-train", KNOWN)
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_references' AND key = 'churn-train'", json.dumps(summarize(DRIFTED, ["x"])))
    async with Client(url) as c:
        report = await _judged(c, DRIFTED)
        assert not report["passed"] and "not the one" in report["details"]["drift:churn-train"]


@pytest.mark.parametrize("how", ["deleted", "owner changed"])
async def test_attack_a_references_owner_changed_in_the_store_does_not_let_another_model_replace_it(url: str, how: str) -> None:
    async with Client(url) as c:
        await c.run(_train("team-a", "churn", "churn-train", KNOWN), {})
    if how == "deleted":
        sql(url, "DELETE FROM kv WHERE ns IN ('ml_references', 'ml_reference_owners') AND key = 'churn-train'")
    else:
        sql(url, "UPDATE kv SET value = 'other' WHERE ns = 'ml_reference_owners' AND key = 'churn-train'")
    async with Client(url) as c:
        with pytest.raises(RunFailed, match="belongs to model 'churn'"):
            await c.run(_train("team-b", "other", "churn-train", DRIFTED), {})
        assert not (await _judged(c, DRIFTED))["passed"]  # deleted: not stored; kept: the drifted data fails


async def test_a_migrated_store_keeps_its_drift_references_in_force(tmp_path: Path) -> None:
    """``podium db migrate-to`` copies references but not the log: it signs each one the source's
    log backs into the target (with its owner), and leaves out one edited in the source."""
    import os
    import subprocess
    import sys

    source, target = f"sqlite:///{tmp_path}/s.db", f"sqlite:///{tmp_path}/t.db"
    async with Client(source) as c:
        await c.run(_train("team-a", "churn", "churn-train", KNOWN), {})
        await save_reference(c.store, "edited", KNOWN)
    sql(source, "UPDATE kv SET value = ? WHERE ns = 'ml_references' AND key = 'edited'", json.dumps(summarize(DRIFTED, ["x"])))
    moved = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", target],
        env={**os.environ, "PODIUM_DB": source}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert "drift reference 'edited'" in moved.stdout + moved.stderr
    async with Client(target) as c:
        report = await _judged(c, DRIFTED)
        assert not report["passed"] and "drift in x" in report["details"]["drift:churn-train"]
        with pytest.raises(RunFailed, match="belongs to model 'churn'"):
            await c.run(_train("team-b", "other", "churn-train", DRIFTED), {})
        problem = (await c.verify_audit())[1] or ""  # the copied runs have no entries there (docs/operations.md)
        assert "drift reference" not in problem and "owner of drift reference" not in problem, problem
