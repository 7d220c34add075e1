"""A stand-in CRM for bench/integration_tax.py: a small HTTP service on 127.0.0.1 with an OpenAPI
document, protected by OAuth2 bearer tokens from a real Authlib token server, that misbehaves the
way business systems do: it changes its response schema while clients use it, answers 5% of calls
with a 5xx and 1% with 429 + Retry-After, and can be restarted (its port closes, then reopens).

    crm = StandinCrm(tokens)          # tokens: tests.connectors.oauth_server.TokenServer
    crm.start()
    crm.schema = "renamed"           # v1 -> renamed -> retyped -> nested
    crm.restart(down_for=1.0)
    crm.stop()
"""

from __future__ import annotations

import http.server
import json
import random
import threading
import time
from typing import Any

#: The response schema the OpenAPI document promises (the contract clients check).
CONTACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": "string"},
        "tier": {"type": "string", "enum": ["gold", "silver", "bronze"]},
        "churn_risk": {"type": "number"},
    },
    "required": ["id", "email", "tier", "churn_risk"],
    "additionalProperties": False,
}

#: What each drift turns a v1 contact into, and the YAML-style mapping that fixes it.
SCHEMAS = ("v1", "renamed", "retyped", "nested")
FIXES: dict[str, dict[str, Any]] = {
    "renamed": {"rename": {"email_address": "email"}},
    "retyped": {"cast": {"churn_risk": "number"}},
    "nested": {"unnest": {"profile": ["email", "tier"]}},
}


def contact(cid: int, schema: str) -> dict[str, Any]:
    """Contact ``cid`` as the CRM sends it under ``schema``."""
    rnd = random.Random(cid)
    base = {
        "id": cid,
        "email": f"customer{cid}@example.com",
        "tier": rnd.choice(["gold", "silver", "bronze"]),
        "churn_risk": round(rnd.random(), 3),
    }
    if schema == "renamed":
        base["email_address"] = base.pop("email")
    elif schema == "retyped":
        base["churn_risk"] = str(base["churn_risk"])
    elif schema == "nested":
        base["profile"] = {"email": base.pop("email"), "tier": base.pop("tier")}
    return base


def spec(url: str) -> dict[str, Any]:
    """The CRM's OpenAPI document (it describes v1 only: the later shapes are drift)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Stand-in CRM", "version": "1"},
        "servers": [{"url": url}],
        "paths": {
            "/crm/contacts/{id}": {
                "get": {
                    "operationId": "getContact",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"200": {"content": {"application/json": {"schema": CONTACT_SCHEMA}}}},
                }
            },
            "/crm/contacts/{id}/tasks": {
                "post": {
                    "operationId": "createTask",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "201": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"task_id": {"type": "string"}, "duplicate": {"type": "boolean"}},
                                        "required": ["task_id"],
                                    }
                                }
                            }
                        }
                    },
                }
            },
        },
    }


class StandinCrm:
    """The CRM service. Counters are read by the benchmark; settings may change at any time."""

    def __init__(self, tokens: Any, *, error_rate: float = 0.05, throttle_rate: float = 0.01, seed: int = 7) -> None:
        self.tokens = tokens
        self.error_rate = error_rate
        self.throttle_rate = throttle_rate
        self.schema = "v1"
        self.port = 0
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"requests": 0, "5xx": 0, "429": 0, "401": 0, "ok": 0, "tasks": 0, "task_repeats": 0}
        self.tasks: dict[str, str] = {}
        """Idempotency-Key -> task id: a repeated key gets the same task (the CRM honours keys)."""
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        owner = self

        class Handler(_Handler):
            crm = owner

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        srv.daemon_threads = True
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, name="standin-crm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None

    def restart(self, down_for: float = 1.0) -> None:
        """Close the port, stay down ``down_for`` seconds, listen again on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1


class _Handler(http.server.BaseHTTPRequestHandler):
    crm: StandinCrm
    protocol_version = "HTTP/1.1"
    # One segment per answer (headers and body buffered together) and no Nagle delay: otherwise the
    # client's delayed ACK adds ~40 ms to every call and hides what is being measured.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _gate(self) -> bool:
        """Auth and injected faults; True when the request may be served."""
        crm = self.crm
        crm.count("requests")
        if not crm.tokens.bearer_ok(self.headers.get("Authorization")):
            crm.count("401")
            self._send(401, {"error": "invalid_token"}, (("WWW-Authenticate", 'Bearer error="invalid_token"'),))
            return False
        with crm.lock:
            roll = crm.random.random()
        if roll < crm.throttle_rate:
            crm.count("429")
            self._send(429, {"error": "slow down"}, (("Retry-After", "1"),))
            return False
        if roll < crm.throttle_rate + crm.error_rate:
            crm.count("5xx")
            self._send(503 if roll < crm.throttle_rate + crm.error_rate / 2 else 500, {"error": "internal"})
            return False
        return True

    def do_GET(self) -> None:
        if self.path == "/openapi.json":
            return self._send(200, spec(self.crm.url))
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["crm", "contacts"] and parts[2].isdigit():
            if self._gate():
                self.crm.count("ok")
                self._send(200, contact(int(parts[2]), self.crm.schema))
            return None
        return self._send(404, {"error": "no such path"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = self.path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["crm", "contacts"] and parts[3] == "tasks":
            if not self._gate():
                return None
            json.loads(body or b"{}")
            key = self.headers.get("Idempotency-Key") or ""
            crm = self.crm
            with crm.lock:
                repeat = bool(key) and key in crm.tasks
                if not repeat:
                    crm.tasks[key or f"nokey-{len(crm.tasks)}"] = f"T{len(crm.tasks) + 1}"
                crm.counts["task_repeats" if repeat else "tasks"] += 1
                task = crm.tasks[key] if key else f"T{len(crm.tasks)}"
            crm.count("ok")
            return self._send(201, {"task_id": task, "duplicate": repeat})
        return self._send(404, {"error": "no such path"})
