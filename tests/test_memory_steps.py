"""Memory, run state and knowledge from workflows (Python and YAML), erasure of run payloads, run
pruning, and the CLI commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import podium
from podium import RetryPolicy, StepContext, memory
from podium.memory import Memory, RunState

DATA = Path(__file__).parent / "data" / "kb"
ROOT = Path(__file__).parent.parent


@pytest.fixture
async def client(store_url):
    async with podium.Client(store_url) as c:
        memory.attach(c, Memory(c.store, embedder="hash:256"))
        yield c
        await memory.memory_for(c).close()


async def test_run_state_is_shared_and_replay_safe(client):
    wf = podium.Workflow("state")
    attempts: list[int] = []

    @wf.step
    async def plan(ctx: StepContext, input):
        state = memory.run_state(ctx)
        await state.update({"budget": 100, "customer": input["customer"]})
        return "planned"

    @wf.step(retry=RetryPolicy(max_attempts=2))
    async def spend(ctx: StepContext, plan):
        state = memory.run_state(ctx)
        budget = await state.get("budget")
        await state.set("budget", budget - 30)  # logged: a retry does not spend twice
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("flaky")
        return await state.get("budget")

    @wf.step
    async def report(ctx: StepContext, spend):
        state = memory.run_state(ctx)
        await state.delete("customer")
        return await state.all()

    handle = await client.start(wf, {"customer": "customer:42"})
    assert await handle.result() == {"budget": 70}
    assert attempts == [1, 2]
    h = await client.history(handle.id)
    assert h.step("spend").output == 70
    direct = RunState(memory.memory_for(client), handle.id)
    assert await direct.all() == {"budget": 70}


async def test_step_memory_is_durable(client):
    wf = podium.Workflow("mem")

    @wf.step(retry=RetryPolicy(max_attempts=2))
    async def learn(ctx: StepContext, input):
        mem = memory.of(ctx)
        await mem.remember("customer:42", "prefers email", kind="fact", metadata={"source": "chat"})
        await mem.relate("customer:42", "owns", "account:7")
        if ctx.attempt == 1:
            raise RuntimeError("crash after the writes")
        found = await mem.recall("customer:42", "email preference", k=3)
        near = await mem.neighbors("account:7")
        return {"found": [i.text for i in found], "run": found[0].run_id, "near": [r.entity.id for r in near]}

    out = await client.run(wf, {})
    assert out["found"] == ["prefers email"] and out["near"] == ["customer:42"]
    items = await memory.memory_for(client).recall("customer:42")
    assert len(items) == 1 and items[0].step == "learn" and items[0].run_id == out["run"]


YAML = """
name: yaml-memory
steps:
  - id: docs
    uses: kb_ingest
    with: {kb: handbook, root: kbdata, paths: "."}
  - id: note
    uses: remember
    needs: [docs]
    with: {entity: "customer:{{ input.customer }}", text: "asked about {{ input.question }}", kind: event}
  - id: owns
    uses: relate
    with: {src: "customer:{{ input.customer }}", relation: owns, dst: "account:{{ input.account }}"}
  - id: ticket
    uses: entity
    with: {id: "ticket:T1", properties: {status: delayed}}
  - id: raised
    uses: relate
    needs: [ticket]
    with: {src: "ticket:T1", relation: raised_by, dst: "customer:{{ input.customer }}"}
  - id: state
    uses: run_state
    with: {set: {question: "{{ input.question }}"}}
  - id: history
    uses: recall
    needs: [note]
    with: {entity: "customer:{{ input.customer }}", query: "{{ input.question }}", k: 3, within: 3600}
  - id: related
    uses: graph_query
    needs: [owns, raised]
    with: {start: "ticket:T1", hops: 2, type: account}
  - id: sources
    uses: retrieve
    needs: [docs]
    with: {kb: handbook, query: "{{ input.question }}", k: 2, hybrid: true}
  - id: answer
    uses: set
    with:
      context: "{{ steps.sources.output.context }}"
      cites: "{{ steps.sources.output.citations }}"
      history: "{{ steps.history.output.text }}"
      accounts: "{{ steps.related.output.ids }}"
      state: "{{ steps.state.output }}"
