"""Commands about the store: ``podium db upgrade``, ``podium db migrate-to``."""

from __future__ import annotations

import click

from ._app import EXIT_OK, cli, console, db_option, record, requires, run_async


@cli.group()
def db() -> None:
    """Manage the store (schema migrations)."""


@db.command()
@db_option
@run_async
@requires("store.manage", lambda kw: "store", migrate=False)
async def upgrade(db: str | None) -> int:
    """Apply pending schema migrations to the store (opening a store does this too)."""
    from podium import open_store

    store = open_store(db)
    store.auto_migrate = False
    await store.open()
    try:
        applied = await store.migrate()
        version = await store.schema_version()
    finally:
        await store.close()
    note = f"applied {', '.join(map(str, applied))}" if applied else "already up to date"
    console().print(f"{store.url}: schema version {version} ({note})", highlight=False)
    return EXIT_OK


@db.command(name="migrate-to")
@click.argument("target")
@db_option
@run_async
@requires("data.export", lambda kw: f"store:{kw['target']}")
async def migrate_to(target: str, db: str | None) -> int:
    """Copy every run, event and signal from the current store into TARGET (e.g. PostgreSQL).

    Runs already in TARGET are left as they are, so it is safe to run again. Stop the engines
    that use the current store first; unfinished runs are copied without their leases, and the
    first engine on TARGET resumes them.
    """
    from podium import ConfigError, open_store

    src, dst = open_store(db), open_store(target)
    if src.url == dst.url:
        raise ConfigError(f"the source and the target are the same store ({src.url})")
    await src.open()
    try:
        await dst.open()
        try:
            copied, kept, offset = 0, 0, 0
            while True:
                runs = await src.list_runs(limit=500, offset=offset)
                if not runs:
                    break
                offset += len(runs)
                for run in runs:
                    run.owner, run.lease_expires_at = None, None
                    events = await src.load_events(run.id)
                    if await dst.create_run(run, events):
                        for name, payload in (await src.get_signals(run.id)).items():
                            await dst.send_signal(run.id, name, payload, now=run.created_at)
                        copied += 1
                    else:
                        kept += 1
        finally:
            await dst.close()
    finally:
        await src.close()
    import re

    where = re.sub(r"//[^/@]*@", "//", dst.url)  # no credentials in the audit log
    await record(db, "data.export", f"store:{where}", copied=copied, kept=kept)
    console().print(
        f"copied {copied} run(s) from {src.url} to {dst.url}; {kept} were there already", highlight=False
    )
    return EXIT_OK
