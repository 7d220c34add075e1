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


def _big_doc(path: Path, paragraphs: int) -> None:
    path.write_text("# Big\n\n" + "\n\n".join(f"Paragraph {i} about the topic number {i}, " * 8 for i in range(paragraphs)))


def test_a_large_file_reports_its_chunks_as_they_are_embedded_and_its_vectors_are_the_same(tmp_path: Path) -> None:
    """One large file was most of an ingest's time (113 s for status.md) with no progress inside it:
    its chunks are now embedded in batches, each told to ``chunk_progress``; the batches give the
    same passages as one call."""
    import asyncio

    from podium.knowledge import KnowledgeBase
    from podium.knowledge._kb import EMBED_BATCH
    from podium.memory import Memory

    _big_doc(tmp_path / "big.md", 200)
    seen: list[tuple[int, int, str]] = []

    async def ingest(db: str, told: bool) -> list[tuple[str, str]]:
        async with Memory(f"sqlite:///{db}", embedder="hash:64") as mem:
            kb = KnowledgeBase(mem, "hb", chunk_size=120, overlap=0)
            r = await kb.ingest([str(tmp_path / "big.md")], chunk_progress=(lambda *a: seen.append(a)) if told else None)
            assert r.chunks_embedded > 2 * EMBED_BATCH, r
            return [(p.id, f"{p.score:.5f}") for p in await kb.search("topic number 17", k=5, hybrid=False)]

    batched = asyncio.run(ingest(str(tmp_path / "a.db"), True))
    whole = asyncio.run(ingest(str(tmp_path / "b.db"), False))
    assert batched == whole
    total = seen[-1][1]
    assert seen[0][:2] == (0, total) and seen[-1][:2] == (total, total)
    assert [d for d, _, _ in seen[1:-1]] == list(range(EMBED_BATCH, total, EMBED_BATCH))
    assert {s for _, _, s in seen} == {str(tmp_path / "big.md")}


def test_kb_ingest_into_a_log_says_how_many_chunks_of_a_large_file_are_embedded(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from podium.cli import _kb, cli

    (tmp_path / "docs").mkdir()
    _big_doc(tmp_path / "docs" / "big.md", 200)
    monkeypatch.setattr(_kb, "LOG_EVERY", 0.0)  # every chance to say it, not only every two seconds
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    monkeypatch.setenv("PODIUM_DB", f"sqlite:///{tmp_path}/kb.db")
    monkeypatch.setenv("PODIUM_EMBEDDER", "hash:64")
    done = CliRunner().invoke(cli, ["kb", "ingest", "docs", "--kb", "hb", "--chunk-size", "120", "--overlap", "0"])
    assert done.exit_code == 0, done.output
    out = done.stderr if hasattr(done, "stderr") else done.output
    assert "ingesting file 1/1: docs/big.md, 64/" in out.replace(os.sep, "/"), out
