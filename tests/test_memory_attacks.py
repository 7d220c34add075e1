"""Attacks on memory and knowledge from workflow files: what a YAML step, a run's input or a run's
starter can make the memory layer do that the workflow's policy or the starter's permissions forbid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import podium
from podium import StepContext, memory
from podium.embeddings.hashing import HashEmbedder
from podium.governance.policy import Policy
from podium.memory import Memory
from podium.memory._embedder import _EMBEDDERS as embedder_cache

podium_yaml = pytest.importorskip("podium.yaml")

SECRET = "Ann Lee, ann.lee@example.com, card 4111 1111 1111 1111, was charged twice"


class RemoteEmbedder(HashEmbedder):
    """Stands for an embedding service (``openai:``): keeps every text it was sent."""

    def __init__(self) -> None:
        super().__init__(64)
        self.name = "openai:text-embedding-3-small"
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> Any:
        self.texts.extend(texts)
        return super().encode(texts)


STEPS = {
    "remember": 'uses: remember\n    with: {entity: "customer:1", text: "{{ input.message }}"}',
    "recall": 'uses: recall\n    with: {entity: "customer:1", query: "{{ input.message }}"}',
    "retrieve": 'uses: retrieve\n    with: {kb: handbook, query: "{{ input.message }}"}',
    "kb_ingest": 'uses: kb_ingest\n    with: {kb: inbox, root: letters, paths: "."}',
}
REFUSALS = {
    "providers": "may not call provider 'openai'",
    "switch": "switched off",
    "pii": "personal data",
}


async def _governed_client(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[podium.Client, RemoteEmbedder]:
    client = podium.Client(f"sqlite:///{tmp_path}/p.db")
    await client.__aenter__()
    remote = RemoteEmbedder()
    # A knowledge base opens its embedder by the name it was built with: that name is this one.
    monkeypatch.setitem(embedder_cache, remote.name, remote)
    mem = memory.attach(client, Memory(client.store, embedder=remote))
    from podium.knowledge import KnowledgeBase, from_text

    # An admin built the handbook with the remote embedder, outside any run (no policy applies).
    await KnowledgeBase(mem, "handbook").ingest([from_text("Refunds take five days.", source="refunds.txt")])
    await mem.remember("customer:1", "prefers email")
    letters = tmp_path / "letters"
    letters.mkdir()
    (letters / "complaint.txt").write_text(SECRET)
    await client.add_capability("letters", "files", {"root": str(letters)})
    remote.texts.clear()
    if mode == "providers":
        await client.set_policy("leak", Policy(allowed_providers=["local"]))
    elif mode == "switch":
        await client.set_switch("provider", "openai", reason="incident 42")
    else:
        await client.set_policy("leak", Policy(pii_local_only=True))
    return client, remote


@pytest.mark.parametrize("mode", sorted(REFUSALS))
@pytest.mark.parametrize("step", sorted(STEPS))
async def test_a_remote_embedder_of_memory_and_knowledge_obeys_the_workflows_policy(
    tmp_path: Path, step: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: the policy keeps the run's data on this machine (``allowed_providers: [local]``, a
    kill switch on the provider, ``pii_local_only``), but the memory's or the knowledge base's
    embedder is a service: a remember, recall, retrieve or kb_ingest step sent the customer's text
    there, as classify and route did before their fix."""
    wf = podium_yaml.load_text(f"name: leak\nsteps:\n  - id: s\n    {STEPS[step]}\n")
    client, remote = await _governed_client(tmp_path, mode, monkeypatch)
    try:
        run = await client.start(wf, {"message": SECRET})
        with pytest.raises(Exception, match=REFUSALS[mode]):
            await client.result(run.id)
        audit = [e.action for e in await client.audit_log() if e.target == run.id]
    finally:
        await memory.memory_for(client).close()
        await client.__aexit__(None, None, None)
    assert remote.texts == [], f"{step} sent the run's text to the remote embedder"
    assert "policy.refuse" in audit


