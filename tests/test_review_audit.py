"""Review of the scale layer (2026-12-06, seventh session): audit chains written by several engine
processes on one store at once, one of them killed with SIGKILL mid-run (its chain never anchored
again), read by a verifier while they write; then a forged anchor and the cut tail of the killed
engine's chain. SQLite and PostgreSQL, real processes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_audit_chains import ATTACKER_KEY, Log

from podium import Client
from podium.records import ANCHOR_ACTION, ANCHOR_CHAIN, AuditEntry, chain_body

WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from podium import Client, StepContext, Workflow

    wf = Workflow("chains")

    @wf.step
    async def only(ctx: StepContext, input):
        if input == "hang":
            print("hanging", flush=True)
            await asyncio.Event().wait()
        return input

    async def main(url: str, runs: int, die: bool) -> None:
        c = Client(url, workflows=[wf])
        await c.__aenter__()
        c.store.audit_anchor_interval = 0.01  # anchors race the other writers and the reader
        await asyncio.gather(*(c.run(wf, i) for i in range(runs)))
        await c.record_audit("review.mark", "review", n=runs)
        if die:
            await c.store.anchor_audit()  # no anchor pending now
            c.store.audit_anchor_interval = 3600  # its next entry waits for an anchor that never comes
            await c.run(wf, "hang")  # killed in there: a run.start after the last anchor
        await c.__aexit__(None, None, None)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "die"))
    """
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/audit.db"
    return str(request.getfixturevalue("pg_url"))


async def _written(url: str, tmp_path: Path) -> tuple[Log, str]:
    """Three engine processes write at once while this one verifies; the last is killed in a run.
    Returns the log and the killed engine's chain."""
    (tmp_path / "writer.py").write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    async with Client(url) as v:  # creates the schema, then reads while the others write
        procs = [
            subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), url, "12", mode], env=env, stdout=subprocess.PIPE)
            for mode in ("live", "live", "die")
        ]
        try:
            dying = procs[2]
            line = await asyncio.to_thread(dying.stdout.readline)  # type: ignore[union-attr]
            while any(p.poll() is None for p in procs[:2]):
                assert (await v.verify_audit())[1] is None
                await asyncio.sleep(0.01)
            assert line == b"hanging\n"
            os.kill(dying.pid, signal.SIGKILL)
            for p in procs:
                p.wait(60)
            assert [p.returncode for p in procs] == [0, 0, -signal.SIGKILL]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        entries = await v.audit_log(limit=100_000)
        assert await v.verify_audit() == (len(entries), None)  # honest: no false alarm
    log = Log(url)
    killed = log.entries("action = 'run.start' AND target IN (SELECT id FROM runs WHERE status = 'running')")
    assert len(killed) == 1
    return log, str(killed[0].chain)


async def _problem(url: str, checkpoints: list[str] | None = None) -> str | None:
    async with Client(url, recover=False) as c:
        return (await c.governance.check_audit(checkpoints=checkpoints or [])).problem


async def test_concurrent_engines_and_a_killed_one_leave_a_log_that_verifies_and_its_cut_tail_is_caught(
    url: str, tmp_path: Path
) -> None:
    """Checked and sound: no false alarm while three processes write (anchors every 10 ms) and one
    is killed between anchors; deleting the killed engine's unanchored last entry is caught by the
    head log (docs/governance.md: only the head log or a checkpoint can catch it)."""
    log, chain = await _written(url, tmp_path)
    last = log.entries("chain = ?", (chain,))[-1]
    anchored = [json.loads(a.data)["cseq"] for a in log.entries("chain = ? AND target = ?", (ANCHOR_CHAIN, chain))]
    assert last.cseq > max(anchored) and last.action == "run.start"  # written after its last anchor
    log.sql("DELETE FROM audit WHERE seq = ?", params=(last.seq,))
    assert "was deleted" in (await _problem(url) or "")


async def test_a_forged_anchor_that_covers_a_cut_tail_is_caught(url: str, tmp_path: Path) -> None:
    """Checked and sound: the attacker cuts a chain's tail, then appends an anchor that records the
    shorter chain (linked right, signed with a key of its own under the real key's id)."""
    log, chain = await _written(url, tmp_path)
    entries = log.entries("chain = ?", (chain,))
    keep = entries[-4]
    log.sql("DELETE FROM audit WHERE chain = ? AND cseq > ?", params=(chain, keep.cseq))
    head = log.entries("chain = ?", (ANCHOR_CHAIN,))[-1]
    top = max(e.seq for e in log.entries())
    forged = AuditEntry(
        seq=top + 1, ts=head.ts + 0.001, actor="engine", action=ANCHOR_ACTION, target=chain,
        data=json.dumps({"chain": chain, "cseq": keep.cseq, "hash": keep.hash}), prev_hash=head.hash,
        chain=ANCHOR_CHAIN, cseq=head.cseq + 1,
    )  # fmt: skip
    kid = head.hash.split(":")[1]
    forged.hash = f"hmac:{kid}:{hmac.new(ATTACKER_KEY, chain_body(forged.prev_hash, forged), hashlib.sha256).hexdigest()}"
    log.put(forged)
    for f in (Path(os.environ["PODIUM_AUDIT_KEY"]).parent / "audit-heads").glob("*"):
        f.unlink()  # verified on another host: only the store's own content can tell
    problem = await _problem(url) or ""
    assert "edited after it was written" in problem or "does not match" in problem or "was deleted" in problem, problem
