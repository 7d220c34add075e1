"""``podium connectors list`` and ``add``: the kinds, and the connectors registered in a store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _podium(*args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("PODIUM_DB", None)
    if db:
        env["PODIUM_DB"] = db
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_list_kinds_then_add_and_list_registered(tmp_path: Path) -> None:
    from store_helpers import made_store

    db = made_store(f"sqlite:///{tmp_path}/p.db")  # read commands do not make a store
    out = _podium("connectors", "list", "--db", db)
    assert out.returncode == 0, out.stderr
    assert "openapi" in out.stdout and "sql" in out.stdout and "no connector is registered" in out.stdout
    assert all(k in out.stdout for k in ("nats", "redis", "amqp", "mqtt")), out.stdout
    added = _podium("connectors", "add", "orders", "sql", "--set", "url_env=ORDERS_DB_URL", "-d", "orders", "--db", db)
    assert added.returncode == 0, added.stderr
    bad = _podium("connectors", "add", "x", "sql", "--set", "url=postgresql://u:pw@h/d", "--db", db)
    assert bad.returncode != 0 and "url_env" in bad.stderr and "Traceback" not in bad.stderr
    listed = _podium("connectors", "list", "--json", "--db", db)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"kind": "sql"} in rows
    (orders,) = [r for r in rows if r.get("name") == "orders"]
    assert orders["target"] == {"kind": "sql", "url_env": "ORDERS_DB_URL"}


def test_allow_private_as_a_setting_is_refused_naming_the_flag(tmp_path: Path) -> None:
    """``--set allow_private=true`` was stored as a setting and ignored (the connector still could
    not reach a private address; only ``--allow-private`` lets it): refused, naming the flag."""
    db = f"sqlite:///{tmp_path}/p.db"
    for key in ("allow_private", "allow-private", "Allow_Private"):
        bad = _podium(
            "connectors", "add", "hook", "webhook", "--set", "url_env=HOOK_URL", "--set", f"{key}=true", "--db", db
        )
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert f"{key!r} is not a setting" in bad.stderr and "--allow-private" in bad.stderr, bad.stderr
    listed = _podium("connectors", "list", "--json", "--db", db)
    assert not [line for line in listed.stdout.splitlines() if '"hook"' in line]  # nothing was registered
    good = _podium("connectors", "add", "hook", "webhook", "--set", "url_env=HOOK_URL", "--allow-private", "--db", db)
    assert good.returncode == 0 and "private addresses allowed" in good.stdout, good.stdout + good.stderr


def test_list_shows_the_connectors_of_the_projects_store_without_db(tmp_path: Path) -> None:
    """A new user's run-through: ``podium connectors add orders sql ...`` registered in the
    project's store (podium.toml), and ``podium connectors list`` then printed only the kinds: it
    read the store only with ``--db``/``$PODIUM_DB``. It lists the store's connectors now."""
    (tmp_path / "podium.toml").write_text('[podium]\ndb = "sqlite:///p.db"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("PODIUM_DB", None)
    env.pop("PODIUM_TOKEN", None)

    def podium(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from podium.cli import main; main()", *args],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip

    added = podium("connectors", "add", "orders", "sql", "--set", "url_env=ORDERS_DB_URL")
    assert added.returncode == 0, added.stderr
    listed = podium("connectors", "list")
    assert listed.returncode == 0, listed.stderr
    assert "orders\tsql" in listed.stdout, listed.stdout
    rows = [json.loads(line) for line in podium("connectors", "list", "--json").stdout.splitlines()]
    assert [r["name"] for r in rows if "name" in r] == ["orders"], rows
