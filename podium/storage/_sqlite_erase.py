"""Retention and erasure on SQLite (``podium memory prune``, ``podium memory forget``): deleting
finished runs and redacting stored payloads, each with its audit records in the same transaction.
Mixed into :class:`podium.storage.sqlite.SQLiteStore`."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shlex
import sqlite3
import stat
import time
from collections.abc import Callable, Sequence

from .._auditkey import AuditKeys
from .._redact import note_erasure, stored_forms
from ..errors import StoreError
from ..records import AuditEntry, Event, RunRecord
from ._audit import ChainedAudit
from ._base import FINISHED, PAYLOADS, PruneRecord, Redaction, RedactRecord, redacted_rows, redaction_sql
from ._sqlite_schema import UNHELD

_FINISHED_MARKS = ",".join("?" * len(FINISHED))

#: Places an audit entry in the chain held for the transaction (``ChainedAudit._chained_many``).
_Place = Callable[[AuditEntry], AuditEntry]

LIVE_WAIT = 10.0
"""Seconds an erasure waits for the start logs engines hold as it begins to be committed."""


class SQLiteErasure(ChainedAudit):
    @property
    def db(self) -> sqlite3.Connection:  # SQLiteStore provides these
        raise NotImplementedError

    def _insert_entry(self, e: AuditEntry, after: int = 0) -> int:
        raise NotImplementedError

    def _run_now(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    def _events_now(self, run_id: str, after: int = 0) -> list[Event]:
        raise NotImplementedError

    async def finished_run_ids(self, *, before: float) -> list[str]:
        # From runs_status, which holds every ended run (schema 13): status IN alone names no partial
        # index, a scan of every parked run.
        rows = self.db.execute(
            f"SELECT id FROM runs WHERE {UNHELD} AND status IN ({_FINISHED_MARKS}) "
            "AND finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at, id",
            (*FINISHED, before),
        )
        return [r[0] for r in rows]

    async def delete_runs(self, run_ids: Sequence[str], *, record: PruneRecord | None = None) -> list[str]:
        ids = list(dict.fromkeys(run_ids))
        note_erasure()  # what an engine of this process kept of them is read again (and found gone)
        if record is None:
            return self._delete_tx(ids, None)
        async with self._chained_many() as place:  # taken before the transaction: no await inside it
            return self._delete_tx(ids, lambda rid, after: self._insert_entry(place(record(rid)), after))
        return []  # not reached (for type checkers: the context manager could swallow)

    def _delete_tx(self, ids: list[str], audit: Callable[[str, int], int] | None) -> list[str]:
        deleted: list[str] = []
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(ids), 500):  # SQLite limits the parameters of one statement
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                found = [
                    r[0]
                    for r in db.execute(
                        f"SELECT id FROM runs WHERE id IN ({marks}) AND status IN ({_FINISHED_MARKS})",
                        (*part, *FINISHED),
                    )
                ]
                if not found:
                    continue
                marks = ",".join("?" * len(found))
                for table, col in (("events", "run_id"), ("signals", "run_id"), ("runs", "id")):
                    db.execute(f"DELETE FROM {table} WHERE {col} IN ({marks})", found)
                deleted += found
            seq = 0  # the last audit number given in this transaction (0: none yet)
            if audit is not None:
                for rid in deleted:
                    seq = audit(rid, seq)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        kept = set(deleted)
        return [rid for rid in ids if rid in kept]

    start_log_folder: Callable[[], str | None]  # StartLogs provides it (after this class in SQLiteStore's bases)
    audit_keys: AuditKeys

    async def redact_payloads(
        self, texts: Sequence[str], replacement: str, *, record: RedactRecord | None = None
    ) -> Redaction:
        await self._start_logs_settled()
        try:
            if record is None:
                return self._redact_tx(texts, replacement, None, None)
            async with self._chained_many() as place:
                return self._redact_tx(texts, replacement, record, place)
            return Redaction()  # not reached (for type checkers: the context manager could swallow)
        finally:  # done or not, what an engine of this process kept from before is read again
            note_erasure()

    async def _start_logs_settled(self) -> None:
        """Wait until the start logs held by engines as this erasure begins are committed (within a
        turn of their loop, most often; a replay of a dead engine's log holds it too), for at most
        :data:`LIVE_WAIT`; raise :class:`StoreError` if a log would bring runs back after the erasure:
        a stopped engine's (replayed by the next engine to open the store), or one still held. Logs
        begun meanwhile hold starts made after the erasure began, as any later start."""
        waiting, held = self._start_logs()
        deadline = time.monotonic() + LIVE_WAIT
        while held and not waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            waiting, now_held = self._start_logs()
            held &= now_held
        if waiting:
            raise StoreError(_refusal(waiting, set(self.audit_keys.all()), getattr(self, "url", "")))
        if held:
            paths = sorted(path for path, _ in held)
            raise StoreError(
                f"{len(paths)} start log(s) held by a running engine were not committed within {LIVE_WAIT:g} s "
                f"({', '.join(paths[:3])}): erasing now would miss the runs in them, which that engine would "
                "create afterwards with their data. See that engine's log for why its commits fail (`fuser FILE` "
                "names the process holding the file), then erase again"
            )  # fmt: skip

    def _start_logs(self) -> tuple[list[tuple[str, str]], set[tuple[str, int]]]:
        """The start logs of engines that stopped, not replayed yet (non-empty regular files whose
        lock no engine holds: the runs in them are not in the store), each with the key id its first
        line names; and the non-empty ones an engine holds (path, inode): a live engine's, its starts
        not committed yet, or a dead one's being replayed."""
        folder = self.start_log_folder()
        if folder is None or not os.path.isdir(folder):
            return [], set()
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return [], set()
        except OSError as exc:
            raise StoreError(
                f"the start log folder {folder} cannot be read ({exc.strerror or exc}): this erasure cannot tell "
                "whether runs a stopped engine acknowledged wait there, which a replay would bring back. Run it as "
                "the user that runs the engines on this store (the folder's owner), then erase again"
            ) from None
        waiting, held = [], set()
        for name in names:
            if not name.endswith(".log"):
                continue
            path = os.path.join(folder, name)
            try:  # neither following a link nor waiting on a FIFO (a replay refuses both)
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    held.add((path, st.st_ino))
                    continue
                mac, tab, _ = os.read(fd, 256).partition(b"\t")  # a line is MAC<TAB>RECORD, a MAC is KEYID:TAG
                waiting.append((path, mac.partition(b":")[0].decode(errors="replace") if tab else ""))
            finally:
                os.close(fd)
        return waiting, held

    def _redact_tx(
        self, texts: Sequence[str], replacement: str, record: RedactRecord | None, place: _Place | None
    ) -> Redaction:
        counts = {"runs": 0, "events": 0, "signals": 0}
        touched: set[str] = set()
        forms = stored_forms(texts)
        db = self.db
        before = db.execute("PRAGMA secure_delete").fetchone()[0]
        db.execute("PRAGMA secure_delete=ON")  # the old payloads are overwritten, not left in free space
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, col, key in PAYLOADS if forms else ():
                select, update = redaction_sql(table, col, key, len(forms), "instr", "?")
                for new, row_key, hits in redacted_rows(db.execute(select, forms).fetchall(), texts, replacement):
                    db.execute(update, (new, *row_key))
                    counts[table] += hits
                    touched.add(row_key[0])
            seq = 0
            if record is not None and place is not None:
                for rid in sorted(touched):
                    seq = self._insert_entry(place(record(rid, self._run_now(rid), self._events_now(rid))), seq)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:  # the run path keeps the build's setting (zeroing costs a little on every update)
            db.execute(f"PRAGMA secure_delete={int(before)}")
        if touched:  # the WAL holds the pages as they were until a checkpoint (best effort)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return Redaction(
            runs=counts["runs"], events=counts["events"], signals=counts["signals"], run_ids=sorted(touched)
        )


