"""Attacker's review of the event ingest path (sixteenth session), against a real ``podium serve``.

The request limits (body size, JSON depth) read and parsed a request's whole body before any route
asked who was calling: anyone who reaches the port, without a token (or with a made-up one), had the
server take in and parse up to ``--max-request-size`` (10 MB by default) per request, as many at
once as they liked. A request with a body is now asked who it is from first: without valid
credentials it is answered 401 before a byte of its body is read.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.server.served import admin_token, serve

HEAD = (
    "POST /api/events/ticket.created HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: 5000000\r\n{auth}\r\n"
)


def _answer_before_the_body(url: str, auth: str) -> bytes:
    """Send a request announcing a 5 MB body, and only its first bytes; what the server answers
    without waiting for the rest (a server that waits for it answers nothing: the read times out)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(HEAD.format(auth=auth).encode() + b'{"pad": "' + b"x" * 1000)
        answer = b""
        try:
            while not answer.endswith(b"}"):  # the head, then the JSON error body
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            return answer or b"(no answer: the server is waiting for the rest of the body)"
        return answer


@pytest.fixture
def server(tmp_path: Path) -> tuple[str, str]:
    db = f"sqlite:///{tmp_path}/podium.db"
    token = admin_token(db)
    proc, url = serve(db, token=token)
    yield url, token
    proc.terminate()
    proc.wait(30)


@pytest.mark.parametrize("auth", ["", "Authorization: Bearer pod_made_up_token_0123456789\r\n"], ids=["no-token", "made-up-token"])
def test_attack_anyone_who_reaches_the_port_has_the_server_read_a_large_body(server: tuple[str, str], auth: str) -> None:
    url, _ = server
    answer = _answer_before_the_body(url, auth)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"unauthorized" in answer and b"Bearer" in answer, answer  # says what to send


def test_a_caller_with_a_token_still_posts_and_meets_the_limits(server: tuple[str, str]) -> None:
    url, token = server
    headers = {"Authorization": f"Bearer {token}"}
    ok = httpx.post(f"{url}/api/events/ticket.created", json={"n": 1}, headers=headers)
    assert ok.status_code == 202, ok.text
    big = httpx.post(f"{url}/api/events/ticket.created", content=b"[" * 200 + b"]" * 200, headers=headers)
    assert big.status_code == 422 and "nested deeper" in big.text, big.text
    no_token = httpx.post(f"{url}/api/events/ticket.created", json={"n": 1})  # small bodies: the same answer as before
    assert no_token.status_code == 401 and "podium tokens create" in no_token.text, no_token.text
