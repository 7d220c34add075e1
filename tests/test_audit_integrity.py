"""The audit key and the head log outside the store: creation, legacy logs, rotation, a missing key,
checkpoint files, and the CLI (verify on a mistyped path, pruning from the command line)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podium import Client, StepContext, Workflow
from podium.records import GENESIS, AuditEntry, chain_hash


def _wf() -> Workflow:
    wf = Workflow("integrity")

    @wf.step
    async def only(ctx: StepContext, input):
        return input

    return wf


def _cli(tmp: Path, *args: str, check: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PODIUM_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == check, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


async def test_key_is_made_outside_the_store_0600(tmp_path: Path, audit_key: str) -> None:
    async with Client(f"sqlite:///{tmp_path}/k.db") as c:
        await c.run(_wf(), 1)
    async with Client(f"sqlite:///{tmp_path}/k.db") as c:
        entries = await c.audit_log()  # with the anchor written when the first client closed
    key = Path(audit_key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert all(e.hash.startswith("hmac:") for e in entries)
    assert key.read_text().strip() not in (tmp_path / "k.db").read_bytes().decode("latin-1")
    heads = list((key.parent / "audit-heads").glob("*.jsonl"))
    assert len(heads) == 1 and len(heads[0].read_text().splitlines()) == len(entries)


async def test_legacy_log_is_kept_and_anchored_by_the_first_signed_entry(tmp_path: Path) -> None:
    """A store written before keys existed: its unkeyed entries verify as legacy; once the engine
    appends signed entries, editing a legacy entry (and rebuilding the legacy part) is detected."""
    url = f"sqlite:///{tmp_path}/legacy.db"
    async with Client(url) as c:  # create the schema
        pass
    db = sqlite3.connect(tmp_path / "legacy.db")
    db.execute("DELETE FROM audit")
    prev = GENESIS
    for seq in (1, 2, 3):
        e = AuditEntry(seq=seq, ts=1000.0 + seq, actor="local", action="user.put", target=f"user:u{seq}", data="{}")
        e.prev_hash, e.hash = prev, chain_hash(prev, e)
        prev = e.hash
        db.execute("INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)", (e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash))
    db.commit()
    async with Client(url) as c:
        check = await c.governance.check_audit()
        assert check.problem is None and check.keyed_from is None  # legacy only: accepted as such
        await c.run(_wf(), 1)
        check = await c.governance.check_audit()
        assert check.problem is None and check.keyed_from == 4
    # rewrite legacy entry 2 and rebuild the legacy chain: the signed entry 4 no longer follows
    rows = db.execute("SELECT seq, ts, actor, action, target, data FROM audit WHERE seq <= 3 ORDER BY seq").fetchall()
    prev = GENESIS
    for r in rows:
        e = AuditEntry(seq=r[0], ts=r[1], actor="mallory" if r[0] == 2 else r[2], action=r[3], target=r[4], data=r[5])
        e.prev_hash, e.hash = prev, chain_hash(prev, e)
        prev = e.hash
        db.execute("UPDATE audit SET actor=?, prev_hash=?, hash=? WHERE seq=?", (e.actor, e.prev_hash, e.hash, e.seq))
    db.commit()
    db.close()
    async with Client(url, recover=False) as c:
        problem = (await c.verify_audit())[1] or ""
    assert "entry 4" in problem and "does not follow" in problem


async def test_rotation_keeps_old_entries_verifiable_and_a_missing_key_is_named(tmp_path: Path, audit_key: str) -> None:
    url = f"sqlite:///{tmp_path}/rot.db"
    async with Client(url) as c:
        await c.run(_wf(), 1)
        old, new = c.store.audit_keys.rotate()
        assert old and new and old != new
        await c.run(_wf(), 2)
        assert (await c.verify_audit())[1] is None
    retired = Path(f"{audit_key}.{old}")
    assert retired.exists()
    retired.rename(tmp_path / "elsewhere")
    async with Client(url, recover=False) as c:
        problem = (await c.verify_audit())[1] or ""
    assert f"audit key {old}" in problem and "PODIUM_AUDIT_KEY" in problem


async def test_a_key_rotated_by_another_process_is_signed_with_from_then_on(tmp_path: Path, audit_key: str) -> None:
    """Review: a running engine kept signing with its cached key after ``podium audit rotate-key``
    in another process (a key retired because it leaked went on signing until a restart). The key
    in use is checked against its file (at most every ``recheck_seconds``)."""
    from podium._auditkey import PREFIX, AuditKeys

    url = f"sqlite:///{tmp_path}/other.db"
    async with Client(url) as c:
        keys = c.store.audit_keys
        keys.recheck_seconds = 0.0  # check at every signature (the default: once a second)
        await c.run(_wf(), 1)
        before = keys.current()
        assert before is not None
        _, new = AuditKeys(audit_key, "another process").rotate()
        await c.run(_wf(), 2)
        last = (await c.audit_log())[-1]
        assert last.hash.startswith(f"{PREFIX}{new}:") and new != before[0]
        assert (await c.verify_audit())[1] is None


async def test_checkpoint_file_detects_truncation_where_the_head_log_is_gone(tmp_path: Path, audit_key: str) -> None:
    """Verifying on another machine (no head log there), with a checkpoint file kept elsewhere."""
    url = f"sqlite:///{tmp_path}/cp.db"
    async with Client(url) as c:
        for i in range(3):
            await c.run(_wf(), i)
        last = (await c.audit_log())[-1]
        c.store.audit_keys.checkpoint(tmp_path / "heads.jsonl", last.seq, last.hash)
    for f in (Path(audit_key).parent / "audit-heads").glob("*"):
        f.unlink()
    db = sqlite3.connect(tmp_path / "cp.db")
    db.execute("DELETE FROM audit WHERE seq > ?", (last.seq - 2,))
    db.commit()
    db.close()
    async with Client(url, recover=False) as c:
        # No head log here: the chain itself looks whole (at most a run left without its anchors shows)...
        problem = (await c.verify_audit())[1]
        assert problem is None or "no entry in the audit log" in problem
        check = await c.governance.check_audit(checkpoints=[str(tmp_path / "heads.jsonl")])
    assert f"entry {last.seq} was deleted: the head log outside the store (or a checkpoint) records it" in (
        check.problem or ""
    )  # ...but not to the checkpoint


def test_cli_verify_on_a_missing_path_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "podium.db"
    err = _cli(tmp_path, "audit", "verify", "--db", str(missing), check=2).stderr
    assert "no store at" in err and str(missing) in err.replace("\n", "")
    assert len(err.strip().splitlines()) == 1
    assert not missing.exists() and not missing.parent.exists()


def test_cli_prune_writes_signed_prune_entries(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    db = f"sqlite:///{tmp_path}/prune.db"
    import asyncio

    async def runs() -> None:
        async with Client(db) as c:
            for i in range(2):
                await c.run(_wf(), i)

    asyncio.run(runs())
    time.sleep(1.1)
    assert "2 run(s) deleted" in _cli(tmp_path, "memory", "prune", "--runs-older-than", "1s", "--db", db).stdout
    out = _cli(tmp_path, "audit", "verify", "--db", db).stdout
    assert "chain intact" in out
    conn = sqlite3.connect(tmp_path / "prune.db")
    prunes = conn.execute("SELECT hash FROM audit WHERE action='run.prune'").fetchall()
    assert len(prunes) == 2 and all(h.startswith("hmac:") for (h,) in prunes)
    assert _cli(tmp_path, "audit", "checkpoint", "-o", str(tmp_path / "cp.jsonl"), "--db", db).returncode == 0
    assert "chain intact" in _cli(tmp_path, "audit", "verify", "--checkpoints", str(tmp_path / "cp.jsonl"), "--db", db).stdout
