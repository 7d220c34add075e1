"""A workflow's Python module with a syntax error, or one raising while imported, ends ``podium run``,
``podium serve -w`` and ``podium mcp -w`` with one message naming the file and line, exit 2, and no
traceback (it was a Python traceback with exit 1). Run as subprocesses: what a user sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
        "PODIUM_DB": f"sqlite:///{tmp_path}/imp.db",
    }
    env.pop("PODIUM_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "podium.cli", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "badsyntax.py").write_text("import podium\n\n\ndef f(:\n    pass\n")
    (tmp_path / "raising.py").write_text('import podium\nx = 1\nraise RuntimeError("no config here")\n')
    (tmp_path / "importer.py").write_text("import podium\nimport raising  # noqa\n")
    return tmp_path


@pytest.mark.parametrize(
    "args, where, says",
    [
        (["run", "badsyntax.py:wf"], "badsyntax.py:4", "syntax error"),
        (["run", "badsyntax:wf"], "badsyntax.py:4", "syntax error"),
        (["run", "raising.py:wf"], "raising.py:3", "RuntimeError: no config here"),
        (["run", "importer:wf"], "raising.py:3", "RuntimeError: no config here"),
        (["serve", "--port", "0", "-w", "badsyntax.py:wf"], "badsyntax.py:4", "syntax error"),
        (["serve", "--port", "0", "-w", "raising.py:wf"], "raising.py:3", "RuntimeError"),
        (["mcp", "-w", "badsyntax.py:wf"], "badsyntax.py:4", "syntax error"),
        (["mcp", "-w", "raising:wf"], "raising.py:3", "RuntimeError"),
    ],
)
def test_a_module_that_fails_to_import_is_one_message_with_its_line(
    files: Path, args: list[str], where: str, says: str
) -> None:
    done = _cli(files, *args)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out, out
    assert where in out and says in out, out
    assert "fix" in out, out
