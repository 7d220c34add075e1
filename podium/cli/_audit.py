"""``podium audit``: verify the audit log, export it, checkpoint its head, rotate its key."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from ._app import EXIT_OK, EXIT_RUN_FAILED, cli, console, db_option, fail, make_client, requires, run_async


@cli.group()
def audit() -> None:
    """The tamper-evident audit log (signed with a key kept outside the store)."""


def _existing(db: str | None) -> str | None:
    """``db``, if the store it names exists: reading the audit log of a mistyped path must not
    create an empty store and call it intact."""
    from podium import open_store

    from ._storecheck import missing_store_file

    missing = missing_store_file(db)  # a URL that was given: named with where it came from
    if missing:
        fail(missing)
    store = open_store(db)
    path = getattr(store, "path", None)
    if isinstance(path, str) and path != ":memory:" and not os.path.exists(path):  # the default store
        fail(
            f"no store at {os.path.abspath(path)}: the file does not exist, so there is no audit log to read "
            "(nothing was made). Run this from the project's folder, or name its store with --db or $PODIUM_DB"
        )
    return db


def _store_must_exist(fn: Callable[..., Coroutine[Any, Any, int]]) -> Callable[..., Coroutine[Any, Any, int]]:
    """Refuse a missing store before anything opens (and so creates) it, the permission check too."""

    @functools.wraps(fn)
    async def checked(*args: Any, **kwargs: Any) -> int:
        _existing(kwargs.get("db"))
        return await fn(*args, **kwargs)

    return checked


@audit.command("verify")
@click.option(
    "--checkpoints", "checkpoints", multiple=True, type=click.Path(dir_okay=False, exists=True),
    help="Also check the heads recorded in this file (written by 'podium audit checkpoint'); repeatable.",
)  # fmt: skip
@db_option
@run_async
@_store_must_exist
@requires("audit.read")
async def audit_verify(checkpoints: tuple[str, ...], db: str | None) -> int:
    """Check the signed chain, the head log outside the store, and every run against its anchors;
    name the first problem."""
    async with make_client(_existing(db), recover=False) as c:
        check = await c.governance.check_audit(checkpoints=checkpoints)
        key = c.store.audit_keys.path
    if check.problem:
        console(stderr=True).print(
            f"[bold red]tampered[/]: {check.problem} ({check.entries} entries read)", highlight=False
        )
        return EXIT_RUN_FAILED
    if check.entries and check.keyed_from is None:
        how = "no entry is signed with a key yet (legacy SHA-256 chain)"
    elif check.keyed_from and check.keyed_from > 1:
        how = f"entries 1-{check.keyed_from - 1} are legacy (unkeyed), anchored by signed entry {check.keyed_from}"
    else:
        how = f"signed with the key in {key}"
    console().print(
        f"[green]ok[/]: {check.entries} entries, chain intact ({how}), run histories match their digests",
        highlight=False,
    )
    return EXIT_OK


@audit.command("checkpoint")
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False), required=True,
    help="File to append the signed head to (keep it on another host or write-once storage).",
)  # fmt: skip
@db_option
@run_async
@_store_must_exist
@requires("audit.read", lambda kw: "audit:checkpoint")
async def audit_checkpoint(out: str, db: str | None) -> int:
    """Append the log's current heads (signed: the anchor chain's last entry and the last entry of
    every chain written since its last anchor) to a file kept outside the store, so that 'podium
    audit verify --checkpoints FILE' detects entries deleted after it."""
    async with make_client(_existing(db), recover=False) as c:
        check = await c.governance.check_audit(compact=False)
        if check.problem:
            fail(f"the audit log does not verify, so its head is not checkpointed: {check.problem}")
        if not check.heads:
            fail("the audit log is empty: nothing to checkpoint")
        for seq, h in check.heads:
            c.store.audit_keys.checkpoint(Path(out), seq, h)
    last = max(check.heads)
    console().print(
        f"checkpoint: {len(check.heads)} head(s), up to entry {last[0]} ({last[1]}), appended to {out}", highlight=False
    )
    return EXIT_OK


@audit.command("rotate-key")
@db_option
@run_async
@_store_must_exist
@requires("users.manage", lambda kw: "audit:key")
async def audit_rotate_key(db: str | None) -> int:
    """Retire the audit key (kept as audit.key.KEYID to verify what it signed) and make a new one."""
    async with make_client(_existing(db), recover=False) as c:
        await c.authorize("audit.read")
        old, new = c.store.audit_keys.rotate()
        await c.record_audit("audit.key.rotate", "audit", old=old, new=new)
    console().print(f"audit key rotated: {old or '(none)'} -> {new}", highlight=False)
    return EXIT_OK


@audit.command("export")
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False), default="-", help="File to write (default: stdout)."
)
@db_option
@run_async
@requires("audit.read", lambda kw: "audit:export")
async def audit_export(out: str, db: str | None) -> int:
    """Write the audit log as JSON lines."""
    async with make_client(_existing(db), recover=False) as c:
        lines = [
            json.dumps(
                {
                    "seq": e.seq,
                    "ts": e.ts,
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "data": e.details(),
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                    "chain": e.chain,
                    "cseq": e.cseq,
                },
                ensure_ascii=False,
            )
            for e in await c.audit_log(limit=10_000_000)
        ]
    with click.open_file(out, "w") as fh:
        for line in lines:
            fh.write(line + "\n")
    if out != "-":
        console().print(f"wrote {len(lines)} entries to {out}", highlight=False)
    return EXIT_OK
