"""The set-up scripts fail loudly: a failed install stops them with pip's reason, never silently."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; . scripts/_python.sh; {script}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )  # fmt: skip


def test_a_failed_install_stops_the_script_with_the_reason() -> None:
    done = _bash("pip_install --no-index --find-links /nonexistent podium-no-such-package-xyz; echo AFTER")
    assert done.returncode != 0
    assert "AFTER" not in done.stdout
    assert "error: pip install" in done.stderr and "failed" in done.stderr
    assert "No matching distribution" in done.stdout + done.stderr  # pip's own reason is shown


def test_a_python_that_is_too_old_or_missing_is_named() -> None:
    missing = _bash("echo AFTER", PYTHON="python-does-not-exist")
    assert missing.returncode == 2 and "not found" in missing.stderr and "AFTER" not in missing.stdout


def test_a_successful_step_reports_its_time() -> None:
    ok = _bash("pip_install --no-deps --no-index --find-links /nonexistent 'pip>=1' && echo AFTER")
    assert ok.returncode == 0, ok.stderr
    assert "done in" in ok.stdout and "AFTER" in ok.stdout
