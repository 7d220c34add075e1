"""Reaching hosts safely: resolve a URL's host once, refuse loopback, private and link-local
addresses unless explicitly allowed, and connect to the very address that was checked (one
request: :func:`pin`; a client that makes many, such as the MCP SDK's: :func:`pinned_transport`)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import CapabilityDenied, ConfigError


def blocked_reason(ip: str) -> str | None:
    """Why a workflow may not reach ``ip`` without an explicit allow, or None."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):  # an IPv4 address wrapped in IPv6 is judged as itself
        inner = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if inner is not None:
            addr = inner
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_private or addr.is_unspecified or addr.is_reserved or addr.is_multicast or not addr.is_global:
        return "a private or reserved address"
    return None


@dataclass(kw_only=True)
class Pinned:
    """A host resolved and checked: connect to ``ip``, and say ``host`` (Host header, TLS SNI)."""

    host: str
    port: int
    ip: str
    addresses: list[str] = field(default_factory=list)


def pin(url: str, pinned: Pinned, allow_private: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Where to send a request for ``url`` so that it reaches the address that was checked: (URL
    with the checked address, the ``Host`` header and the TLS name that still name the host). With
    ``allow_private`` nothing was refused, so ``url`` is sent as it is."""
    if allow_private:
        return url, {}, {}
    import httpx

    parsed = httpx.URL(url)
    return str(parsed.copy_with(host=pinned.ip)), {"Host": parsed.netloc.decode("ascii")}, {"sni_hostname": pinned.host}


def _ip_literal(host: str) -> str | None:
    """``host`` as a canonical IP address when it is one (IPv4, or IPv6 without brackets)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def resolve_checked(url: str, *, allow_private: bool, what: str, fix: str) -> Pinned:
    """Resolve ``url``'s host and check every address it resolves to, before any connection.

    A loopback, private or link-local address (or a name resolving to one) raises
    :class:`CapabilityDenied` unless ``allow_private``. The message is the same whether a service
    listens there or not: nothing has connected yet, so it cannot tell open ports from closed ones."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _ip_literal(host)
    if literal is not None:  # an address, not a name: nothing to resolve (and no thread hop per call)
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise CapabilityDenied(
                f"{what}: cannot resolve the host {host!r} ({exc.__class__.__name__})"
            ) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise CapabilityDenied(f"{what}: the host {host!r} has no address")
    if not allow_private:
        for ip in addresses:
            why = blocked_reason(ip)
            if why is not None:
                raise CapabilityDenied(
                    f"{what}: the host {host!r} is {why} ({ip}), which workflows may not reach; nothing was "
                    f"sent. If the service is meant to be reachable, an admin allows it: {fix}"
                )
    return Pinned(host=host, port=port, ip=addresses[0], addresses=addresses)


def pinned_transport(http: Any, pinned: Pinned | Callable[[], Pinned | None], **options: Any) -> Any:
    """An async transport of ``http`` (the ``httpx`` module, or a client library with its API, such
    as the MCP SDK's ``httpx2``) that sends every request for ``pinned``'s host to the address that
    was checked: no second lookup, whatever a DNS answer says by then. ``Host`` and the TLS name
    still name the host. A request for another host or port is refused (nothing was checked for
    it). ``pinned`` may be a function giving the latest check at each request (a client kept across
    checks, such as an OAuth2 token client); None from it sends the request as it is (private
    addresses allowed: nothing was refused). ``options`` go to ``http.AsyncHTTPTransport``
    (``trust_env=False``: no proxy from the environment, which would resolve the name itself)."""
    inner = http.AsyncHTTPTransport(**{"trust_env": False, **options})
    latest = pinned if callable(pinned) else lambda: pinned

    async def send(request: Any) -> Any:
        pinned = latest()
        if pinned is None:
            return await inner.handle_async_request(request)
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        if url.host != pinned.host or port != pinned.port:
            raise http.ConnectError(
                f"{url.scheme}://{url.host}:{port} is not the host that was checked ({pinned.host}:{pinned.port})",
                request=request,
            )
        request.url = url.copy_with(host=pinned.ip)  # the Host header was set from the name already
        request.extensions = {**request.extensions, "sni_hostname": pinned.host}
        return await inner.handle_async_request(request)

    return wrapping_transport(http, inner, send)


def wrapping_transport(http: Any, inner: Any, send: Callable[[Any], Awaitable[Any]]) -> Any:
    """An async transport of ``http`` whose requests ``send`` handles (sending them through ``inner``
    as it sees fit); opening and closing it opens and closes ``inner``."""

    class _Wrapping(http.AsyncBaseTransport):
        async def handle_async_request(self, request: Any) -> Any:
            return await send(request)

        async def __aenter__(self) -> Any:
            await inner.__aenter__()
            return self

        async def __aexit__(self, *exc: Any) -> None:
            await inner.__aexit__(*exc)

        async def aclose(self) -> None:
            await inner.aclose()

    return _Wrapping()


def check_host(url: str, what: str = "the URL") -> str:
    """``url`` if it is an absolute http(s) URL without a template in its scheme, host or port: an
    argument may fill the path and the query, never choose where the request goes. The capability
    registry (``check_url``) and :class:`~podium.tools.http.HttpTool` both check with this."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be an absolute http:// or https:// URL, got {url!r}")
    if "{" in parts.netloc or "}" in parts.netloc:
        raise ConfigError(
            f"{what} {url!r} has a placeholder in its host: arguments may fill the path and the query "
            "only, never choose the host"
        )
    return url
