"""A real local OAuth2 authorization server and a protected API, on 127.0.0.1 in a thread.

The token endpoint is Authlib's RFC 6749 server (``AuthorizationServer`` with
``ClientCredentialsGrant`` and ``RefreshTokenGrant``, refresh tokens rotated on use), behind the
standard library's HTTP server. Access tokens expire after ``expires_in`` seconds. The API checks
bearer tokens with Authlib's ``ResourceProtector`` and answers 401 to an expired, revoked or unknown
token; ``/keyed/...`` takes an ``X-API-Key`` instead (the test rotates the valid keys). Reusable by
benchmarks::

    from tests.connectors.oauth_server import start_token_server

    server, stop = start_token_server(expires_in=2)
    ...  # server.token_url, server.url (the API), server.spec (its OpenAPI document)
    stop()
"""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, ResourceProtector, TokenMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator

CLIENT_ID = "podium-test"
CLIENT_SECRET = "cs-" + "x" * 24  # what the tests store in the secret store; the server may rotate it

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Protected API", "version": "1"},
    "paths": {
        "/api/echo/{n}": {
            "get": {
                "operationId": "echo",
                "parameters": [{"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {}},
            }
        },
        "/api/notes": {
            "post": {
                "operationId": "addNote",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"201": {}},
            }
        },
        "/keyed/whoami": {"get": {"operationId": "whoami", "responses": {"200": {}}}},
        "/api/report": {"get": {"operationId": "report", "responses": {"200": {}}}},
        "/debug/headers": {"get": {"operationId": "debugHeaders", "responses": {"200": {}}}},
        "/keyed/notes": {
            "post": {
                "operationId": "keyedNote",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"201": {}},
            }
        },
    },
}


@dataclass
class _Token(TokenMixin):
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: float
    expires_in: float
    revoked: bool = False
    """The access token is revoked."""
    refresh_revoked: bool = False
    """The refresh token is revoked (used once: rotated)."""

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_in)

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.client_id

    def get_client(self) -> Any:
        return None


