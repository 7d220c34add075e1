"""Shared by the start log's tests (tests/test_start_bursts*.py): a workflow importable by its
``workflow_ref`` (so another process can resume its runs), and a start log as an engine that
stopped leaves it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import podium
from podium import Workflow
from podium.records import EventType, RunRecord, RunStatus
from podium.storage._startlog import StartLog

FLOW = '''
from podium import Workflow

wf = Workflow("burstflow", version="1")


@wf.step
async def double(input: dict) -> int:
    return input["n"] * 2
'''


@pytest.fixture(name="flow")
def flow_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workflow:
    """``burstflow:wf``, written to ``tmp_path`` and importable from there."""
    (tmp_path / "burstflow.py").write_text(FLOW)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("burstflow", None)
    import burstflow  # type: ignore[import-not-found]

    wf: Workflow = burstflow.wf
    return wf


def env_with(tmp_path: Path) -> dict[str, str]:
    """This process's environment, with ``tmp_path`` (where ``burstflow`` is) on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def starts_folder(db: Path) -> Path:
    return Path(f"{os.path.realpath(db)}-starts")


def dead_run(rid: str, flow_name: str = "burstflow") -> RunRecord:
    """A run as an engine (``gone:1``) started it, its lease long run out."""
    return RunRecord(
        id=rid, workflow=flow_name, version="1", status=RunStatus.RUNNING, input='{"n": 3}', created_at=1.0,
        owner="gone:1", lease_expires_at=2.0, workflow_ref="burstflow:wf",
    )  # fmt: skip


def dead_log(db: Path, store: podium.storage.Store, runs: list[RunRecord], *, owner: str = "gone:1") -> Path:
    """A start log as an engine that stopped leaves it (its lock released), signed with ``store``'s key."""
    log = StartLog(str(starts_folder(db)), owner, store.audit_keys)
    for run in runs:
        first = podium.records.Event(run_id=run.id, seq=1, type=EventType.RUN_STARTED, ts=run.created_at, data="{}")
        anchor = podium.records.AuditEntry(ts=run.created_at, actor="local", action="run.start", target=run.id, data="{}")
        log.add(run, first, anchor)
    cut = log.cut()
    assert cut is not None
    log.release(cut)
    return Path(cut[1])


def burst_script(n: int, then: str) -> str:
    """A process (``python -c SCRIPT DB``) whose engine commits one run, then starts ``n`` runs of
    ``burstflow`` in one burst (``handles``), then runs ``then`` (lines indented 8 spaces, inside
    the client's block; ``os``, ``signal``, ``time`` imported)."""
    return (
        "import asyncio, os, signal, sys, time\nfrom podium import Client\nimport burstflow\n\n\n"
        "async def main():\n    async with Client(sys.argv[1]) as c:\n"
        '        await c.run(burstflow.wf, {"n": -1})\n        await asyncio.sleep(0)\n'
        f'        handles = [await c.start(burstflow.wf, {{"n": i}}) for i in range({n})]\n'
        f"{then}\n\nasyncio.run(main())\n"
    )
