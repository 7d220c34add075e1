"""The garbage collector's pace while an engine runs (the ``gc`` setting).

CPython starts a young collection every 700 new container objects, and every tenth of those a
middle one; a full one follows once the old generation grew by a quarter. An engine driving
10,000 runs at once keeps ~33 container objects alive per run (the run's coroutines, task,
futures, executor), so a burst of starts promotes them all and the collector walks that whole
heap again and again: measured at ~90 µs of CPU per run of ``bench/run.py many_runs``, a third of
it, though runs leave no cyclic garbage (a run's objects are freed by reference counting).

With ``gc = "engine"`` (the default), the first client to open raises the young threshold to
:data:`YOUNG` (the middle and full ones keep their ratios, so they come as much later) and the
last to close puts back the thresholds it found. Cycles made by other code are still collected,
only in larger batches: at most ~20,000 new container objects wait (a few MB), and one young
pass takes ~2-3 ms instead of many of ~0.1 ms. Thresholds set by the program stay its own: a
young threshold already higher, or 0 (automatic collection off), is left as it is, and
thresholds changed while a client is open are not put back. ``gc = "python"`` leaves the
collector alone.
"""

from __future__ import annotations

import gc
import threading

YOUNG = 20_000
"""The young generation's threshold while an engine runs (CPython's default: 700)."""

_lock = threading.Lock()
_clients = 0
_found: tuple[int, ...] | None = None  # the thresholds the first client found
_set: tuple[int, ...] | None = None  # the ones it set (None: it changed nothing)


def engage(mode: str) -> bool:
    """A client opens: pace the collector for many live runs unless ``mode`` is ``"python"``.
    Returns whether this client counts (it must then call :func:`release` once when it closes)."""
    global _clients, _found, _set
    if mode != "engine":
        return False
    with _lock:
        _clients += 1
        if _clients == 1:
            _found = gc.get_threshold()
            young = _found[0]
            if 0 < young < YOUNG:
                _set = (YOUNG, *_found[1:])
                gc.set_threshold(*_set)
            else:
                _set = None
    return True


def release() -> None:
    """A client that :func:`engage` counted closes: the last one puts back what the first found,
    unless the program changed the thresholds since."""
    global _clients, _found, _set
    with _lock:
        if _clients == 0:
            return
        _clients -= 1
        if _clients == 0:
            if _set is not None and _found is not None and gc.get_threshold() == _set:
                gc.set_threshold(*_found)
            _found = _set = None


__all__ = ["YOUNG", "engage", "release"]
