"""How much of an HTTP answer is read, and for how long: ``max_response_bytes`` and ``deadline``.

A system's answer was read whole: an endless or huge body, or a small gzip body that decompresses to
gigabytes, filled the process's memory; and a body dripped one byte every few seconds was bounded
only by the timeout of each read, never in total. :func:`capped_transport` wraps the transport an
HTTP client sends through (a connector's, an OAuth2 token client's, an :class:`~podium.tools.HttpTool`'s)
and, within ``deadline`` seconds for the whole exchange (connecting, sending, and reading the whole
answer), reads each body, decoded, up to the limit:

* a success (below 300) over the limit raises :class:`AnswerTooLarge`; an error answer (400 and
  over) or a redirect (never followed) is cut at :data:`ERROR_BYTES` (or the limit, if lower)
  instead, since only its first lines are ever quoted and its status must still decide whether
  the call is retried;
* ``gzip`` and ``deflate`` are decoded here, at most :data:`STEP` bytes of output at a time (a
  decoder given one 64 KiB piece of a bomb at once makes 64 MiB, and two stacked codings 64 GiB); at
  most two codings are taken, and an answer in another coding (``br``, ``zstd``: not asked for) is
  refused with ``DecodingError``: the answer handed on never carries a ``Content-Encoding``, which
  the client would decode again, without a bound, with whatever decoder is installed;
* the whole exchange going past ``deadline`` raises :class:`AnswerTooSlow`, with the status if the
  answer had begun (a write answered with success was applied).

The callers (connectors, tools) turn both into errors that name themselves, the setting and how to
raise it; never the body."""

from __future__ import annotations

import asyncio
import math
import urllib.request
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from ..errors import ConfigError
from ..models._http import ClientPool, httpx_module
from ._network import wrapping_transport

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""An answer's bytes (decoded) read at most, unless built with another ``max_response_bytes``."""
MIN_DEADLINE = 120.0
"""The default deadline is the larger of this and four times the timeout of one read."""
STEP = 64 * 1024
"""A decoder's output at most, per call: what a bomb makes before it is counted."""
DECODED = ("gzip", "deflate", "x-gzip")
"""The content codings decoded here (what the clients ask for: ``Accept-Encoding: gzip, deflate``)."""
MAX_CODINGS = 2
ERROR_BYTES = 64 * 1024
"""An error answer's bytes kept at most (or the limit, if lower): only its first lines are quoted."""


class AnswerTooLarge(Exception):
    """A successful answer went past ``limit`` bytes; nothing past the limit was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is over {limit:,} bytes")
        self.limit = limit


class AnswerTooSlow(Exception):
    """The whole exchange took longer than ``deadline`` seconds. ``status`` is the answer's status
    if it had begun (its headers were read), else None: the request may or may not have been applied."""

    def __init__(self, deadline: float, status: int | None) -> None:
        begun = f" (it had answered HTTP {status})" if status is not None else ""
        super().__init__(f"no whole answer within {deadline:g} s{begun}")
        self.deadline = deadline
        self.status = status

    @property
    def within(self) -> str:
        """"within N s, its deadline (...)": what every error for it says."""
        return f"within {self.deadline:g} s, its deadline (connecting, sending and reading the whole answer)"

    def applied(self, who: str, done: str, maybe: str) -> str:
        """What a write's error says of it: ``who`` ``done`` if a success had begun, else ``who``
        may have ``maybe`` (``"The system", "applied it", "applied it"``)."""
        if self.status is not None and self.status < 300:
            return f"{who} {done} (it had begun answering HTTP {self.status})"
        return f"{who} may have {maybe}"


def byte_limit(value: Any, what: str, hint: str = "") -> int:
    """``max_response_bytes`` as set (a whole number of bytes; a registry's setting is text)."""
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ConfigError(
            f"{what}: max_response_bytes is a whole number of bytes (at least 1), got {value!r}; "
            f"the default is {MAX_RESPONSE_BYTES:,} (10 MiB){hint}"
        )
    return number


def default_deadline(timeout: float | None) -> float:
    """The deadline of a client whose reads each wait ``timeout`` seconds at most."""
    return max(MIN_DEADLINE, 4 * float(timeout or 0))


def deadline_seconds(value: Any, what: str, timeout: float | None) -> float:
    """``deadline`` as set (seconds, more than 0; a registry's setting is text); None: the default."""
    if value is None:
        return default_deadline(timeout)
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number) or number <= 0:
        raise ConfigError(
            f"{what}: deadline is a number of seconds (more than 0) for a whole request, got {value!r}; "
            f"the default is the larger of {MIN_DEADLINE:g} s and four times its timeout"
        )
    return float(number)


