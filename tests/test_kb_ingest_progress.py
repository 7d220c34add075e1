"""``podium kb ingest DIR`` says how far it is: a bar on a terminal, and where stderr is a log (CI, a
pipe) a line naming the file and ``done/total`` every few seconds. It printed nothing until the end
(2 min 48 s for 18 files on a busy machine) when its stderr was not a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_kb_ingest_into_a_log_says_which_file_of_how_many(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"d{i}.md").write_text(f"# Doc {i}\n\nSome text about topic {i}.\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_DB": f"sqlite:///{tmp_path}/kb.db", "PODIUM_EMBEDDER": "hash:64"}
    env.pop("PODIUM_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "podium.cli", "kb", "ingest", "docs", "--kb", "hb"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ingesting file 1/3: docs/d0.md" in done.stderr.replace(os.sep, "/"), done.stderr
    assert "hb: 3 added" in done.stdout and "ingesting" not in done.stdout  # the result stays on stdout alone
