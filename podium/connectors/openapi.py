"""REST APIs described by an OpenAPI 3 document: each ``operationId`` becomes a typed operation.

The arguments of an operation are its parameters by name (path, query and header parameters), plus
``body`` for a JSON request body. Path parameters are percent-encoded as one path segment each, so
an argument can never change which path is asked for. The host is resolved and checked before any
connection: loopback, private and link-local addresses are refused unless the connector is built
with ``allow_private=True``. Unsafe methods (POST, PUT, PATCH, DELETE) send the call's
``Idempotency-Key`` header, stable across retries and resumes: a server that honours it applies the
call once (effectively-once); otherwise delivery is at-least-once. HTTP 429 and 503 honour
``Retry-After``; 5xx and transport errors are retryable; other 4xx are not. ``Deprecation`` and
``Sunset`` headers are warned about and audited once per operation; a 410, or a 404 once a new
version was announced, is a non-retryable error that says to update the spec (see ``_versions``).

Credentials (``headers`` values, ``token``, ``auth``: bearer, API key, basic, OAuth2 client
credentials or refresh token) are ``secret:NAME`` references read from the secret store at call
time; an HTTP 401 is answered once with fresh credentials inside the same call (see ``_auth``).

An answer is read up to ``max_response_bytes`` (10 MiB by default; a token endpoint's up to 1 MiB):
a larger success fails the call, non-retryable, naming the setting (see ``_answers``).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import CapabilityDenied, ConfigError, ConnectorError
from ..models._http import httpx_module, retry_after
from ..tools._echo import mask_echoed
from ..tools._network import Pinned, pin, resolve_checked
from . import _versions
from ._answers import MAX_RESPONSE_BYTES, AnswerTooLarge, AnswerTooSlow, raise_hint, reading, slow_hint
from ._auth import HttpAuth, SecretSource, parse_auth
from ._base import Connector, Operation, check_json_body
from ._contracts import from_openapi

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_SAFE = {"GET", "HEAD", "OPTIONS"}
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
_FIX = "build the connector with allow_private=True (podium connectors: see docs/connectors.md)"


def load_spec(spec: dict[str, Any] | str) -> dict[str, Any]:
    """An OpenAPI document from a mapping, or a JSON/YAML file path."""
    if isinstance(spec, dict):
        doc = spec
    elif isinstance(spec, str) and os.path.isfile(os.path.expanduser(spec)):
        import yaml

        with open(os.path.expanduser(spec), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    elif isinstance(spec, str):
        where = os.path.abspath(os.path.expanduser(spec))
        raise ConfigError(
            f"the openapi connector's spec file {spec!r} does not exist here ({where}, from {os.getcwd()}); "
            "give the path of the API's OpenAPI document (JSON or YAML) as this process sees it, e.g. "
            "podium connectors add NAME openapi --set spec=/abs/path/openapi.yaml"
        )
    else:
        raise ConfigError(f"an openapi connector's spec is a mapping or a file (JSON or YAML), got {spec!r}")
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3"):
        raise ConfigError("the spec is not an OpenAPI 3 document (no `openapi: 3.x` field)")
    return doc


def _resolve(doc: dict[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with its local ``$ref``s inlined (a recursive reference is left as ``{}``)."""
    if isinstance(node, list):
        return [_resolve(doc, n, seen) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/") or ref in seen:
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        return _resolve(doc, target, (*seen, ref))
    return {k: _resolve(doc, v, seen) for k, v in node.items()}


def _origin(url: str) -> tuple[str, str, str, int]:
    """Scheme, user part, host and port of ``url``: where a request goes (and as whom)."""
    parts = urlsplit(url)
    try:
        port = parts.port or -1
    except ValueError:
        port = -2
    return parts.scheme, parts.netloc.rpartition("@")[0], str(parts.hostname), port


def _where(url: str) -> str:
    """``url``'s scheme, host and port, for a message (never its user part)."""
    scheme, _, host, port = _origin(url)
    return f"{scheme}://{host}" + (f":{port}" if port >= 0 else "")


_HEADER_TEXT = re.compile(r"[\t\x20-\x7e]*")


def _header_value(operation: str, name: str, text: str) -> str:
    """``text`` if an HTTP header can carry it as it is. A line break would end the header (and
    start one the argument chose); NUL and other control characters, and characters outside ASCII,
    make the HTTP library refuse the request, which is no failure of the system: a non-retryable
    error that names the argument, so that it neither retries nor opens the breaker for every run."""
    if _HEADER_TEXT.fullmatch(text):
        return text
    bad = next(c for c in text if not _HEADER_TEXT.fullmatch(c))
    kind = "a line break" if bad in "\r\n" else "a control character" if ord(bad) < 0x80 else "a character outside ASCII"
    raise ConnectorError(
        f"openapi: {operation}: the header argument {name!r} holds {kind} ({bad!a}), which an HTTP header "
        "cannot carry; nothing was sent. Give it printable ASCII text (encode other text, e.g. percent-encoding, "
        "if the API documents one)",
        operation=operation,
    )


class _Route:
    __slots__ = ("body", "method", "params", "path")

    def __init__(self, method: str, path: str, params: list[dict[str, Any]], body: bool) -> None:
        self.method, self.path, self.params, self.body = method, path, params, body


class OpenApiConnector(Connector):
    """An HTTP API from its OpenAPI document (``spec``: a mapping or a file) at ``base_url``."""

    kind = "openapi"

    def __init__(
        self,
        spec: dict[str, Any] | str,
        base_url: str | None = None,
        *,
        headers: dict[str, Any] | None = None,
        allow_private: bool = False,
        timeout: float = 30.0,
        auth: dict[str, Any] | str | None = None,
        token: Any = None,
        secrets: SecretSource | None = None,
        max_response_bytes: int | str = MAX_RESPONSE_BYTES,
        deadline: float | str | None = None,
    ) -> None:
        doc = load_spec(spec)
        servers = doc.get("servers") or [{}]
        url = base_url or str(servers[0].get("url") or "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"an openapi connector needs an absolute http(s) base_url, got {url!r}")
        self.base_url = url.rstrip("/")
        self.allow_private = allow_private
        self.max_response_bytes, self.deadline, self._pool = reading(self.kind, max_response_bytes, deadline, timeout)
        """An answer's bytes (decompressed) read at most, a larger success failing the call; and the
        seconds for one whole request (connecting, sending, reading the whole answer), by default
        the larger of 120 and four times ``timeout`` (the wait for one read)."""
        self.credentials = HttpAuth(
            headers, parse_auth(auth, token=token), stats=self.stats, check_url=self._check_token_url, timeout=timeout,
            max_response_bytes=self.max_response_bytes, deadline=self.deadline,
        )  # fmt: skip
        """Headers and credentials, resolved at call time (``secret:NAME``, OAuth2: see ``_auth``)."""
        self.credentials.source = secrets
        self.title = str((doc.get("info") or {}).get("title") or "")
        self._ops: dict[str, Operation] = {}
        self._routes: dict[str, _Route] = {}
        for path, item in (doc.get("paths") or {}).items():
            if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
                raise ConfigError(
                    f"the OpenAPI document's paths: {path!r} must start with '/' (a single one): it is appended to "
                    f"base_url {_where(self.base_url)}, and a path like '@host/x' or '.host/x' would send the request and its "
                    "credentials to another host; fix the path in the document"
                )
            item = _resolve(doc, item)
            for method in _METHODS:
                spec_op = item.get(method)
                if isinstance(spec_op, dict) and spec_op.get("operationId"):
                    self._add(doc, path, method.upper(), spec_op, item.get("parameters") or [])

    def _add(self, doc: dict[str, Any], path: str, method: str, op: dict[str, Any], shared: list[Any]) -> None:
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(op["operationId"]))
        params = {(p.get("in"), p.get("name")): p for p in [*shared, *(op.get("parameters") or [])]}
        props: dict[str, Any] = {}
        required: list[str] = []
        kept = []
        for (where, pname), p in params.items():
            if where not in ("path", "query", "header") or not pname:
                continue
            kept.append(p)
            props[pname] = {**(p.get("schema") or {"type": "string"}), **({"description": p["description"]} if p.get("description") else {})}
            if p.get("required") or where == "path":
                required.append(pname)
        content = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
        if content is not None:
            props["body"] = content.get("schema") or {"type": "object"}
            if (op.get("requestBody") or {}).get("required"):
                required.append("body")
        responses = op.get("responses") or {}
        ok = next((responses[c] for c in ("200", "201", "202") if c in responses), None) or {}
        out = ((ok.get("content") or {}).get("application/json") or {}).get("schema")
        schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = required
        self._ops[name] = Operation(
            name=name,
            description=str(op.get("summary") or op.get("description") or f"{method} {path}")[:500],
            input=schema,
            output=from_openapi(out) if isinstance(out, dict) else None,  # the contract results are checked against
            safe=method in _SAFE,
        )
        self._routes[name] = _Route(method, path, kept, content is not None)

    def operations(self) -> list[Operation]:
        return list(self._ops.values())

    @property
    def secrets(self) -> SecretSource | None:
        """Where ``secret:NAME`` settings are read; a Client lends its store's when this is None."""
        return self.credentials.source

    @secrets.setter
    def secrets(self, source: SecretSource | None) -> None:
        self.credentials.source = source

    async def _check_token_url(self, url: str) -> Pinned | None:
        """The token endpoint's host checked: the address to connect to (None: private allowed)."""
        pinned = await resolve_checked(url, allow_private=self.allow_private, what="an OAuth2 token_url", fix=_FIX)
        return None if self.allow_private else pinned

    async def close(self) -> None:
        await self._pool.aclose()
        await self.credentials.aclose()

    async def health(self) -> dict[str, Any]:
        httpx = httpx_module()
        try:
            pinned = await resolve_checked(self.base_url, allow_private=self.allow_private, what="openapi health", fix="")
            target, host, extensions = pin(self.base_url + "/", pinned, self.allow_private)  # no second lookup
            response = await self._pool.get().request("HEAD", target, headers=host, extensions=extensions or None)
        except CapabilityDenied:
            return {"ok": False, "error": "the host is not allowed", "breaker": self.breaker.state}
        except (httpx.TransportError, httpx.DecodingError, AnswerTooLarge, AnswerTooSlow) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}", "breaker": self.breaker.state}
        return {"ok": response.status_code < 500, "status": response.status_code, "breaker": self.breaker.state}

    def request_for(self, operation: str, arguments: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, str], Any]:
        """``(method, url, query, headers, body)`` for a call; raises a non-retryable error for bad arguments."""
        self.operation(operation)
        route = self._routes[operation]
        args = dict(arguments or {})
        path, query, headers = route.path, {}, {}
        for p in route.params:
            pname, where = p["name"], p["in"]
            if pname not in args:
                if p.get("required") or where == "path":
                    raise ConnectorError(f"openapi: {operation} needs the argument {pname!r}", operation=operation)
                continue
            value = args.pop(pname)
            text = value if isinstance(value, str) else json.dumps(value)
            if where == "path":
                if text == "":
                    raise ConnectorError(f"openapi: {operation}: the argument {pname!r} is empty", operation=operation)
                encoded = quote(text, safe="")
                if encoded.strip(".") == "":
                    encoded = encoded.replace(".", "%2E")
                path = path.replace("{" + pname + "}", encoded)
            elif where == "query":
                query[pname] = text
            else:
                headers[pname] = _header_value(operation, pname, text)
        body = args.pop("body", None) if route.body else None
        check_json_body("openapi", operation, body)
        if args:
            raise ConnectorError(
                f"openapi: {operation} takes no argument {', '.join(map(repr, sorted(args)))}", operation=operation
            )
        url = self.base_url + path
        if _origin(url) != _origin(self.base_url):  # the credentials go to base_url's host, nowhere else
            raise ConnectorError(
                f"openapi: {operation}: the request would go to {_where(url)}, outside its base_url {_where(self.base_url)}; "
                "nothing was sent (the route's path must start with '/')",
                operation=operation,
            )
        return route.method, url, query, headers, body

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        httpx = httpx_module()
        method, url, query, extra, body = self.request_for(operation, arguments)
        if idempotency_key and method not in _SAFE:
            extra["Idempotency-Key"] = idempotency_key
        try:
            pinned = await resolve_checked(
                url, allow_private=self.allow_private, what=f"openapi connector {self.title or self.base_url!r}", fix=_FIX
            )
        except CapabilityDenied as exc:
            raise ConnectorError(str(exc), operation=operation) from None
        target, host, extensions = pin(url, pinned, self.allow_private)  # the address checked, naming the host
        extra.update(host)
        for attempt in (1, 2):  # a 401 is answered once with fresh credentials (rotated, re-fetched)
            try:
                sent, mark = await self.credentials.headers()
            except ConnectorError as exc:
                exc.operation = operation
                raise
            try:
                response = await self._pool.get().request(
                    method, target, params=query or None, json=body, headers={**sent, **extra}, extensions=extensions or None
                )
            except httpx.TransportError as exc:
                raise ConnectorError(
                    f"openapi: {method} {url} could not be reached ({type(exc).__name__})", retryable=True, operation=operation
                ) from exc
            except AnswerTooLarge as exc:
                raise self._too_large(operation, method, exc.limit) from None
            except AnswerTooSlow as exc:
                raise self._too_slow(operation, method, exc) from None
            if response.status_code != 401 or attempt == 2 or not await self.credentials.rejected(mark):
                break
        status = response.status_code
        where = f"openapi connector {self.title or self.base_url!r}"
        if 300 <= status < 400 and status != 304:  # its page is no answer of the operation's
            raise ConnectorError(
                f"{where}: {operation} ({method} {self._routes[operation].path}) answered HTTP {status}, a redirect, "
                "which is not followed (the host checked is the host reached); set base_url to the address the API "
                "answers at",
                operation=operation, status=status,
            )  # fmt: skip
        if status >= 400:
            route = f"{method} {self._routes[operation].path}"  # the template: the URL holds the arguments
            gone = _versions.gone_error(self, operation, where, route, status, response.headers, response.text)
            if gone is not None:  # this version of the API is retired: no retry, no breaker, a clear fix
                raise gone
            refused = "; the credentials were refused (auth, secret:NAME: podium secrets set NAME)" if status == 401 else ""
            raise ConnectorError(
                f"openapi: {operation} ({method} {url}) answered HTTP {status}: {response.text[:200]}{refused}",
                retryable=status in _RETRYABLE,
                retry_after=retry_after(response.headers) if status in (429, 503) else None,
                operation=operation,
                status=status,
            )
        _versions.note_deprecation(self, operation, response.headers, where)
        if not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            try:
                value = response.json()
            except ValueError:
                raise self._unreadable(operation, method, status, where) from None
        else:
            value = response.text
        return mask_echoed(value, self.credentials.sent_credentials(sent))  # an answer echoing what it was sent

    def _too_large(self, operation: str, method: str, limit: int) -> ConnectorError:
        """A success whose answer is over ``max_response_bytes``: not read further, and not asked
        again (the same answer would come back; a write was applied already)."""
        route = f"{method} {self._routes[operation].path}"
        applied = "" if method in _SAFE else " The system applied it (it answered with success); it is not made again."
        return ConnectorError(
            f"openapi connector {self.title or self.base_url!r}: {operation} ({route}) answered with more than "
            f"{limit:,} bytes, its max_response_bytes; the answer was not read further and the call failed.{applied} "
            f"Ask for less (a page, a filter), or {raise_hint(self.kind)}",
            operation=operation,
        )

    def _too_slow(self, operation: str, method: str, late: AnswerTooSlow) -> ConnectorError:
        """A request not answered in full within ``deadline``: a read is asked again; a write is
        not (the system may have applied it, or did, if it had begun a success)."""
        route = f"{method} {self._routes[operation].path}"
        said = f"{self.kind} connector {self.title or self.base_url!r}: {operation} ({route}) was not answered in full {late.within}"
        if method in _SAFE:
            return ConnectorError(
                f"{said}; it is asked again. If its answers take this long, {slow_hint(self.kind)}",
                retryable=True, operation=operation,
            )  # fmt: skip
        applied = late.applied("The system", "applied it", "applied it")
        return ConnectorError(
            f"{said}. {applied}; it is not made again (that could apply it twice). Check in the system what it did; "
            f"if its answers take this long, {slow_hint(self.kind)}",
            operation=operation,
        )

    def _unreadable(self, operation: str, method: str, status: int, where: str) -> ConnectorError:
        """A success whose JSON body cannot be read. A read is worth asking again; a write is not:
        the system applied it (it said so), and sending it again would apply it twice at a system that
        does not honour ``Idempotency-Key``."""
        route = f"{method} {self._routes[operation].path}"
        if method in _SAFE:
            return ConnectorError(
                f"{where}: {operation} ({route}) answered HTTP {status} with a body that is not valid JSON",
                retryable=True, operation=operation, status=status,
            )  # fmt: skip
        return ConnectorError(
            f"{where}: {operation} ({route}) answered HTTP {status}, so the system applied it, but its body is not "
            "valid JSON; it is not made again (that could apply it twice). Check in the system what it did, and "
            "whether its API changed (the contract of this operation, docs/connectors.md)",
            operation=operation, status=status,
        )  # fmt: skip
