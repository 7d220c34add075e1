"""The garbage collector's pace while an engine drives many runs at once (the ``gc`` setting).

CPython starts a young collection every 700 new container objects, and every tenth of those a
middle one; a full one follows once the old generation grew by a quarter. An engine driving
10,000 runs at once keeps ~33 container objects alive per run (the run's coroutines, task,
futures, executor), so a burst of starts promotes them all and the collector walks that whole
heap again and again: measured at ~90 µs of CPU per run of ``bench/run.py many_runs``, a third of
it, though runs leave no cyclic garbage (a run's objects are freed by reference counting).

With ``gc = "engine"`` (the default), while a client drives at least
:data:`podium.engine.driving.BUSY` runs at once, the young threshold is :data:`YOUNG` (the middle
and full ones keep their ratios, so they come as much later); once every such client is down to a
quarter of that (or closed), the thresholds found are put back. Only then: cycles that other code
makes (a step's parser tree, an ORM session) wait for larger batches, up to ~20,000 new container
objects, and whatever those hold (a step that leaves a 256 KiB buffer in a cycle per run held
545 MB instead of 85 MB over 2,000 runs one at a time when the threshold was raised for any open
client); with hundreds of runs alive at once their own data is of that order already. Thresholds
set by the program stay its own: a young threshold already higher, or 0 (automatic collection
off), is left as it is, and thresholds changed while raised are not put back. While busy, a
middle (or full) collection that finds no garbage doubles the young collections before the next
middle one, up to :data:`MIDDLE_MAX` (with thousands of runs alive, each middle collection walks
nearly all of them again), and the full ratio is divided by as much (full collections stay one
per ~100 young ones: cycles that die old are found by those only); any collection that finds
some, a young one too, puts the ratios found back; a middle ratio found above the ceiling is
kept. Not on CPython 3.14 and later, whose incremental collector has no middle generation (its
second threshold is the rate the old one is scanned at). ``gc = "python"`` leaves the collector
alone.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import weakref

YOUNG = 20_000
"""The young generation's threshold while an engine drives many runs (CPython's default: 700)."""

MIDDLE_MAX = 80
"""The most young collections between two middle ones while busy, reached by doubling while the
middle (and full) collections find no garbage (CPython's default: 10)."""

_GENERATIONS = sys.version_info < (3, 14)  # 3.14's incremental collector has no middle generation
_lock = threading.Lock()
_busy = 0  # clients driving many runs now
_found: tuple[int, ...] | None = None  # the thresholds found when the first became busy
_set: tuple[int, ...] | None = None  # the ones set now (None: nothing changed)
_ours: set[tuple[int, ...]] = set()  # every one set while busy (the program's own are not put back)
_forks = 0  # forks this process is the child of: a busy client copied into a child counts for nothing


class Pace:
    """One open client's part in the pace: :meth:`busy` as the runs it drives grow many or few
    (``driving.py``), :meth:`close` when it closes. A client dropped without being closed closes
    its part when it is collected, so the thresholds do not stay raised for good."""

    def __init__(self, mode: str, owner: object) -> None:
        self.on = mode == "engine"
        self.is_busy = False
        self._counted = 0  # the value of _forks when it was counted busy
        self._gone = weakref.finalize(owner, self.close) if self.on else None

    def busy(self, flag: bool) -> None:
        if self.is_busy == flag or not self.on:
            return
        self.is_busy = flag
        if flag:
            self._counted = _forks
            _count(1)
        elif self._counted == _forks:  # (in a forked child the count started again from none)
            _count(-1)

    def close(self) -> None:
        self.busy(False)
        self.on = False
        if self._gone is not None:
            self._gone.detach()


def _count(delta: int) -> None:
    global _busy, _found, _set
    with _lock:
        _busy += delta
        if delta > 0 and _busy == 1:
            _found = gc.get_threshold()
            young = _found[0]
            _set = (YOUNG, *_found[1:]) if 0 < young < YOUNG else None
            if _set is not None:
                _ours.add(_set)
                gc.set_threshold(*_set)
                if _GENERATIONS and len(_found) > 2 and _found[1] > 0:  # (3.14: the second threshold is the old one's scan rate)
                    gc.callbacks.append(_paced)
        elif delta < 0 and _busy == 0:
            _unwatch()
            if _set is not None and _found is not None and gc.get_threshold() in _ours:
                gc.set_threshold(*_found)
            _found = _set = None
            _ours.clear()


def _paced(phase: str, info: dict[str, int]) -> None:
    """After a middle or full collection while busy: one that found no garbage (the engine's runs
    leave none: their objects are freed by reference counting) doubles the young collections
    before the next middle one, up to :data:`MIDDLE_MAX`; any collection that found some, a young
    one too (cycles being made now: those that outlive a young collection would wait for the
    middle one quiet times put off), puts the ratios found back. Runs inside the collector: it
    changes nothing unless it takes the lock at once (the thread holding it may be the one
    collecting) and the thresholds are still the pace's."""
    global _set
    if phase != "stop" or (info["generation"] == 0 and info["collected"] == 0):
        return
    if not _lock.acquire(blocking=False):
        return
    try:
        s, found = _set, _found
        if s is None or found is None or _busy == 0 or gc.get_threshold() != s:
            return
        middle = max(min(s[1] * 2, MIDDLE_MAX), found[1]) if info["collected"] == 0 else found[1]
        if middle != s[1]:
            _set = (s[0], middle, *_full(found, middle))
            _ours.add(_set)
            gc.set_threshold(*_set)
    finally:
        _lock.release()


def _full(found: tuple[int, ...], middle: int) -> tuple[int, ...]:
    """The full threshold (middle collections before a full one) that keeps full collections at
    about the young collections' pace found: cycles that die old (a long run's session, an evicted
    cache entry) are found by full collections only, and a middle one finding nothing says nothing
    of them. (Not raised to the middle ones already counted: while the old generation's quarter
    rule holds a full one back, that count grows past any threshold, and full ones stopped.)"""
    if len(found) < 3 or found[2] <= 0:
        return found[2:]
    return (-(-found[1] * found[2] // middle), *found[3:])


def _unwatch() -> None:
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_paced)


def _forked() -> None:
    """In a child of :func:`os.fork` (a step's ``multiprocessing`` worker): no client of the parent
    drives runs here, so Python's pace comes back (the parent's clients count in the parent only)."""
    global _busy, _found, _set, _forks, _lock
    _lock = threading.Lock()  # (held by another thread of the parent's at the fork, it would stay so)
    _forks += 1
    _unwatch()
    if _set is not None and _found is not None and gc.get_threshold() in _ours:
        gc.set_threshold(*_found)
    _busy, _found, _set = 0, None, None
    _ours.clear()


os.register_at_fork(after_in_child=_forked)

__all__ = ["YOUNG", "Pace"]
