"""`podium run` prints a model's answer as it is generated: on a terminal by default, with --stream
anywhere, never with --no-stream; the model's control characters never reach the terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from test_cli import podium

FLOW = '''
import asyncio
import podium
from podium import StepContext, ai
from podium.models import Model, Response, Usage


class Slow(Model):
    provider, name = "slow", "words"

    async def complete(self, request):
        raise AssertionError("streamed")

    async def stream(self, request, sink):
        words = ["Your ", "parcel ", "\\x1b]0;pwned\\x07ships ", "\\x1b[31mMonday."]
        for w in words:
            await sink.text(w)
            await asyncio.sleep(0.08)
        return Response(text="".join(words), model=self.spec, usage=Usage(output_tokens=4))


wf = podium.Workflow("streamed")


@wf.step
async def reply(ctx: StepContext, input):
    return (await ai.llm(ctx, "When?", model=Slow())).text
'''


def _flow(tmp_path: Path) -> str:
    (tmp_path / "streamflow.py").write_text(FLOW)
    return f"{tmp_path}/streamflow.py:wf"


def test_stream_flag_prints_the_text_as_it_comes_without_escapes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    out = podium("run", _flow(tmp_path), "--stream", "--db", db).stdout
    assert "▸ reply/llm: Your parcel ]0;pwnedships [31mMonday." in out
    assert "\x1b]0;" not in out and "\x1b[31m" not in out
    quiet = podium("run", _flow(tmp_path), "--stream", "--quiet", "--db", db)
    assert quiet.stdout.strip().startswith('"Your parcel') and "▸ reply/llm" in quiet.stderr


def test_no_stream_when_piped_or_turned_off(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    assert "▸" not in podium("run", _flow(tmp_path), "--db", db).stdout  # stdout is a pipe here
    assert "▸" not in podium("run", _flow(tmp_path), "--no-stream", "--db", db).stdout


def test_a_terminal_gets_the_stream_by_default(tmp_path: Path) -> None:
    main, sub = pty.openpty()
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-c", "from podium.cli import main; main()", "run", _flow(tmp_path)]
    cmd += ["--db", f"sqlite:///{tmp_path}/t.db"]
    root = Path(__file__).parent.parent
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sub, stderr=sub, env=env, cwd=root)
    os.close(sub)
    seen = b""
    deadline = time.monotonic() + 120
    while proc.poll() is None or seen.count(b"completed") == 0:
        assert time.monotonic() < deadline, seen.decode(errors="replace")
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(30)
    os.close(main)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "reply/llm: Your parcel ]0;pwnedships" in text and "\x1b]0;" not in text


CRASHING = '''
import asyncio, os
from pathlib import Path
import podium
from podium import StepContext, ai
from podium.models import Model, Response, Usage

HERE = Path(__file__).parent
WORDS = ["The ", "parcel ", "left ", "the ", "warehouse ", "today."]


class Halting(Model):
    """Streams WORDS; while the file 'hang' exists, stops for good after two of them."""

    provider, name = "halting", "words"

    async def complete(self, request):
        raise AssertionError("streamed")

    async def stream(self, request, sink):
        for i, word in enumerate(WORDS):
            with open(HERE / "pieces.log", "a") as f:
                f.write(f"{os.getpid()} {i}\\n")
            await sink.text(word)
            if i == 1 and (HERE / "hang").exists():
                await asyncio.sleep(3600)  # the test kills the process here, mid-answer
            await asyncio.sleep(0.05)
        return Response(text="".join(WORDS), model=self.spec, usage=Usage(output_tokens=len(WORDS)))


wf = podium.Workflow("crashing")


@wf.step
async def write(ctx: StepContext, input):
    return (await ai.llm(ctx, "Where is my parcel?", model=Halting())).text
'''


def test_a_crash_mid_stream_resumes_with_the_whole_answer_logged_once(tmp_path: Path) -> None:
    import signal
    import sqlite3

    (tmp_path / "crashing.py").write_text(CRASHING)
    (tmp_path / "hang").touch()
    pieces = tmp_path / "pieces.log"
    db = f"sqlite:///{tmp_path}/c.db"
    root = Path(__file__).parent.parent
    cmd = [sys.executable, "-c", "from podium.cli import main; main()"]
    first = subprocess.Popen([*cmd, "run", f"{tmp_path}/crashing.py:wf", "--stream", "--db", db],
                             cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (pieces.exists() and len(pieces.read_text().splitlines()) >= 2):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    out, _ = first.communicate()
    assert "▸ write/llm: The parcel " in out and "warehouse" not in out  # the text so far, live
    (tmp_path / "hang").unlink()

    second = podium("resume", "--stream", "--db", db, cwd=root)
    # the cut call ran again and streamed again from its start, in the new process
    assert "write/llm: The parcel left the warehouse today." in second.stdout
    starts = [line.split() for line in pieces.read_text().splitlines()]
    assert [i for pid, i in starts if pid == str(first.pid)] == ["0", "1"]
    assert [i for pid, i in starts if pid != str(first.pid)] == [str(i) for i in range(6)]
    conn = sqlite3.connect(tmp_path / "c.db")
    logged = conn.execute(
        "SELECT count(*) FROM events WHERE step = 'write/llm' AND type = 'step_completed'"
    ).fetchone()[0]
    status, output = conn.execute("SELECT status, output FROM runs").fetchone()
    conn.close()
    assert logged == 1 and status == "completed" and "The parcel left the warehouse today." in output
