"""HTTP endpoints as tools: arguments go in the URL template, the query string or a JSON body."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote, urlsplit

from ..models._errors import ToolError
from ..models._http import RETRYABLE_STATUS, ClientPool, httpx_module, retry_after
from ._base import Tool, call_key
from ._echo import header_credentials, mask_echoed
from ._network import check_host

_SAFE = ("GET", "HEAD", "OPTIONS")


class HttpTool(Tool):
    """Call ``method url`` with the arguments; the answer (JSON or text) is the tool's result.

    ``url`` may name arguments: ``https://api.example.com/orders/{order_id}``. The other arguments go
    in the query string for GET and DELETE, else in a JSON body. HTTP 429 and 5xx are retryable
    :class:`~podium.models.ToolError`s carrying Retry-After; other 4xx are final. Inside a run, a
    POST, PUT, PATCH or DELETE sends the tool call's ``Idempotency-Key`` (:func:`call_key`).

    :param parameters: JSON Schema of the arguments (the model sees it).
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        method: str = "POST",
        description: str = "",
        parameters: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        allow_private: bool = True,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"tool name {name!r}: use 1-64 letters, digits, '_' or '-'")
        self.name = name
        self.url = check_host(url, f"http tool {name!r}: the URL")  # as the registry checks it
        self.method = method.upper()
        self.description = description
        placeholders = [f for _, f, _, _ in string.Formatter().parse(url) if f]
        self.parameters = parameters or {
            "type": "object",
            "properties": {p: {"type": "string"} for p in placeholders},
            "required": placeholders,
        }
        self._placeholders = set(placeholders)
        self.headers = dict(headers or {})
        self.allow_private = allow_private
        # Not following redirects, and no proxy from the environment: the host checked is the host reached.
        self._pool = ClientPool(timeout=timeout, follow_redirects=False, trust_env=allow_private)

    def expand(self, args: dict[str, Any]) -> str:
        """The URL with its placeholders filled, each value percent-encoded as one path segment
        (``/``, ``?``, ``#`` and ``%`` included, and ``.``/``..`` whole), so that an argument can
        never change which path is asked for. Removes the placeholders from ``args``."""
        values = {}
        for key in self._placeholders:
            if key not in args:
                raise ToolError(f"tool {self.name!r} needs the argument {key!r}")
            value = args.pop(key)
            text = value if isinstance(value, str) else json.dumps(value) if value is None else str(value)
            if text == "":
                raise ToolError(f"tool {self.name!r}: the argument {key!r} is empty")
            encoded = quote(text, safe="")
            if encoded.strip(".") == "":
                encoded = encoded.replace(".", "%2E")
            values[key] = encoded
        url = self.url.format(**values)
        path = urlsplit(url).path
        if any(seg in (".", "..") for seg in path.split("/")):
            raise ToolError(f"tool {self.name!r}: the arguments would make a '.' or '..' path segment")
        return url

    async def call(self, arguments: dict[str, Any]) -> Any:
        httpx = httpx_module()
        args = dict(arguments or {})
        url = self.expand(args)
        in_query = self.method in ("GET", "DELETE", "HEAD")
        target, headers = url, dict(self.headers)
        key = call_key()  # the same on every retry and resume of this tool call
        if key and self.method not in _SAFE:
            headers.setdefault("Idempotency-Key", key)
        extensions: dict[str, Any] = {}
        if not self.allow_private:
            # Resolve and check before connecting, then connect to the address checked (no second
            # lookup that could answer differently); Host and TLS still name the host.
            from ..errors import CapabilityDenied
            from ._network import pin, resolve_checked

            try:
                pinned = await resolve_checked(
                    url,
                    allow_private=False,
                    what=f"tool {self.name!r}",
                    fix=f"podium tools add {self.name} --http {self.url} --allow-private",
                )
            except CapabilityDenied as exc:
                raise ToolError(str(exc), retryable=False) from None
            target, host, extensions = pin(url, pinned, False)  # the address checked, naming the host
            headers.update(host)
        try:
            response = await self._pool.get().request(
                self.method,
                target,
                params=args if in_query and args else None,
                json=None if in_query else args,
                headers=headers,
                extensions=extensions or None,
            )
        except httpx.TransportError as exc:
            raise ToolError(f"tool {self.name!r}: cannot reach {url}: {exc!r}", retryable=True) from exc
        sent = header_credentials(self.headers)  # masked where an answer echoes them
        if response.status_code >= 400:
            raise ToolError(
                f"tool {self.name!r}: {self.method} {url} answered HTTP {response.status_code}: "
                f"{mask_echoed(response.text[:300], sent)}",
                retryable=response.status_code in RETRYABLE_STATUS,
                retry_after=retry_after(response.headers),
            )
        if "json" in response.headers.get("content-type", ""):
            try:
                return mask_echoed(response.json(), sent)
            except ValueError as exc:  # a write answered 2xx was applied: asking again could apply it twice
                applied = "" if self.method in _SAFE else "; the write was applied (a 2xx), so it is not made again"
                raise ToolError(
                    f"tool {self.name!r}: {self.method} {url} answered HTTP {response.status_code} with invalid JSON: "
                    f"{mask_echoed(response.text[:300], sent)!r}{applied}",
                    retryable=self.method in _SAFE,
                ) from exc
        return mask_echoed(response.text, sent)

    async def aclose(self) -> None:
        await self._pool.aclose()
