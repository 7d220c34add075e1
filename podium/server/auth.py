"""Who is calling: ``Authorization: Bearer pod_...`` -> ``client.authenticate`` -> the request acts
as that principal (``client.acting_as``), so the engine's RBAC and audit apply to every endpoint.

A store without users is in local mode: requests without a token act as the local user. The
live streams alone (``EventSource`` cannot send headers) may pass the token as ``?token=``
(dependency :func:`acting_stream`); every other route answers 401 to a ``?token=``, so that tokens
are not written to access logs and browser histories by requests that have no need to. A stream
checks its token again every :data:`RECHECK_SECONDS` while it is open (:class:`Recheck`): a token
revoked or expired, or a user disabled, ends it; a role taken away narrows it.

In local mode a request that a browser marks as coming from another site (``Sec-Fetch-Site``, a
foreign ``Origin``) is refused (:func:`refuse_other_sites`): another site's page cannot act as the
local user.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from ..errors import AuthError, PermissionDenied
from ..governance.identity import Principal
from ..governance.service import USERS
from .errors import body
from .openapi import BEARER_DESCRIPTION as BEARER

#: How often an open stream checks its caller's token again: a token revoked while a stream is
#: open is refused there within this many seconds, as on every other request at once.
RECHECK_SECONDS = 5.0

# Declared for the OpenAPI document (the bearer scheme on every route that authenticates); the
# header itself is read by principal_for below, which gives the errors a person can act on.
bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth", bearerFormat="pod_...", description=BEARER)
stream_token = APIKeyQuery(
    name="token",
    auto_error=False,
    scheme_name="streamToken",
    description="The live streams only (EventSource cannot send headers): the API token as ?token=pod_...",
)


async def had_users(client: Any) -> bool:
    """True when the store has users, or had: a ``user.put`` in its audit log (users are disabled,
    never deleted, so one means users for good). Read once, at the server's start: the ``users``
    rows deleted behind the engine (a database writer without the audit key) and a restart must
    not turn a server with users into one answering every caller as the local admin."""
    gov = client.governance
    if gov.users_exist or await client.store.kv_count(USERS):
        return True
    return bool(await client.store.audit_user_put())  # one indexed lookup, not a read of the whole log


async def principal_for(
    client: Any, authorization: str | None, query_token: str | None = None, *, headers: Any = None, any_host: bool = False
) -> Principal:
    token: str | None = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>' (a pod_... API token)")
        token = value.strip()
    elif query_token:
        token = query_token
    if token is not None:
        principal: Principal = await client.authenticate(token)
        return principal
    gov = client.governance
    if gov.users_exist or await client.store.kv_list(USERS):
        # Once some, for good (as the engine's own view): user rows deleted behind the engine (a
        # database writer) must not make a running server answer every caller as the local admin.
        gov.users_exist = True
        raise AuthError(
            "this server has users: send an API token as 'Authorization: Bearer pod_...' "
            "(an admin creates one with 'podium tokens create USER')"
        )
    if headers is not None:
        refuse_other_sites(headers, any_host=any_host)
    return Principal.local_user()


def refuse_other_sites(headers: Any, *, any_host: bool = False) -> None:
    """Local mode trusts every caller, and a browser would lend that trust to any page it shows: a
    page of another site could deploy a workflow (a text/plain POST needs no CORS preflight) or
    start one through a GET webhook. So a request the browser marks as coming from another site
    (``Sec-Fetch-Site``, or an ``Origin`` other than this server) acts as nobody. Programs (curl,
    the CLI, SDKs) send neither header; the dashboard's own requests are same-origin.

    A page of another site can also point its own name at this machine (DNS rebinding): its
    requests are then same-origin to the browser, but carry that name as ``Host``. So unless the
    server was started with ``--allow-remote-local-mode`` (``any_host``), only loopback names
    (127.0.0.1, ::1, localhost) are answered."""
    site = (headers.get("sec-fetch-site") or "").lower()
    origin = headers.get("origin")
    host = (headers.get("host") or "").lower()
    if not any_host and not _loopback_name(host):
        raise PermissionDenied(
            f"a request for host {host or '(none)'!r} may not act as the local user: without users (local "
            "mode) this server answers loopback names only (http://127.0.0.1:PORT/, http://localhost:PORT/), "
            "as a page of another site can point its own name at this machine. Reach it by one of those, or "
            "add users and send a token (podium users add NAME --role admin --token), or start it with "
            "--allow-remote-local-mode on a trusted network"
        )
    referer = headers.get("referer")  # what an older browser without Sec-Fetch-* still sends on a link
    foreign = referer is not None and urlsplit(referer).netloc.lower() != host
    if site in ("", "same-origin", "none") and (origin is None or urlsplit(origin).netloc.lower() == host) and not foreign:
        return
    if origin:
        source = f"origin {origin}"
    elif foreign and referer:
        source = f"a page of {urlsplit(referer).netloc or 'another site'}"
    else:
        source = f"a {site} page"
    raise PermissionDenied(
        f"a request from {source} may not act as the local user: without users (local mode) this "
        f"server trusts every caller, so it answers only its own dashboard (http://{host or 'HOST'}/) "
        "and programs. To call it from another site, add users and send a token: podium users add "
        "NAME --role admin --token"
    )


def _loopback_name(host: str) -> bool:
    """Whether a ``Host`` header names this machine only: 127.0.0.0/8, ::1, localhost (with any port)."""
    import ipaddress

    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]").rstrip(".")
    if name == "localhost":  # not *.localhost: a client that asks DNS for it would reopen rebinding
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _any_host(app: Any) -> bool:
    return bool(getattr(getattr(app.state, "settings", None), "allow_remote_local_mode", False))


_QUERY_TOKEN = (
    "?token= is accepted only by the live streams (/api/runs/stream, /api/runs/{id}/stream); "
    "send the token as the header 'Authorization: Bearer pod_...'"
)

#: Where :func:`body_gate` leaves the caller it found, for :func:`acting` (no second token lookup).
GATED = "podium.caller"


async def body_gate(app: Any, scope: Any) -> tuple[int, str, str] | None:
    """Who a request with a body is from, asked before the body is read (``limits.RequestLimits``):
    None when the caller is known (kept in the scope for :func:`acting`), else the refusal. Without
    it, anyone who reaches the port could have the server read and parse ``--max-request-size``
    bytes per request without a token."""
    from starlette.datastructures import Headers

    from ..errors import PodiumError

    headers = Headers(scope=scope)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "token" in query and not headers.get("authorization"):
        return 401, "unauthorized", _QUERY_TOKEN  # as acting() says it: no stream takes a body
    try:
        who = await principal_for(app.state.client, headers.get("authorization"), headers=headers, any_host=_any_host(app))
    except PermissionDenied as exc:
        return 403, "permission_denied", str(exc)
    except AuthError as exc:
        return 401, "unauthorized", str(exc)
    except PodiumError as exc:  # the store does not answer: the request could not be served anyway
        return 503, "store_unavailable", f"could not check the caller's token: {exc}"
    scope[GATED] = (headers.get("authorization"), who)
    return None


async def acting(
    request: Request, _: HTTPAuthorizationCredentials | None = Security(bearer)
) -> AsyncIterator[Principal]:
    """FastAPI dependency: the caller, set as the acting principal for the rest of the request."""
    if "token" in request.query_params:
        raise AuthError(_QUERY_TOKEN)
    client = request.app.state.client
    gated = request.scope.get(GATED)
    if gated is not None and gated[0] == request.headers.get("authorization"):  # checked a moment ago
        who = gated[1]
    else:
        who = await principal_for(
            client, request.headers.get("authorization"), headers=request.headers, any_host=_any_host(request.app)
        )
    with client.acting_as(who):
        yield who


async def acting_stream(
    request: Request,
    _: HTTPAuthorizationCredentials | None = Security(bearer),
    __: str | None = Security(stream_token),
) -> AsyncIterator[Principal]:
    """:func:`acting` for the server-sent event streams: the token may also come as ``?token=``."""
    client = request.app.state.client
    who = await principal_for(
        client,
        request.headers.get("authorization"),
        request.query_params.get("token"),
        headers=request.headers,
        any_host=_any_host(request.app),
    )
    with client.acting_as(who):
        yield who


class Recheck:
    """The caller of a live stream as of now: the stream authenticated once when it opened, and a
    connection can stay open for days (the dashboard's). Every :data:`RECHECK_SECONDS` the token
    (header or ``?token=``) is checked again, as a new request would be: a revoked or expired
    token, a disabled user, or a caller who lost ``permission``, ends the stream
    (:meth:`refusal` gives its last event); a role taken away narrows what it sends next."""

    def __init__(self, request: Request, who: Principal, permission: str = "runs.read") -> None:
        self.request = request
        self.who = who
        self.permission = permission
        self.checked = time.monotonic()
        self.refused: str | None = None

    async def now(self) -> Principal | None:
        """The caller now (checked again if due), or None if they may no longer read the stream."""
        if time.monotonic() - self.checked < RECHECK_SECONDS:
            return self.who
        self.checked = time.monotonic()
        app = self.request.app
        try:
            who = await principal_for(
                app.state.client,
                self.request.headers.get("authorization"),
                self.request.query_params.get("token"),
                headers=self.request.headers,
                any_host=_any_host(app),
            )
            if not who.can(self.permission):
                with app.state.client.acting_as(who):
                    await app.state.client.authorize(self.permission, "stream")  # audited, raises
        except AuthError as exc:
            self.refused = json.dumps(body("unauthorized", f"{exc}; this stream has ended: reconnect with a valid token"))
            return None
        except PermissionDenied as exc:
            self.refused = json.dumps(body("permission_denied", f"{exc}; this stream has ended"))
            return None
        self.who = who
        return who

    def refusal(self) -> str:
        """The stream's last event, saying why it ends."""
        return f"event: error\ndata: {self.refused}\n\n"
