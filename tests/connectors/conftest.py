"""Real stand-ins for business systems: a small CRM (an HTTP app serving its OpenAPI document) on
127.0.0.1 in a thread, and fresh databases on SQLite, PostgreSQL (127.0.0.1:5432) and MariaDB
(127.0.0.1:3306). A test whose service is down skips and says why."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Stand-in CRM", "version": "1"},
    "paths": {
        "/contacts": {
            "post": {
                "operationId": "createContact",
                "summary": "Create a contact.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}},
                },
                "responses": {
                    "201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}}}
                },
            },
            "get": {
                "operationId": "listContacts",
                "parameters": [{"name": "email", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"content": {"application/json": {"schema": {"type": "array"}}}}},
            },
        },
        "/contacts/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"operationId": "getContact", "responses": {"200": {}}},
            "put": {
                "operationId": "updateContact",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {}},
            },
        },
        "/flaky": {"get": {"operationId": "flaky", "responses": {"200": {}}}},
        "/hooks/{channel}": {
            "post": {
                "operationId": "postHook",
                "parameters": [{"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {}},
            }
        },
    },
    "components": {
        "schemas": {
            "Contact": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"}},
                "required": ["email"],
            }
        }
    },
}


@dataclass
class Crm:
    """The stand-in's state, shared with its request handler (the test sets failures, reads requests)."""

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Answers to give before the real one, in order: (status, headers)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method]


class _Handler(http.server.BaseHTTPRequestHandler):
    crm: Crm

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        crm = self.crm
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with crm.lock:
            crm.requests.append(
                {"method": method, "path": self.path, "headers": dict(self.headers), "body": body, "at": time.monotonic()}
            )
            failure = crm.failures.pop(0) if crm.failures and self.path != "/openapi.json" else None
        if failure is not None:
            self._send(failure[0], {"error": "induced"}, failure[1])
            return
        path = self.path.partition("?")[0]
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/openapi.json":
            return self._send(200, SPEC)
        if method == "GET" and path == "/flaky":
            return self._send(200, {"ok": True})
        if parts[0] == "hooks" and method == "POST":
            return self._send(200, {"ok": True, "channel": parts[1]})
        if parts[0] != "contacts":
            return self._send(404, {"error": "no such path"})
        if len(parts) == 1 and method == "POST":
            key = self.headers.get("Idempotency-Key")
            with crm.lock:
                if key and key in crm.by_key:  # the CRM honours idempotency keys
                    return self._send(201, crm.by_key[key])
                contact = {**(body or {}), "id": str(len(crm.contacts) + 1)}
                crm.contacts[contact["id"]] = contact
                if key:
                    crm.by_key[key] = contact
            return self._send(201, contact)
        if len(parts) == 1 and method == "GET":
            return self._send(200, list(crm.contacts.values()))
        cid = parts[1]
        if method == "GET":
            found = crm.contacts.get(cid)
            return self._send(200, found) if found else self._send(404, {"error": f"no contact {cid}"})
        if method == "PUT":
            crm.contacts[cid] = {**crm.contacts.get(cid, {}), **(body or {}), "id": cid}
            return self._send(200, crm.contacts[cid])
        return self._send(405, {"error": "method"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_HEAD(self) -> None:
        self._send(200)


@pytest.fixture
def crm() -> Iterator[Crm]:
    """The stand-in CRM, serving on 127.0.0.1 from a thread."""
    state = Crm()
    handler = type("CrmHandler", (_Handler,), {"crm": state})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield state
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def crm_spec(crm: Crm) -> dict[str, Any]:
    """The CRM's OpenAPI document, read from the running service."""
    import httpx

    return httpx.get(f"{crm.url}/openapi.json").json()


def _up(port: int) -> str | None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as exc:
        return f"no server on 127.0.0.1:{port} ({exc})"
    return None


def _mariadb(request: pytest.FixtureRequest) -> str:
    why = _up(3306)
    if why:
        print(f"SKIP MariaDB: {why}")
        pytest.skip(f"MariaDB is down: {why}")
    import pymysql

    name = f"podium_conn_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    conn.close()

    def drop() -> None:
        c = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        c.close()

    request.addfinalizer(drop)
    return f"mariadb://root@127.0.0.1:3306/{name}"


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crm.db"
    if request.param == "postgres":
        why = _up(5432)
        if why:
            print(f"SKIP PostgreSQL: {why}")
        return str(request.getfixturevalue("pg_url"))
    return _mariadb(request)


BROKER_PORTS = {"nats": 4222, "redis": 6379, "amqp": 5672, "mqtt": 1883}


def need_broker(kind: str) -> None:
    """Skip (saying why, also on stdout) when the broker of ``kind`` does not answer on 127.0.0.1."""
    why = _up(BROKER_PORTS[kind])
    if why:
        print(f"SKIP {kind}: {why}")
        pytest.skip(f"{kind} is down: {why}")
from .standins import hook, mailbox  # noqa: E402, F401  (fixtures: a webhook endpoint, an SMTP server)