def _refusal(waiting: list[tuple[str, str]], held: set[str], url: str = "") -> str:
    """Why an erasure does not run while ``waiting`` logs wait, and what to do: an engine replays a
    log it can check; one signed with a key not held here is left by every replay made here."""
    mine = [p for p, kid in waiting if kid in held or not kid]  # junk lines: a replay sets the file aside
    theirs = [p for p, kid in waiting if kid and kid not in held]
    out = []
    if mine:
        out.append(
            f"{len(mine)} start log(s) of an engine that stopped hold runs it acknowledged and no engine has "
            f"created yet ({', '.join(mine[:3])}): erasing now would miss them, and replaying them later "
            "would bring their data back. Open the store with an engine first (`podium runs resume --db "
            f"{shlex.quote(url) if url else 'URL'}`, or any podium.Client), which replays them, then erase again"
        )  # fmt: skip
    if theirs:
        out.append(
            f"{len(theirs)} start log(s) are signed with an audit key this process does not hold "
            f"({', '.join(theirs[:3])}), so no engine here can replay them, and an engine holding that key "
            "would bring their runs' data back after the erasure. Open the store with an engine that holds the "
            "store's key (PODIUM_AUDIT_KEY, or Client(audit_key=...)), which replays them; if no engine holds "
            f"it (not this store's: someone put the file there), move it out of {os.path.dirname(theirs[0])}; "
            "then erase again"
        )  # fmt: skip
    return "; ".join(out)
