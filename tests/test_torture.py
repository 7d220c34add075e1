"""Several worker processes share one store while they are killed with SIGKILL at random and
restarted: every run completes, no finished step runs again, no step runs on two workers at once.
A smaller count than the documented full run: python bench/torture.py --runs 1000."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

pytestmark = pytest.mark.slow


async def test_workers_killed_at_random(store_url, monkeypatch):
    if store_url.startswith("memory"):
        pytest.skip("worker processes need a store they can share: SQLite or PostgreSQL")
    import torture

    monkeypatch.setenv("PODIUM_TORTURE_SLEEP", "0.2")
    monkeypatch.setattr(torture, "CONCURRENCY", 10)
    result = await torture.torture(store_url, runs=60, workers=3, kill_every=0.3, lease=5.0, timeout=180)
    assert result["finished_steps_redone"] == 0, result
    assert result["concurrent_executions"] == 0, result
    assert result["kills"] > 0 and result["steps"] == 60 * 4, result
    assert os.environ["PODIUM_TORTURE_SLEEP"] == "0.2"
