"""The ML loop in workflow files: ``gate:`` on any step (with file:line errors for a bad one) and the
kinds read_csv, train, promote (deploy if better, rollback) and predict, run end to end on embedded
defaults (SQLite store, SQLite MLflow) in examples/churn/churn.yaml."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client, RunFailed
from podium.ml import Registry

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "churn" / "data"
CHURN = ROOT / "examples" / "churn" / "churn.yaml"


async def test_the_yaml_churn_loop_trains_gates_retrains_deploys_if_better_and_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    wf = pyaml.load_file(CHURN)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        await c.add_capability("churn-data", "files", {"root": str(DATA)})
        handle = await c.start(wf, {})
        out = await c.result(handle.id, timeout=600)
        assert out["deployed"]["deployed"] and out["deployed"]["version"] == "1"
        assert out["quality"]["passed"] and not out["drift"]["passed"] and out["drift"]["failed"] == ["drift:churn-train"]
        again = out["redeployed"]  # deploy only if better, on the new population's holdout
        assert again["version"] == "2" and again["deployed"] == (again["candidate"] > again["champion"])
        reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
        assert reg.champion("churn") == again["now_serving"] == out["version"]
        h = await c.history(handle.id)
        scores = h.step("score").output
        assert scores["count"] == 300 and {s["version"] for s in scores["scores"]} == {out["version"]}
        assert out["high"] and all(s["score"] >= 0.7 for s in out["high"])
        assert "score_psi" in scores["monitor"]
        gate = h.step("batch_drift/gate:batch_drift").output  # the gate's report is a durable sub-step
        assert gate["rows"] == 1500 and gate["failed"] == ["drift:churn-train"]
        actions = [a.action for a in await c.audit_log() if a.target == handle.id]
        assert {"gate.check", "model.train", "model.promote", "model.predict"} <= set(actions)

        # Roll back through a workflow file: the previous champion serves again.
        back = pyaml.load_text("name: back\nsteps:\n  - id: r\n    uses: promote\n    with: {model: churn, action: rollback}\n")
        from podium.ml._owners import set_owners

        await set_owners(c, "churn", add=["back"], remove=[])  # the model is churn-yaml's: let 'back' change it
        if again["deployed"]:
            assert (await c.run(back, {}))["now_serving"] == "1"
            assert reg.champion("churn") == "1"


async def test_a_yaml_gate_quarantines_bad_rows_and_halts_on_a_changed_export(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    text = """
name: gated
steps:
  - id: batch
    uses: read_csv
    with: {csv: "{{ input }}", root: data}
    gate:
      rows: rows
      report: quality
      rules:
        - rule: schema
          columns: {customer_id: str, tenure_months: int, monthly_charges: number, support_tickets_90d: int,
                    last_login_days: int, plan: str, churned: "int?"}
        - {rule: range, column: tenure_months, min: 0, max: 24, on: quarantine}
