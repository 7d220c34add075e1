"""Commands for memory and knowledge: ``podium kb ingest|search|list``, ``podium memory forget``,
``podium memory show|prune|erasures``. Heavy imports stay inside the command bodies."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from ._app import (
    EXIT_OK,
    EXIT_USER_ERROR,
    acting_name,
    cli,
    console,
    db_option,
    emit_json,
    fail,
    json_option,
    make_client,
    record,
    requires,
    run_async,
)

embedder_option = click.option(
    "--embedder",
    envvar="PODIUM_EMBEDDER",
    default=None,
    metavar="SPEC",
    help="provider:model for embeddings (default: $PODIUM_EMBEDDER, else local:all-minilm-l6-v2).",
)


def _pairs(items: tuple[str, ...], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{option} {item!r}: use KEY=VALUE (VALUE may be JSON, e.g. page=2)")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", text.strip())
    if not m:
        fail(f"duration {text!r}: use a number of seconds or 30d, 12h, 15m, 2w")
    assert m is not None
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


async def _embedding_allowed(db: str | None, embedder: Any, what: str) -> None:
    """Stop (exit 2, nothing sent) when a kill switch stops ``embedder``'s provider, as the HTTP API
    and runs do: a switch on a provider during an incident stops every call to it."""
    from podium.governance.enforcement import embedding_switched_off

    async with make_client(db, recover=False, execute=False) as c:
        off = embedding_switched_off(c.governance, embedder, what)
    if off is not None:
        fail(off)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


#: Seconds between two progress lines of ``kb ingest`` when its stderr is not a terminal.
LOG_EVERY = 2.0


@cli.group()
def kb() -> None:
    """Knowledge bases: ingest documents, search them."""


@kb.command(name="ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--kb", "name", required=True, help="Knowledge base name (created on first ingest).")
@click.option(
    "--meta", multiple=True, metavar="KEY=VALUE", help="Metadata added to every chunk (repeatable)."
)
@click.option("--chunk-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Characters per chunk at most.")
@click.option("--overlap", type=click.IntRange(min=0), default=150, show_default=True, help="Characters repeated between chunks.")
@embedder_option
@db_option
@run_async
@requires("memory.write", lambda kw: f"kb:{kw['name']}")
async def kb_ingest(
    paths: tuple[str, ...],
    name: str,
    meta: tuple[str, ...],
    chunk_size: int,
    overlap: int,
    embedder: str | None,
    db: str | None,
) -> int:
    """Ingest files or folders (.txt .md .html .pdf) into a knowledge base; unchanged ones are skipped."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from podium.knowledge import KnowledgeBase
    from podium.memory import Memory

    from ._render import escape

    err = console(stderr=True)
    live = err.is_terminal  # a bar on a terminal; in a log (CI, a pipe) a line every few seconds
    said = [float("-inf")]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not live) as bar:
        task = bar.add_task("loading the embedder", total=None)

        files = [0, 0]  # the file being ingested (from 1) and how many

        def step(done: int, total: int, source: str) -> None:
            files[:] = [done + 1, total]
            bar.update(task, completed=done, total=total, description=f"ingesting {source[-48:]}" if source else "done")
            if not live and source and time.monotonic() - said[0] >= LOG_EVERY:
                said[0] = time.monotonic()
                err.print(f"ingesting file {done + 1}/{total}: {escape(source)}", highlight=False, soft_wrap=True)

        def chunks(done: int, total: int, source: str) -> None:  # inside one file: its chunks embedded
            bar.update(task, description=f"ingesting {source[-40:]} ({done}/{total} chunks)")
            if not live and 0 < done < total and time.monotonic() - said[0] >= LOG_EVERY:
                said[0] = time.monotonic()
                err.print(
                    f"ingesting file {files[0]}/{files[1]}: {escape(source)}, {done}/{total} chunks embedded",
                    highlight=False,
                    soft_wrap=True,
                )

        async with Memory(db, embedder=embedder) as mem:
            base = KnowledgeBase(mem, name, chunk_size=chunk_size, overlap=overlap)
            await _embedding_allowed(db, (await base.open()).embedder, f"ingesting into knowledge base {name!r}")
            try:
                r = await base.ingest(list(paths), metadata=_pairs(meta, "--meta"), progress=step, chunk_progress=chunks)
            except ValueError as exc:  # a file ingest cannot read (its type, size, a damaged PDF): named, no traceback
                fail(f"{exc}")
    await record(db, "kb.ingest", f"kb:{name}", added=r.added, updated=r.updated, files=len(paths))
    console().print(
        f"{name}: {r.added} added, {r.updated} updated, {r.unchanged} unchanged, {len(r.duplicates)} duplicate(s); "
        f"{r.chunks_embedded} chunks embedded, {r.chunks_removed} removed in {r.seconds:.1f}s",
        highlight=False,
    )
    for source, twin in r.duplicates:
        console().print(f"  skipped {escape(source)}: same content as {escape(twin)}", highlight=False)
    return EXIT_OK


