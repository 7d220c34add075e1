"""The durability setting: SQLite commits fsynced before they return (power) or not (crash, the default)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium import Client, ConfigError, Workflow
from podium.storage.sqlite import SQLiteStore


def _synchronous(store: SQLiteStore) -> int:
    return int(store.db.execute("PRAGMA synchronous").fetchone()[0])


async def test_power_mode_fsyncs_every_commit_and_crash_mode_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_DURABILITY", raising=False)
    wf = Workflow("durable_setting")

    @wf.step
    async def one() -> int:
        return 1

    default = SQLiteStore(f"sqlite:///{tmp_path}/a.db")
    async with Client(default, workflows=[wf]) as c:
        assert default.durability == "crash" and _synchronous(default) == 1  # NORMAL
        assert await c.run(wf) == 1
    monkeypatch.setenv("PODIUM_DURABILITY", "power")
    async with Client(f"sqlite:///{tmp_path}/b.db", workflows=[wf]) as c:
        assert c.store.durability == "power" and _synchronous(c.store) == 2  # FULL
        assert await c.run(wf) == 1
    explicit = SQLiteStore(f"sqlite:///{tmp_path}/c.db", durability="crash")  # an argument beats the setting
    assert explicit.durability == "crash"


def test_a_bad_durability_names_the_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="'crash' or 'power'"):
        SQLiteStore(f"sqlite:///{tmp_path}/d.db", durability="paranoid")
    monkeypatch.setenv("PODIUM_DURABILITY", "sometimes")
    with pytest.raises(ConfigError, match=r"durability \(from \$PODIUM_DURABILITY\)"):
        SQLiteStore(f"sqlite:///{tmp_path}/e.db")
    assert os.environ["PODIUM_DURABILITY"] == "sometimes"
