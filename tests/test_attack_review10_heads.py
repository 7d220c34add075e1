"""The names the log set kill switches and policies on, attacked (tenth session review).

The attacker can write the database but does not hold the audit key (docs/status.md, "Review of
the tenth session's changes (tenth session)")."""

from __future__ import annotations

from typing import Any

import pytest
from store_attacker import pay_workflow, root_token, script

from podium import Client, KillSwitchActive, Policy

STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)


_FAKE = (
    "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) "
    "VALUES (9000000000000000000, 1, 'x', 'killswitch.clear', 'workflow:pay', '{}', 'x', 'x')"
)


@STORES
async def test_attack_a_planted_newest_entry_hides_a_switch_set_while_an_engine_runs(store_url: str) -> None:
    """An unsigned entry numbered past every seq the store will give held a target's newest entry
    still, so an engine running then never looked the name up again: a switch an admin set elsewhere,
    whose row the attacker kept out of the store, did not hold there."""
    url = store_url
    root = await root_token(url)
    wf = pay_workflow()
    script(url, _FAKE)
    async with Client(url, token=root, workflows=[wf]) as running:
        assert await running.run(wf, 1) == 1
        async with Client(url, token=root) as admin:
            await admin.set_switch("workflow", "pay", reason="incident 42")
        script(url, "DELETE FROM kv WHERE ns = 'switches'")
        await running.governance.refresh()
        with pytest.raises(KillSwitchActive, match="incident 42"):
            await running.start(wf, 2)


@STORES
async def test_attack_many_planted_names_cost_an_engine_one_read_not_one_per_name(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unsigned entries on many made-up targets cost every engine one query per name at its start,
    and again on each refresh after one UPDATE renumbered them (20,000 names: 20 s per engine start
    on PostgreSQL); they now cost one read of the governing entries."""
    url = store_url
    root = await root_token(url)
    values = ", ".join(f"({10_000_000 + i}, 1, 'x', 'killswitch.set', 'workflow:f{i}', '{{}}', 'x', 'x')" for i in range(300))
    script(url, f"INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) VALUES {values}")
    from podium.storage.postgres import PostgresStore
    from podium.storage.sqlite import SQLiteStore

    looked: list[str] = []
    for cls in (SQLiteStore, PostgresStore):
        real = cls.audit_for

        async def audit_for(self: Any, target: str, real: Any = real) -> Any:
            looked.append(target)
            return await real(self, target)

        monkeypatch.setattr(cls, "audit_for", audit_for)
    async with Client(url, token=root) as c:
        assert len(looked) < 20, len(looked)
        assert "workflow:f7" not in await c.switches()
        looked.clear()
        script(url, "UPDATE audit SET seq = seq + 1000000 WHERE actor = 'x'")
        await c.governance.refresh()
        assert len(looked) < 20, len(looked)


async def test_attack_a_switch_row_deleted_before_a_migration_still_holds_on_the_target(tmp_path: Any) -> None:
    """``podium db migrate-to`` carried a kill switch or policy only if its row was there to copy:
    one the attacker deleted from the source (still in force there, the log says so) was simply not
    on the target, whose engines then ran the switched-off workflow without its policy."""
    import os
    import subprocess
    import sys


    path, target = tmp_path / "p.db", tmp_path / "t.db"
    url = f"sqlite:///{path}"
    root = await root_token(url)
    wf = pay_workflow()
    async with Client(url, token=root) as c:
        await c.set_switch("workflow", "pay", reason="incident 42")
        await c.set_policy("pay", Policy(max_run_tokens=10))
    script(url, "DELETE FROM kv WHERE ns IN ('switches', 'policies')")
    env = {**os.environ, "PODIUM_TOKEN": root, "PODIUM_DB": url}
    moved = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", f"sqlite:///{target}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    async with Client(f"sqlite:///{target}", token=root, workflows=[wf]) as c:
        with pytest.raises(KillSwitchActive, match="incident 42"):
            await c.start(wf, 1)
        policy = c.policy_for("pay")
        assert policy is not None and policy.max_run_tokens == 10
    env["PODIUM_DB"] = f"sqlite:///{target}"
    verify = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "audit", "verify"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_a_refresh_reads_the_governing_stamps_once(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The switches and the policies share one read of the stamps per refresh (it is linear in the
    governing entries, planted ones included: two reads doubled what they cost every engine)."""
    async with Client(store_url) as c:
        await c.set_switch("workflow", "pay", reason="r")
        await c.set_policy("pay", Policy(max_run_tokens=3))
        reads: list[int] = []
        real = c.store.governing_heads

        async def heads() -> Any:
            reads.append(1)
            return await real()

        monkeypatch.setattr(c.store, "governing_heads", heads)
        await c.governance.refresh()
        assert len(reads) == 1
        assert "workflow:pay" in c.governance.switch_cache and c.policy_for("pay") is not None


@STORES
async def test_many_switches_and_policies_read_at_once_are_the_signed_ones(store_url: str) -> None:
    """The one read of every governing entry (more names than ONE_READ) gives what a lookup per name
    did: the newest signed entry of each, planted ones ignored, rows deleted or not."""
    from podium.governance.backed import ONE_READ

    url = store_url
    root = await root_token(url)
    n = ONE_READ + 4
    async with Client(url, token=root) as c:
        for i in range(n):
            await c.set_switch("workflow", f"w{i}", reason=f"r{i}")
            await c.set_policy(f"w{i}", Policy(max_run_tokens=i + 1))
        for i in range(0, n, 3):
            await c.clear_switch("workflow", f"w{i}")
            await c.set_policy(f"w{i}", None)
    planted = "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) VALUES ({}, 1, 'x', '{}', 'workflow:w{}', '{}', 'x', 'x')"
    script(
        url,
        "DELETE FROM kv WHERE ns IN ('switches', 'policies')",
        planted.format(8_000_000_000_000_000_000, "killswitch.clear", 1, '{"reason": "x"}'),
        planted.format(8_000_000_000_000_000_001, "policy.set", 3, "{}"),
    )
    async with Client(url, token=root) as c:
        on = await c.switches()
        assert set(on) == {f"workflow:w{i}" for i in range(n) if i % 3}, sorted(on)
        assert on["workflow:w1"]["reason"] == "r1"
        policies = await c.policies()
        assert {k: p.max_run_tokens for k, p in policies.items()} == {f"w{i}": i + 1 for i in range(n) if i % 3}