@kb.command(name="search")
@click.argument("name")
@click.argument("query")
@click.option("-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Passages to return.")
@click.option(
    "--where", multiple=True, metavar="KEY=VALUE", help="Only chunks whose metadata matches (repeatable)."
)
@click.option("--hybrid/--vector", default=True, show_default=True, help="Fuse keyword and vector rankings.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@embedder_option
@db_option
@run_async
@requires("memory.read", lambda kw: f"kb:{kw['name']}")
async def kb_search(
    name: str,
    query: str,
    k: int,
    where: tuple[str, ...],
    hybrid: bool,
    as_json: bool,
    embedder: str | None,
    db: str | None,
) -> int:
    """Search knowledge base NAME; prints passages with their citations."""
    from podium.knowledge import KnowledgeBase, knowledge_bases
    from podium.memory import Memory

    async with Memory(db, embedder=embedder) as mem:
        bases = sorted(b["name"] for b in await knowledge_bases(mem))
        if name not in bases:
            import difflib

            near = difflib.get_close_matches(name, bases, n=1)
            fail(
                f"no knowledge base {name!r} in {mem.db.url}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + (f"; there are: {', '.join(bases)}" if bases else "")
                + f"; create it with: podium kb ingest PATH --kb {name}"
            )
        base = KnowledgeBase(mem, name)
        await _embedding_allowed(db, (await base.open()).embedder, f"searching knowledge base {name!r}")
        passages = await base.search(
            query, k=k, where=_pairs(where, "--where"), hybrid=hybrid
        )
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"citation": p.citation, "source": p.source, "score": p.score, "text": p.text}
                    for p in passages
                ],
                indent=2,
            )
        )
        return EXIT_OK
    if not passages:
        console().print("no passages found", highlight=False)
    for i, p in enumerate(passages, 1):
        console().print(
            f"[bold][{i}] {p.citation}[/]  [dim]{p.source}  score {p.score:.3f}[/]", highlight=False
        )
        console().print("    " + " ".join(p.text.split())[:400], highlight=False)
    return EXIT_OK


@kb.command(name="list")
@json_option
@db_option
@run_async
@requires("memory.read", lambda kw: "kb:*")
async def kb_list(as_json: bool, db: str | None) -> int:
    """List knowledge bases: documents, chunks and embedder."""
    from podium.knowledge import knowledge_bases
    from podium.memory import Memory

    async with Memory(db) as mem:
        bases = await knowledge_bases(mem)
    if as_json:
        emit_json(bases)
        return EXIT_OK
    for b in bases:
        console().print(
            f"{b['name']}: {b['documents']} documents, {b['chunks']} chunks ({b['embedder']})",
            highlight=False,
        )
    if not bases:
        console().print("no knowledge bases yet: podium kb ingest PATH --kb NAME", highlight=False)
    return EXIT_OK


@cli.group()
def memory() -> None:
    """Long-term memory: inspect an entity, erase one everywhere, apply retention, list erasures."""


