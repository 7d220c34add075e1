"""Token events on a run's live stream (``GET /api/runs/{id}/stream``, ``event: token``), through the
real server: uvicorn on 127.0.0.1, read as a browser's EventSource reads it, while the run goes."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import podium
from podium import StepContext, ai
from podium.models import Model, Request, Response, TextSink, Usage
from podium.server import Settings, create_app

uvicorn = pytest.importorskip("uvicorn", reason="pip install 'podium[server]'")

GATE = threading.Event()
"""Set by the test once its stream is connected: token events are not stored, so the step waits."""
WORDS = ["Your ", "order ", "ships ", "on ", "Monday."]


class Slow(Model):
    """Streams a few words, a tenth of a second apart."""

    provider, name = "slow", "words"

    async def complete(self, request: Request) -> Response:
        raise AssertionError("a plain-text llm() call streams")

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay

    async def stream(self, request: Request, sink: TextSink) -> Response:
        for word in WORDS:
            await sink.text(word)
            await asyncio.sleep(self.delay)
        return Response(text="".join(WORDS), model=self.spec, usage=Usage(output_tokens=len(WORDS)))


answer = podium.Workflow("answer")


@answer.step
async def reply(ctx: StepContext, input: dict[str, Any]) -> str:
    while not GATE.is_set():
        await asyncio.sleep(0.01)
    model = input.get("model")
    spec: Any = model if model else Slow(float(input.get("delay", 0.1)))
    return (await ai.llm(ctx, "When does my order ship?", model=spec, max_tokens=32, temperature=0)).text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The app served by uvicorn in a thread: its URL, an admin's and a viewer's token."""
    db = f"sqlite:///{tmp_path}/podium.db"

    async def users() -> tuple[str, str]:
        async with podium.Client(db) as c:
            await c.create_user("root", ["admin"])
            await c.create_user("vic", ["viewer"])
            return await c.create_token("root"), await c.create_token("vic")

    admin, viewer = asyncio.run(users())
    app = create_app(
        Settings(store=db, token=admin, workflows=[answer], deploy_dir=str(tmp_path / "d"), triggers=False)
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    GATE.clear()
    try:
        yield {"url": f"http://127.0.0.1:{port}", "admin": admin, "viewer": viewer}
    finally:
        GATE.set()
        server.should_exit = True
        thread.join(15)


def read_stream(url: str, token: str, received: list[tuple[str, Any, float]]) -> None:
    """Read the event stream as EventSource does (the token in the query), until ``end``."""
    with httpx.Client(timeout=300) as http, http.stream("GET", url, params={"token": token}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event, data = None, None
        received.append(("connected", None, time.monotonic()))
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif not line and event:
                received.append((event, data, time.monotonic()))
                if event == "end":
                    return
                event, data = None, None


def start(live: dict[str, str], model: str | None = None, **more: Any) -> str:
    r = httpx.post(
        f"{live['url']}/api/runs",
        json={"workflow": "answer", "input": {**({"model": model} if model else {}), **more}},
        headers={"Authorization": f"Bearer {live['admin']}"},
    )
    assert r.status_code in (200, 201), r.text
    return str(r.json()["run"]["id"])


def run_and_follow(live: dict[str, str], who: str, model: str | None = None) -> tuple[str, list[Any]]:
    """Start a run, connect to its stream as ``who``, then let the run's step go; read until ``end``."""
    run_id = start(live, model)
    received: list[tuple[str, Any, float]] = []
    reader = threading.Thread(
        target=read_stream, args=(f"{live['url']}/api/runs/{run_id}/stream", live[who], received)
    )
    reader.start()
    deadline = time.monotonic() + 20
    while not any(e == "ready" for e, _, _ in received):  # the server listens for the run's tokens
        assert time.monotonic() < deadline, "the stream did not connect"
        time.sleep(0.02)
    GATE.set()
    reader.join(300)
    assert not reader.is_alive(), "the stream did not end with the run"
    return run_id, received


def output_of(live: dict[str, str], run_id: str) -> Any:
    r = httpx.get(f"{live['url']}/api/runs/{run_id}", headers={"Authorization": f"Bearer {live['admin']}"})
    return r.json()["run"]["output"]


def test_tokens_stream_live_over_sse_and_the_run_keeps_the_whole_answer(live: dict[str, str]) -> None:
    run_id, received = run_and_follow(live, "admin")
    tokens = [(d, t) for e, d, t in received if e == "token"]
    kinds = [d["kind"] for d, _ in tokens]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("text") >= 3
    assert "".join(d["text"] for d, _ in tokens if d["kind"] == "text") == "".join(WORDS)
    assert {d["run_id"] for d, _ in tokens} == {run_id} and tokens[0][0]["step"] == "reply"
    # live: the text came over some time, before the step's completion was sent
    texts = [t for d, t in tokens if d["kind"] == "text"]
    assert texts[-1] - texts[0] >= 0.2
    done = [t for e, d, t in received if e == "step" and d["type"] == "step_completed" and d["step"] == "reply"]
    assert done and done[0] >= texts[-1]
    assert output_of(live, run_id) == "".join(WORDS)


def test_a_caller_without_payloads_read_gets_no_tokens(live: dict[str, str]) -> None:
    _run_id, received = run_and_follow(live, "viewer")
    events = [e for e, _, _ in received]
    assert "end" in events and "step" in events and "token" not in events
    nobody = httpx.get(f"{live['url']}/api/runs/{_run_id}/stream", params={"token": "pod_nope"})
    assert nobody.status_code == 401


def test_the_local_model_streams_to_the_run_stream(live: dict[str, str]) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "ai"))
    from ai_helpers import LLAMA_SKIP

    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    run_id, received = run_and_follow(live, "admin", "local:smollm2-135m")
    tokens = [d for e, d, _ in received if e == "token"]
    output = output_of(live, run_id)
    assert isinstance(output, str) and len(output) > 10
    assert tokens[0]["kind"] == "start" and tokens[-1]["kind"] == "end"
    assert "".join(d["text"] for d in tokens if d["kind"] == "text") == output


def test_a_viewer_sees_a_runs_usage_in_the_run_as_in_its_usage_route(live: dict[str, str]) -> None:
    """Review: GET /api/runs/{id}/usage answers runs.read (tokens, cost, latency: not business data),
    while GET /api/runs/{id} gave the same usage only with payloads.read. Both answer runs.read now;
    the steps' outputs stay hidden from a viewer."""
    run_id, _ = run_and_follow(live, "admin")
    viewer = {"Authorization": f"Bearer {live['viewer']}"}
    detail = httpx.get(f"{live['url']}/api/runs/{run_id}", headers=viewer).json()
    usage = httpx.get(f"{live['url']}/api/runs/{run_id}/usage", headers=viewer).json()
    assert detail["usage"] is not None and detail["usage"] == usage, (detail["usage"], usage)
    assert usage["total"]["output_tokens"] == len(WORDS)
    assert "".join(WORDS) not in json.dumps(detail)  # the answer itself stays hidden
