"""Real stand-ins for the receiving end of effects: an incoming-webhook endpoint (HTTP on 127.0.0.1
that deduplicates by ``Idempotency-Key``, like a well-behaved API) and an SMTP server (aiosmtpd on
127.0.0.1) that keeps what arrived."""

from __future__ import annotations

import contextlib
import email
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest


@dataclass
class Hook:
    """The webhook endpoint's state: every request, and the effects applied once per key."""

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    effects: dict[str, Any] = field(default_factory=dict)
    """Idempotency-Key (or a serial number when there is none) -> body: what the target applied."""
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Answers to give before the real one, in order: (status, headers)."""
    hold: threading.Event | None = None
    """When set, each request waits for this event before it is answered (a crash test kills the
    sender meanwhile)."""
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/SECRETPATH"


class _HookHandler(http.server.BaseHTTPRequestHandler):
    hook: Hook

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        hook = self.hook
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        key = self.headers.get("Idempotency-Key")
        with hook.lock:
            hook.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            failure = hook.failures.pop(0) if hook.failures else None
            if failure is None:  # applied once per key, before the answer goes out
                hook.effects.setdefault(key or f"#{len(hook.requests)}", body)
        hook.arrived.set()
        if hook.hold is not None:
            hook.hold.wait(60)
        if failure is not None:
            data = b'{"error": "induced"}'
            self.send_response(failure[0])
            for k, v in failure[1].items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
        else:
            data = b"ok"  # what Slack answers
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the sender is gone (a crash test)
            self.wfile.write(data)


@pytest.fixture
def hook() -> Iterator[Hook]:
    """The webhook endpoint, serving on 127.0.0.1 from a thread."""
    state = Hook()
    handler = type("HookHandler", (_HookHandler,), {"hook": state})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    state.port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    srv.shutdown()
    srv.server_close()


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope sender, envelope recipients, parsed message)."""

    port: int = 0
    received: list[tuple[str, list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, with AUTH (user ``podium``, password ``s3cret``)
    offered over the plain connection so that login can be tested without certificates."""
    aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="pip install aiosmtpd (the dev extra)")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.received.append(
                (envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.original_content))
            )
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"podium" and data.password == b"s3cret"
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    with socket.socket() as s:  # the controller checks readiness by connecting: it needs a real port
        s.bind(("127.0.0.1", 0))
        box.port = int(s.getsockname()[1])
    controller = aiosmtpd.Controller(
        Handler(),
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    yield box
    controller.stop()
