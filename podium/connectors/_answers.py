"""How much of an answer an HTTP connector reads, and for how long: ``max_response_bytes`` and
``deadline`` (the reading itself is ``tools._reading``'s, shared with :class:`~podium.tools.HttpTool`).

A success over ``max_response_bytes`` raises :class:`AnswerTooLarge`, which the connector turns into
a non-retryable error naming itself, the operation and the setting; an error answer (status 400 and
over) is cut at the limit instead. A request whose whole exchange (connecting, sending, reading the
whole answer) takes longer than ``deadline`` seconds raises :class:`AnswerTooSlow`: retryable for a
read; for a write, not made again (the system may have applied it)."""

from __future__ import annotations

from typing import Any

from ..models._http import ClientPool
from ..tools._reading import (
    MAX_RESPONSE_BYTES,
    AnswerTooLarge,
    AnswerTooSlow,
    capped_pool,
    capped_transport,
    deadline_seconds,
)
from ..tools._reading import byte_limit as _byte_limit

__all__ = [
    "MAX_RESPONSE_BYTES",
    "MAX_TOKEN_BYTES",
    "AnswerTooLarge",
    "AnswerTooSlow",
    "byte_limit",
    "capped_pool",
    "capped_transport",
    "deadline_for",
    "raise_hint",
    "reading",
    "slow_hint",
]

MAX_TOKEN_BYTES = 1024 * 1024
"""An OAuth2 token endpoint's answer, at most (a token answer is a few kilobytes)."""


def byte_limit(value: Any, kind: str) -> int:
    """``max_response_bytes`` as set (a whole number of bytes; a registry's setting is text)."""
    return _byte_limit(value, f"a {kind} connector")


def deadline_for(value: Any, kind: str, timeout: float) -> float:
    """``deadline`` as set (seconds; a registry's setting is text), or the default for ``timeout``."""
    return deadline_seconds(value, f"a {kind} connector", timeout)


def reading(kind: str, max_response_bytes: Any, deadline: Any, timeout: float) -> tuple[int, float, ClientPool]:
    """A connector's ``max_response_bytes`` and ``deadline`` as set, checked, and its HTTP clients."""
    limit, seconds = byte_limit(max_response_bytes, kind), deadline_for(deadline, kind, timeout)
    return limit, seconds, capped_pool(limit, timeout, seconds)


def raise_hint(kind: str) -> str:
    """How to let a connector read larger answers (said by every too-large error)."""
    return (
        f"raise the connector's max_response_bytes (open_connector('{kind}', ..., max_response_bytes=N), or "
        f"podium connectors add NAME {kind} --set max_response_bytes=N; see docs/connectors.md)"
    )


def slow_hint(kind: str) -> str:
    """How to give a connector's requests longer (said by every deadline error)."""
    return (
        f"raise the connector's deadline (open_connector('{kind}', ..., deadline=SECONDS), "
        f"or podium connectors add NAME {kind} --set deadline=SECONDS; see docs/connectors.md)"
    )
