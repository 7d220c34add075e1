"""An erasure (``podium memory forget``) and the start log (docs/durability.md, "Starts in a burst").

Attack (privacy): the runs a stopped engine acknowledged through its start log are created only
when another engine replays that log. An erasure run before the replay (the engine crashed, the
operator answers a data subject's request before starting one again) redacted the store, then the
replay created the subject's runs with their data: the erasure was reported done and was not.
Now the erasure refuses to run while such a log waits, saying how to replay it."""

from __future__ import annotations

from pathlib import Path

import pytest
from burst_helpers import dead_log, dead_run, flow_fixture  # noqa: F401  (flow_fixture: the `flow` fixture)

from podium import Client, Workflow
from podium.errors import StoreError
from podium.memory import Memory
from podium.storage.sqlite import SQLiteStore

EMAIL = "ann@example.com"


async def test_an_erasure_refuses_while_a_stopped_engines_start_log_waits_then_reaches_its_runs(
    tmp_path: Path, flow: Workflow
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url) as c:  # the schema, and one run of the subject already in the store
        done = await c.start(flow, {"n": 1, "email": EMAIL})
        await done.result()
        store = c.store
        assert isinstance(store, SQLiteStore)
        run = dead_run("01waiting000000000000000")
        run.input = f'{{"n": 3, "email": "{EMAIL}"}}'
        log = dead_log(db, store, [run])

    async with Memory(url, embedder="hash:64") as mem:
        with pytest.raises(StoreError) as refused:
            await mem.forget("customer:42", values=[EMAIL])
    message = str(refused.value)
    assert log.name in message and "podium runs resume" in message and "erase again" in message
    assert f"podium runs resume --db {url}`" in message  # the line to paste, not a placeholder
    async with Client(url, recover=False) as c:  # nothing was erased: the first run still holds it
        assert EMAIL in (await c.get(done.id)).input

    async with Client(url) as c:  # an engine opens the store: the log is replayed, its run resumed
        assert await c.result("01waiting000000000000000") == 6
    async with Memory(url, embedder="hash:64") as mem:
        erasure = await mem.forget("customer:42", values=[EMAIL])
    assert erasure.counts["runs_redacted"] >= 2
    async with Client(url, recover=False) as c:
        for rid in (done.id, "01waiting000000000000000"):
            assert EMAIL not in (await c.get(rid)).input


async def test_a_live_engines_start_log_does_not_stop_an_erasure(tmp_path: Path, flow: Workflow) -> None:
    """The log of an engine still running (its lock held) is committed by that engine within a
    turn of its loop: an erasure goes on beside it."""
    url = f"sqlite:///{tmp_path}/s.db"
    async with Client(url) as c:
        first = await c.start(flow, {"n": 1, "email": EMAIL})
        burst = [await c.start(flow, {"n": i, "email": EMAIL}) for i in range(3)]  # through the log
        for h in (first, *burst):
            await h.result()
        async with Memory(url, embedder="hash:64") as mem:
            erasure = await mem.forget("customer:42", values=[EMAIL])
        assert erasure.counts["runs_redacted"] >= 4


async def test_a_refused_erasure_changes_nothing_not_even_the_knowledge_bases(tmp_path: Path, flow: Workflow) -> None:
    """A refusal came after the knowledge bases were redacted: the erasure was half done (a second
    run finished it, but the refusal said nothing of what it had changed). The runs go first now."""
    from podium.knowledge import Document, KnowledgeBase

    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url) as c:
        store = c.store
        assert isinstance(store, SQLiteStore)
        run = dead_run("01waiting000000000000001")
        run.input = f'{{"n": 3, "email": "{EMAIL}"}}'
        dead_log(db, store, [run])
    async with Memory(url, embedder="hash:64") as mem:
        kb = KnowledgeBase(mem, "crm", chunk_size=200, overlap=20)
        await kb.ingest([Document(source="notes", title="Notes", type="text", sections=[(f"Ann ({EMAIL}) renews in May.", {})])])
        await mem.remember("customer:42", f"prefers e-mail: {EMAIL}")
        with pytest.raises(StoreError):
            await mem.forget("customer:42", values=[EMAIL])
        [p] = await kb.search("who renews in May", k=1)
        assert EMAIL in p.text
        assert [item.text for item in await mem.recall("customer:42", "e-mail", k=1)] == [f"prefers e-mail: {EMAIL}"]
