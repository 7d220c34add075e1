"""Attacker's review (sixteenth session): a model gateway's breaker is shared by every run of the
process, and its reason (quoted in each refused run's error) was the last failure's message. A
provider that quotes the request in its error (an OpenAI-compatible server answering 503 "failed
while processing: ...") put one run's prompt into another run's error. Against a real local HTTP
server speaking the OpenAI API."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from podium.models import CircuitOpen, Gateway, Message, ProviderError, Request, get_model
from podium.resilience import Backoff, BreakerPolicy


@pytest.fixture
def echoing_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            last = body["messages"][-1]["content"]
            data = json.dumps({"error": {"message": f"overloaded while processing: {last}"}}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


async def test_attack_an_open_model_breaker_tells_every_run_another_runs_prompt(echoing_server: str) -> None:
    gw = Gateway(retry=Backoff(max_attempts=1), breaker=BreakerPolicy(failures=2, reset_after=60))
    model = gw.model(get_model("llamacpp:any", base_url=echoing_server))
    alice = Request(messages=(Message.user("patient alice.private: diagnosis F32.1, dose 40mg"),), max_tokens=5)
    for _ in range(2):  # alice's run
        with pytest.raises(ProviderError):
            await model.complete(alice)
    with pytest.raises(CircuitOpen) as other:  # bob's run, refused while the circuit is open
        await model.complete(Request(messages=(Message.user("summarise bob's ticket"),), max_tokens=5))
    message = str(other.value)
    assert "alice" not in message and "F32.1" not in message, message
    assert "503" in message and "open" in message, message  # still says what failed
