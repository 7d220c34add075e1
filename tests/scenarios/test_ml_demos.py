"""``podium demo churn``, ``podium demo ml_pipeline`` and ``podium run`` of the churn scenario, as a
person runs them: unattended, on embedded defaults, with the MLflow registry in the project folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the scenarios need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the scenarios need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("uvicorn", reason="the sandbox company needs the demo extra: pip install 'podium[demo]'")

from click.testing import CliRunner

from podium.cli import cli

from .conftest import needs_local

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PODIUM_HOME", "PODIUM_MLFLOW_URI", "PODIUM_SANDBOX_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PODIUM_AUDIT_KEY", str(tmp_path / "audit.key"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@needs_local
def test_podium_demo_ml_pipeline(project: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "ml_pipeline", "--decide", "approve", "--db", f"sqlite:///{project}/d.db"])
    out = result.output
    assert result.exit_code == 0, out
    assert out.count("completed run") == 2 and '"deployed": true' in out and '"deployed": false' in out
    assert '"drifted": false' in out and '"drifted": true' in out
    assert (project / ".podium" / "mlflow.db").exists()  # the registry lives in the project folder


@needs_local
def test_podium_demo_churn(project: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "churn", "--decide", "approve", "--db", f"sqlite:///{project}/d.db"])
    out = result.output
    assert result.exit_code == 0, out
    assert "completed run" in out and "approval requested" in out
    for op in ("createTask", "createTicket", "addToCampaign"):  # what the sandbox systems received
        assert op in out
    assert '"recorded": 40' in out and '"actions_per_high_risk": 3.0' in out


def test_podium_run_reaches_the_sandbox_by_itself(project: Path) -> None:
    """No connectors registered: the scenario starts the sandbox company in .podium/sandbox."""
    inp = {"review_margin": 0, "approve_offer_above": 1e9, "max_customers": 2}
    from podium.sandbox import shared, use

    try:
        result = CliRunner().invoke(cli, ["run", f"{ROOT}/examples/scenarios/churn.py:workflow", "--input",
                                          json.dumps(inp), "--db", f"sqlite:///{project}/r.db"])
    finally:  # the process's shared sandbox (started by the run) stops with the test
        shared().stop()
        use(None)
    assert result.exit_code == 0, result.output
    assert (project / ".podium" / "sandbox" / "company.db").exists()
    with sqlite3.connect(project / ".podium" / "sandbox" / "company.db") as con:
        ops = [r[0] for r in con.execute("SELECT operation FROM received ORDER BY id")]
    assert ops == ["createTask", "createTicket", "addToCampaign"] * 2
