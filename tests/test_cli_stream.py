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
