"""HTTP plumbing shared by the remote providers and HTTP tools: one httpx client per event loop,
Retry-After parsing and the mapping of HTTP failures to retryable or final errors."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..secret import quiet_request_lines
from ._errors import ModelNotAvailable, ProviderError, RateLimited

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def httpx_module() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a base dependency
        raise ModelNotAvailable("remote models need httpx: pip install httpx") from None
    quiet_request_lines("httpx")  # its request lines name the URL: a webhook's secret path, arguments
    return httpx


class ClientPool:
    """One ``httpx.AsyncClient`` per running event loop (a client cannot be shared across loops).
    ``make_transport``, when given, makes each client's transport (a transport belongs to one loop
    too); a ``transport`` among the client options is every client's (a test's stand-in)."""

    def __init__(self, *, make_transport: Callable[[], Any] | None = None, **client_options: Any) -> None:
        self._options = client_options
        self._transport = make_transport
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            extra = {} if self._transport is None else {"transport": self._transport()}
            client = httpx_module().AsyncClient(**self._options, **extra)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if present. A
    value that is no finite number of seconds (``inf``, ``nan``, ``1e400``) is ignored: it would be
    waited forever, or written where no database takes it."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            seconds = float(ms) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for(provider: str, response: Any, message: str) -> ProviderError:
    """The error for a failed HTTP response: rate limits and server errors are retryable."""
    status = response.status_code
    after = retry_after(response.headers)
    text = f"{provider} answered HTTP {status}: {message}"
    if status in (429, 529):
        return RateLimited(text, provider=provider, status=status, retry_after=after)
    if status in (401, 403):
        text += " (check the API key)"
    return ProviderError(
        text, provider=provider, status=status, retryable=status in RETRYABLE_STATUS, retry_after=after
    )


def error_message(response: Any) -> str:
    try:
        body = response.json()
    except Exception:
        return response.text[:500]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)[:500]
    if isinstance(err, str):
        return err[:500]
    return str(body)[:500]


async def post_json(pool: ClientPool, provider: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    """POST ``body`` as JSON and return the decoded answer; failures become :class:`ProviderError`."""
    httpx = httpx_module()
    try:
        response = await pool.get().post(url, json=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise ProviderError(
            f"{provider} at {url} timed out: {exc!r}", provider=provider, retryable=True
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderError(
            f"cannot reach {provider} at {url}: {exc!r}; is the server running and the base_url right?",
            provider=provider,
            retryable=True,
        ) from exc
    if response.status_code >= 400:
        raise error_for(provider, response, error_message(response))
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(
            f"{provider} answered with something other than JSON: {response.text[:200]!r}",
            provider=provider,
            retryable=True,
        ) from exc


async def post_sse(
    pool: ClientPool, provider: str, url: str, body: Any, headers: dict[str, str]
) -> AsyncIterator[tuple[str, Any]]:
    """POST ``body`` and yield ``(event, data)`` for each server-sent event of the answer, ``data``
    decoded from JSON (``[DONE]`` ends the stream); an answer that is not an event stream comes as
    one event ``whole``. Failures become :class:`ProviderError`."""
    httpx = httpx_module()
    try:
        async with pool.get().stream("POST", url, json=body, headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_for(provider, response, error_message(response))
            if "text/event-stream" not in response.headers.get("content-type", ""):
                # A server that ignores "stream": its whole answer, as event "whole".
                body = await response.aread()
                try:
                    yield "whole", json.loads(body)
                except ValueError as exc:
                    raise ProviderError(
                        f"{provider} answered with neither an event stream nor JSON: {body[:200]!r}",
                        provider=provider,
                        retryable=True,
                    ) from exc
                return
            event, data = "message", []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif not line and data:
                    text = "\n".join(data)
                    event, data = "message", []
                    if text.strip() == "[DONE]":
                        return
                    try:
                        yield event, json.loads(text)
                    except ValueError as exc:
                        raise ProviderError(
                            f"{provider} streamed something other than JSON: {text[:200]!r}",
                            provider=provider,
                            retryable=True,
                        ) from exc
                elif not line:
                    event = "message"
    except httpx.TimeoutException as exc:
        raise ProviderError(f"{provider} at {url} timed out: {exc!r}", provider=provider, retryable=True) from exc
    except httpx.TransportError as exc:
        raise ProviderError(
            f"cannot reach {provider} at {url} (or the stream broke): {exc!r}", provider=provider, retryable=True
        ) from exc
