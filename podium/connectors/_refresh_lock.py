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
"""Seconds a refresh may hold the lease at least (a token request takes milliseconds; this covers a
slow one); longer for a connector whose timeout is longer (:func:`lease_for`)."""
MARGIN = 5.0
FAR = 3600.0
"""Seconds past its own lease's end beyond which a lease's end is taken for one no connector wrote."""
"""Seconds between the end of a holder's token request (bounded) and the end of its lease."""

_serial = 0


def _until(note: str | None, now: float, lease: float) -> float:
    """When the lease ``note`` ends (0: a note no connector writes, taken over at once). A lease no
    connector would have written, ending more than :data:`FAR` seconds after this one's would
    (a hand-written note, a host whose clock ran far ahead), would hold every refresh off until then:
    it is taken over too. (Processes whose connectors have other timeouts take leases of other
    lengths: a longer one than this process's is still waited for.)"""
    try:
        until = float(json.loads(note or "")["until"])
    except (ValueError, TypeError, KeyError):
        return 0.0
    if until != until or until > now + lease + FAR:  # NaN, Infinity, or far ahead: taken over
        return 0.0
    return until


def lease_for(timeout: float | None) -> float:
    """The lease a refresh takes whose token request may last ``timeout`` seconds (per phase): it
    outlasts the request, which the holder bounds at :data:`MARGIN` seconds before the lease ends,
    so that no two refreshes of one token are ever in flight."""
    return max(LEASE, float(timeout or 0) + 2 * MARGIN)


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
            if held is None or _until(held, now, self.lease) < now:  # free, or its holder stopped: take it
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
