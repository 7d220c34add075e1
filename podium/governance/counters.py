"""Spending counters as the store holds them, held up by what the engine saw and the signed log.

The day's, an entity's and a run's spending (namespace ``spend``) are counters in the store's
key-value table, one atomic add per live model call: cheap, shared by every engine, and editable
by anyone who can write the database. Zeroing one let a spent budget be spent again. Within a day
(its keys name the day) and within a run a counter only grows, so:

- each engine keeps the highest value it read or made for each counter (:attr:`Governance.spend_floors`)
  and a counter found lower is put back, audited (``spend.restore``, by ``engine``);
- each add that carries a counter past another tenth of its budget (the limit the policy sets for
  it) writes a signed ``spend.mark`` entry with the total, so an engine that had not read the
  counter (started since) knows how far it went: at most a tenth of a budget can be spent again
  by a writer who zeroes a counter and restarts every engine. A counter with no budget on it is
  never marked (nothing reads it for a budget).

An engine looks the marks of a counter up once (one indexed read of the log per counter it meets:
a run with a budget, once per day or entity); a run with no budget reads and writes nothing more.
``podium audit verify`` names every counter lower than its last mark (:func:`problems`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, Protocol

from ..records import AuditEntry
from ..storage import Store
from .audit import entry_signed
from .policy import SPEND

MARK, RESTORE = "spend.mark", "spend.restore"
STEPS = 10  # marks per budget: a tenth of it at most can be spent again after a zeroing and a restart
KEPT = 50_000  # counters an engine remembers (one per workflow and day, entity and day, run with a budget)
log = logging.getLogger("podium.governance")


class Service(Protocol):
    """What the counters need of the governance service."""

    store: Store
    spend_floors: dict[str, float]

    async def record(self, action: str, target: str = "", *, actor: str | None = None, **data: Any) -> None: ...


def _num(text: str | None) -> float:
    try:
        value = float(text or 0)
    except ValueError:  # not a number: as good as zeroed
        return 0.0
    return value if math.isfinite(value) else 0.0


def _below(value: float, floor: float) -> bool:
    return value < floor - 1e-9 * max(1.0, abs(floor))  # a float summed in SQL, read back as text


def _marks(entries: Iterable[AuditEntry]) -> float:
    return max((_num(str(e.details().get("total"))) for e in entries if e.action == MARK), default=0.0)


async def _floor(service: Service, key: str) -> float:
    floor = service.spend_floors.get(key)
    if floor is None:
        keys = service.store.audit_keys.all()
        floor = _marks(e for e in await service.store.audit_for(f"spend:{key}") if entry_signed(e, keys))
    return floor


def _remember(service: Service, key: str, value: float) -> None:
    floors = service.spend_floors
    if key not in floors and len(floors) >= KEPT:
        floors.clear()  # the marks in the log still hold what was forgotten
    floors[key] = max(value, floors.get(key, 0.0))


async def _restore(service: Service, key: str, found: float, floor: float) -> float:
    """Put counter ``key``, found at ``found``, back to ``floor``; audited. Its value then."""
    store = service.store
    for _ in range(20):  # each round loses only to another writer's change
        text = await store.kv_get(SPEND, key)
        if not _below(_num(text), floor):
            return _num(text)
        if await store.kv_swap(SPEND, key, text, repr(floor)):
            break
    await service.record(RESTORE, f"spend:{key}", actor="engine", found=found, restored=floor)
    log.warning(
        "spending counter %s held %s, lower than the %s this engine or the signed audit log knew it at: it was "
        "lowered behind the admins' back and is put back (audited as spend.restore)", key, found, floor,
    )  # fmt: skip
    return floor


async def read(service: Service, key: str) -> float:
    """Counter ``key``, never less than what it is known to have held (a lower one is put back)."""
    floor = await _floor(service, key)  # first: what was known before the read is in the store by then
    value = _num(await service.store.kv_get(SPEND, key))
    if _below(value, floor):
        value = await _restore(service, key, value, floor)
    _remember(service, key, value)
    return value


async def add(service: Service, key: str, amount: float, limit: float | None) -> float:
    """Add ``amount`` to counter ``key`` (the budget on it: ``limit``); its total. Marked in the
    signed log each time the total passes another tenth of ``limit``.

    The floor is taken before the add: every value it holds was in the store before this add
    began, so the counter under this add is at least that. Taken after, it may hold what other
    adds (and reads of them) made of the counter since, this one's included, seen by an add or
    a read that finished first: honest additions at once looked lowered and were "put back" one
    call higher."""
    floor = await _floor(service, key)
    total = await service.store.kv_incr(SPEND, key, amount)
    if _below(total - amount, floor):
        total = await _restore(service, key, total - amount, floor + amount)
    _remember(service, key, total)
    if limit:
        step = float(limit) / STEPS
        if math.floor(total / step) > math.floor((total - amount) / step):
            await service.record(MARK, f"spend:{key}", actor="engine", total=total)
    return total


async def problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every counter lower than its last signed mark (``entries``: the whole log, checked)."""
    keys = store.audit_keys.all()
    marked: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action == MARK and e.target.startswith("spend:") and entry_signed(e, keys):
            marked.setdefault(e.target[len("spend:"):], []).append(e)
    found = []
    for key, marks in sorted(marked.items()):
        floor, value = _marks(marks), _num(await store.kv_get(SPEND, key))
        if _below(value, floor):
            found.append(
                f"spending counter {key} holds {value:g}, but the signed audit log marked it at {floor:g} (audit entry "
                f"{marks[-1].seq}): it was lowered behind the admins' back; the engine puts it back when it next reads it"
            )
    return found


__all__ = ["MARK", "RESTORE", "add", "problems", "read"]