async def test_a_remote_embedder_gets_redacted_text_when_the_policy_redacts_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``redact: [prompts]`` keeps personal data out of what goes to a model; an embedding model too."""
    wf = podium_yaml.load_text(
        "name: leak\nsteps:\n"
        f"  - id: a\n    {STEPS['remember']}\n"
        f"  - id: b\n    {STEPS['recall']}\n"
        f"  - id: c\n    {STEPS['retrieve']}\n"
    )
    client, remote = await _governed_client(tmp_path, "pii", monkeypatch)
    try:
        await client.set_policy("leak", Policy(redact=["prompts"]))
        out = await client.run(wf, {"message": SECRET})
        items = await memory.memory_for(client).recall("customer:1")
    finally:
        await memory.memory_for(client).close()
        await client.__aexit__(None, None, None)
    assert out is not None and len(remote.texts) == 3
    assert not any("ann.lee@example.com" in t or "4111" in t for t in remote.texts), remote.texts
    assert SECRET in [i.text for i in items], "what is remembered is the step's text; only the embedding call is redacted"


FORGET = """
name: erase
steps:
  - id: gone
    uses: forget
    with: {entity: "customer:{{ input.customer }}", values: ["{{ input.email }}"], reason: "asked"}
"""


async def test_a_yaml_forget_step_erases_only_for_a_starter_who_may_erase(tmp_path: Path) -> None:
    """Attack: ``podium memory forget`` needs ``memory.forget`` (admins); the YAML ``forget`` step
    needed nothing. An operator (``runs.start``) started a workflow with a forget step and erased any
    customer, and rewrote every run's stored payloads (any text of 3 characters or more as
    ``values``), through a workflow someone else deployed."""
    db = f"sqlite:///{tmp_path}/p.db"
    wf = podium_yaml.load_text(FORGET)
    async with podium.Client(db) as admin:
        await admin.create_user("root", ["admin"])
        await admin.create_user("olga", ["operator"])
        olga, root = await admin.create_token("olga"), await admin.create_token("root")
    async with podium.Client(db, token=olga) as c:
        c.register(wf)
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await mem.remember("customer:7", "lives at 1 Main St", kind="fact")
        run = await c.start(wf, {"customer": 7, "email": "ann@example.com"})
        with pytest.raises(Exception, match="memory.forget") as caught:
            await c.result(run.id)
        assert "podium memory forget" in str(caught.value) or "admin" in str(caught.value)
        assert [i.text for i in await mem.recall("customer:7")] == ["lives at 1 Main St"]
        assert await mem.erasures() == []
        await mem.close()
    async with podium.Client(db, token=root) as c:
        c.register(wf)
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        assert await c.run(wf, {"customer": 7, "email": "ann@example.com"})
        assert await mem.recall("customer:7") == []
        await mem.close()


@pytest.mark.parametrize(
    "step",
    [
        "uses: recall\n    with: {k: 100000000}",
        "uses: graph_query\n    with: {start: 'a:1', limit: 100000000}",
    ],
)
def test_a_workflow_file_cannot_ask_memory_for_everything(step: str) -> None:
    """A recall or graph query bounded only by the table: a workflow file (or, through a template,
    a run's input) asked for every memory of every customer in one step output."""
    problems = podium_yaml.validate_text(f"name: all\nsteps:\n  - id: s\n    {step}\n")
    assert problems and "1000" in " ".join(str(p) for p in problems)


async def test_a_graph_path_from_a_hub_is_bounded_like_a_neighbourhood(tmp_path: Path) -> None:
    """Attack: ``graph_query`` with ``path:`` ignored ``limit``: a path from a hub (every customer
    ``is_a`` one type node) put every entity and its properties in the step's output and the run's log."""
    wf = podium_yaml.load_text(
        "name: hub\nsteps:\n  - id: all\n    uses: graph_query\n"
        "    with: {start: 'type:customer', path: ['<is_a'], limit: 5}\n"
    )
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        for i in range(40):
            await mem.relate(f"customer:{i}", "is_a", "type:customer")
        out = await c.run(wf, {})
        await mem.close()
    assert len(out["ids"]) == 5


async def test_ingest_refuses_a_file_too_big_to_read_whole(tmp_path: Path) -> None:
    """Attack: a workflow file's ``kb_ingest`` names a huge file under a registered folder (a log);
    ingest read it whole into memory, then chunked and embedded all of it."""
    letters = tmp_path / "letters"
    letters.mkdir()
    with open(letters / "huge.txt", "wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: no disk used
    wf = podium_yaml.load_text(
        "name: big\nsteps:\n  - id: docs\n    uses: kb_ingest\n    with: {kb: logs, root: letters, paths: huge.txt}\n"
    )
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await c.add_capability("letters", "files", {"root": str(letters)})
        run = await c.start(wf, {})
        with pytest.raises(Exception, match="65 MiB is more than a document may be"):
            await c.result(run.id)
        await mem.close()


async def test_forget_reaches_a_knowledge_bases_titles_metadata_and_vector_copies(store_url: str) -> None:
    """Attack (erasure): a complaint ingested with the customer in its title and metadata. ``forget``
    redacted the chunks' text only: the document's title, its metadata, each chunk's metadata and
    the copy of that metadata kept with each vector still named the person, and retrieval handed
    them out as citations."""
    from podium.knowledge import KnowledgeBase, from_text

    async with podium.Client(store_url) as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        kb = KnowledgeBase(mem, "complaints")
        doc = from_text("# Complaint from Ann Lee\n\nThe parcel came late.", source="c-17.md", type="markdown")
        await kb.ingest([doc], metadata={"customer": "ann@example.com", "by": "Ann Lee"})
        await mem.upsert_entity("customer:42", properties={"name": "Ann Lee", "email": "ann@example.com"})
        await mem.forget("customer:42", reason="GDPR request 12")
        stored = [
            *(await mem.db.fetchall("SELECT title, metadata FROM kb_documents")),
            *(await mem.db.fetchall("SELECT text, metadata FROM kb_chunks")),
        ]
        hits = await mem.vectors.search("kb:complaints", (await mem.embedder.embed(["parcel late"]))[0], 10)
        passages = await KnowledgeBase(mem, "complaints").search("parcel late", k=5)
        await mem.close()
    left = repr([stored, [h.metadata for h in hits], [(p.title, p.citation, p.metadata) for p in passages]])
    assert hits and passages
    assert "Ann Lee" not in left and "ann@example.com" not in left, left


async def test_finding_entities_reads_the_graph_a_page_at_a_time(store_url: str) -> None:
    """Attack: ``GET /api/graph?limit=5`` (and ``find_entities``) read every entity of the graph
    into the process, then kept five: a graph of millions of entities on each request."""
    async with Memory(store_url, embedder="hash:64") as mem:
        for i in range(1200):
            await mem.upsert_entity(f"customer:{i:05d}", type="customer", properties={"tier": "gold" if i % 2 else "std"})
        await mem.upsert_entity("acme:1", type="org")
        largest: list[int] = []
        fetch = mem.db.fetchall

        async def counted(sql: str, params: Any = ()) -> Any:
            rows = await fetch(sql, params)
            largest.append(len(rows))
            return rows

        mem.db.fetchall = counted  # type: ignore[method-assign]
        try:
            first = await mem.find_entities(limit=5)
            gold = await mem.find_entities(type="customer", where={"tier": "gold"}, limit=3)
            found = await mem.find_entities(search="0011", limit=4)
        finally:
            mem.db.fetchall = fetch  # type: ignore[method-assign]
    assert [e.id for e in first] == ["acme:1", "customer:00000", "customer:00001", "customer:00002", "customer:00003"]
    assert [e.id for e in gold] == ["customer:00001", "customer:00003", "customer:00005"]
    assert [e.id for e in found] == ["customer:00011", "customer:00110", "customer:00111", "customer:00112"]
    assert max(largest) <= 500, f"read {max(largest)} rows at once"


async def test_recall_with_a_filter_reads_memories_a_page_at_a_time(tmp_path: Path) -> None:
    """Attack: a recall step with ``where`` (and no entity, or an entity with a long history) read
    every memory of the store into the process to keep ``k`` of them."""
    async with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash:64") as mem:
        for i in range(1200):
            await mem.remember(f"customer:{i % 7}", f"note {i}", metadata={"channel": "email" if i % 3 else "phone"}, at=1000.0 + i)
        largest: list[int] = []
        fetch = mem.db.fetchall

        async def counted(sql: str, params: Any = ()) -> Any:
            rows = await fetch(sql, params)
            largest.append(len(rows))
            return rows

        mem.db.fetchall = counted  # type: ignore[method-assign]
        try:
            phone = await mem.recall(where={"channel": "phone"}, k=3)
        finally:
            mem.db.fetchall = fetch  # type: ignore[method-assign]
    assert [i.text for i in phone] == ["note 1197", "note 1194", "note 1191"]
    assert max(largest) <= 500, f"read {max(largest)} rows at once"


async def test_forget_leaves_no_copy_in_the_sqlite_files(tmp_path: Path) -> None:
    """Attack (erasure, fifth session): read the database files' bytes after ``forget``. The rows
    were redacted or deleted, but SQLite kept the old text in freed pages, in the knowledge base's
    full-text index (deleted entries stay in its segments until they are merged) and in the WAL
    file: anyone with a copy of the file (a backup, a support bundle) read the person's name and
    e-mail back. Now the erasure overwrites what it frees, merges the full-text index and
    checkpoints the WAL."""
    from podium.knowledge import KnowledgeBase, from_text

    db = f"sqlite:///{tmp_path}/podium.db"
    name, email = "Zebrafinch Quartzwell", "zq-7731@example.org"
    wf = podium.Workflow("crm")

    @wf.step
    async def note(ctx: StepContext, input: Any) -> Any:
        await memory.of(ctx).remember(input["customer"], f"{input['name']} ({input['email']}) wants a refund")
        return {"summary": f"refund for {input['name']}"}

    async with podium.Client(db) as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await mem.upsert_entity("customer:42", properties={"name": name, "email": email})
        # as on a build of SQLite without SQLITE_SECURE_DELETE (this machine's has it on)
        c.store.db.execute("PRAGMA secure_delete=OFF")
        await mem.db.execute("PRAGMA secure_delete=OFF")
        for i in range(3):
            await c.run(wf, {"customer": "customer:42", "name": name, "email": email, "n": i})
        kb = KnowledgeBase(mem, "complaints")
        await kb.ingest(
            [from_text(f"# Complaint\n\n{name} wrote from {email}: the parcel came late.", source="c-1.md", type="markdown")]
        )
        await mem.forget("customer:42", reason="GDPR request 12")
        await mem.close()
    leaked = []
    for path in sorted(tmp_path.iterdir()):
        if path.is_file():
            data = path.read_bytes()
            for marker in (name, email, "Quartzwell", "zq-7731", "zebrafinch", "quartzwel"):
                if marker.encode() in data:
                    leaked.append((path.name, marker))
    assert not leaked, leaked


async def test_forget_deletes_spend_counters_that_name_the_entity(store_url: str) -> None:
    """Attack (erasure, fifth session): per-entity spend counters were keyed by the entity value
    (``entity:WORKFLOW:ann@example.com:DAY:tokens``) and ``forget`` left them. New counters are
    keyed by a digest; ``forget`` deletes the old ones that name the person."""
    async with podium.Client(store_url) as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await c.store.kv_put("spend", "entity:refunds:ann@example.com:2026-12-01:tokens", "120")
        await c.store.kv_put("spend", "entity:refunds:bo@example.com:2026-12-01:tokens", "80")
        await c.store.kv_put("spend", "day:refunds:2026-12-01:tokens", "200")
        await mem.upsert_entity("customer:42", properties={"email": "ann@example.com"})
        erasure = await mem.forget("customer:42", reason="GDPR request 13")
        left = await c.store.kv_list("spend")
        await mem.close()
    assert erasure.counts["spend_counters_deleted"] == 1
    assert sorted(left) == ["day:refunds:2026-12-01:tokens", "entity:refunds:bo@example.com:2026-12-01:tokens"]


async def test_forget_deletes_only_the_spend_counters_of_the_entity(store_url: str) -> None:
    """Attack (review of the fifth session): ``forget`` deleted every legacy spend counter whose key
    contained an erased form anywhere, the workflow, the day or the kind included: a ``forget`` of
    ``tokens`` (or of ``2026-12``) deleted every person's counters of the day, resetting their
    budgets. Now a form is looked for in the counter's entity only."""
    async with podium.Client(store_url) as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await c.store.kv_put("spend", "entity:refunds:ann@example.com:2026-12-01:tokens", "120")
        await c.store.kv_put("spend", "entity:refunds:bo@example.com:2026-12-01:cost", "0.8")
        erasure = await mem.forget("tokens", values=["2026-12-01", "refunds"], reason="a name that is a key's part")
        left = await c.store.kv_list("spend")
        await mem.close()
    assert erasure.counts["spend_counters_deleted"] == 0
    assert sorted(left) == [
        "entity:refunds:ann@example.com:2026-12-01:tokens", "entity:refunds:bo@example.com:2026-12-01:cost"
    ]


async def test_forget_leaves_the_counters_of_entities_whose_value_holds_the_erased_one(store_url: str) -> None:
    """Found by the fifth session's new-user run-through: ``podium memory forget customer:777
    --value 777`` deleted the legacy counter of entity ``1777`` too (a part of its value matched),
    resetting another customer's budget. A counter goes only when its entity is an erased value."""
    async with podium.Client(store_url) as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await c.store.kv_put("spend", "entity:refunds:777:2026-12-01:tokens", "120")
        await c.store.kv_put("spend", "entity:refunds:1777:2026-12-01:tokens", "80")
        erasure = await mem.forget("customer:777", values=["777"], reason="GDPR request 14")
        left = await c.store.kv_list("spend")
        await mem.close()
    assert erasure.counts["spend_counters_deleted"] == 1
    assert sorted(left) == ["entity:refunds:1777:2026-12-01:tokens"]


async def test_forget_deletes_the_counters_of_a_workflow_whose_name_has_a_colon(store_url: str) -> None:
    """Review of the last fixes (fifth session): matching a legacy counter's entity by its whole
    value took the workflow's name to end at the key's first ``:``; workflow names are free text,
    so for ``team:eu`` the entity read as ``eu:ann@example.com``, which is no erased value, and
    ``forget`` left the counter naming the person (the part match before deleted it). The workflow
    names come from the day counters beside them; the entity is what follows one of them."""
    async with podium.Client(store_url) as c:
        mem = memory.attach(c, Memory(c.store, embedder="hash:64"))
        await c.store.kv_put("spend", "day:team:eu:2026-12-01:tokens", "200")
        await c.store.kv_put("spend", "entity:team:eu:ann@example.com:2026-12-01:tokens", "120")
        await c.store.kv_put("spend", "entity:team:eu:bo@example.com:2026-12-01:tokens", "80")
        erasure = await mem.forget("ann@example.com", reason="GDPR request 15")
        left = await c.store.kv_list("spend")
        await mem.close()
    assert erasure.counts["spend_counters_deleted"] == 1
    assert sorted(left) == ["day:team:eu:2026-12-01:tokens", "entity:team:eu:bo@example.com:2026-12-01:tokens"]
