"""How an HTTP connector proves who it is: headers whose values may be ``secret:NAME`` references,
a bearer token, an API key, basic auth, or OAuth2 (client credentials, refresh token) through
Authlib's client.

Credentials are resolved at CALL time from a :class:`SecretSource` (the store's secret store, which
a :class:`~podium.Client` lends to the connectors it runs), so a secret set again is used by the
next call without a restart. After an HTTP 401 the connector calls :meth:`HttpAuth.rejected`: the
cached secret values are dropped and an OAuth2 token is fetched again (one fetch shared by every
concurrent call), and the request is sent once more. Settings hold references, never values: a
plain string where a credential goes is refused (wrap a value from the environment in
:class:`~podium.secret.Secret` in Python code).

``auth`` forms::

    {"type": "bearer", "token": "secret:CRM_TOKEN"}
    {"type": "api_key", "header": "X-API-Key", "value": "secret:CRM_KEY"}
    {"type": "basic", "username": "svc", "password": "secret:CRM_PASSWORD"}
    {"type": "oauth2_client_credentials", "token_url": "https://id.example.com/token",
     "client_id": "podium", "client_secret": "secret:CRM_CLIENT_SECRET", "scope": "contacts"}
    {"type": "oauth2_refresh_token", "token_url": ..., "client_id": ..., "client_secret": "secret:...",
     "refresh_token": "secret:CRM_REFRESH_TOKEN"}
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import weakref
from typing import Any, Protocol

from ..errors import CapabilityDenied, ConfigError, ConnectorError
from ..secret import Secret, quiet_request_lines, redact_known, remember
from ..tools._echo import sent_credentials
from ..tools._reading import default_deadline
from ._answers import MAX_TOKEN_BYTES, AnswerTooLarge, AnswerTooSlow, raise_hint
from ._stats import ConnectorStats

log = logging.getLogger("podium.connectors")

REF = "secret:"
#: Fields of ``auth`` that hold a credential: a ``secret:NAME`` reference (or a Secret), never text.
CREDENTIAL_FIELDS = ("token", "value", "password", "client_secret", "refresh_token")
#: Token endpoint errors that say "not now" rather than "no": the call is retried.
_TRANSIENT = ("temporarily_unavailable", "slow_down", "server_error")
TYPES = ("bearer", "api_key", "basic", "oauth2_client_credentials", "oauth2_refresh_token")
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # (required, optional)
    "bearer": (("token",), ()),
    "api_key": (("value",), ("header",)),
    "basic": (("username", "password"), ()),
    "oauth2_client_credentials": (("token_url", "client_id", "client_secret"), ("scope", "audience", "margin")),
    "oauth2_refresh_token": (("token_url", "client_id", "refresh_token"), ("client_secret", "scope", "margin")),
}


class SecretSource(Protocol):
    """Where ``secret:NAME`` references are read (a :class:`podium.storage.secrets.SecretStore`)."""

    async def get(self, name: str) -> Secret: ...

    def forget(self, name: str | None = None) -> None: ...


def ref_name(value: Any) -> str | None:
    """``"secret:CRM_TOKEN"`` -> ``"CRM_TOKEN"``; anything else -> None."""
    return value[len(REF) :].strip() if isinstance(value, str) and value.startswith(REF) else None


def parse_auth(auth: dict[str, Any] | str | None, *, token: Any = None) -> dict[str, Any] | None:
    """``auth`` checked (a mapping, or its JSON text from a registry); ``token`` alone is a bearer token."""
    if isinstance(auth, str):
        try:
            auth = json.loads(auth)
        except ValueError as exc:
            raise ConfigError(f"auth: not a JSON object ({exc})") from None
    if auth is None:
        return None if token is None else parse_auth({"type": "bearer", "token": token})
    if not isinstance(auth, dict):
        raise ConfigError(f"auth is a mapping with a 'type' ({', '.join(TYPES)}), got {type(auth).__name__}")
    kind = auth.get("type")
    if kind not in _FIELDS:
        raise ConfigError(f"auth type {kind!r} is unknown; types are: {', '.join(TYPES)}")
    required, optional = _FIELDS[str(kind)]
    missing = [f for f in required if not auth.get(f)]
    extra = sorted(set(auth) - {"type", *required, *optional})
    if missing or extra:
        raise ConfigError(
            f"auth type {kind}: "
            + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(extra)}"] if extra else [])
            )
            + f" (fields: {', '.join((*required, *optional))})"
        )
    for f in CREDENTIAL_FIELDS:
        if f in auth and not isinstance(auth[f], Secret) and ref_name(auth[f]) is None:
            raise ConfigError(
                f"auth.{f} holds a credential in clear text: store it (podium secrets set NAME) and write "
                f"\"secret:NAME\", or pass podium.secret.Secret(value) from Python code"
            )
    return dict(auth)


class HttpAuth:
    """The credentials of one HTTP connector: :meth:`headers` for each request, :meth:`rejected`
    after a 401. ``stats`` receives the token's expiry and the refresh count."""

    def __init__(
        self,
        headers: dict[str, Any] | None,
        auth: dict[str, Any] | None,
        *,
        stats: ConnectorStats,
        check_url: Any = None,
        timeout: float = 30.0,
        max_response_bytes: int = MAX_TOKEN_BYTES,
        deadline: float | None = None,
    ) -> None:
        self.static = dict(headers or {})
        self.auth = auth
        self.source: SecretSource | None = None
        limit = min(max_response_bytes, MAX_TOKEN_BYTES)  # a token answer is a few kilobytes
        self.oauth = OAuth2Token(
            auth, self, stats=stats, check_url=check_url, timeout=timeout, limit=limit, deadline=deadline
        ) if auth and str(
            auth["type"]
        ).startswith("oauth2") else None
        self.refs = sorted(
            {n for v in self.static.values() if (n := ref_name(v))}
            | {n for f in CREDENTIAL_FIELDS if auth and (n := ref_name(auth.get(f)))}
        )
        """The names of the secrets these credentials use."""
        self.secret_headers = [k for k, v in self.static.items() if isinstance(v, Secret) or ref_name(v)]
        """The headers whose value comes from a secret."""

    def sent_credentials(self, sent: dict[str, str]) -> list[str]:
        """The credential texts among the headers ``sent`` (masked in an answer that echoes them)."""
        return sent_credentials(sent, self.secret_headers, self.auth)

    async def aclose(self) -> None:
        """Release the token endpoint's HTTP client."""
        if self.oauth is not None:
            await self.oauth.aclose()

    @property
    def plain(self) -> bool:
        """No secret and no token: the headers are fixed text."""
        return self.auth is None and not self.refs

    async def value(self, v: Any, what: str) -> str:
        """The text of a setting: a Secret revealed, a ``secret:NAME`` read from the source."""
        if isinstance(v, Secret):
            return v.reveal()
        name = ref_name(v)
        if name is None:
            return str(v)
        if self.source is None:
            raise ConnectorError(
                f"{what} refers to secret {name!r}, but this connector has no secret store: give it to a "
                "Client (Client(connectors=...)) or build it with secrets=SecretStore(store)"
            )
        try:
            return (await self.source.get(name)).reveal()
        except ConfigError as exc:  # not set, or the key does not open it: no retry helps
            raise ConnectorError(f"{what}: {exc}") from None

    async def headers(self) -> tuple[dict[str, str], str]:
        """The headers to send, and a mark of the credentials used (given back to :meth:`rejected`):
        the OAuth2 access token, else a digest of the headers."""
        out = {k: await self.value(v, f"header {k}") for k, v in self.static.items()}
        auth = self.auth
        if auth is not None:
            kind = auth["type"]
            if kind == "bearer":
                out["Authorization"] = "Bearer " + await self.value(auth["token"], "auth.token")
            elif kind == "api_key":
                out[str(auth.get("header") or "X-API-Key")] = await self.value(auth["value"], "auth.value")
            elif kind == "basic":
                pair = f"{auth['username']}:{await self.value(auth['password'], 'auth.password')}".encode()
                out["Authorization"] = "Basic " + base64.b64encode(pair).decode()
                remember(out["Authorization"][6:])  # the password as sent: an API may echo the header
            else:
                assert self.oauth is not None
                token = await self.oauth.access_token()
                out["Authorization"] = f"Bearer {token}"
                return out, token
        return out, hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()

    async def rejected(self, mark: str) -> bool:
        """The system answered 401 to the credential ``mark``: drop cached secrets, get a new token.
        True when the request is worth sending again (the credential changed)."""
        if self.plain:
            return False
        if self.oauth is not None:  # the access token was refused, not the client's credentials
            await self.oauth.invalidate(mark)
            return True
        if self.source is not None:
            for name in self.refs:
                self.source.forget(name)
        _, now = await self.headers()
        return now != mark


