"""Twelfth-session review of the watched folders' sealed marks (server/_file_marks.py).

A file whose mark is missing was taken as processed when a run of its id existed, whatever wrote
that run. The file's run id derives from its path, size and mtime, so whoever writes the database
(without the audit key) could write a runs row of that id for a file just dropped: the server then
sealed the file's mark with the audit key, wrote no audit entry and never ran the file; deleting the
row afterwards left a sealed mark and nothing else, so ``podium audit verify`` found nothing. Only a
signed ``run.start`` says a file ran. Fails on the code before the fix."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from store_attacker import sql

from podium.server.triggers import derived_id

from . import flows
from .test_api import wait_status


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
async def test_attack_a_run_row_written_for_a_new_file_does_not_skip_it_silently(server: Any, tmp_path: Any, store_url: str) -> None:
    drop = tmp_path / "inbox"
    drop.mkdir()
    mark = f"{os.path.abspath(drop / 'a.csv')}|6|1000000000"
    rid = derived_id("file", mark)
    async with server(store_url, workflows=flows.TRIGGERS, watch={str(drop): "files"}, trigger_interval=3600) as (app, http):
        sql(store_url, "INSERT INTO runs (id, workflow, version, status, input, created_at) VALUES (?, 'files', '1', 'completed', '{}', ?)",
            rid, time.time())  # fmt: skip
        (drop / "a.csv").write_text("1,2,3\n")
        os.utime(drop / "a.csv", (1, 1))
        assert await app.state.triggers.tick() == []  # its id is taken: nothing can start it while the row is there
        entries = await app.state.client.store.read_audit()
        denied = [e for e in entries if e.action == "access.denied" and e.target == f"filedrop:{rid}"]
        assert denied, "the file was skipped without a word"
        assert "no signed start" in denied[0].details()["problem"]
        sql(store_url, "DELETE FROM runs WHERE id = ?", rid)  # the attacker covers the tracks
        started = await app.state.triggers.tick()
        assert started == [rid], "the file was never run"
        assert (await wait_status(http, rid, "completed"))["run"]["output"] == 6
        assert await app.state.triggers.tick() == []  # sealed now: once
