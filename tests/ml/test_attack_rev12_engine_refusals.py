"""Twelfth-session review of the refusal deduplication (governance/refusals.py) for the engine's own
refusals: a record edited behind the engine's back is audited as ``access.denied`` with the run and
step that read it. Those made each read a new kind of refusal, so one tampered drift reference read
by enough runs (anyone who can start the workflow) filled the cap of kinds held for the engine, and
the engine's report of a second, different record edited in the store was only counted into
``more_refusals``, its target in no entry. A kind is the actor, target and what was refused, not
where it was noticed. Fails on the code before the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

from store_attacker import sql

from podium import Client, Workflow
from podium.ml import Drift, Gate, save_reference
from podium.ml._drift import summarize

CAP = 5
KNOWN = [{"x": float(i % 10)} for i in range(200)]
DRIFTED = [{"x": float(50 + i % 10)} for i in range(200)]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.setenv("PODIUM_AUDIT_REFUSAL_KEYS", str(CAP))


def _gated(name: str, reference: str) -> Workflow:
    wf = Workflow(name)

    @wf.step(gate=Gate(name="quality", rows="rows", report="quality", rules=[Drift(reference=reference, columns=["x"], on="warn")]))
    def batch(input: Any) -> Any:
        return {"rows": input}

    return wf


async def test_attack_runs_reading_one_tampered_record_do_not_hide_another_one(url: str) -> None:
    async with Client(url) as c:
        await c.governance.refresh()
        await save_reference(c.store, "noise", KNOWN)
        await save_reference(c.store, "payments", KNOWN)
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_references' AND key = 'noise'", json.dumps(summarize(DRIFTED, ["x"])))
    async with Client(url) as c:
        for _ in range(CAP + 15):  # the noise: one tampered reference, read by many runs
            await c.run(_gated("noisy", "noise"), KNOWN[:50])
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_references' AND key = 'payments'", json.dumps(summarize(DRIFTED, ["x"])))
        await c.run(_gated("payments", "payments"), KNOWN[:50])
        denied = [e for e in await c.audit_log(limit=10_000) if e.action == "access.denied"]
        assert [e.target for e in denied if e.target == "reference:payments"], [e.target for e in denied]
        assert sum(e.target == "reference:noise" for e in denied) == 1  # the noise: one entry, counted
    async with Client(url) as c:
        denied = [e.details() for e in await c.audit_log(limit=10_000) if e.action == "access.denied" and e.target == "reference:noise"]
        assert [d.get("repeated") for d in denied] == [None, CAP + 14]