def _codings(headers: Any) -> list[str]:
    """The answer's content codings, ``identity`` (no coding) left out."""
    found = [c.strip().lower() for c in headers.get_list("content-encoding", split_commas=True)]
    return [c for c in found if c and c != "identity"]


class _Inflate:
    """One ``gzip`` or ``deflate`` coding, decoded at most ``STEP`` bytes at a time."""

    def __init__(self, coding: str) -> None:
        self.raw = coding == "deflate"  # a deflate body may come without its zlib header (httpx takes both)
        self.z = zlib.decompressobj(zlib.MAX_WBITS | 32 if not self.raw else zlib.MAX_WBITS)
        self.first = True

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.first and self.raw and data:
            self.first = False
            try:
                zlib.decompressobj().decompress(data[:2])
            except zlib.error:  # no zlib header: raw deflate
                self.z = zlib.decompressobj(-zlib.MAX_WBITS)
        while True:
            out = self.z.decompress(data, STEP)
            data = self.z.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < STEP:
                return


def _decoded(decoders: list[_Inflate], data: bytes) -> Iterator[bytes]:
    """``data`` through every decoder (the last coding applied first), in pieces of ``STEP`` at most."""
    if not decoders:
        yield data
        return
    for piece in decoders[0].feed(data):
        yield from _decoded(decoders[1:], piece)


async def _body(http: Any, answer: Any, request: Any) -> AsyncGenerator[bytes, None]:
    """``answer``'s body, decoded (gzip, deflate) ``STEP`` bytes at a time at most, lazily: nothing
    is decoded past what its reader takes."""
    codings = _codings(answer.headers)
    if len(codings) > MAX_CODINGS or any(c not in DECODED for c in codings):
        raise http.DecodingError(
            f"the answer's Content-Encoding {', '.join(codings)!r} is not one Podium decodes (gzip or deflate, "
            f"at most {MAX_CODINGS} of them; it asks for nothing else)",
            request=request,
        )
    decoders = [_Inflate(c) for c in reversed(codings)]
    async for raw in answer.stream:
        pieces = _decoded(decoders, raw)
        while True:
            try:
                chunk = next(pieces)
            except StopIteration:
                break
            except zlib.error as exc:
                raise http.DecodingError(f"the answer's body cannot be decoded ({exc})", request=request) from None
            yield chunk


def _decoded_headers(answer: Any) -> list[tuple[str, str]]:
    """``answer``'s headers for its body as :func:`_body` gives it."""
    dropped = ("content-encoding", "content-length")  # decoded: never decoded again, without a bound
    return [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in dropped]


def _ask_decoded(request: Any) -> None:
    if request.headers.get("accept-encoding", "").strip().lower() != "identity":
        request.headers["Accept-Encoding"] = "gzip, deflate"  # what is decoded here, nothing more


def capped_transport(http: Any, inner: Any, limit: int, deadline: float | None = None) -> Any:
    """A transport of ``http`` (``httpx``, or Authlib's or the MCP SDK's ``httpx2``) that sends
    through ``inner`` and reads each answer as the module's docstring says. The answer handed on
    holds the body read, decoded (without ``Content-Encoding``)."""

    async def read(request: Any, begun: list[int]) -> Any:
        _ask_decoded(request)
        answer = await inner.handle_async_request(request)
        begun.append(answer.status_code)
        body, size = [], 0
        failed = answer.status_code >= 300  # an error, or a redirect (never followed): only quoted in part
        most = min(limit, ERROR_BYTES) if failed else limit
        chunks = _body(http, answer, request)
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > most:
                    if not failed:
                        raise AnswerTooLarge(limit)
                    body.append(chunk[: len(chunk) - (size - most)])
                    break
                body.append(chunk)
        finally:
            await chunks.aclose()
            await answer.aclose()  # read whole: the connection is kept; cut: it is closed, not reused
        return http.Response(
            answer.status_code, headers=_decoded_headers(answer), content=b"".join(body), request=request,
            extensions=answer.extensions,
        )  # fmt: skip

    async def send(request: Any) -> Any:
        begun: list[int] = []
        timer = asyncio.timeout(deadline)
        try:
            async with timer:
                return await read(request, begun)
        except TimeoutError:
            if deadline is None or not timer.expired():  # another's TimeoutError: not the deadline's
                raise
            raise AnswerTooSlow(deadline, begun[0] if begun else None) from None

    return wrapping_transport(http, inner, send)


