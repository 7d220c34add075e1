"""HTTP endpoints as tools: arguments go in the URL template, the query string or a JSON body."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote, urlsplit

from ..models._errors import ToolError
from ..models._http import RETRYABLE_STATUS, httpx_module, retry_after
from ._base import Tool, call_key
from ._echo import header_credentials, mask_echoed
from ._network import check_host
from ._reading import (
    MAX_RESPONSE_BYTES,
    AnswerTooLarge,
    AnswerTooSlow,
    byte_limit,
    capped_pool,
    deadline_seconds,
)

_SAFE = ("GET", "HEAD", "OPTIONS")
_RAISE = (
    "; raise the tool's max_response_bytes (HttpTool(..., max_response_bytes=N), or podium tools add NAME --http URL "
    "--max-response-bytes N)"
)


class HttpTool(Tool):
    """Call ``method url`` with the arguments; the answer (JSON or text) is the tool's result.

    ``url`` may name arguments: ``https://api.example.com/orders/{order_id}``. The other arguments go
    in the query string for GET and DELETE, else in a JSON body. HTTP 429 and 5xx are retryable
    :class:`~podium.models.ToolError`s carrying Retry-After; other 4xx are final. Inside a run, a
    POST, PUT, PATCH or DELETE sends the tool call's ``Idempotency-Key`` (:func:`call_key`).

    The answer is read up to ``max_response_bytes`` (decoded; 10 MiB by default): a larger success
    is a non-retryable error that quotes none of it. Each request is given ``deadline`` seconds in
    all (connecting, sending, reading the whole answer; by default the larger of 120 and four times
    ``timeout``, the wait for one read): past it, a GET is retryable, a write is not (the endpoint
    may have applied it).

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
        max_response_bytes: int | str = MAX_RESPONSE_BYTES,
        deadline: float | str | None = None,
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
        self.max_response_bytes = byte_limit(max_response_bytes, f"http tool {name!r}", _RAISE)
        self.deadline = deadline_seconds(deadline, f"http tool {name!r}", timeout)
        # Not following redirects, and no proxy from the environment unless private addresses are
        # allowed (then nothing is checked): the host checked is the host reached.
        self._pool = capped_pool(self.max_response_bytes, timeout, self.deadline, trust_env=allow_private)

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
        except httpx.DecodingError as exc:  # an answer in a coding not asked for, or broken: the same again
            raise ToolError(f"tool {self.name!r}: {self.method} {url}: {exc}", retryable=False) from None
        except AnswerTooLarge as exc:  # none of it is quoted: a model reads this
            applied = "" if self.method in _SAFE else " The endpoint applied it (it answered with success); it is not sent again."
            raise ToolError(
                f"tool {self.name!r}: {self.method} {url} answered with more than {exc.limit:,} bytes, its "
                f"max_response_bytes; the answer was not read further and none of it is given.{applied} Ask for less, "
                f"or {_RAISE.removeprefix('; ')}",
                retryable=False,
            ) from None
        except AnswerTooSlow as exc:
            raise self._too_slow(url, exc) from None
        sent = header_credentials(self.headers)  # masked where an answer echoes them
        if 300 <= response.status_code < 400 and response.status_code != 304:  # its page is no answer
            raise ToolError(
                f"tool {self.name!r}: {self.method} {url} answered HTTP {response.status_code}, a redirect, which is not "
                "followed (the host checked is the host reached); register the address the endpoint answers at",
                retryable=False,
            )
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

    def _too_slow(self, url: str, late: AnswerTooSlow) -> ToolError:
        said = f"tool {self.name!r}: {self.method} {url} was not answered in full {late.within}"
        hint = (
            "raise the tool's deadline (HttpTool(..., deadline=SECONDS), or podium tools add NAME --http URL "
            "--deadline SECONDS)"
        )
        if self.method in _SAFE:
            return ToolError(f"{said}; it may be asked again. If its answers take this long, {hint}", retryable=True)
        applied = late.applied("The endpoint", "applied it", "applied it")
        return ToolError(
            f"{said}. {applied}; it is not sent again (that could apply it twice). If its answers take this long, {hint}",
            retryable=False,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
