"""Fixtures of the plug-in conformance suites (models, embedders, tools).

Each suite runs the same contract checks against every implementation in the repository, each one
real: the embedded llama.cpp model, a ``llama_cpp.server`` started on 127.0.0.1, the ONNX MiniLM
embedder, a real MCP server process, a real HTTP server. Nothing here may connect beyond this
machine: like ``tests/ai/conftest.py``, a socket may connect only to loopback or a Unix socket.

An implementation that cannot run here (its extra or model file is not installed) skips, saying how
to install it; ``scripts/test`` installs everything.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator

import pytest
from conformance_helpers import (
    Handler,
    HttpServer,
    free_port,
    llama_crashes,
    llama_server_command,
    llama_skip_reason,
    smollm2_path,
    stop,
    wait_for_port,
    without_extra_buffers,
)
from netguard import guard_loopback


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but this machine, and hide provider keys and defaults."""
    guard_loopback(monkeypatch, hide=("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "PODIUM_MODEL", "PODIUM_LLAMACPP_BASE_URL", "PODIUM_OPENAI_BASE_URL"))


@pytest.fixture(scope="session")
def llama_ready() -> None:
    """llama.cpp and SmolLM2 are installed (else skip, saying how), and models load without crashing."""
    reason = llama_skip_reason()
    if reason:
        pytest.skip(reason)
    crash = llama_crashes()
    if crash:
        warnings.warn(crash, stacklevel=1)
        without_extra_buffers()


def _llama_server(*extra: str) -> Iterator[str]:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama_cpp.server needs its extra: pip install 'llama-cpp-python[server]' ({exc})")
    port = free_port()
    cmd = llama_server_command(
        "--model", str(smollm2_path()), "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", "--verbose", "false", *extra,
    )  # fmt: skip
    # The server logs each request: to a file, so that a full pipe never blocks it.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ})
        try:
            try:
                wait_for_port(port, proc)
            except RuntimeError as exc:
                log.seek(0)
                raise RuntimeError(
                    f"{exc}; its log ends: {log.read()[-2000:].decode(errors='replace')}"
                ) from None
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            stop(proc)


@pytest.fixture(scope="session")
def llama_server(llama_ready: None) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server (``llama_cpp.server``) with SmolLM2 on 127.0.0.1."""
    yield from _llama_server()


@pytest.fixture(scope="session")
def llama_embedding_server(llama_ready: None) -> Iterator[str]:
    """The same server in embedding mode: a real OpenAI-compatible ``/v1/embeddings`` endpoint.

    SmolLM2 is a causal model whose file names no pooling: mean pooling gives one vector per text.
    """
    yield from _llama_server("--embedding", "true", "--kv_overrides", "llama.pooling_type=int:1")


@pytest.fixture
def http_server() -> Iterator[Callable[[Handler], HttpServer]]:
    """Starts real HTTP servers on 127.0.0.1 with the given handler; they stop after the test."""
    servers: list[HttpServer] = []

    def start(handler: Handler) -> HttpServer:
        servers.append(HttpServer(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
