"""How much of an answer an HTTP connector reads: ``max_response_bytes``.

A system's answer (an API's, a webhook receiver's, an OAuth2 token endpoint's) was read whole: an
endless or huge body, or a small gzip body that decompresses to gigabytes, filled the process's
memory. :func:`capped_transport` wraps the transport a connector's HTTP client sends through and
reads each body, decompressed, up to the limit: a success over it raises :class:`AnswerTooLarge`
(the connector turns it into a non-retryable error naming itself, the operation and the setting); an
error answer (status 400 and over) is cut at the limit instead, since only its first lines are
ever quoted and its status must still decide whether the call is retried."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..models._http import ClientPool, httpx_module
from ..tools._network import wrapping_transport

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""An answer's bytes (decompressed) an HTTP connector reads at most, unless built with another ``max_response_bytes``."""
MAX_TOKEN_BYTES = 1024 * 1024
"""An OAuth2 token endpoint's answer, at most (a token answer is a few kilobytes)."""


class AnswerTooLarge(Exception):
    """A successful answer went past ``limit`` bytes; nothing past the limit was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is over {limit:,} bytes")
        self.limit = limit


def byte_limit(value: Any, kind: str) -> int:
    """``max_response_bytes`` as set (a whole number of bytes; a registry's setting is text)."""
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ConfigError(
            f"a {kind} connector's max_response_bytes is a whole number of bytes (at least 1), got {value!r}; "
            f"the default is {MAX_RESPONSE_BYTES:,} (10 MiB)"
        )
    return number


def raise_hint(kind: str) -> str:
    """How to let a connector read larger answers (said by every too-large error)."""
    return (
        f"raise the connector's max_response_bytes (open_connector('{kind}', ..., max_response_bytes=N), or "
        f"podium connectors add NAME {kind} --set max_response_bytes=N; see docs/connectors.md)"
    )


def capped_transport(http: Any, inner: Any, limit: int) -> Any:
    """A transport of ``http`` (``httpx``, or Authlib's ``httpx2``) that sends through ``inner`` and
    reads each answer's body, decompressed, up to ``limit`` bytes (see the module's docstring). The
    answer handed on holds the body read, without its ``Content-Encoding`` (decoded already)."""

    async def send(request: Any) -> Any:
        answer = await inner.handle_async_request(request)
        streamed = http.Response(answer.status_code, headers=answer.headers, stream=answer.stream, request=request)
        body, size = [], 0
        try:
            async for chunk in streamed.aiter_bytes():  # decompressed: a small gzip body may be huge
                size += len(chunk)
                if size > limit:
                    if answer.status_code < 400:
                        raise AnswerTooLarge(limit)
                    body.append(chunk[: len(chunk) - (size - limit)])
                    break
                body.append(chunk)
        finally:
            await streamed.aclose()  # the rest is never read: the connection is closed, not reused
        headers = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
        return http.Response(
            answer.status_code, headers=headers, content=b"".join(body), request=request, extensions=answer.extensions
        )

    return wrapping_transport(http, inner, send)


def capped_pool(limit: int, timeout: float) -> ClientPool:
    """The HTTP clients of a connector that reads answers up to ``limit`` bytes: no redirect
    followed, no proxy from the environment (the host checked is the host reached)."""

    def transport() -> Any:
        httpx = httpx_module()
        return capped_transport(httpx, httpx.AsyncHTTPTransport(trust_env=False), limit)

    return ClientPool(timeout=timeout, follow_redirects=False, trust_env=False, make_transport=transport)
