"""Real crashes: a `podium run` process is killed with SIGKILL at several points, then
`podium resume` (a new process) finishes the run. Every step's side effects are checked: a step whose
result was committed is never executed again; the step in flight is attempted again with the same
idempotency key."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

APP = Path(__file__).parent / "crashapp"
EXPECTED = {"d": 15 + 150, "e": 3}
ALL_KEYS = {"a", "b", "d", "f", "e", "e#1", "e#2"} | {f"c[{i}]" for i in range(5)}

pytestmark = pytest.mark.slow


def _podium(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=APP,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def _committed(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT step, iteration, idx FROM events WHERE type='step_completed'").fetchall()
    conn.close()
    out = set()
    for step, it, idx in rows:
        key = step if not it else f"{step}#{it}"
        out.add(key if idx is None else f"{key}[{idx}]")
    return out


@pytest.mark.parametrize("block", ["a", "c[2]", "d@2", "e#1", "f"])
def test_kill_9_then_resume(tmp_path: Path, block: str) -> None:
    db = tmp_path / "podium.db"
    log = tmp_path / "effects.log"
    marker = tmp_path / "hang"
    marker.touch()
    spec = {"log": str(log), "block": block, "marker": str(marker)}
    url = f"sqlite:///{db}"
    proc = _podium("run", "crash_workflows:wf", "--input", json.dumps(spec), "--db", url)
    deadline = time.monotonic() + 60
    while not any(p[0] == "start" and block in (p[1], p[4]) for p in _lines(log)):
        if proc.poll() is not None:
            pytest.fail(f"run ended before reaching {block}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"never reached {block}"
        time.sleep(0.02)
    time.sleep(0.05)  # let anything else in flight get going too
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed_before = _committed(db)
    block_key = block.split("@")[0]
    assert block_key not in committed_before
    marker.unlink()

    resumed = _podium("resume", "--db", url)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "completed" in out

    conn = sqlite3.connect(db)
    status, output = conn.execute("SELECT status, output FROM runs").fetchone()
    conn.close()
    assert status == "completed"
    assert json.loads(output) == EXPECTED

    lines = _lines(log)
    starts = Counter(p[1] for p in lines if p[0] == "start")
    ends = Counter(p[1] for p in lines if p[0] == "end")
    assert set(ends) == ALL_KEYS
    for key in committed_before:
        # committed before the crash: never executed again
        first_run_attempts = 2 if key == "d" else 1
        assert starts[key] == first_run_attempts, f"{key} ran again after resume: {lines}"
    # the step that was in flight ran again, with the same idempotency key
    keys = {p[3] for p in lines if p[0] == "start" and p[1] == block_key}
    assert starts[block_key] >= 2 and len(keys) == 1
    if block == "d@2":
        # attempt 1 failed and was recorded; attempt 2 was in flight and is attempted again
        assert [p[2] for p in lines if p[0] == "start" and p[1] == "d"] == ["1", "2", "2"]
    assert _committed(db) == ALL_KEYS
