"""``podium serve`` runs on httptools and uvloop when they are installed (the server extra) and on
h11 and asyncio when they are not; both answer events the same."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HIDE = "import sys; sys.modules['httptools'] = sys.modules['uvloop'] = None; "
FAST = bool(find_spec("httptools") and find_spec("uvloop"))


def _serve_and_post(tmp_path: Path, prelude: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [sys.executable, "-c", prelude + "from podium.cli import main; main()", "serve", "--db",
         f"sqlite:///{tmp_path}/podium.db", "--port", str(port), "--log-level", "warning",
         "-w", "tests.server.flows:tickets"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "podium serve did not get ready"
                time.sleep(0.05)
            event = {"type": "ticket.created", "idempotency_key": "k1", "payload": {"id": 1, "subject": "x"}}
            r = http.post("/api/events", json={"events": [event, event]})
            assert r.status_code == 202 and [e["new"] for e in r.json()["events"]] == [True, False], r.text
        return banner
    finally:
        proc.terminate()
        proc.wait(20)


def test_without_httptools_and_uvloop_it_runs_on_h11_and_asyncio(tmp_path: Path) -> None:
    assert "h11, asyncio" in _serve_and_post(tmp_path, HIDE)


@pytest.mark.skipif(not FAST, reason="httptools and uvloop are not installed (pip install 'podium[server]')")
def test_with_httptools_and_uvloop_it_uses_them(tmp_path: Path) -> None:
    assert "httptools, uvloop" in _serve_and_post(tmp_path, "")
