"""`podium audit verify` on a PostgreSQL log that is written while it is read page by page.

Writers draw an entry's seq before they commit, so an entry can commit after a later one. Read in
pages, each its own snapshot, such an entry can fall behind a page already read while an anchor
that covers it is read in a later page: an honest log reported as tampered. The moment is made,
not waited for: a transaction of the test holds a run id (inserted, not committed), so an engine's
start of that run has drawn its entry's seq and waits behind it (seen in ``pg_stat_activity``);
another engine's entry commits after it; the verifier reads one entry per page, and when its page
has passed the held entry the test lets the start commit and anchors its chain."""

from __future__ import annotations

import asyncio

import psycopg
from paused_workers import waiting_on_locks

from podium import Client, StepContext, Workflow

wf = Workflow("snap")


@wf.step
async def only(ctx: StepContext, input: object) -> object:
    return input


async def _waiting(url: str) -> None:
    await waiting_on_locks(url, "the start never waited behind the held run id")


class _Race:
    """A start of run ``rid`` by ``a`` held after drawing its seq, and an entry of ``b`` after it."""

    def __init__(self, url: str, a: Client, b: Client, rid: str) -> None:
        self.url, self.a, self.b, self.rid = url, a, b, rid
        self.passed_at = 0  # the seq of b's entry: a page that reached it has passed the held one

    async def set(self) -> None:
        self.hold = await psycopg.AsyncConnection.connect(self.url)  # a transaction: not autocommit
        await self.hold.execute(
            "INSERT INTO runs (id, workflow, version, status, created_at) VALUES (%s, 'x', '1', 'pending', 0)",
            (self.rid,),
        )
        self.start = asyncio.ensure_future(self.a.start(wf, self.rid, run_id=self.rid))
        await _waiting(self.url)
        await self.b.record_audit("review.after", self.rid)
        self.passed_at = (await self.b.audit_log(after=0, limit=100_000))[-1].seq

    async def release(self) -> None:
        await self.hold.rollback()
        await self.hold.close()
        await self.start
        await self.a.store.anchor_audit()  # an anchor that covers the entry committed late


async def test_verify_reads_the_log_in_one_snapshot_while_entries_commit_out_of_order(pg_url: str) -> None:
    """Failed before: both reads of ``check_audit`` (it reads again before reporting) said an entry
    of engine A was deleted, its anchor read in a later page than the one that passed it."""
    async with (
        Client(pg_url, workflows=[wf], execute=False) as a,
        Client(pg_url, workflows=[wf], execute=False) as b,
        Client(pg_url, recover=False) as v,
    ):
        for c in (a, b):
            c.store.audit_anchor_interval = 3600  # anchors only when the test writes them
        for i in range(3):
            await a.start(wf, i)
            await b.record_audit("review.before", str(i))
        await a.store.anchor_audit()
        await b.store.anchor_audit()
        races = [_Race(pg_url, a, b, f"held-{n}") for n in range(2)]
        reads, last = [], 0

        async def between(seq: int) -> None:
            nonlocal last
            if seq < last or not reads:  # a new read of the whole log
                reads.append(races[len(reads)] if len(reads) < len(races) else None)
            last = seq
            race = reads[-1]
            if race is not None and race.passed_at and seq >= race.passed_at:
                race.passed_at = 0
                await race.release()
                if race is races[0]:
                    await races[1].set()  # for a second read, if there is one

        await races[0].set()
        v.store.audit_page_size = 1
        v.store.audit_between_pages = between
        try:
            check = await v.governance.check_audit()
            assert races[0].passed_at == 0, "the race was not made"
        finally:
            v.store.audit_between_pages = None
            for race in races:
                if race.passed_at:
                    await race.release()
        assert check.problem is None
        assert (await v.verify_audit())[1] is None
