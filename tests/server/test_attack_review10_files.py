"""Watched folders, attacked (tenth session review): whoever can drop a file in a watched folder
(docs/status.md, "Review of the tenth session's changes (tenth session)")."""

from __future__ import annotations

import os
from typing import Any

import pytest

from . import flows
from .test_api import wait_status


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
async def test_attack_a_file_name_that_is_not_utf8_does_not_hold_up_the_folder(
    server: Any, tmp_path: Any, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose name is not UTF-8 raised at each scan before any file after it (in name order)
    was looked at: one dropped file stopped the folder for good. It is now reported once (named in
    the server's log, not in the audit log, which cannot forget a name) and the other files start."""
    drop = tmp_path / "inbox"
    drop.mkdir()
    async with server(store_url, workflows=flows.TRIGGERS, watch={str(drop): "files"}, trigger_interval=3600) as (app, http):
        bad = os.path.join(os.fsencode(drop), b"a\xff.csv")
        with open(bad, "wb") as f:
            f.write(b"1,2\n")
        (drop / "b.csv").write_text("1,2,3\n")
        for p in (bad, os.fsencode(drop / "b.csv")):
            os.utime(p, (1, 1))
        started = await app.state.triggers.tick()
        assert len(started) == 1, started
        assert (await wait_status(http, started[0], "completed"))["run"]["output"] == 6
        assert "is not UTF-8" in caplog.text and "rename it" in caplog.text and "a\\xff.csv" in caplog.text
        assert await app.state.triggers.tick() == []
        failed = [e for e in await app.state.client.store.read_audit() if e.action == "trigger.failed"]
        assert len(failed) == 1 and "rename it" in failed[0].data, failed
        assert "xff" not in failed[0].data and "a\\udcff" not in failed[0].data  # a name may name a person