@memory.command(name="forget")
@click.argument("entity")
@click.option(
    "--value", "values", multiple=True, help="Other text that identifies it (a name, an email); repeatable."
)
@click.option("--reason", default="", help="Why (kept in the erasure record).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@embedder_option
@db_option
@run_async
@requires("memory.forget", lambda kw: f"entity-sha256:{_digest(kw['entity'])}")  # not the entity: PII
async def forget(
    entity: str, values: tuple[str, ...], reason: str, yes: bool, embedder: str | None, db: str | None
) -> int:
    """Erase ENTITY (e.g. customer:42) from memory, vectors, the graph, knowledge bases and stored
    run payloads (redacted), and record the erasure."""
    from podium.memory import Memory

    if not yes and not sys.stdin.isatty():  # a script: no one to answer the question (click would abort)
        fail(f"erasing {entity} cannot be undone and nobody is here to confirm it: pass --yes to erase without asking")
    if not yes and not click.confirm(f"Erase {entity} everywhere? This cannot be undone", default=False):
        return EXIT_USER_ERROR
    async with Memory(db, embedder=embedder) as mem:
        mem.actor = acting_name() or mem.actor  # the audit log names who erased, not "memory"
        erasure = await mem.forget(entity, values=values, reason=reason)
    # The entity itself is personal data: the audit log keeps its digest, like the erasure record.
    await record(db, "memory.forget", f"erasure:{erasure.id}", entity_sha256=erasure.entity_sha256,
                 reason=reason, counts=erasure.counts)  # fmt: skip
    counts = ", ".join(f"{k} {v}" for k, v in sorted(erasure.counts.items()) if v)
    console().print(f"erased {entity}: {counts or 'nothing found'} (erasure #{erasure.id})", highlight=False)
    return EXIT_OK


@memory.command(name="show")
@click.argument("entity")
@click.option("--query", default=None, help="Rank memories by similarity to this text.")
@click.option("-k", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@embedder_option
@db_option
@run_async
@requires("memory.read", lambda kw: f"entity-sha256:{_digest(kw['entity'])}")  # not the entity: PII
async def memory_show(
    entity: str, query: str | None, k: int, as_json: bool, embedder: str | None, db: str | None
) -> int:
    """Show what is remembered about ENTITY, its properties and its relations."""
    import dataclasses

    from podium.memory import Memory

    async with Memory(db, embedder=embedder) as mem:
        if query is not None and query.strip():
            await _embedding_allowed(db, mem.embedder, "recall with a query")
        node = await mem.get_entity(entity)
        items = await mem.recall(entity, query, k=k)
        rels = await mem.relations(entity)
    if as_json:
        click.echo(json.dumps({
            "entity": dataclasses.asdict(node) if node else None,
            "items": [dataclasses.asdict(i) for i in items],
            "relations": [dataclasses.asdict(r) for r in rels],
        }, indent=2, default=str))  # fmt: skip
        return EXIT_OK
    from ._render import escape

    if node is None and not items:
        console().print(f"nothing remembered about {escape(entity)}", highlight=False)
        return EXIT_OK
    if node is not None:
        console().print(f"[bold]{escape(node.id)}[/] ({escape(node.type)}) {escape(json.dumps(node.properties))}",
                        highlight=False)
    for r in rels:
        console().print(f"  {escape(r.src)} -{escape(r.relation)}-> {escape(r.dst)}", highlight=False)
    import time

    for i in items:
        age = time.strftime("%Y-%m-%d %H:%M", time.localtime(i.created_at))
        score = f" {i.score:.2f}" if i.score is not None else ""
        console().print(f"  [dim]{age}[/] {escape(f'[{i.kind}]')}{score} {escape(i.text)}", highlight=False)
    return EXIT_OK


@memory.command(name="prune")
@click.option(
    "--runs-older-than",
    default=None,
    metavar="AGE",
    help="Also delete finished runs older than AGE (30d, 12h).",
)
@db_option
@run_async
@requires("memory.prune", lambda kw: "memory")
async def memory_prune(runs_older_than: str | None, db: str | None) -> int:
    """Delete expired memories, and finished runs past an age (with their events and run state)."""
    from podium.memory import Memory

    async with Memory(db, embedder="hash:8") as mem:  # pruning embeds nothing
        mem.actor = acting_name() or mem.actor
        counts = await mem.prune()
        runs = await mem.prune_runs(older_than=_duration(runs_older_than)) if runs_older_than else 0
    await record(db, "memory.prune", "memory", memories=counts, runs=runs, older_than=runs_older_than)
    done = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no expired memories"
    console().print(f"pruned {done}; {runs} run(s) deleted", highlight=False)
    return EXIT_OK


@memory.command(name="erasures")
@json_option
@db_option
@run_async
@requires("audit.read", lambda kw: "erasures")
async def memory_erasures(as_json: bool, db: str | None) -> int:
    """List recorded erasures (entity ids are kept only as SHA-256 digests)."""
    import dataclasses
    import time

    from podium.memory import Memory

    async with Memory(db, embedder="hash:8") as mem:
        records = await mem.erasures()
    if as_json:
        emit_json(dataclasses.asdict(e) if dataclasses.is_dataclass(e) else vars(e) for e in records)
        return EXIT_OK
    for e in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        console().print(
            f"#{e.id} {when} sha256:{e.entity_sha256[:16]}… {e.reason} {json.dumps(e.counts)}",
            highlight=False,
        )
    if not records:
        console().print("no erasures recorded", highlight=False)
    return EXIT_OK
