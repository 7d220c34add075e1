"""How a store writes the audit log without one lock for the whole cluster.

Each open store (one per engine, worker or CLI process) writes its entries into a chain of its own,
named by a random id: its entries link to each other and are signed with the audit key, so a
writer never waits for another. Only the *anchor chain* is shared and written under a lock: its
entries (``audit.anchor``) record a writer chain's head (its length and last hash) when the chain
opens, at most :attr:`ChainedAudit.audit_anchor_interval` seconds after the chain grew, and when
the store closes. Verification (:func:`podium.governance.audit.check_chain`) checks each chain and
every anchor against the chain it names, so deleting, reordering, editing or cutting the tail of
any chain is caught; the head log outside the store (:mod:`podium._auditkey`) covers the entries
written since the last anchor. Entries written before chains existed form the legacy chain, which
the first anchor seals by linking to its last entry.

A backend provides two writes: :meth:`ChainedAudit._audit_insert` (draw the next ``seq``, sign,
insert; no store-wide lock, but the entries of one target commit in the order of their numbers)
and :meth:`ChainedAudit._audit_insert_anchor` (under the store-wide lock: find the anchor chain's
head, then the same). A run's end is written in the same transaction as the
run's final state (``Store.append(..., audit=entry)`` inside :meth:`ChainedAudit._chained`), so no
reader ever sees a finished run without its end anchor, and a refused final write (another engine
took the run over) leaves no end anchor either. A run's start goes in with its creation the same way;
the runs a group commit creates together (:mod:`podium.storage._group`) place their start entries in
the chain one after the other inside that one transaction (:meth:`ChainedAudit._chained_many`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .._auditkey import AuditKeys
from ..errors import StoreError
from ..records import ANCHOR_ACTION, ANCHOR_CHAIN, GENESIS, GOVERNING_ACTIONS, AuditEntry, chain_body

log = logging.getLogger("podium.audit")

Sign = Callable[[AuditEntry], None]


class _Chain:
    """This store's own chain: its id, its head, and how much of it is anchored."""

    __slots__ = ("anchored", "anchored_at", "cseq", "head", "id", "lock", "task", "timer", "unsure")

    def __init__(self) -> None:
        self.id = secrets.token_hex(8)
        self.cseq = 0
        self.head = GENESIS
        self.anchored = -1  # the length last anchored; -1: the chain is not registered yet
        self.anchored_at = 0.0
        self.lock = asyncio.Lock()
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Future[None] | None = None
        self.unsure = False
        """A write holding the chain failed or was interrupted: whether it committed is unknown
        (a cancellation as COMMIT went out, a connection lost then), so the head is read back
        from the store before the next entry is placed."""


class _Hold:
    """The chain held for one transaction's entries (:meth:`ChainedAudit._chained_many`): a plain
    class, not a generator, as every run's start and end goes through it."""

    __slots__ = ("anchor", "anchor_later", "chain", "head", "placed", "store")

    def __init__(
        self,
        store: ChainedAudit,
        chain: _Chain,
        anchor: Callable[[_Chain], Awaitable[None]],
        anchor_later: Callable[[_Chain], None],
        head: Callable[[str], Awaitable[tuple[int, str] | None]],
    ) -> None:
        self.store = store
        self.chain = chain
        self.anchor = anchor
        self.anchor_later = anchor_later
        self.head = head
        self.placed: list[AuditEntry] = []

    def place(self, entry: AuditEntry) -> AuditEntry:
        placed, c = self.placed, self.chain
        if placed and not placed[-1].seq:
            placed.pop()  # not written: its place in the chain goes to this one
        cseq, head = (placed[-1].cseq, placed[-1].hash) if placed else (c.cseq, c.head)
        e = AuditEntry(
            seq=entry.seq, ts=entry.ts, actor=entry.actor, action=entry.action, target=entry.target,
            data=entry.data, prev_hash=head, hash=entry.hash, chain=c.id, cseq=cseq + 1,
        )  # fmt: skip
        placed.append(e)
        return e

    async def __aenter__(self) -> Callable[[AuditEntry], AuditEntry]:
        c = self.chain
        await c.lock.acquire()
        try:
            if c.unsure:
                head = await self.head(c.id)
                if head is not None:
                    c.cseq, c.head = head
                c.unsure = False
            if c.anchored < 0:
                await self.anchor(c)  # register the chain before its first entry
        except BaseException:
            c.lock.release()
            raise
        return self.place

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        c, placed, store = self.chain, self.placed, self.store
        try:
            if exc_type is not None:  # the block failed: the chain moves only as far as the store says
                c.unsure = c.unsure or bool(placed)
                return
            if placed and not placed[-1].seq:  # the last one was not written after all (its run existed)
                placed.pop()
            if not placed:
                return
            e = placed[-1]
            c.cseq, c.head = e.cseq, e.hash
            due = time.monotonic() - c.anchored_at >= store.audit_anchor_interval
            if due:
                try:
                    await self.anchor(c)
                except Exception as exc:  # the entries are committed: their writers must not see a failure
                    _anchor_failed(exc, "; trying again later")
                    due = False
        finally:
            c.lock.release()
        store.audit_keys.note_head(e.seq, e.hash)
        if not due and c.timer is None:
            c.timer = asyncio.get_running_loop().call_later(store.audit_anchor_interval, self.anchor_later, c)


