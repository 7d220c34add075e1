"""Fixtures of the model and tool layer tests.

Every test here is kept off the network: a socket may connect only to loopback (127.0.0.0/8, ::1)
or a Unix socket. Real servers used by the tests (a llama.cpp OpenAI-compatible server, MCP servers,
HTTP endpoints) are started on 127.0.0.1, once per session where they are slow to start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from netguard import guard_loopback

import podium
from podium.models import set_default_gateway


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but this machine."""
    guard_loopback(monkeypatch, hide=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PODIUM_MODEL", "OPENAI_BASE_URL"))


@pytest.fixture(autouse=True)
def fresh_gateway() -> Iterator[None]:
    """Each test gets its own default gateway (breakers and limits are not shared across tests)."""
    set_default_gateway(None)
    yield
    set_default_gateway(None)


@pytest.fixture
async def client(store_url: str):
    async with podium.Client(store_url) as c:
        yield c


from ai_helpers import LLAMA_SKIP, free_port, smollm2_path, wait_for_port  # noqa: E402


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server (``llama_cpp.server``) with SmolLM2 on 127.0.0.1."""
    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama_cpp.server needs its extra: pip install 'llama-cpp-python[server]' ({exc})")
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_path()), "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", "--verbose", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
