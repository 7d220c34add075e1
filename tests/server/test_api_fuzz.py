"""Fuzzing the HTTP API with schemathesis: every operation of the app's own ``/openapi.json``, with
data that fits its schema and data that does not, as an admin. No request may answer 5xx.

The server runs for real (uvicorn on 127.0.0.1, a SQLite store with users). Examples per operation
and mode: ``$PODIUM_FUZZ_EXAMPLES`` (default 15). Generation is derandomized, so a run is repeatable;
``PODIUM_FUZZ_RANDOM=1`` explores new examples each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")
uvicorn = pytest.importorskip("uvicorn", reason="pip install uvicorn")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from podium.server import Settings, create_app  # noqa: E402

from . import flows  # noqa: E402

EXAMPLES = int(os.environ.get("PODIUM_FUZZ_EXAMPLES", "15"))
#: Endless by design (a live stream without ?timeout=): tested in test_api_stream.py.
ENDLESS = {"/api/runs/stream"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The app served by uvicorn in a thread: its URL and an admin token."""
    monkeypatch.setenv("PODIUM_EMBEDDER", "hash:256")  # memory endpoints embed without a model
    db = f"sqlite:///{tmp_path}/podium.db"

    async def admin() -> str:
        import podium

        async with podium.Client(db) as c:
            await c.create_user("root", ["admin"])
            await c.run(flows.hello, {"name": "fuzz"})  # something to list
            return await c.create_token("root")

    token = asyncio.run(admin())
    app = create_app(
        Settings(
            store=db, token=token, workflows=flows.ALL, deploy_dir=str(tmp_path / "deployed"), triggers=False
        )
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "token": token}
    finally:
        server.should_exit = True
        thread.join(15)


def fuzz(op: Any, mode: Any, url: str, auth: dict[str, str]) -> tuple[int, str | None]:
    """Send ``EXAMPLES`` generated requests to one operation; (how many, the first 5xx or None)."""
    sent = 0
    first: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("PODIUM_FUZZ_RANDOM"),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        nonlocal sent
        response = case.call(base_url=url, headers=auth, timeout=30)
        sent += 1
        if response.status_code >= 500 and not first:
            first.append(
                f"{op.method.upper()} {op.path} ({mode.value}): {response.status_code} "
                f"{response.text[:300]}\n    {case.as_curl_command(headers=auth)}"
            )

    with contextlib.suppress(Unsatisfiable):  # nothing invalid to send: an operation without inputs
        call()
    return sent, (first[0] if first else None)


def negatable(operation: dict[str, Any]) -> bool:
    """Whether a request can break the operation's schema (a typed body, a typed or bounded
    parameter); asking schemathesis for invalid data otherwise only burns time before it gives up."""
    plain = {"type", "title", "description", "default"}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        if set(content.get("schema", {})) - plain - {"examples"} or content.get("schema", {}).get(
            "type"
        ) not in (
            None,
            "string",
        ):
            return True
    for param in operation.get("parameters", []):
        schema = param.get("schema", {})
        if param["in"] != "path" and param.get("required"):
            return True
        options = schema.get("anyOf", [schema])
        if any(set(o) - plain or o.get("type") not in (None, "string", "null") for o in options):
            return True
    return False


def test_no_endpoint_answers_5xx(live: dict[str, str]) -> None:
    from schemathesis import GenerationMode

    url = live["url"]
    auth = {"Authorization": f"Bearer {live['token']}"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    spec = schema.raw_schema["paths"]
    failures: list[str] = []
    sent = operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in ENDLESS:
            continue
        operations += 1
        modes = [GenerationMode.POSITIVE]
        if negatable(spec[op.path][op.method.lower()]):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            t0 = time.monotonic()
            n, failure = fuzz(op, mode, url, auth)
            if os.environ.get("FUZZ_PROFILE"):
                print(f"{time.monotonic() - t0:6.2f}s {n:3d} {op.method} {op.path} {mode.value}")
            sent += n
            failures += [failure] if failure else []
    assert operations >= 35, operations
    assert not failures, f"{len(failures)} operation(s) answered 5xx:\n" + "\n".join(failures)
    print(f"schemathesis: {sent} requests over {operations} operations, no 5xx")
