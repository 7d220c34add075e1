"""Request limits, applied before any route runs (a plain ASGI middleware).

* The body may be at most ``Settings.max_request_bytes`` (default 10 MB): larger ones are answered
  413, whether announced by ``Content-Length`` or not (the body is counted as it arrives).
* A JSON body may nest at most ``Settings.max_json_depth`` levels, may not hold ``NaN`` or
  ``Infinity`` (which JSON has no place for, and which would be stored as ``null``), nor a lone UTF-16
  surrogate (``\\ud800``, which no store can hold): 422, naming the field.
* The URL path may not hold a lone surrogate either (a policy or kill-switch name): 422.
* A request with a body is asked who it is from (``gate``) before its body is read: without valid
  credentials it is answered 401 (403 for another site's page in local mode) at once, so that
  whoever reaches the port cannot have the server read and parse a large body per request.

The checks themselves live in :mod:`podium.governance.limits`, shared with the CLI and MCP.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..governance.limits import text_depth, text_problem, value_problem
from .errors import body as error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}


Gate = Callable[[Scope], Awaitable[tuple[int, str, str] | None]]
"""Who a request is from, asked before its body is read: None to go on, else (status, code, message)."""


class RequestLimits:
    def __init__(self, app: Any, *, max_bytes: int, max_depth: int, gate: Gate | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = text_problem(scope.get("path", ""), where="the URL path")
        if problem:
            await _answer(send, 422, "invalid_request", problem)
            return
        raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        headers = dict(raw)
        # A GET (or any method) may carry a body too, and a GET webhook reads it: counted as any other
        if scope.get("method") not in _WITH_BODY and headers.get("content-length", "0") in ("", "0") and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        for name in ("content-type", "content-length", "transfer-encoding"):
            if sum(1 for k, _ in raw if k == name) > 1:  # the framework reads the first, a dict the last
                await _answer(send, 400, "invalid_request", f"the request has more than one {name} header; send one")
                return
        refused = await self.gate(scope) if self.gate is not None else None
        if refused is not None:  # nothing of the body read: the caller's credentials come first
            await _answer(send, *refused)
            return
        too_big = (
            f"the request body is larger than this server accepts ({self.max_bytes} bytes); send less, "
            "or raise the limit with podium serve --max-request-size"
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _answer(send, 413, "request_too_large", too_big)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, "request_too_large", too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if body and (not kind or kind == "application/json" or kind.endswith("+json")):
            problem = self._json_problem(body)
            if problem:
                await _answer(send, 422, "invalid_request", f"the request body: {problem}")
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _json_problem(self, body: bytes) -> str | None:
        if text_depth(body) > self.max_depth:
            return (
                f"the JSON is nested deeper than {self.max_depth} levels; send a flatter document (nest "
                f"objects and arrays at most {self.max_depth} levels deep)"
            )
        try:
            value = json.loads(body)
        except ValueError:
            return None  # not JSON: the route's own validation says what it expected
        return value_problem(value, max_depth=self.max_depth)


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    payload = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
