"""Health figures of one connector, kept in the process that uses it: what ``/metrics``,
``podium connectors status`` and the dashboard report. Plain counters, updated without locks (one
event loop per process); readers take :meth:`ConnectorStats.snapshot`."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

#: Upper bounds (seconds) of the latency histogram's buckets, Prometheus style (cumulative).
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(kw_only=True, slots=True)
class ConnectorStats:
    """Counters of one connector object (shared by every run of the process that uses it)."""

    calls: int = 0
    """Attempts sent to the system (a retried call counts each attempt)."""
    errors: int = 0
    """Attempts that failed (any reason)."""
    retries: int = 0
    """Attempts that were retried after a retryable failure."""
    latency_sum: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    """Attempts per latency bucket (not cumulative; :meth:`snapshot` makes them cumulative)."""
    token_expires_at: float | None = None
    """Unix time the current credential expires, when it has one (OAuth2 access tokens)."""
    token_refreshes: int = 0
    """Credentials fetched or refreshed (before expiry, or after a 401)."""
    drifted: int = 0
    """Responses or events that did not match the operation's contract."""
    quarantined: int = 0
    """Items set aside in the quarantine by this process (depth is read from the store)."""

    def observe(self, seconds: float, *, ok: bool) -> None:
        """One attempt that took ``seconds``."""
        self.calls += 1
        if not ok:
            self.errors += 1
        self.latency_sum += seconds
        i = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        if i < len(self.latency_buckets):
            self.latency_buckets[i] += 1

    def snapshot(self) -> dict[str, Any]:
        """The figures as JSON data (histogram buckets cumulative, keyed by their upper bound)."""
        running, buckets = 0, {}
        for bound, n in zip(LATENCY_BUCKETS, self.latency_buckets, strict=True):
            running += n
            buckets[f"{bound:g}"] = running
        buckets["+Inf"] = self.calls
        return {
            "calls": self.calls,
            "errors": self.errors,
            "retries": self.retries,
            "latency_sum": round(self.latency_sum, 6),
            "latency_buckets": buckets,
            "token_expires_at": self.token_expires_at,
            "token_refreshes": self.token_refreshes,
            "drifted": self.drifted,
            "quarantined": self.quarantined,
        }
