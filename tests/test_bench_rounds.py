"""bench/rounds.py: bench/run.py in fresh processes, interleaved with a git revision in a temporary
worktree that is removed afterwards. Structure and invariants only, never speed (the machine may be
busy)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--rounds", "2", "--against", "HEAD", "--only", "chain", "--repeats", "1", "--json"]


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def _skip_reason() -> str | None:
    if shutil.which("git") is None:
        return "git is not installed"
    if _git("rev-parse", "--verify", "HEAD").returncode != 0:
        return f"{ROOT} is not a git repository with a commit"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_rounds_against_head_report_both_sides_and_remove_the_worktree(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/rounds.py", *ARGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # the worktree goes here, to look for it after
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    head = _git("rev-parse", "--short", "HEAD").stdout.strip()

    figures = {(x["figure"], x["side"]): x for x in lines}
    assert len(figures) == len(lines)  # one line per figure and side
    by_side = {side: {f for f, s in figures if s == side} for side in ("now", "base")}
    assert by_side["now"] == by_side["base"] and {"seconds", "per_step_us"} <= by_side["now"], by_side
    for x in lines:
        assert set(x) == {"workload", "figure", "side", "median", "min", "max", "rounds", "rev"}, x
        assert x["workload"] == "chain" and x["figure"] != "n", x  # a count is not a figure
        assert x["rounds"] == 2, x
        assert x["min"] <= x["median"] <= x["max"], x
        assert x["rev"] == head or (x["side"] == "now" and x["rev"] == f"{head}-dirty"), x

    # each side imported its own tree's podium, and said so (on stderr, with --json)
    said = {line.split(":")[0]: line for line in done.stderr.splitlines()}
    assert said["now"].endswith(f"podium from {ROOT / 'podium' / '__init__.py'}"), said
    assert said["base"].startswith(f"base: {tmp_path}"), said
    assert said["base"].endswith("/tree/podium/__init__.py"), said
    assert "round 1/2" in said and "round 2/2" in said
    assert (
        sum(line.startswith("machine: ") and "load average" in line for line in done.stderr.splitlines()) == 2
    )

    # the temporary worktree is gone, from git's list and from the disk
    listed = _git("worktree", "list", "--porcelain").stdout
    assert str(tmp_path) not in listed and str(tmp_path.resolve()) not in listed
    assert list(tmp_path.iterdir()) == []
