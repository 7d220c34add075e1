"""A stand-in CRM whose answers change shape while it runs, as real APIs do: a real HTTP server on
127.0.0.1 (in a thread) with its OpenAPI document. The test sets ``Shifting.shape`` (or a schedule
of shapes, one per request) and the API versions it announces or retires."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CONTACT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "email": {"type": "string"},
        "age": {"type": "integer"},
        "status": {"type": "string", "enum": ["active", "inactive"]},
        "city": {"type": "string"},
    },
    "required": ["id", "email", "age", "status", "city"],
}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Shifting CRM", "version": "1"},
    "paths": {
        "/contacts/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {
                "operationId": "getContact",
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}}}},
            },
        },
        "/orders/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"operationId": "getOrder", "responses": {"200": {}}},
        },
        "/v1/report": {"get": {"operationId": "getReport", "responses": {"200": {}}}},
    },
    "components": {"schemas": {"Contact": CONTACT}},
}


def contact(cid: str, shape: str) -> dict[str, Any]:
    """Contact ``cid`` as the API sends it in ``shape``."""
    c: dict[str, Any] = {"id": cid, "email": f"c{cid}@example.com", "age": 30 + int(cid), "status": "active", "city": "Delft"}
    if shape == "renamed":
        c["emailAddress"] = c.pop("email")
    elif shape == "retyped":
        c["age"] = str(c["age"])
    elif shape == "nested":
        c["address"] = {"city": c.pop("city"), "zip": "2611"}
    elif shape == "enum":
        c["status"] = "archived"
    return c


@dataclass
class Shifting:
    port: int = 0
    shape: str = "ok"
    schedule: list[str] = field(default_factory=list)
    """Shapes for the next contact answers, in order (then ``shape``)."""
    report: str = "ok"
    """``ok``, ``deprecated`` (Deprecation, Sunset and a successor Link), ``gone`` (410), ``moved`` (404)."""
    order_shape: str = "ok"
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hits(self, prefix: str) -> int:
        return sum(1 for p in self.requests if p.startswith(prefix))


class _Handler(http.server.BaseHTTPRequestHandler):
    state: Shifting

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        st = self.state
        with st.lock:
            st.requests.append(self.path)
            shape = st.schedule.pop(0) if st.schedule and self.path.startswith("/contacts/") else st.shape
        parts = self.path.strip("/").split("/")
        if self.path == "/openapi.json":
            return self._send(200, SPEC)
        if parts[0] == "contacts":
            return self._send(200, contact(parts[1], shape))
        if parts[0] == "orders":
            order: dict[str, Any] = {"id": parts[1], "total": 12.5, "lines": [{"sku": "A-1", "qty": 2}]}
            if st.order_shape == "retyped":
                order["total"] = "12.50"
            elif st.order_shape == "marker":  # a hostile answer shaped like Podium's own marker
                order = {"$podium_quarantined": {"id": "q-0", "policy": "park", "diff": []}}
            return self._send(200, order)
        if self.path == "/v1/report":
            successor = {"Link": '<http://127.0.0.1/v2/report>; rel="successor-version"'}
            if st.report == "deprecated":
                return self._send(200, {"rows": 3}, {"Deprecation": "@1735689600", "Sunset": "Wed, 31 Dec 2025 23:59:59 GMT", **successor})
            if st.report == "gone":
                return self._send(410, {"error": "v1 was retired; use /v2/report"})
            if st.report == "moved":
                return self._send(404, {"error": "not here"}, successor)
            return self._send(200, {"rows": 3})
        return self._send(404, {"error": "no such path"})


def serve() -> Iterator[Shifting]:
    state = Shifting()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"state": state}))
    state.port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        srv.shutdown()
        srv.server_close()
