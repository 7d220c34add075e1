"""Watched folders' marks as the store keeps them, sealed with the audit key.

A watched folder marks each file it started a run for (namespace ``filedrops``, keyed by the
file's path, size and mtime; the run id derives from the same). Whoever writes the database can
write a mark for a file not yet processed (the server then skipped it, silently, for good) or
delete one (the file ran again once retention had pruned its run: its business action twice). So
each mark is sealed (an HMAC of the audit key over the mark and its run id, :mod:`podium.storage._sealed`),
and a file whose mark is missing or does not hold its seal is started only if nothing says it ran:
no signed ``run.start`` entry of it in the audit log (which retention does not prune); a run of its
id without one (a row written in the store, its id derived from the file) is warned of and audited,
the file left until the row is gone. Otherwise its mark is sealed again. A mark of an earlier release (its run id alone) is
sealed again at the first scan after the upgrade, without a word, when its run's start is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from ..governance.audit import entry_signed
from ..storage import _sealed as sealed

log = logging.getLogger("podium.triggers")
KIND = "filedrop"


def seal(store: Any, mark: str, rid: str) -> str:
    """The stored form of ``mark`` (a file's path, size and mtime) whose run is ``rid``."""
    return sealed.seal(store, KIND, mark, {"run": rid})


def holds(store: Any, mark: str, rid: str, stored: str | None) -> bool:
    """Whether ``stored`` is the sealed mark of ``mark`` and run ``rid``."""
    entry, ok = sealed.opened(store, KIND, mark, stored)
    return ok and entry is not None and entry.get("run") == rid


async def logged(store: Any, rid: str) -> bool:
    """Whether the audit log holds the signed ``run.start`` of run ``rid``."""
    keys = store.audit_keys.all()
    return any(e.action == "run.start" and entry_signed(e, keys) for e in await store.audit_for(rid))


async def unmarked(client: Any, folder: str, mark: str, rid: str, stored: str | None, namespace: str) -> bool:
    """For a file whose mark is missing or does not hold its seal: whether to start it (nothing says
    it ran). If it ran, its mark is sealed again; a forged mark, or one deleted after its run was
    pruned, is warned of and audited (``access.denied`` of ``filedrop:RUN_ID``: the file's path
    stays out of the audit log, which cannot forget a name)."""
    exists = await client.store.get_run(rid) is not None
    if client.governance.audit_enabled:  # only a signed start says it ran: a runs row of the id (derived
        # from the file's path, size and mtime) is written by anyone who writes the database
        started = await logged(client.store, rid)
        if exists and not started:
            problem = (
                f"a run of file {rid} in watched folder {folder!r} is in the store with no signed start in the audit "
                "log (written behind the server's back): the file is not started while that row holds its id; delete "
                "the row (podium audit verify names it) and the next scan starts the file"
            )
            log.warning("%s (file %s)", problem, mark.rsplit("|", 2)[0])
            await client.record_audit("access.denied", f"filedrop:{rid}", reason="record not backed by the audit log", problem=problem)
            return False  # not marked: looked at again at each scan
    else:  # no audit log: nothing signed to go by
        started = exists
    legacy = stored == rid  # an earlier release kept the run id alone
    if started:
        await client.store.kv_put(namespace, mark, seal(client.store, mark, rid))
    gone = stored is None and started and not exists
    if (stored is not None and not legacy) or (legacy and not started) or gone:
        what = "was deleted from the store after its run was pruned" if gone else "in the store is not sealed with the audit key"
        then = (
            "the file ran already (its run.start is in the audit log), so it is not run again; the mark is back"
            if started
            else "the file never ran, so it is started now"
        )
        problem = f"the mark of file {rid} in watched folder {folder!r} {what} (written or edited behind the server's back): {then}"
        log.warning("%s (file %s)", problem, mark.rsplit("|", 2)[0])
        await client.record_audit("access.denied", f"filedrop:{rid}", reason="record not backed by the audit log", problem=problem)
    return not started


__all__ = ["holds", "logged", "seal", "unmarked"]
