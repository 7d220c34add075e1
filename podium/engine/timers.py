"""The timers of parked runs that an engine wakes: ``ctx.sleep``, and the timeouts of signals and
approvals.

A parked run holds nothing in memory but, when it has a timer, one entry here, and only while the
timer is due within :data:`HORIZON` seconds. Later timers stay in the store (the run's ``wake_at``,
read through an index) and are read in as they come close, every ``HORIZON / 2`` seconds. So an
engine's memory does not grow with the number of parked runs, and an engine that starts reads only
the timers due soon.
"""

from __future__ import annotations

import heapq
from typing import Any

#: Seconds ahead whose timers an engine holds in memory.
HORIZON = 60.0
#: Seconds before a timer is due that its run is claimed and replayed up to the wait (where it
#: waits in memory: ``waits.HOLD`` must be larger).
EARLY = 5.0
#: The most timers read in at once (a burst due together is read in several rounds).
MAX_LOADED = 50_000


class Timers:
    """Run id -> when to wake it, for the timers due within the horizon (a mapping for the engine:
    ``timers[run_id] = when`` keeps the earliest time, and forgets a time beyond the horizon, which
    the next :meth:`load` reads back from the store)."""

    def __init__(self, horizon: float = HORIZON) -> None:
        self.horizon = horizon
        self._when: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self.loaded_until = float("-inf")
        """Every timer due by then is held here (later ones are in the store only)."""
        self.next_load = float("-inf")
        """When to read the store again."""

    def __len__(self) -> int:
        return len(self._when)

    def __bool__(self) -> bool:
        return bool(self._when)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._when

    def get(self, run_id: str, default: Any = None) -> Any:
        return self._when.get(run_id, default)

    def __setitem__(self, run_id: str, when: float) -> None:
        if when > self.loaded_until:
            return  # beyond the horizon: read in from the store when it comes close
        old = self._when.get(run_id)
        if old is None or when < old:
            self._when[run_id] = when
            heapq.heappush(self._heap, (when, run_id))

    def next_due(self) -> float | None:
        """The earliest timer held, or None."""
        heap = self._heap
        while heap and self._when.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # superseded by an earlier time, or fired
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[str]:
        """Remove and return the runs whose timers are due at ``now``, earliest first."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, rid = heapq.heappop(heap)
            if self._when.get(rid) == when:
                del self._when[rid]
                due.append(rid)
        return due

    async def load(self, store: Any, now: float) -> int:
        """Read in from ``store`` the timers due within the horizon; returns how many."""
        until = now + self.horizon
        # Raised before reading: a run that parks while the store is read is kept by __setitem__.
        self.loaded_until = max(self.loaded_until, until)
        rows = await store.due_timers(until, limit=MAX_LOADED)
        if len(rows) == MAX_LOADED:  # more are due than we hold: the rest on the next round
            self.loaded_until = rows[-1][1]
        for rid, when in rows:
            self[rid] = when
        self.next_load = min(now + self.horizon / 2, self.loaded_until)
        return len(rows)
