"""File drop marks edited in the store (helper seal11, eleventh session).

A watched folder keeps a mark per file it processed (``filedrops``: path, size and mtime), and a
file's run id derives from the same, so a mark deleted while the run is kept starts nothing. The
attacker writes the database but does not hold the audit key: a mark written for a file not yet
processed made the server skip it for good, silently; a mark deleted once retention had pruned the
file's run started the file's business action again. Each test failed on the code before its fix
(docs/status.md, "ML outcomes, quarantines and file drop marks, sealed").
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from store_attacker import sql

from podium.server.triggers import derived_id

from . import flows
from .test_api import wait_status


def _drop(tmp_path: Any) -> tuple[Any, str]:
    drop = tmp_path / "inbox"
    drop.mkdir()
    return drop, f"{os.path.abspath(drop / 'a.csv')}|6|1000000000"


def _file(drop: Any) -> None:
    """The file (its size and mtime as the mark says), dropped after the server's first scan."""
    (drop / "a.csv").write_text("1,2,3\n")
    os.utime(drop / "a.csv", (1, 1))


def _denied(entries: list[Any], target: str) -> list[Any]:
    return [e for e in entries if e.action == "access.denied" and e.target == target]


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
async def test_attack_a_mark_written_in_the_store_does_not_make_a_new_file_be_skipped(server: Any, tmp_path: Any, store_url: str) -> None:
    drop, mark = _drop(tmp_path)
    async with server(store_url, workflows=flows.TRIGGERS, watch={str(drop): "files"}, trigger_interval=3600) as (app, http):
        sql(store_url, "INSERT INTO kv (ns, key, value, updated_at) VALUES ('filedrops', ?, ?, 0)", mark, "forged")
        _file(drop)
        started = await app.state.triggers.tick()
        assert len(started) == 1, "the forged mark made the server skip the new file"
        assert (await wait_status(http, started[0], "completed"))["run"]["output"] == 6
        assert await app.state.triggers.tick() == []  # sealed now: once
        entries = await app.state.client.store.read_audit()
        assert len(_denied(entries, f"filedrop:{derived_id('file', mark)}")) == 1


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
async def test_attack_a_mark_deleted_after_its_run_was_pruned_does_not_run_the_file_again(server: Any, tmp_path: Any, store_url: str) -> None:
    drop, mark = _drop(tmp_path)
    async with server(store_url, workflows=flows.TRIGGERS, watch={str(drop): "files"}, trigger_interval=3600) as (app, http):
        _file(drop)
        [rid] = await app.state.triggers.tick()
        await wait_status(http, rid, "completed")
        await app.state.client.store.delete_runs([rid])  # retention pruned the finished run
        sql(store_url, "DELETE FROM kv WHERE ns = 'filedrops' AND key = ?", mark)
        assert await app.state.triggers.tick() == [], "the file was processed again"
        assert await app.state.client.store.get_run(rid) is None
        assert await app.state.triggers.tick() == []  # the mark is back: looked into once
        entries = await app.state.client.store.read_audit()
        assert len(_denied(entries, f"filedrop:{derived_id('file', mark)}")) == 1
        assert [e for e in entries if e.action == "run.start" and e.target == rid]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_marks_of_an_earlier_release_are_sealed_without_running_their_files_again(server: Any, tmp_path: Any, store_url: str) -> None:
    drop, mark = _drop(tmp_path)
    async with server(store_url, workflows=flows.TRIGGERS, watch={str(drop): "files"}, trigger_interval=3600) as (app, http):
        _file(drop)
        [rid] = await app.state.triggers.tick()
        await wait_status(http, rid, "completed")
        sql(store_url, "UPDATE kv SET value = ? WHERE ns = 'filedrops' AND key = ?", rid, mark)  # as an earlier release kept it
        _, problem = await app.state.client.verify_audit()
        assert problem is not None and f"mark of file run {rid} is not sealed" in problem, problem
        assert await app.state.triggers.tick() == []
        assert not _denied(await app.state.client.store.read_audit(), f"filedrop:{derived_id('file', mark)}")
        assert await app.state.triggers.tick() == []
        _, problem = await app.state.client.verify_audit()
        assert problem is None, problem
