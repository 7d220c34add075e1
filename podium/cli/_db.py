"""Commands about the store: ``podium db upgrade``, ``podium db migrate-to``."""

from __future__ import annotations

import click

from ._app import EXIT_OK, acting_name, cli, console, db_option, record, requires, run_async


def _shown(url: str) -> str:
    """A store URL as printed or audited: its password masked (CI logs, terminals, the audit log)."""
    from podium._sqldb import shown_url

    return shown_url(str(url))


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
    console().print(f"{_shown(store.url)}: schema version {version} ({note})", highlight=False)
    return EXIT_OK


@db.command(name="migrate-to")
@click.argument("target")
@db_option
@run_async
@requires("data.export", lambda kw: f"store:{_shown(kw['target'])}")  # a refusal is audited: never the password
async def migrate_to(target: str, db: str | None) -> int:
    """Copy a project's store into TARGET (e.g. PostgreSQL): every run with its events and signals,
    and the project's records (users, tokens, roles, kill switches, policies, prompts, deployed
    workflow versions, secrets, learned contracts, ML references and outcomes, dead letters).

    What is not moved is named at the end with how to move it: the audit log (signed for this
    store: keep verifying it here, or podium audit export), capabilities (sealed to this store:
    register them again), memory, knowledge bases, the connector quarantine and outbox. Records
    and runs already in TARGET are left as they are, so it is safe to run again. Stop the engines
    that use the current store first; unfinished runs are copied without their leases, and the
    first engine on TARGET resumes them.
    """
    from podium import ConfigError, open_store
    from podium.governance.carry import carry_over
    from podium.storage._identity import rebind_text

    src, dst = open_store(db), open_store(target)
    if src.url == dst.url:
        raise ConfigError(f"the source and the target are the same store ({_shown(src.url)})")
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
                            await dst.send_signal(run.id, name, payload, now=run.created_at, copied=True)
                        copied += 1
                    else:
                        kept += 1
            records: dict[str, int] = {}
            keys: dict[str, list[str]] = {}
            for ns in PROJECT_RECORDS:
                for key, value in (await src.kv_list(ns)).items():
                    if await dst.kv_get(ns, key) is None:  # sealed for the source: sealed again for the target
                        await dst.kv_put(ns, key, rebind_text(dst.audit_keys, value, src.audit_keys.store_id))
                        records[ns] = records.get(ns, 0) + 1
                        keys.setdefault(ns, []).append(key)
            # users, roles, policies and switches count as far as a signed log backs them: the target's
            left_out = await carry_over(src, dst, keys, actor=acting_name() or "local")
            audit_entries, after = 0, 0
            while page := await src.list_audit(after=after, limit=5000):
                audit_entries += len(page)
                after = page[-1].seq
            capabilities = len(await src.kv_list("capabilities"))
        finally:
            await dst.close()
    finally:
        await src.close()
    import re

    where = re.sub(r"//[^/@]*@", "//", dst.url)  # no credentials in the audit log
    await record(db, "data.export", f"store:{where}", copied=copied, kept=kept, records=records)
    moved = ", ".join(f"{ns} {n}" for ns, n in sorted(records.items())) or "none new"
    console().print(
        f"copied {copied} run(s) from {_shown(src.url)} to {_shown(dst.url)} ({kept} were there already) and the project's "
        f"records ({moved})",
        highlight=False,
        markup=False,
    )
    console().print(
        f"left in {_shown(src.url)}: the audit log ({audit_entries} entries, signed for that store: keep verifying it "
        "there, or keep a copy with podium audit export); capabilities "
        f"({capabilities}, sealed to that store: register them again on the target with podium tools add / "
        "podium connectors add); memory, knowledge bases, the connector quarantine and the outbox (their "
        "tables are not copied yet: ingest again, or copy them with your database's own tools)",
        highlight=False,
        markup=False,
    )
    for why in left_out:
        console(stderr=True).print(f"not carried over: {why}", highlight=False, markup=False)
    return EXIT_OK


#: The key-value records of a project that migrate-to copies (the capability registry and the audit
#: log are sealed to their store and are named instead).
PROJECT_RECORDS = (
    "users", "tokens", "roles", "switches", "policies", "prompts", "prompt_active", "workflows",
    "workflow_versions", "workflow_active", "secrets", "connector.contracts", "ml_references",
    "ml_predictions", "ml_outcomes", "sealed_tallies", "ml_quarantine", "deadletters", "schedules",
)  # fmt: skip