"""


async def test_yaml_memory_and_knowledge_steps(client):
    from podium import yaml as podium_yaml

    wf = podium_yaml.load_text(YAML)
    await client.add_capability("kbdata", "files", {"root": str(DATA)})  # what the file may read
    await client.run(wf, {"customer": 42, "account": 7, "question": "duplicate charge on my statement"})
    h = await client.history((await client.list(limit=1))[0].id)
    answer = h.step("answer").output
    assert answer["context"].startswith("[1] (") and "\n\n[2] (" in answer["context"]
    assert "billing.html" in str(answer["cites"]) and "Invoices and billing" in answer["context"]
    assert "asked about duplicate charge on my statement" in answer["history"]
    assert answer["accounts"] == ["account:7"]
    assert answer["state"] == {"question": "duplicate charge on my statement"}
    assert h.step("docs").output["added"] == 12


def test_yaml_kinds_have_schemas():
    from podium import yaml as podium_yaml

    problems = podium_yaml.validate_text(
        "name: bad\nsteps:\n  - id: r\n    uses: recall\n    with: {k: 0, nope: 1}\n"
        "  - id: k\n    uses: retrieve\n    with: {query: x}\n"
    )
    text = " ".join(str(p) for p in problems)
    assert "nope" in text and "kb" in text


async def test_forget_redacts_run_payloads(client):
    wf = podium.Workflow("crm")

    @wf.step
    async def note(ctx: StepContext, input):
        await memory.of(ctx).remember(input["customer"], f"{input['email']} wants a refund", kind="event")
        return {"summary": f"refund for {input['customer']} ({input['email']})"}

    run = await client.start(wf, {"customer": "customer:42", "email": "ann@example.com"})
    await run.result()
    other = await client.run(wf, {"customer": "customer:8", "email": "bo@example.com"})
    mem = memory.memory_for(client)
    erasure = await mem.forget("customer:42", values=["ann@example.com"], reason="ticket 12")
    assert erasure.counts["memory_items"] == 1
    assert erasure.counts["runs_redacted"] >= 1 and erasure.counts["events_redacted"] >= 1
    record = await client.get(run.id)
    h = await client.history(run.id)
    for text in (record.input, record.output, json.dumps(h.step("note").output)):
        assert "ann@example.com" not in text and "customer:42" not in text and "[redacted]" in text
    assert h.step("note").output == {"summary": "refund for [redacted] ([redacted])"}
    assert other == {"summary": "refund for customer:8 (bo@example.com)"}
    assert await mem.recall("customer:42") == []
    assert [e.reason for e in await mem.erasures()] == ["ticket 12"]
    if hasattr(client.store, "list_audit"):  # governance's audit log anchors the new history digest
        from podium.governance.audit import run_digest

        redactions = [e for e in await client.store.list_audit() if e.action == "run.redact"]
        assert [e.target for e in redactions] == [run.id]
        assert redactions[0].details()["digest"] == run_digest(await client.store.load_events(run.id))


async def test_forget_that_fails_on_the_run_store_deletes_nothing_and_can_be_run_again(client, store_url, tmp_path):
    """Review: forget deleted the entity from memory first, then redacted the run store; when that
    failed (here the run store's database is write-locked by another process), the runs kept the
    values and a second forget no longer knew the entity's e-mail. The run store (and any other
    layer's tables) now go first: a failure there deletes nothing."""
    if not store_url.startswith("sqlite"):
        pytest.skip("the failure is made with SQLite's write lock, held by another connection")
    import sqlite3

    wf = podium.Workflow("crm")

    @wf.step
    async def note(input):
        return {"summary": f"refund for {input['email']}"}

    mem = Memory(f"sqlite:///{tmp_path}/memory.db", embedder="hash:256")  # memory in a database of its own
    mem.run_store = client.store
    try:
        await mem.upsert_entity("customer:42", type="customer", properties={"email": "ann@example.com"})
        await mem.remember("customer:42", "wants a refund", kind="event")
        run = await client.start(wf, {"email": "ann@example.com"})
        await run.result()
        locker = sqlite3.connect(client.store.path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another process writing to the run store
        client.store.db.execute("PRAGMA busy_timeout=50")
        try:
            with pytest.raises(Exception, match="locked"):
                await mem.forget("customer:42", values=[], reason="ticket 12")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
            client.store.db.execute("PRAGMA busy_timeout=10000")
        assert (await mem.get_entity("customer:42")) is not None  # nothing deleted: the e-mail is still known
        assert len(await mem.recall("customer:42")) == 1
        erasure = await mem.forget("customer:42", values=[], reason="ticket 12")
        assert erasure.counts["memory_items"] == 1 and erasure.counts["runs_redacted"] >= 1
        assert "ann@example.com" not in (await client.get(run.id)).input
    finally:
        await mem.close()


async def test_forget_leaves_runs_readable_and_a_parked_run_resumes(client):
    """Review (attack): ``forget`` replaced plain text over the runs' stored JSON. Forgetting ``123``
    turned the amount ``41234`` into ``4[redacted]4``: the ended run's history could not be read and
    the parked run, replayed from its log when its signal came, failed; a value with a quote and a
    non-ASCII character (stored escaped, as the codec writes it) was not found at all. Now the
    values are replaced inside the payloads' strings, both runs read, and the parked one resumes
    (its redaction anchored, as ``forget`` anchors it) with the numbers it had."""
    wf = podium.Workflow("billing")

    @wf.step
    async def bill(ctx: StepContext, input):
        return {"customer": input["customer"], "amount": 41234, "paid": True, "ref": 123}

    @wf.step
    async def confirm(ctx: StepContext, bill):
        await ctx.wait_for("go", timeout=60)
        return {"amount": bill["amount"] + 1, "paid": bill["paid"], "who": bill["customer"], "ref": bill["ref"]}

    zoe = 'Zoë "Z"'
    ended = await client.start(wf, {"customer": f"{zoe} 123"})
    await client.signal(ended.id, "go")
    await ended.result()
    parked = await client.start(wf, {"customer": f"{zoe} 123"})
    for _ in range(1000):
        if (await client.get(parked.id)).status is podium.RunStatus.WAITING:
            break
        await asyncio.sleep(0.01)
    erasure = await memory.memory_for(client).forget("customer:9", values=["123", "true", zoe])
    assert erasure.counts["runs_redacted"] >= 3 and erasure.counts["events_redacted"] >= 4
    want = {"customer": "[redacted] [redacted]", "amount": 41234, "paid": True, "ref": "[redacted]"}
    h = await client.history(ended.id)
    assert h.step("bill").output == want
    assert h.step("confirm").output == {"amount": 41235, "paid": True, "who": "[redacted] [redacted]", "ref": "[redacted]"}
    assert json.loads((await client.get(ended.id)).input) == {"customer": "[redacted] [redacted]"}
    assert (await client.history(parked.id)).step("bill").output == want
    await client.signal(parked.id, "go")
    assert await parked.result(timeout=30) == h.step("confirm").output
    assert (await client.verify_audit())[1] is None


async def test_prune_runs_deletes_finished_runs_and_their_state(client):
    wf = podium.Workflow("short")

    @wf.step
    async def s(ctx: StepContext, input):
        await memory.run_state(ctx).set("k", 1)
        return 1

    ids = [(await client.start(wf, i)).id for i in range(3)]
    for rid in ids:
        await client.result(rid)
    mem = memory.memory_for(client)
    assert await mem.prune_runs(older_than=3600) == 0
    assert await mem.prune_runs(older_than=0, now=time.time() + 1) == 3
    assert await client.list() == []
    assert await RunState(mem, ids[0]).all() == {}


async def test_memory_opened_by_url_reaches_the_runs_through_a_store(store_url):
    """``podium forget`` and ``podium memory prune`` open the memory by URL: the runs beside it are
    redacted (and the redactions audited) and pruned through a run store opened for the purpose.
    A ``memory://`` URL names a new, empty process-local database: there are no runs to reach."""
    wf = podium.Workflow("crm")

    @wf.step
    async def note(ctx: StepContext, input):
        return {"summary": f"call {input['email']}"}

    async with podium.Client(store_url) as client:
        run = await client.start(wf, {"email": "ann@example.com"})
        await run.result()
        async with Memory(store_url, embedder="hash:64") as mem:
            erasure = await mem.forget("customer:42", values=["ann@example.com"])
            pruned = await mem.prune_runs(older_than=0, now=time.time() + 1)
        redactions = [e.target for e in await client.store.list_audit() if e.action == "run.redact"]
        if store_url.startswith("memory"):
            assert "runs_redacted" not in erasure.counts and pruned == 0 and redactions == []
            assert "ann@example.com" in (await client.get(run.id)).output
        else:  # the run's input and output each held the address once
            assert erasure.counts["runs_redacted"] == 2 and erasure.counts["events_redacted"] >= 1
            assert erasure.counts["signals_redacted"] == 0
            assert redactions == [run.id] and pruned == 1
            assert await client.list() == []


async def test_memory_without_runs_leaves_the_database_without_run_tables(tmp_path):
    import sqlite3

    url = f"sqlite:///{tmp_path}/memory-only.db"
    async with Memory(url, embedder="hash:64") as mem:
        await mem.remember("customer:42", "ann@example.com prefers email")
        erasure = await mem.forget("customer:42", values=["ann@example.com"])
        assert await mem.prune_runs(older_than=0) == 0
    assert erasure.counts["memory_items"] == 1 and "runs_redacted" not in erasure.counts
    db = sqlite3.connect(tmp_path / "memory-only.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert not tables & {"runs", "events", "signals", "audit"}


def _podium(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_DB": db, "PODIUM_EMBEDDER": "hash:256", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    return proc


def test_cli_kb_memory_and_forget(tmp_path):
    db = f"sqlite:///{tmp_path}/cli.db"
    out = _podium("kb", "ingest", str(DATA), "--kb", "hb", "--chunk-size", "400", db=db).stdout
    assert "hb: 12 added" in out
    assert "12 unchanged" in _podium("kb", "ingest", str(DATA), "--kb", "hb", db=db).stdout
    found = json.loads(
        _podium("kb", "search", "hb", "charged twice on my invoice", "--json", "-k", "2", db=db).stdout
    )
    assert found[0]["source"].endswith("billing.html") and found[0]["citation"] == "Invoices and billing"
    assert "hb: 12 documents" in _podium("kb", "list", db=db).stdout

    async def seed() -> None:
        async with Memory(db, embedder="hash:256") as mem:
            await mem.upsert_entity("customer:42", properties={"name": "Ann Lee"})
            await mem.remember("customer:42", "Ann Lee prefers email")

    import asyncio

    asyncio.run(seed())
    shown = json.loads(_podium("memory", "show", "customer:42", "--json", db=db).stdout)
    assert (
        shown["entity"]["properties"] == {"name": "Ann Lee"}
        and shown["items"][0]["text"] == "Ann Lee prefers email"
    )
    text = _podium("memory", "show", "customer:42", db=db).stdout  # the item's kind in brackets, not read as markup
    assert "[fact] Ann Lee prefers email" in text, text
    assert (
        "erased customer:42"
        in _podium("forget", "customer:42", "--yes", "--reason", "request 7", db=db).stdout
    )
    assert "nothing remembered" in _podium("memory", "show", "customer:42", db=db).stdout
    assert "request 7" in _podium("memory", "erasures", db=db).stdout
    assert "0 run(s) deleted" in _podium("memory", "prune", "--runs-older-than", "30d", db=db).stdout


def _failing_audit(store, action: str, monkeypatch) -> None:
    """Make the store fail to sign (so to write) audit entries of ``action``, as a crash at that
    point would: the entries after it are never written."""
    sign = store._sign

    def refuse(e):
        if e.action == action:
            raise OSError(f"disk full while writing {action}")
        sign(e)

    monkeypatch.setattr(store, "_sign", refuse)


async def test_forget_whose_audit_record_fails_changes_no_run(client, monkeypatch):
    """Attack on the log's integrity: ``forget`` redacted the run store in one transaction and wrote
    the ``run.redact`` entries after it. A failure between the two (a crash, a full disk) left runs
    changed with no record of why, so ``podium audit verify`` reported them as tampered with, for
    good: forgetting again found nothing left to redact and wrote no entry. The entries are now
    written in the redaction's transaction: all of it lands, or none."""
    wf = podium.Workflow("crm")

    @wf.step
    async def note(input):
        return {"summary": f"refund for {input['email']}"}

    runs = [await client.start(wf, {"email": "ann@example.com"}) for _ in range(2)]
    for r in runs:
        await r.result()
    mem = memory.memory_for(client)
    await mem.upsert_entity("customer:42", type="customer", properties={"email": "ann@example.com"})
    _failing_audit(client.store, "run.redact", monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        await mem.forget("customer:42", values=[], reason="ticket 12")
    for r in runs:
        assert "ann@example.com" in (await client.get(r.id)).input  # nothing changed
    assert (await client.verify_audit())[1] is None
    monkeypatch.undo()
    erasure = await mem.forget("customer:42", values=[], reason="ticket 12")  # run again: it works
    assert erasure.counts["runs_redacted"] == 4  # two runs, each its input and output
    assert erasure.counts["runs_changed"] == 2  # the runs, not the values
    for r in runs:
        assert "ann@example.com" not in (await client.get(r.id)).input
    assert (await client.verify_audit())[1] is None
    redactions = [e.target for e in await client.store.list_audit() if e.action == "run.redact"]
    assert sorted(redactions) == sorted(r.id for r in runs)


async def test_pruning_whose_audit_record_fails_deletes_no_run(client, monkeypatch):
    """The same for pruning: runs deleted with no ``run.prune`` entry were reported as deleted by
    tampering, and pruning again found nothing to record. The entries are now written in the
    deletion's transaction."""
    wf = podium.Workflow("old")

    @wf.step
    async def one(input):
        return input

    done = [await client.run(wf, i) for i in range(3)]
    assert done == [0, 1, 2]
    ids = [r.id for r in await client.list(workflow="old")]
    mem = memory.memory_for(client)
    _failing_audit(client.store, "run.prune", monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        await mem.prune_runs(older_than=-1)
    assert sorted(r.id for r in await client.list(workflow="old")) == sorted(ids)  # nothing deleted
    assert (await client.verify_audit())[1] is None
    monkeypatch.undo()
    assert await mem.prune_runs(older_than=-1) == 3
    assert await client.list(workflow="old") == []
    assert (await client.verify_audit())[1] is None
    assert sorted(e.target for e in await client.store.list_audit() if e.action == "run.prune") == sorted(ids)


async def test_pruning_that_fails_on_the_memory_leaves_no_orphan_run_state(client, tmp_path):
    """Review: pruning deleted the runs, then their run state (which may hold personal data) in the
    memory's own database; when that failed (here the memory database is write-locked by another
    process), the state stayed with no run left for a later prune to find it by. The state goes
    first now: a failure there deletes nothing, and pruning again deletes both."""
    import sqlite3

    wf = podium.Workflow("kept")

    @wf.step
    async def s(ctx: StepContext, input):
        await memory.run_state(ctx).set("email", "ann@example.com")
        return 1

    mem = Memory(f"sqlite:///{tmp_path}/memory.db", embedder="hash:256")  # memory in a database of its own
    mem.run_store = client.store
    memory.attach(client, mem)
    try:
        rid = (await client.start(wf, 0)).id
        await client.result(rid)
        assert await RunState(mem, rid).all() == {"email": "ann@example.com"}
        locker = sqlite3.connect(tmp_path / "memory.db", isolation_level=None)
        locker.execute("PRAGMA busy_timeout=0")
        locker.execute("BEGIN IMMEDIATE")  # another process writing to the memory
        await mem.db.execute("PRAGMA busy_timeout=50")
        try:
            with pytest.raises(Exception, match="locked"):
                await mem.prune_runs(older_than=0, now=time.time() + 1)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
            await mem.db.execute("PRAGMA busy_timeout=10000")
        assert [r.id for r in await client.list(workflow="kept")] == [rid]  # nothing deleted
        assert await mem.prune_runs(older_than=0, now=time.time() + 1) == 1
        assert await client.list(workflow="kept") == [] and await RunState(mem, rid).all() == {}
    finally:
        await mem.close()