def _authlib_http() -> Any:
    """The HTTP library Authlib's client is built on: ``httpx2`` where it is installed (whose
    errors are not ``httpx``'s: an ``except httpx.TransportError`` does not catch them), else
    ``httpx``."""
    try:
        from authlib.integrations.httpx_client._compat import httpx2
    except ImportError:  # an Authlib before the httpx2 move
        from ..models._http import httpx_module

        return httpx_module()
    quiet_request_lines("httpx2")
    return httpx2


def _quiet(task: asyncio.Future[Any]) -> None:
    """Retrieve a finished task's error (logged), so that no 'exception was never retrieved' follows."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("OAuth2: a token fetch whose caller was cancelled failed: %s", redact_known(str(task.exception())))


class OAuth2Token:
    """An OAuth2 access token, fetched with Authlib's ``AsyncOAuth2Client`` and fetched again before it
    expires (``margin`` seconds early, at most a quarter of its lifetime) or after a 401. Concurrent
    callers share one fetch (a lock). A refresh token the server rotates is kept for the next
    refresh and written back to the secret store, so that a restart uses the current one."""

    def __init__(
        self, auth: dict[str, Any], creds: HttpAuth, *, stats: ConnectorStats, check_url: Any, timeout: float,
        limit: int = MAX_TOKEN_BYTES, deadline: float | None = None,
    ) -> None:
        self.auth = auth
        self.limit = limit
        """The token endpoint's answer's bytes (decompressed) read at most."""
        self.deadline = default_deadline(timeout) if deadline is None else deadline
        """Seconds for one whole token request (the connector's ``deadline``)."""
        self.creds = creds
        self.stats = stats
        self.check_url = check_url
        self.timeout = timeout
        self.margin = float(auth.get("margin", 30.0))
        self.token: dict[str, Any] | None = None
        self.refresh: str | None = None  # the rotated refresh token, once the server sent one
        self._spent: set[str] = set()  # the refresh tokens this connector rotated away from
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._pinned: Any = None  # the token endpoint's address as last checked (None: sent as it is)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    async def aclose(self) -> None:
        """Close the token endpoint's HTTP client of the running event loop."""
        oauth = self._clients.pop(asyncio.get_running_loop(), None)
        if oauth is not None:
            await oauth.aclose()

    def _valid(self) -> str | None:
        token = self.token
        if token is None:
            return None
        expires_at = token.get("expires_at")
        if expires_at is not None:
            lifetime = float(token.get("expires_in") or 0) or 60.0
            if time.time() >= float(expires_at) - min(self.margin, lifetime / 4):
                return None
        return str(token["access_token"])

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:  # a lock belongs to one event loop
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def access_token(self) -> str:
        """A token valid for at least the margin (fetched when needed, once for concurrent callers)."""
        found = self._valid()
        if found is not None:
            return found
        async with self.lock():
            found = self._valid()
            if found is None:
                await self._fetch()
                found = self._valid() or str(self.token["access_token"])  # type: ignore[index]
            return found

    async def invalidate(self, used: str) -> None:
        """The system refused ``used``: forget it (unless a concurrent call already replaced it)."""
        async with self.lock():
            if self.token is not None and self.token.get("access_token") == used:
                self.token = None

    async def _fetch(self) -> None:
        """:meth:`_fetch_leased`, carried on when its caller is cancelled (a step's timeout): a server
        that rotated the refresh token meanwhile has spent the old one, and the new one, in the
        answer, is kept and written back instead of lost."""
        task = self._inflight  # one whose caller was cancelled, still going: wait for it, not a second
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._inflight = asyncio.ensure_future(self._fetch_leased())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_quiet)  # its failure was its caller's, who is gone
            raise

    async def _fetch_leased(self) -> None:
        """Fetch a token; a refresh token kept in the Podium store's secret store is refreshed by one
        process at a time (a lease in that store: ``_refresh_lock``), so that processes sharing it
        never send the same one twice (a server may revoke the whole family on reuse)."""
        name = ref_name(self.auth.get("refresh_token")) if self.auth["type"] == "oauth2_refresh_token" else None
        store = getattr(self.creds.source, "store", None)
        if name is None or store is None:
            return await self._fetch_now()
        from ._refresh_lock import MARGIN, RefreshLock, lease_for

        lock = RefreshLock(store, name, lease=lease_for(self.timeout))
        mine = await lock.acquire()
        try:
            try:  # ends before the lease does: another process never sends the same token meanwhile
                async with asyncio.timeout(lock.lease - MARGIN):
                    await self._fetch_now()
            except TimeoutError:
                raise ConnectorError(
                    f"OAuth2 token endpoint {self.auth['token_url']} did not answer the refresh of secret {name!r} "
                    f"within {lock.lease - MARGIN:g} s; trying again later",
                    retryable=True,
                ) from None
        finally:
            try:
                await lock.release(mine)
            except Exception:  # the lease then ends by itself
                log.warning("OAuth2: could not release the refresh lease of secret %r", name, exc_info=True)

    async def _fetch_now(self, again: bool = True) -> None:
        from authlib.integrations.base_client.errors import OAuthError
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        httpx = _authlib_http()  # its errors and transports, not httpx's: they are other classes
        auth, url = self.auth, str(self.auth["token_url"])
        if self.check_url is not None:
            try:  # the request goes to the address checked: a DNS answer changed since cannot move it
                self._pinned = await self.check_url(url)
            except CapabilityDenied as exc:
                raise ConnectorError(f"OAuth2 token_url: {exc}") from None
        secret = await self.creds.value(auth["client_secret"], "auth.client_secret") if auth.get("client_secret") else None
        extra = {k: auth[k] for k in ("audience",) if auth.get(k)}
        asked = time.time()  # the token's lifetime counts from before the request (Authlib rounds it down)
        loop = asyncio.get_running_loop()
        oauth = self._clients.get(loop)
        if oauth is None or oauth.is_closed:  # one per event loop: making one costs ~0.1 s (its TLS context)
            from ..tools._network import pinned_transport
            from ._answers import capped_transport

            oauth = AsyncOAuth2Client(
                client_id=str(auth["client_id"]),
                scope=auth.get("scope"),
                timeout=self.timeout,
                trust_env=False,
                follow_redirects=False,
                transport=capped_transport(httpx, pinned_transport(httpx, lambda: self._pinned), self.limit, self.deadline),
            )
            self._clients[loop] = oauth
        oauth.client_secret = secret  # read at each request: a rotated secret is used at once
        oauth.token_endpoint_auth_method = "client_secret_basic" if secret else "none"
        current = None
        try:
            if auth["type"] == "oauth2_refresh_token":
                current = await self._refresh_token()
                token = await oauth.refresh_token(url, refresh_token=current, **extra)
            else:
                token = await oauth.fetch_token(url, grant_type="client_credentials", **extra)
        except OAuthError as exc:
            if again and exc.error == "invalid_client" and self.creds.source is not None:
                self.creds.source.forget()  # the client secret may have been rotated meanwhile
                return await self._fetch_now(again=False)
            if again and exc.error == "invalid_grant" and current is not None and await self._refresh_token() != current:
                return await self._fetch_now(again=False)  # another process rotated it meanwhile: use its
            if exc.error in _TRANSIENT:  # busy for a moment (a 429 with an OAuth error body): ask again later
                raise ConnectorError(
                    f"OAuth2 token endpoint {url} is not issuing tokens for now ({exc.error}); trying again", retryable=True
                ) from None
            raise ConnectorError(self._refused(str(exc.error), str(exc.description or ""))) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise ConnectorError(
                f"OAuth2 token endpoint {url} answered HTTP {status}", retryable=status >= 500 or status == 429, status=status
            ) from None
        except httpx.TransportError as exc:
            raise ConnectorError(
                f"OAuth2 token endpoint {url} could not be reached ({type(exc).__name__})", retryable=True
            ) from None
        except AnswerTooSlow as exc:
            raise ConnectorError(
                f"OAuth2 token endpoint {url} did not answer in full within {exc.deadline:g} s (the connector's "
                "deadline); no token was taken, trying again",
                retryable=True,
            ) from None
        except AnswerTooLarge:
            raise ConnectorError(
                f"OAuth2 token endpoint {url} answered with more than {self.limit:,} bytes, more than any token answer "
                "holds; it was not read further and no token was taken. Check token_url: it should name the "
                "provider's token endpoint" + ("" if self.limit >= MAX_TOKEN_BYTES else f"; or {raise_hint('openapi')}")
            ) from None
        except ValueError as exc:  # answered, but not with JSON, or expires_in is no number
            raise ConnectorError(
                f"OAuth2 token endpoint {url} answered with a token response that cannot be read ({type(exc).__name__}: "
                "not JSON, or an expires_in that is not a number of seconds); check token_url and the provider's format"
            ) from None
        access = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access, str) or not access:
            fields = ", ".join(sorted(map(str, token))) if isinstance(token, dict) else type(token).__name__
            raise ConnectorError(
                f"OAuth2 token endpoint {url} answered without an access_token (a string, RFC 6749 section 5.1); "
                f"its answer holds: {fields or 'nothing'}; check token_url and the provider's format"
            )
        self.token = dict(token)
        for credential in (self.token.get("access_token"), self.token.get("refresh_token")):
            if credential:  # masked by content from now on: an API may echo it back in an error
                remember(str(credential))
        if self.token.get("expires_in"):
            self.token["expires_at"] = asked + float(self.token["expires_in"])
        self.stats.token_refreshes += 1
        self.stats.token_expires_at = self.token.get("expires_at")
        rotated = self.token.get("refresh_token")
        if auth["type"] == "oauth2_refresh_token" and rotated and rotated != current:
            if current is not None:
                if len(self._spent) >= 256:  # a process that runs for years: only the recent ones matter
                    self._spent.clear()
                self._spent.add(current)
            self.refresh = str(rotated)
            await self._save_refresh_token(str(rotated))

    async def _refresh_token(self) -> str:
        """The refresh token to send: the store's current one, read afresh (another process sharing
        it may have rotated it; the server refuses a spent one, and some revoke every token of the
        family when one is reused), unless the store still holds one this connector has rotated away
        from (writing the new one back failed, or the setting is a fixed Secret): then the new one."""
        name = ref_name(self.auth["refresh_token"])
        if name and self.creds.source is not None:
            self.creds.source.forget(name)
        stored = await self.creds.value(self.auth["refresh_token"], "auth.refresh_token")
        if self.refresh is not None and stored in self._spent:
            return self.refresh
        return stored

    async def _save_refresh_token(self, value: str) -> None:
        """Write the rotated refresh token back. A store that refuses the write does not fail the
        call, which has its token: the new refresh token is kept in memory (and used while the store
        holds a spent one), and written back at the next rotation; the warning says a restart
        before then needs it set again."""
        name = ref_name(self.auth["refresh_token"])
        put = getattr(self.creds.source, "put", None)
        if not name or put is None:
            return
        try:
            await put(name, Secret(value), by="connector")
        except Exception as exc:
            log.warning(
                "OAuth2: the refresh token the server rotated could not be written back to secret %r (%s: %s); this "
                "process goes on with it, but a restart before the next rotation would send the spent one: if that "
                "happens, authorize again and set it with podium secrets set %s",
                name, type(exc).__name__, redact_known(str(exc))[:200], name,
            )  # fmt: skip

    def _refused(self, error: str, description: str) -> str:
        auth = self.auth
        which = {
            "invalid_client": ("client_secret", "the client id or secret"),
            "invalid_grant": ("refresh_token", "the refresh token"),
        }.get(error)
        fix = ""
        if which is not None:
            name = ref_name(auth.get(which[0]))
            fix = f"; {which[1]} was refused" + (f": set the current one with podium secrets set {name}" if name else "")
        return f"OAuth2 token endpoint {auth['token_url']} refused client {auth['client_id']!r}: {error}" + (
            f" ({description[:200]})" if description else ""
        ) + fix
