"""The tenth attacker review (2026-12-07): a model's owners changed in the store.

Which workflows may train, promote and roll back a model is a row of the store's key-value table
(``model_owners``). The attacker can write the database but does not hold the audit key: adding
their team's workflow to the row, or deleting the row so that it claims the model first, let it
replace the champion every workflow scores with. Each test failed on the code before its fix
(docs/status.md, "Rows still taken as written, sealed (tenth session)")."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

from store_attacker import sql

from podium import Client, RunFailed
from podium.ml import Registry
from podium.ml._owners import owners, set_owners

from .test_model_owners import GOOD, HOLDOUT, WRONG, _flow


@pytest.mark.parametrize("how", ["added", "deleted"])
async def test_attack_a_models_owners_changed_in_the_store_do_not_let_another_team_retrain_it(
    url: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Model ``churn`` is team A's. The attacker adds ``team-b`` to its row (or deletes the row):
    team B's workflow then trained ``churn`` on labels turned the wrong way round and promoted it."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    flipped = [{**r, "y": 1 - r["y"]} for r in HOLDOUT]
    async with Client(url) as c:
        assert (await c.run(_flow("team-a", GOOD, HOLDOUT), {}))["deployed"]
    if how == "added":
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'model_owners' AND key = 'churn'", json.dumps(["team-a", "team-b"]))
    else:
        sql(url, "DELETE FROM kv WHERE ns = 'model_owners' AND key = 'churn'")
    async with Client(url) as c:
        with pytest.raises(RunFailed, match="belongs to workflow\\(s\\) 'team-a'"):
            await c.run(_flow("team-b", WRONG, flipped), {})
        assert len(reg.client.search_model_versions("name='churn'")) == 1  # nothing trained for team B
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "owners:model:churn"]
        assert denied and "record not backed by the audit log" in (denied[0].data or "")
        _, problem = await c.verify_audit()
        assert problem is not None and "owners of model 'churn'" in problem, problem
        assert await set_owners(c, "churn", add=["team-c"], remove=[]) == ["team-a", "team-c"]  # not the row's team-b
        assert await owners(c.store, "churn") == ["team-a", "team-c"]
        assert (await c.verify_audit())[1] is None


async def test_attack_owners_written_for_a_model_nobody_owned_are_not_taken(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacker writes an owners row for a model no workflow owns yet, naming their team: the
    row was taken, and the rightful team's first training was refused."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)
    async with Client(url) as c:
        await c.governance.refresh()
    sql(url, "INSERT INTO kv (ns, key, value, updated_at) VALUES ('model_owners', 'churn', ?, ?)", json.dumps(["team-b"]), time.time())
    async with Client(url) as c:
        with pytest.raises(RunFailed, match="not what a signed entry of the audit log set") as failed:
            await c.run(_flow("team-b", WRONG, HOLDOUT), {})
        assert "podium ml owners churn --add WORKFLOW" in str(failed.value)
        assert await set_owners(c, "churn", add=["team-a"], remove=[]) == ["team-a"]  # an admin says whose it is
        out: Any = await c.run(_flow("team-a", GOOD, HOLDOUT), {})
        assert out["deployed"]
