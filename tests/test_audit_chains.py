"""The audit log written by several engines at once, each in a chain of its own, anchored in one
shared chain (podium/storage/_audit.py): the attacks across chains, on SQLite and PostgreSQL, an
engine that crashes between anchors, and a store written before chains existed.

The attacker can write the database but not read the audit key; "elsewhere" means verifying on a
host that has no head log of this store (only the anchors in the store can tell then)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podium import Client, StepContext, Workflow
from podium.records import GENESIS, AuditEntry, chain_body

COLS = "seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq"


def _flow() -> Workflow:
    wf = Workflow("chains")

    @wf.step
    async def only(ctx: StepContext, input):
        return input

    return wf


class Log:
    """A store written by two engines at once (two chains), with raw access as the attacker has it."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def build(self) -> None:
        wf = _flow()
        async with Client(self.url, workflows=[wf]) as a, Client(self.url, workflows=[wf]) as b:
            await asyncio.gather(*(c.run(wf, i) for i in range(4) for c in (a, b)))
            assert await a.verify_audit() == (len(await a.audit_log()), None)

    def sql(self, *statements: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        if self.url.startswith("sqlite"):
            db = sqlite3.connect(self.url[len("sqlite:///") :])
            for st in statements:
                rows = db.execute(st, params).fetchall()
            db.commit()
            db.close()
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                for st in statements:
                    cur = conn.execute(st.replace("?", "%s"), params)  # type: ignore[arg-type]
                    rows = cur.fetchall() if cur.description else []
        return rows

    def entries(self, where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[AuditEntry]:
        return [
            AuditEntry(seq=r[0], ts=r[1], actor=r[2], action=r[3], target=r[4], data=r[5], prev_hash=r[6], hash=r[7], chain=r[8], cseq=r[9] or 0)
            for r in self.sql(f"SELECT {COLS} FROM audit WHERE {where} ORDER BY seq", params=params)
        ]  # fmt: skip

    def writers(self) -> list[str]:
        """The two engines' chains, by id."""
        names = sorted({e.chain for e in self.entries("chain <> 'anchors'") if e.chain})
        assert len(names) == 2, names
        return names

    def put(self, e: AuditEntry) -> None:
        self.sql(
            f"INSERT INTO audit ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            params=(e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq),
        )


ATTACKER_KEY = b"a key of the attacker's own, not the audit key......."


def _forge(e: AuditEntry) -> str:
    """The attacker's best signature: HMAC under its own key, claiming the real key's id."""
    real = Path(os.environ["PODIUM_AUDIT_KEY"])
    kid = hashlib.sha256(bytes.fromhex(real.read_text().strip())).hexdigest()[:12]
    return f"hmac:{kid}:{hmac.new(ATTACKER_KEY, chain_body(e.prev_hash, e), hashlib.sha256).hexdigest()}"


def _elsewhere() -> None:
    """Verify on another host: no head log of this store there."""
    for f in (Path(os.environ["PODIUM_AUDIT_KEY"]).parent / "audit-heads").glob("*"):
        f.unlink()


def _delete_tail(log: Log, keep_head_log: bool) -> None:
    a = log.writers()[0]
    log.sql("DELETE FROM audit WHERE chain = ? AND cseq > (SELECT MAX(cseq) - 2 FROM audit WHERE chain = ?)", params=(a, a))
    if not keep_head_log:
        _elsewhere()


def _delete_chain(log: Log, with_anchors: bool) -> None:
    a = log.writers()[0]
    log.sql("DELETE FROM audit WHERE chain = ?", params=(a,))
    if with_anchors:
        log.sql("DELETE FROM audit WHERE chain = 'anchors' AND target = ?", params=(a,))
    _elsewhere()


def _move_to_other_chain(log: Log) -> None:
    a, b = log.writers()
    last_b = log.entries("chain = ?", (b,))[-1]
    victim = log.entries("chain = ?", (a,))[-1]
    log.sql("UPDATE audit SET chain = ?, cseq = ?, prev_hash = ? WHERE seq = ?", params=(b, last_b.cseq + 1, last_b.hash, victim.seq))


def _swap_seq_across_chains(log: Log) -> None:
    a, b = log.writers()
    x, y = log.entries("chain = ?", (a,))[1], log.entries("chain = ?", (b,))[1]
    log.sql("UPDATE audit SET seq = -1 WHERE seq = ?", params=(x.seq,))
    log.sql("UPDATE audit SET seq = ? WHERE seq = ?", params=(x.seq, y.seq))
    log.sql("UPDATE audit SET seq = ? WHERE seq = -1", params=(y.seq,))


def _swap_within_chain(log: Log) -> None:
    a = log.writers()[0]
    log.sql("UPDATE audit SET cseq = -1 WHERE chain = ? AND cseq = 2", params=(a,))
    log.sql("UPDATE audit SET cseq = 2 WHERE chain = ? AND cseq = 3", params=(a,))
    log.sql("UPDATE audit SET cseq = 3 WHERE chain = ? AND cseq = -1", params=(a,))


def _edit_anchor(log: Log) -> None:
    a = log.writers()[0]
    anchor = log.entries("chain = 'anchors' AND target = ?", (a,))[-1]
    d = json.loads(anchor.data)
    d["cseq"] = 1
    log.sql("UPDATE audit SET data = ? WHERE seq = ?", params=(json.dumps(d), anchor.seq))


def _append_forged(log: Log) -> None:
    a = log.writers()[0]
    last = log.entries("chain = ?", (a,))[-1]
    top = max(e.seq for e in log.entries())
    e = AuditEntry(seq=top + 1, ts=last.ts + 1, actor="mallory", action="user.put", target="user:mallory", data='{"roles": ["admin"]}', prev_hash=last.hash, chain=a, cseq=last.cseq + 1)  # fmt: skip
    e.hash = _forge(e)
    log.put(e)


def _replay_into_other_chain(log: Log) -> None:
    """Copy a genuine, signed entry of one chain to the end of the other one."""
    a, b = log.writers()
    src = log.entries("chain = ?", (a,))[0]
    last_b = log.entries("chain = ?", (b,))[-1]
    top = max(e.seq for e in log.entries())
    log.put(AuditEntry(seq=top + 1, ts=src.ts, actor=src.actor, action=src.action, target=src.target, data=src.data, prev_hash=last_b.hash, hash=src.hash, chain=b, cseq=last_b.cseq + 1))  # fmt: skip


def _as_legacy(log: Log) -> None:
    """Rewrite a chain's entries as legacy (chain-less) entries, hashed as the legacy chain was."""
    from podium.records import chain_hash

    a = log.writers()[0]
    top = max(e.seq for e in log.entries())
    prev = log.entries("chain IS NULL")[-1].hash if log.entries("chain IS NULL") else GENESIS
    for i, e in enumerate(log.entries("chain = ?", (a,))):
        log.sql("DELETE FROM audit WHERE seq = ?", params=(e.seq,))
        e.seq, e.chain, e.cseq, e.prev_hash = top + 1 + i, None, 0, prev
        e.hash = prev = chain_hash(prev, e)
        log.put(e)


#: name -> the edit; every one must be detected by ``verify_audit``
ATTACKS: dict[str, Callable[[Log], None]] = {
    "delete an entry in the middle of one engine's chain": lambda s: s.sql("DELETE FROM audit WHERE chain = ? AND cseq = 2", params=(s.writers()[0],)),
    "delete the last entries of one engine's chain": lambda s: _delete_tail(s, keep_head_log=True),
    "delete the last entries of one engine's chain (verified elsewhere)": lambda s: _delete_tail(s, keep_head_log=False),
    "delete one engine's whole chain (verified elsewhere)": lambda s: _delete_chain(s, with_anchors=False),
    "delete one engine's whole chain and its anchors (verified elsewhere)": lambda s: _delete_chain(s, with_anchors=True),
    "delete an anchor in the middle": lambda s: s.sql("DELETE FROM audit WHERE chain = 'anchors' AND cseq = 2"),
    "delete the last anchors": lambda s: s.sql("DELETE FROM audit WHERE chain = 'anchors' AND cseq > (SELECT MAX(cseq) - 2 FROM audit WHERE chain = 'anchors')"),
    "move an entry into the other engine's chain": _move_to_other_chain,
    "swap the places in the log of two entries of different chains": _swap_seq_across_chains,
    "swap two entries within one chain": _swap_within_chain,
    "edit an entry of one chain": lambda s: s.sql("UPDATE audit SET data = REPLACE(data, 'chains', 'other') WHERE chain = ? AND cseq = 1", params=(s.writers()[1],)),
    "edit the head an anchor records": _edit_anchor,
    "append a forged entry to one chain (real key id, wrong key)": _append_forged,
    "replay a signed entry into the other chain": _replay_into_other_chain,
    "rewrite one chain as legacy entries": _as_legacy,
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path, audit_key: str) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/chains.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attack_across_chains_is_detected(url: str, attack: str) -> None:
    log = Log(url)
    await log.build()
    ATTACKS[attack](log)
    async with Client(url, recover=False) as c:
        problem = (await c.verify_audit())[1]
    assert problem, f"not detected: {attack}"


async def test_engines_writing_while_another_verifies_see_no_false_alarm(url: str) -> None:
    wf = _flow()
    async with Client(url, workflows=[wf]) as a, Client(url, workflows=[wf]) as b, Client(url) as v:
        a.store.audit_anchor_interval = b.store.audit_anchor_interval = 0.01  # anchors race the reads

        async def write(c: Client) -> None:
            for i in range(15):
                await c.run(wf, i)

        writers = asyncio.gather(write(a), write(b))
        checks = 0
        while not writers.done():
            assert (await v.verify_audit())[1] is None
            checks += 1
            await asyncio.sleep(0.005)  # SQLite runs on this thread: let the writers on
        await writers
        assert checks >= 1
        assert (await v.verify_audit())[1] is None


def test_an_engine_that_dies_between_anchors_leaves_a_log_that_verifies(url: str) -> None:
    """A crash (no close, no last anchor) is no tampering: the unanchored tail stays checked by the
    head log, and the other engines go on."""
    script = (
        "import asyncio, os\n"
        "from podium import Client, Workflow\n"
        "wf = Workflow('chains')\n"
        "@wf.step\nasync def only(ctx, input):\n    return input\n"
        "async def main():\n"
        f"    c = Client({url!r}, workflows=[wf])\n"
        "    await c.__aenter__()\n"
        "    c.store.audit_anchor_interval = 3600\n"
        "    for i in range(3):\n        await c.run(wf, i)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})

    async def check() -> None:
        async with Client(url, recover=False) as c:
            entries = await c.audit_log()
            chained = [e for e in entries if e.chain not in (None, "anchors")]
            assert len(chained) == 6 and len([e for e in entries if e.chain == "anchors"]) == 1  # registration only
            assert await c.verify_audit() == (len(entries), None)

    asyncio.run(check())


async def _legacy_store(url: str, n: int) -> list[AuditEntry]:
    """A store at schema 4 whose log was written as Podium wrote it before chains (one keyed chain,
    ordered by seq), through the store's own connection."""
    from podium.storage import open_store

    store = open_store(url)
    store.auto_migrate = False
    await store.open()
    try:
        await store.migrate(4)
        await store.kv_put("podium.store", "id", None)  # written with the tables since store ids; not before
        written: list[AuditEntry] = []
        prev = GENESIS
        kid, key = store.audit_keys.current()  # type: ignore[misc]
        for seq in range(1, n + 1):
            e = AuditEntry(seq=seq, ts=1000.0 + seq, actor="local", action="user.put", target=f"user:u{seq}", data="{}", prev_hash=prev)
            # signed with the key alone, as releases before store ids signed (AuditKeys.sign binds the store's id)
            e.hash = prev = f"hmac:{kid}:{hmac.new(key, chain_body(prev, e), hashlib.sha256).hexdigest()}"
            written.append(e)
    finally:
        await store.close()
    cols = "seq, ts, actor, action, target, data, prev_hash, hash"
    rows = [(e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash) for e in written]
    if url.startswith("sqlite"):
        db = sqlite3.connect(url[len("sqlite:///") :])
        db.executemany(f"INSERT INTO audit ({cols}) VALUES (?,?,?,?,?,?,?,?)", rows)
        db.commit()
        db.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.cursor().executemany(f"INSERT INTO audit ({cols}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    return written


async def test_a_store_written_before_chains_migrates_and_still_verifies(url: str) -> None:
    legacy = await _legacy_store(url, 3)
    wf = _flow()
    async with Client(url, workflows=[wf]) as c:
        assert await c.store.schema_version() >= 6
        await c.run(wf, 1)
        check = await c.governance.check_audit()
        assert check.problem is None and check.entries == len(await c.audit_log())
        first_anchor = next(e for e in await c.audit_log() if e.chain == "anchors")
        assert first_anchor.prev_hash == legacy[-1].hash and first_anchor.seq == 4  # it seals the legacy chain
    log = Log(url)
    log.sql("DELETE FROM audit WHERE seq = 3")  # cut the legacy chain's tail
    async with Client(url, recover=False) as c:
        problem = (await c.verify_audit())[1] or ""
    assert "does not follow the last legacy entry" in problem


async def test_checkpoint_pins_every_chain(url: str, tmp_path: Path) -> None:
    """A checkpoint file kept elsewhere catches a tail cut from the anchor chain and from the chain it
    anchored, which the store alone cannot show."""
    log = Log(url)
    await log.build()
    async with Client(url, recover=False) as c:
        check = await c.governance.check_audit()
        for seq, h in check.heads:
            c.store.audit_keys.checkpoint(tmp_path / "cp.jsonl", seq, h)
    a = log.writers()[0]
    last_anchor = log.entries("chain = 'anchors' AND target = ?", (a,))[-1]
    log.sql("DELETE FROM audit WHERE seq >= ?", params=(last_anchor.seq,))  # the last anchor and all after it
    _elsewhere()
    async with Client(url, recover=False) as c:
        check = await c.governance.check_audit(checkpoints=[str(tmp_path / "cp.jsonl")])
    assert "was deleted" in (check.problem or "")