"""
    wf = pyaml.load_text(text)
    async with Client(f"sqlite:///{tmp_path}/podium.db", poll_interval=0.05) as c:
        await c.add_capability("data", "files", {"root": str(DATA)})
        out = await c.run(wf, "holdout.csv")
        assert out["quality"]["quarantined"] > 0
        assert all(r["tenure_months"] <= 24 for r in out["rows"])
        from podium.ml import quarantined

        [entry] = await quarantined(c.store, workflow="gated")
        assert len(entry["rows"]) == out["quality"]["quarantined"] and entry["step"] == "batch"

        handle = await c.start(wf, "batch_schema.csv")  # monthly_charges is missing: a person decides
        for _ in range(6000):  # a condition, not a race: the gate parks the run in the inbox
            if await c.approvals(run_id=handle.id) or (await c.get(handle.id)).status.value in ("failed", "completed"):
                break
            await asyncio.sleep(0.05)
        [req] = await c.approvals(run_id=handle.id)
        assert "missing column(s) monthly_charges" in req["title"]
        await c.decide(handle.id, req["name"], approve=False, comment="fix the export")
        with pytest.raises(RunFailed, match="rejected the data: fix the export"):
            await c.result(handle.id, timeout=120)


BAD_GATES = [
    ("gate: {rules: [{rule: rnage, column: a}]}", 6, "gate rule 'rnage' is not one of schema"),
    ("gate:\n      - {rule: range, column: a}\n      - {rule: nulls, colum: a}", 8, "unknown field(s) colum"),
    ("gate: [{rule: row_count, min: 5, on: quarantine}]", 6, "on='quarantine' sets bad rows aside"),
    ("gate: [{rule: range, column: a, on: panic}]", 6, "on='panic' is not one of halt, quarantine"),
    ("gate: {rules: [{rule: range, column: a}], nope: 1}", 6, "unknown field(s) nope"),
    ("gate: {rules: [{rule: range, column: a}], timeout: soon}", 6, "'gate.timeout' must be a duration"),
    ("gate: yes", 6, "'gate' must be a list of rules or a mapping with 'rules'"),
    ("gate: [a]", 6, "gate rule 1 must be a mapping"),
    ("executor: [ray]", 6, "'executor' must be the name of an executor like ray"),
    ("executor: rya", 6, "executor 'rya' is not known (known: ray"),
    ("gate: [{rule: drift, reference: r, psi: lots}]", 6, "psi is 'lots'; give a PSI above 0"),
    ("gate: [{rule: drift, reference: r, ks_alpha: 5}]", 6, "ks_alpha is 5; give a p-value above 0 and at most 1"),
    ("gate: [{rule: drift, reference: r, min_rows: -3}]", 6, "min_rows is -3; give a whole number of rows"),
]


@pytest.mark.parametrize(("field", "line", "message"), BAD_GATES, ids=[m for _, _, m in BAD_GATES])
def test_a_bad_gate_is_reported_at_its_file_and_line(tmp_path, field, line, message):
    path = tmp_path / "flow.yaml"
    path.write_text(f"name: bad\nsteps:\n  - id: load\n    uses: set\n    with: {{a: 1}}\n    {field}\n")
    problems = pyaml.validate_file(path)
    found = [p for p in problems if message in p.message]
    assert found, [str(p) for p in problems]
    assert found[0].line == line and found[0].step == "load" and str(found[0]).startswith(f"{path}:{line}:")


def test_the_ml_kinds_are_registered_with_schemas():
    problems = pyaml.validate_text(
        "name: k\nsteps:\n  - id: t\n    uses: train\n    with: {model: m, estimatr: x}\n"
        "  - id: p\n    uses: predict\n    with: {rows: []}\n"
    )
    text = " ".join(str(p) for p in problems)
    assert "estimatr" in text and "target" in text and "model" in text


async def test_a_workflow_file_reads_no_csv_outside_a_registered_folder(tmp_path, monkeypatch):
    """Attack: the file (or a template in it) points a kind at a file it was not given."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    secret = tmp_path / "secret.csv"
    secret.write_text("customer_id,password\nC1,hunter2\n")
    # Written in the file: refused when checked against the registry, with file and line.
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        await c.add_capability("data", "files", {"root": str(DATA)})
        text = f"name: steal\nsteps:\n  - id: r\n    uses: read_csv\n    with: {{csv: {json.dumps(str(secret))}}}\n"
        [problem] = pyaml.validate_text(text, capabilities=await c.capabilities())
        assert problem.line == 5 and "not inside a registered folder" in problem.message
        with pytest.raises(RunFailed, match="outside any registered folder"):  # loaded without the check
            await c.run(pyaml.load_text(text), {})
        # Computed at run time (an input with '..'): refused when the step runs.
        wf = pyaml.load_text(
            "name: steal2\nsteps:\n  - id: r\n    uses: read_csv\n    with: {csv: '{{ input }}', root: data}\n"
        )
        with pytest.raises(RunFailed, match="outside the registered folder"):
            await c.run(wf, "../../../" + str(secret.relative_to("/")))

