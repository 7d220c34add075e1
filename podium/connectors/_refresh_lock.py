"""One refresh at a time for an OAuth2 refresh token that several processes share.

A server that rotates refresh tokens spends each one on use; some (Auth0, Okta with rotation)
also revoke every token of the family when a spent one is presented again, taking it for a stolen
copy. Two workers that read the same refresh token and refresh at the same moment would do exactly
that. So a connector whose refresh token lives in the Podium store's secret store first takes a
lease on it in the same store (a compare-and-set, :meth:`~podium.storage.Store.kv_swap`): the
others wait for the lease to end, then read the refresh token the holder wrote back. A holder that
dies leaves its lease to expire.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

from ..errors import ConnectorError

NAMESPACE = "oauth_refresh"
LEASE = 30.0
"""Seconds a refresh may hold the lease (a token request takes milliseconds; this covers a slow one)."""

_serial = 0


def _until(note: str | None) -> float:
    """When the lease ``note`` ends (0: a note no connector writes, taken over at once)."""
    try:
        until = float(json.loads(note or "")["until"])
    except (ValueError, TypeError, KeyError):
        return 0.0
    return until if until == until else 0.0  # NaN: taken over


class RefreshLock:
    """The lease on secret ``name``'s refresh in ``store`` (``None``: no shared store, no lease)."""

    def __init__(self, store: Any, name: str, *, lease: float = LEASE, poll: float = 0.05) -> None:
        global _serial
        _serial += 1
        self.store, self.name, self.lease, self.poll = store, name, lease, poll
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{_serial}"

    async def acquire(self) -> str:
        """Take the lease, waiting while another process holds it (at most about two leases);
        returns the mark :meth:`release` needs."""
        deadline = time.monotonic() + 2 * self.lease
        while True:
            now = time.time()
            mine = json.dumps({"owner": self.owner, "until": now + self.lease})
            held = await self.store.kv_get(NAMESPACE, self.name)
            if held is None or _until(held) < now:  # free, or its holder stopped: take it
                if await self.store.kv_swap(NAMESPACE, self.name, held, mine):
                    return mine
                continue  # another took it first: look again
            if time.monotonic() > deadline:
                raise ConnectorError(
                    f"OAuth2: another process has been refreshing the token of secret {self.name!r} for too long "
                    f"(lease {held}); trying again later",
                    retryable=True,
                )
            await asyncio.sleep(self.poll)

    async def release(self, mine: str) -> None:
        """End the lease (if it is still this one's)."""
        await self.store.kv_swap(NAMESPACE, self.name, mine, None)