def streamed_transport(http: Any, inner: Any, limit: int) -> Any:
    """A transport of ``http`` that hands each answer on as it comes (an event stream stays open),
    decoded as :func:`capped_transport` decodes it. An answer that is no event stream is cut off past
    ``limit`` bytes with ``http.StreamError`` saying so (its reader's own error for a broken body);
    an event stream's reader bounds each event (the MCP SDK's ``max_sse_event_size``)."""

    class _Capped(http.AsyncByteStream):
        def __init__(self, answer: Any, request: Any) -> None:
            self.answer, self.request = answer, request
            self.events = answer.headers.get("content-type", "").startswith("text/event-stream")

        async def __aiter__(self) -> AsyncIterator[bytes]:
            size = 0
            chunks = _body(http, self.answer, self.request)
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit and not self.events:
                        raise http.StreamError(
                            f"the answer is over {limit:,} bytes, its max_response_bytes; it was not read further"
                        )
                    yield chunk
            finally:
                await chunks.aclose()

        async def aclose(self) -> None:
            await self.answer.aclose()

    async def send(request: Any) -> Any:
        _ask_decoded(request)
        answer = await inner.handle_async_request(request)
        return http.Response(
            answer.status_code, headers=_decoded_headers(answer), stream=_Capped(answer, request), request=request,
            extensions=answer.extensions,
        )  # fmt: skip

    return wrapping_transport(http, inner, send)


class EnvProxies:
    """The proxy the environment names for a request (``HTTPS_PROXY``, ``NO_PROXY``...), each
    proxy's transport made once: what ``trust_env=True`` gives a client, kept under the cap."""

    def __init__(self, http: Any, direct: Any) -> None:
        self.http, self.direct = http, direct
        self.proxies = urllib.request.getproxies_environment()
        self.made: dict[str, Any] = {}

    async def handle_async_request(self, request: Any) -> Any:
        url = request.url
        proxy = self.proxies.get(url.scheme) or self.proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(url.host):  # NO_PROXY
            return await self.direct.handle_async_request(request)
        if proxy not in self.made:
            self.made[proxy] = self.http.AsyncHTTPTransport(proxy=proxy, trust_env=True)
        return await self.made[proxy].handle_async_request(request)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for transport in [self.direct, *self.made.values()]:
            await transport.aclose()


def capped_pool(limit: int, timeout: float, deadline: float | None, *, trust_env: bool = False) -> ClientPool:
    """The HTTP clients of a connector or a tool that reads answers up to ``limit`` bytes, each
    request within ``deadline`` seconds: no redirect followed. No proxy from the environment (the
    host checked is the host reached) unless ``trust_env`` (nothing is checked), and then through
    the cap too (a client's own proxy transports would not be wrapped)."""

    return ClientPool(
        timeout=timeout, follow_redirects=False, trust_env=False, make_transport=lambda: capped(limit, deadline, trust_env)
    )


def capped(limit: int, deadline: float | None, trust_env: bool = False) -> Any:
    """An ``httpx`` transport that reaches hosts directly (or through the environment's proxy, with
    ``trust_env``) and reads answers as :func:`capped_transport`; for a client made with
    ``trust_env=False`` (its own proxy transports would not be wrapped)."""
    httpx = httpx_module()
    inner: Any = httpx.AsyncHTTPTransport(trust_env=trust_env)
    if trust_env:
        inner = EnvProxies(httpx, inner)
    return capped_transport(httpx, inner, limit, deadline)