class _Client(ClientMixin):
    def __init__(self, server: TokenServer, client_id: str) -> None:
        self.server, self.client_id = server, client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(self.server.clients.get(self.client_id, ""), client_secret or "")

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("client_credentials", "refresh_token")


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: Any, form: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Server(AuthorizationServer):
    def __init__(self, state: TokenServer) -> None:
        super().__init__(scopes_supported=None)
        self.state = state

    def query_client(self, client_id: str) -> _Client | None:
        return _Client(self.state, client_id) if client_id in self.state.clients else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.state.save(request.client.get_client_id(), token)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # type: ignore[no-any-return]

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class _Refresh(RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotate refresh tokens: the old one stops working once used
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
        state: TokenServer = self.server.state  # type: ignore[attr-defined]
        found = state.by_refresh.get(refresh_token)
        if found is not None and found.refresh_revoked and state.reuse_detection:
            state.revoke_family(found.client_id)  # a spent refresh token again: taken for a stolen copy
        return None if found is None or found.refresh_revoked else found

    def authenticate_user(self, refresh_token: _Token) -> str:
        return refresh_token.client_id

    def revoke_old_credential(self, refresh_token: _Token) -> None:
        refresh_token.refresh_revoked = True


class _Validator(BearerTokenValidator):
    def __init__(self, state: TokenServer) -> None:
        super().__init__()
        self.state = state

    def authenticate_token(self, token_string: str) -> _Token | None:
        return self.state.by_access.get(token_string)


@dataclass
class TokenServer:
    """The authorization server's state: clients, tokens, counters. Tests change it between calls."""

    expires_in: float = 2.0
    """Seconds an access token lives."""
    port: int = 0
    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    """client id -> its current secret (rotate by replacing it)."""
    api_keys: set[str] = field(default_factory=set)
    """The X-API-Key values ``/keyed/...`` accepts now."""
    by_access: dict[str, _Token] = field(default_factory=dict)
    by_refresh: dict[str, _Token] = field(default_factory=dict)
    issued: int = 0
    """Access tokens issued (each client-credentials or refresh grant)."""
    rejected: int = 0
    """API requests answered 401."""
    served: int = 0
    """API requests answered 2xx."""
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    """Each token request: grant type, and whether it was granted."""
    reuse_detection: bool = False
    """Revoke every token of the client when a spent refresh token is presented (Auth0, Okta)."""
    family_revocations: int = 0
    refresh_barrier: threading.Barrier | None = None
    """When set, each refresh-token request waits (up to 3 s) for the others of the barrier: two
    refreshes that overlap are made to overlap at the server."""
    refresh_gate: threading.Event | None = None
    """When set, each refresh-token request waits (up to 10 s) for the event before it is answered
    (``refresh_waiting`` counts those that arrived): a slow token endpoint, held as long as a test needs."""
    refresh_waiting: int = 0
    scoped_refusals: int = 0
    """``/api/report`` requests answered 403 insufficient_scope (naming the token they carried)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def spec(self) -> dict[str, Any]:
        return {**SPEC, "servers": [{"url": self.url}]}

    def save(self, client_id: str, token: dict[str, Any]) -> None:
        rec = _Token(
            client_id=client_id,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            scope=token.get("scope", ""),
            issued_at=time.time(),
            expires_in=self.expires_in,
        )
        with self.lock:
            self.issued += 1
            self.by_access[rec.access_token] = rec
            if rec.refresh_token:
                self.by_refresh[rec.refresh_token] = rec

    def issue_refresh_token(self, client_id: str = CLIENT_ID, scope: str = "") -> str:
        """A refresh token for ``client_id``, as an authorization-code grant would have given (the
        refresh-token flow starts from one)."""
        value = "rt-" + secrets.token_urlsafe(24)
        rec = _Token(
            client_id=client_id, access_token="", refresh_token=value, scope=scope, issued_at=time.time(), expires_in=0
        )
        with self.lock:
            self.by_refresh[value] = rec
        return value

    def revoke_family(self, client_id: str) -> None:
        """Revoke every access and refresh token of ``client_id``."""
        with self.lock:
            self.family_revocations += 1
            for t in [*self.by_access.values(), *self.by_refresh.values()]:
                if t.client_id == client_id:
                    t.revoked = t.refresh_revoked = True

    def revoke_all(self) -> int:
        """Revoke every access token issued so far (a token revoked mid-run); returns how many."""
        with self.lock:
            live = [t for t in self.by_access.values() if not t.revoked]
            for t in live:
                t.revoked = True
        return len(live)

    def bearer_ok(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header holds a live token this server issued (for other
        stand-ins that want to accept this server's tokens)."""

        class _Headers:
            headers = {"Authorization": authorization} if authorization else {}

        try:
            self._protector.validate_request(None, _Headers())
        except OAuth2Error:
            return False
        return True

    _protector: ResourceProtector = field(default_factory=ResourceProtector)


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: TokenServer
    authz: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: Any = ()) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in list(headers or ()):
            if k.lower() != "content-type":
                self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        state = self.server_state
        raw = self._body()
        if self.path == "/token":
            form = dict(parse_qsl(raw.decode()))
            if form.get("grant_type") == "refresh_token" and state.refresh_barrier is not None:
                with contextlib.suppress(threading.BrokenBarrierError):  # no other refresh came meanwhile
                    state.refresh_barrier.wait(timeout=3)
            if form.get("grant_type") == "refresh_token" and state.refresh_gate is not None:
                with state.lock:
                    state.refresh_waiting += 1
                state.refresh_gate.wait(timeout=10)
            request = _Request("POST", state.token_url, self.headers, form)
            status, body, headers = self.authz.create_token_response(request)
            with state.lock:
                state.token_requests.append({"grant_type": form.get("grant_type"), "status": status})
            return self._send(status, body, headers)
        if self.path == "/keyed/notes":  # a key that may read, not write: the refusal names the key
            key = self.headers.get("X-API-Key") or ""
            return self._send(403, {"error": "forbidden", "detail": f"the key {key} may not write notes"})
        if self.path == "/api/notes":
            if not self._authorized():
                return None
            return self._send(201, {"saved": json.loads(raw or b"null"), "key": self.headers.get("Idempotency-Key")})
        return self._send(404, {"error": "no such path"})

    def do_GET(self) -> None:
        state = self.server_state
        if self.path == "/openapi.json":
            return self._send(200, state.spec)
        if self.path.startswith("/api/echo/"):
            if not self._authorized():
                return None
            return self._send(200, {"n": int(self.path.rsplit("/", 1)[1])})
        if self.path == "/api/report":  # RFC 6750 insufficient_scope, and a gateway that names the token
            if not self._authorized():
                return None
            token = (self.headers.get("Authorization") or "").partition(" ")[2]
            with state.lock:
                state.scoped_refusals += 1
            return self._send(
                403,
                {"error": "insufficient_scope", "detail": f"the token {token} lacks scope reports.read"},
                [("WWW-Authenticate", 'Bearer error="insufficient_scope", scope="reports.read"')],
            )
        if self.path == "/debug/headers":  # a debugging API: the headers it got, and a key it issues
            got = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "accept-encoding", "connection")}
            issued = "ik-issued-" + "z" * 20
            return self._send(200, {"headers": got, "seen": f"you sent {json.dumps(got)}", "issued_key": issued})
        if self.path == "/keyed/whoami":
            key = self.headers.get("X-API-Key") or ""
            with state.lock:
                ok = key in state.api_keys
                state.served += ok
                state.rejected += not ok
            if not ok:
                return self._send(401, {"error": "invalid api key"})
            return self._send(200, {"key_suffix": key[-4:]})
        return self._send(404, {"error": "no such path"})

    def _authorized(self) -> bool:
        state = self.server_state
        ok = state.bearer_ok(self.headers.get("Authorization"))
        with state.lock:
            state.served += ok
            state.rejected += not ok
        if not ok:
            self._send(401, {"error": "invalid_token"}, [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return ok


def start_token_server(expires_in: float = 2.0, port: int = 0) -> tuple[TokenServer, Callable[[], None]]:
    """Serve a token endpoint and a protected API on 127.0.0.1 (``port`` 0: a free one) from a
    thread. Returns the server's state and a function that stops it. ``state.url`` is the API's base
    URL, ``state.token_url`` the token endpoint, ``state.spec`` the API's OpenAPI document."""
    state = TokenServer(expires_in=expires_in)
    authz = _Server(state)
    authz.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=lambda **kw: "at-" + secrets.token_urlsafe(24),
            refresh_token_generator=lambda **kw: "rt-" + secrets.token_urlsafe(24),
            expires_generator=lambda client, grant_type: max(1, round(expires_in)),
        ),
    )
    authz.register_grant(ClientCredentialsGrant)
    authz.register_grant(_Refresh)
    state._protector.register_token_validator(_Validator(state))
    handler = type("TokenHandler", (_Handler,), {"server_state": state, "authz": authz})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    state.port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, name="oauth-token-server", daemon=True)
    thread.start()

    def stop() -> None:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)

    return state, stop
