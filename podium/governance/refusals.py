"""Refusals written to the audit log at a bounded rate.

Every refusal (``access.denied``) used to be an audit entry of its own, so whoever holds a refused
token, or repeats any refused request, could grow the signed log (and the disk) at the rate the API
answers. Here the first refusal of each kind (the same actor, target and details: permission,
reason, problem; not the run and step that noticed it) is written at once, so that it is seen promptly; repeats within
``audit_refusal_window`` seconds are counted in memory and written as one summary entry (the same
action, actor, target and details, with ``repeated``, ``first_at`` and ``last_at``) when the window
closes, checked at each refusal and at each sweep of the engine, or when the client closes. A kind
that stays refused gets a summary per window; one with no repeat in a window is forgotten, so its
next refusal is written at once again.

At most ``audit_refusal_keys`` kinds are held per actor. Past that (an attacker varying the target
to defeat the deduplication), the actor's first refusal that does not fit is written at once, marked
``cap_reached``, and its others are counted into one ``more_refusals`` entry per window (target
empty, a sample of the first few kinds it counts). The cap is per actor, not per client: the HTTP
server's one client serves every caller, and one caller filling a shared cap hid everyone's later
refusals (another user's, the engine's report of a record edited in the store) in that count. So an
attacker adds at most about two entries per kind held and two for the overflow in each window, and
a client holds at most ``audit_refusal_keys`` kinds per actor (actors are the store's users and the
engine). A process that is killed loses its unwritten counts (the first of each kind is in the log).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

DENIED = "access.denied"
SAMPLE = 10
"""Kinds named in a ``more_refusals`` entry."""
WHERE = frozenset({"run", "step"})
"""Details that say where a refusal was noticed (the run and step that read an edited record), not
what was refused: not part of its kind (each run made a new kind, and enough runs reading one
edited record filled the cap and hid the engine's report of another). A summary keeps the first's."""

Write = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""How an entry is written: ``write(actor, target, data)``, action ``access.denied``."""


@dataclass(slots=True)
class _Held:
    actor: str
    target: str
    data: dict[str, Any]
    until: float
    """When this window closes."""
    count: int = 0
    first: float = 0.0
    last: float = 0.0


@dataclass(slots=True)
class _Overflow:
    until: float
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    sample: list[dict[str, Any]] = field(default_factory=list)


class Refusals:
    """The refusals one client has written, and the repeats it has yet to write."""

    def __init__(self, write: Write, *, window: float, keys: int, clock: Callable[[], float] = time.time) -> None:
        self.write = write
        self.window = window
        self.keys = keys
        self.clock = clock
        self._held: OrderedDict[str, _Held] = OrderedDict()  # oldest window first
        self._kinds: dict[str, int] = {}  # kinds held per actor
        self._overflow: dict[str, _Overflow] = {}  # per actor past the cap

    @classmethod
    def from_settings(cls, write: Write) -> Refusals:
        """Window and cap from the ``audit_refusal_window`` and ``audit_refusal_keys`` settings."""
        from ..settings import setting

        return cls(write, window=float(setting("audit_refusal_window")), keys=int(setting("audit_refusal_keys")))

    async def refused(self, actor: str, target: str, data: dict[str, Any]) -> None:
        """Audit one refusal: at once when it is the first of its kind, else counted."""
        now, write = self.clock(), self.write
        await self._flush(now)
        what = {k: v for k, v in data.items() if k not in WHERE}
        key = hashlib.sha256(json.dumps([actor, target, what], sort_keys=True, default=str).encode()).hexdigest()
        held = self._held.get(key)
        if held is not None:
            held.count += 1
            held.first = held.first or now
            held.last = now
            return
        if self.window <= 0:  # deduplication off
            await write(actor, target, data)
            return
        if self._kinds.get(actor, 0) < self.keys:
            self._hold(key, _Held(actor=actor, target=target, data=data, until=now + self.window))
            await write(actor, target, data)
            return
        over = self._overflow.get(actor)
        if over is None:
            self._overflow[actor] = _Overflow(until=now + self.window)
            await write(actor, target, {**data, "cap_reached": self.keys})
            return
        over.count += 1
        over.first = over.first or now
        over.last = now
        if len(over.sample) < SAMPLE:
            over.sample.append({"actor": actor, "target": target, **{k: data[k] for k in ("permission", "reason") if k in data}})

    def _hold(self, key: str, held: _Held) -> None:
        self._held[key] = held
        self._kinds[held.actor] = self._kinds.get(held.actor, 0) + 1

    async def flush(self, *, closing: bool = False) -> None:
        """Write the summaries of the windows closed by now (``closing``: every one, as the client closes)."""
        await self._flush(None if closing else self.clock())

    async def _flush(self, due_by: float | None) -> None:
        write = self.write
        while self._held:
            key, held = next(iter(self._held.items()))
            if due_by is not None and held.until > due_by:
                break
            del self._held[key]  # before the write: a failing store must not write it twice
            if (left := self._kinds[held.actor] - 1) > 0:
                self._kinds[held.actor] = left
            else:
                del self._kinds[held.actor]
            if held.count:
                repeats = {"repeated": held.count, "first_at": held.first, "last_at": held.last, "window": self.window}
                if due_by is not None:  # a kind still refused: a new window, nothing written until it closes
                    self._hold(key, _Held(actor=held.actor, target=held.target, data=held.data, until=due_by + self.window))
                await write(held.actor, held.target, {**held.data, **repeats})
        for actor, over in list(self._overflow.items()):
            if due_by is not None and over.until > due_by:
                continue
            del self._overflow[actor]
            if over.count:
                await write(
                    "engine", "",
                    {"more_refusals": over.count, "first_at": over.first, "last_at": over.last, "window": self.window,
                     "cap": self.keys, "sample": over.sample},
                )  # fmt: skip
