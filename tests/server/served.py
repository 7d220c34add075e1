"""Start a real ``podium serve`` for the browser tests: a free port, the project on PYTHONPATH, and a
wait (bounded, polling /healthz) until it answers; a server that does not start fails the test with
its own output."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[bytes], url: str, tries: int = 600) -> None:
    """Poll ``url``/healthz until it answers 200; kill the server and fail the test if it never does."""
    for _ in range(tries):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"podium serve did not start: {proc.stdout.read().decode() if proc.stdout else ''}")


def serve(db: str, *args: str, token: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``podium serve --db DB ARGS...`` on a free port (with ``PODIUM_TOKEN`` when ``token`` is given,
    none otherwise); returns the process and its URL once it answers. Stop it with ``proc.terminate()``."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PODIUM_TOKEN", None)
    if token is not None:
        env["PODIUM_TOKEN"] = token
    cmd = [sys.executable, "-c", "from podium.cli import main; main()", "serve", "--db", db, "--port", str(port),
           "--log-level", "warning", *args]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
    except BaseException:
        proc.kill()
        raise
    return proc, url


def admin_token(db: str) -> str:
    """A user ``root`` with the admin role in the store at ``db``, and a token of theirs."""

    async def make() -> str:
        import podium

        async with podium.Client(db) as c:
            await c.create_user("root", ["admin"])
            return await c.create_token("root")

    return asyncio.run(make())


def approver_token(db: str, admin: str, name: str = "bea", roles: tuple[str, ...] = ("approver",)) -> str:
    """A user ``name`` with the approver role in the store at ``db`` (made with token ``admin``), and
    a token of theirs: four eyes, the person who started a run may not decide its approvals."""

    async def make() -> str:
        import podium

        async with podium.Client(db, token=admin) as c:
            await c.create_user(name, list(roles))
            return await c.create_token(name)

    return asyncio.run(make())
