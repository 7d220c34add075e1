"""A run recorded as running whose engine is gone shows as such (not as plain "running")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

from click.testing import CliRunner

from podium import RunStatus
from podium.cli import cli
from podium.engine.worker import HOST, PID_NS, new_owner, orphan_reason
from podium.records import RunRecord
from podium.storage import open_store


def _dead_owner() -> str:
    proc = subprocess.Popen(["true"])
    proc.wait()  # its pid no longer exists (reuse within the test is vanishingly unlikely)
    return f"{HOST}:{proc.pid}:{PID_NS}:deadbeef"


def _run(owner: str, lease: float | None, status: RunStatus = RunStatus.RUNNING) -> RunRecord:
    now = time.time()
    return RunRecord(id=f"r{abs(hash((owner, lease))) % 10**9}", workflow="w", version="1", status=status,
                     created_at=now, started_at=now, owner=owner, lease_expires_at=lease)  # fmt: skip


def test_orphan_reason_tells_a_dead_owner_an_expired_lease_and_a_live_run_apart() -> None:
    later = time.time() + 60
    assert orphan_reason(_run(_dead_owner(), later)) == "owner died"
    assert orphan_reason(_run("otherhost:1:ns:ab", time.time() - 1)) == "lease expired"
    assert orphan_reason(_run(new_owner(), later)) is None  # this process: alive
    assert orphan_reason(_run(_dead_owner(), later, RunStatus.WAITING)) is None  # parked runs have no owner


def test_podium_runs_marks_a_run_whose_engine_died(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/p.db"

    async def record() -> None:
        store = open_store(db)
        await store.open()
        try:
            await store.create_run(_run(_dead_owner(), time.time() + 600))
        finally:
            await store.close()

    asyncio.run(record())
    listed = CliRunner().invoke(cli, ["runs", "--json", "--db", db])
    assert listed.exit_code == 0, listed.output
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["status"] == "running" and row["orphaned"] == "owner died"
    table = CliRunner().invoke(cli, ["runs", "--db", db])
    assert "owner died" in table.stdout and "podium runs resume" in table.stdout
