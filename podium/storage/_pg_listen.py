"""Application events over PostgreSQL LISTEN/NOTIFY that outlive their connection: a server
restart, a failover or ``pg_terminate_backend`` ends the listening session; the subscription
connects and listens again (with a pause that doubles up to 5 s while the server does not
answer) instead of ending without a word. NOTIFY is not stored: events sent while no session
listened are not delivered (docs/operations.md, "When the database goes away")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.rows import TupleRow

log = logging.getLogger("podium.events")

Connect = Callable[[], Awaitable[psycopg.AsyncConnection[TupleRow]]]


async def listen(connect: Connect, channel: str, where: str, callback: Callable[[str, str], None]) -> Callable[[], Awaitable[None]]:
    """LISTEN on ``channel`` through connections from ``connect`` and hand every notification's
    (topic, payload) to ``callback``; returns the unsubscribe coroutine function."""

    async def session() -> psycopg.AsyncConnection[TupleRow]:
        conn = await connect()
        try:
            await conn.execute(f"LISTEN {channel}")
        except BaseException:
            await conn.close()
            raise
        return conn

    held = [await session()]

    async def pump() -> None:
        while True:
            try:
                async for note in held[0].notifies():
                    try:
                        topic, payload = json.loads(note.payload)
                        callback(topic, payload)
                    except Exception:  # a bad subscriber must not stop the others' events
                        log.exception("event subscriber failed")
            except psycopg.Error as exc:
                log.warning(
                    "events of store %s: the listening session ended (%s); listening again (events sent "
                    "until then are not delivered)", where, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                )
            await held[0].close()
            pause = 0.1
            while True:
                await asyncio.sleep(pause)
                try:
                    held[0] = await session()
                except (psycopg.Error, OSError) as exc:
                    pause = min(pause * 2, 5.0)
                    log.debug("events of store %s: cannot listen yet (%s)", where, exc)
                    continue
                log.warning("events of store %s: listening again", where)
                break

    task = asyncio.get_running_loop().create_task(pump())

    async def unsubscribe() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
            await task
        await held[0].close()

    return unsubscribe