class ChainedAudit:
    """The audit-log half of a store: per-writer chains plus periodic anchors (mixed into stores)."""

    audit_keys: AuditKeys  # Store provides it
    audit_anchor_interval: float = 1.0
    """Seconds after which a grown chain's head is anchored (also done when the store closes)."""

    async def _audit_insert(self, e: AuditEntry, sign: Sign) -> None:
        """Give ``e`` the next ``seq`` of the whole log, ``sign(e)``, insert it (no store-wide lock).
        Entries of one target commit in the order of their numbers, so a reader that sees one sees
        every entry of its target numbered before it (a model's first claim is decided on that: memory
        and SQLite number inside the write, PostgreSQL under a lock on the target)."""
        raise NotImplementedError

    async def _audit_chain_head(self, chain: str) -> tuple[int, str] | None:
        """(cseq, hash) of the last entry of ``chain`` in the store; None if it has none."""
        raise NotImplementedError

    async def _audit_insert_anchor(self, e: AuditEntry, sign: Sign) -> None:
        """Under the store-wide lock: chain ``e`` after the anchor chain's last entry (the first one
        after the last legacy entry, or :data:`GENESIS`), set its ``cseq``, ``prev_hash`` and ``seq``,
        ``sign(e)``, insert it."""
        raise NotImplementedError

    def _sign(self, e: AuditEntry) -> None:
        e.hash = self.audit_keys.sign(chain_body(e.prev_hash, e))

    def _own_chain(self) -> _Chain:
        chain: _Chain | None = self.__dict__.get("_audit_chain")
        if chain is None:
            chain = self.__dict__["_audit_chain"] = _Chain()
        return chain

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        async with self._chained(entry) as e:
            await self._audit_insert(e, self._sign)
        return e

    @contextlib.asynccontextmanager
    async def _chained(self, entry: AuditEntry) -> AsyncIterator[AuditEntry]:
        """Hold this store's chain for one entry: yields a copy of ``entry`` placed after the chain's
        head, for the backend to number (``seq``), sign and insert, in a transaction of its choice
        (the one that writes the state the entry describes: a run's creation, its end). The chain
        moves on only if the block succeeds and leaves the entry numbered (``seq`` set back to 0:
        not written)."""
        async with self._chained_many() as place:
            yield place(entry)

    def _chained_many(self) -> _Hold:
        """Hold this store's chain for several entries written by one transaction (the runs of a
        group commit): ``async with`` gives ``place(entry)``, which returns a copy of ``entry``
        placed after the one placed before (the chain's head at first). The backend numbers and
        signs each placed entry before it places the next (the next one links to its hash); an
        entry left unnumbered is not written, and the next one placed takes its place in the chain,
        so the chain gets no gap. The chain moves on only if the block succeeds, to the last
        numbered entry."""
        return _Hold(self, self._own_chain(), self._anchor, self._anchor_later, self._audit_chain_head)

    def _anchor_later(self, c: _Chain) -> None:
        c.timer = None
        c.task = asyncio.ensure_future(self.anchor_audit())
        c.task.add_done_callback(_log_failure)

    async def anchor_audit(self) -> None:
        """Anchor this store's chain now, if it grew since its last anchor."""
        c: _Chain | None = self.__dict__.get("_audit_chain")
        if c is None:
            return
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        async with c.lock:
            if c.anchored != c.cseq:
                await self._anchor(c)

    async def _anchor(self, c: _Chain) -> None:
        a = AuditEntry(
            ts=time.time(),
            actor="engine",
            action=ANCHOR_ACTION,
            target=c.id,
            data=json.dumps({"chain": c.id, "cseq": c.cseq, "hash": c.head}),
            chain=ANCHOR_CHAIN,
        )
        await self._audit_insert_anchor(a, self._sign)
        c.anchored, c.anchored_at = c.cseq, time.monotonic()
        self.audit_keys.note_head(a.seq, a.hash)

    async def _close_audit(self) -> None:
        """Anchor the chain's last entries before the store closes (a failure is logged: closing goes on)."""
        try:
            await self.anchor_audit()
        except Exception as exc:
            _anchor_failed(exc, " on close")


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        _anchor_failed(exc, "")


def _anchor_failed(exc: BaseException, when: str) -> None:
    """Log a failed anchor: one line when the store is down (its message says why), else with the traceback."""
    if isinstance(exc, StoreError):
        log.warning("could not anchor the audit chain%s (%s)", when, exc)
    else:
        log.warning("could not anchor the audit chain%s", when, exc_info=exc)


AUDIT_COLUMNS = "seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq"
#: The condition of the partial index ``audit_governing`` as the schemas write it (the query names
#: it the same way, so that the database uses the index).
GOVERNING = "action IN (" + ", ".join(f"'{a}'" for a in GOVERNING_ACTIONS) + ")"
#: Whether the log holds a ``user.put`` (:meth:`podium.storage.Store.audit_user_put`): its condition
#: is the one of the partial index ``audit_user_put`` written as a literal (a parameter would not
#: match it), so the lookup reads at most one entry of that index however long the log is.
USER_PUT = "SELECT 1 FROM audit WHERE action = 'user.put' LIMIT 1"


def entry_from_row(r: tuple[object, ...]) -> AuditEntry:
    """An entry from a row of :data:`AUDIT_COLUMNS`."""
    return AuditEntry(
        seq=r[0], ts=r[1], actor=r[2], action=r[3], target=r[4], data=r[5], prev_hash=r[6], hash=r[7],  # type: ignore[arg-type]
        chain=r[8], cseq=r[9] or 0,  # type: ignore[arg-type]
    )  # fmt: skip
