"""Commands about the store: ``podium db upgrade``."""

from __future__ import annotations

from ._app import EXIT_OK, cli, console, db_option, run_async


@cli.group()
def db() -> None:
    """Manage the store (schema migrations)."""


@db.command()
@db_option
@run_async
async def upgrade(db: str | None) -> int:
    """Apply pending schema migrations to the store (opening a store does this too)."""
    from podium import open_store

    store = open_store(db)
    await store.open()
    try:
        applied = await store.migrate()
        version = await store.schema_version()
    finally:
        await store.close()
    note = f"applied {', '.join(map(str, applied))}" if applied else "already up to date"
    console().print(f"{store.url}: schema version {version} ({note})", highlight=False)
    return EXIT_OK
