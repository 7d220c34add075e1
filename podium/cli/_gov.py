"""Governance commands: users, tokens, approvals, kill switches (the audit log: ``_audit``)."""

from __future__ import annotations

import contextlib
import difflib
import json
import time
from typing import Any

import click

from ._app import (
    EXIT_OK,
    EXIT_WAITING,
    approvals_group,
    cli,
    console,
    db_option,
    emit_json,
    fail,
    json_option,
    make_client,
    parse_input,
    read_text,
    requires,
    run_async,
    workflows_group,
)


@cli.group()
def users() -> None:
    """Users, service accounts and roles (needs users.manage; in local mode, anyone)."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    "-r",
    "roles",
    multiple=True,
    required=True,
    help="viewer, operator, approver, admin, worker or a custom role.",
)
@click.option("--service", is_flag=True, help="A service account (for workers and integrations).")
@click.option(
    "--token", "with_token", is_flag=True, help="Also create an API token for the user and print it."
)
@db_option
@run_async
@requires("users.manage", lambda kw: f"user:{kw['name']}")
async def users_add(
    name: str, roles: tuple[str, ...], service: bool, with_token: bool, db: str | None
) -> int:
    """Create or update a user with ROLEs.

    The first user is created in local mode (no users yet); add --token to get that user's API
    token at once, since from then on every command needs one (PODIUM_TOKEN).
    """
    async with make_client(db, recover=False) as c:
        await c.create_user(name, list(roles), service=service)
        token = await c.create_token(name) if with_token else None
    kind = " (service account)" if service else ""
    console(stderr=True).print(f"user {name}: roles {', '.join(roles)}{kind}", highlight=False)
    if token:
        click.echo(token)
        console(stderr=True).print("store the token now: only its hash is kept (export PODIUM_TOKEN=...)")
    return EXIT_OK


@users.command("grant")
@click.argument("name")
@click.argument("roles", nargs=-1, required=True)
@db_option
@run_async
@requires("users.manage", lambda kw: f"user:{kw['name']}")
async def users_grant(name: str, roles: tuple[str, ...], db: str | None) -> int:
    """Give user NAME more ROLES (it keeps the ones it has)."""
    async with make_client(db, recover=False) as c:
        user = await c.grant(name, list(roles))
    console(stderr=True).print(f"user {name}: roles {', '.join(user.roles)}", highlight=False)
    return EXIT_OK


@users.command("list")
@json_option
@db_option
@run_async
@requires("users.manage", reads=True)
async def users_list(as_json: bool, db: str | None) -> int:
    """List users."""
    async with make_client(db, recover=False) as c:
        found = await c.users()
    if as_json:
        emit_json({"name": u.name, "roles": list(u.roles), "service": u.service, "disabled": u.disabled} for u in found)
        return EXIT_OK
    for u in found:
        flags = " service" if u.service else ""
        flags += " disabled" if u.disabled else ""
        click.echo(f"{u.name}\t{','.join(u.roles)}{flags}")
    return EXIT_OK


@users.command("disable")
@click.argument("name")
@db_option
@run_async
@requires("users.manage", lambda kw: f"user:{kw['name']}")
async def users_disable(name: str, db: str | None) -> int:
    """Disable a user: their tokens stop working."""
    async with make_client(db, recover=False) as c:
        await c.disable_user(name)
    console().print(f"user {name} disabled", highlight=False)
    return EXIT_OK


@users.command("enable")
@click.argument("name")
@db_option
@run_async
@requires("users.manage", lambda kw: f"user:{kw['name']}")
async def users_enable(name: str, db: str | None) -> int:
    """Enable a disabled user again: the tokens they kept work again (revoke those they should not)."""
    async with make_client(db, recover=False) as c:
        await c.disable_user(name, disabled=False)
    console().print(f"user {name} enabled", highlight=False)
    return EXIT_OK


@users.command("role")
@click.argument("name")
@click.argument("permissions", nargs=-1, required=True)
@db_option
@run_async
@requires("users.manage", lambda kw: f"role:{kw['name']}")
async def users_role(name: str, permissions: tuple[str, ...], db: str | None) -> int:
    """Define a custom role NAME as a set of PERMISSIONS (runs.read, runs.start, audit.read...)."""
    async with make_client(db, recover=False) as c:
        await c.define_role(name, list(permissions))
    console().print(f"role {name}: {', '.join(permissions)}", highlight=False)
    return EXIT_OK


@cli.group()
def tokens() -> None:
    """API tokens (stored hashed; shown once)."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", default="default", show_default=True, help="A label to revoke it by.")
@click.option("--scope", "scopes", multiple=True, help="Limit the token to these permissions (repeatable).")
@click.option("--ttl", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds until it expires (default: never).")
@db_option
@run_async
@requires("users.manage", lambda kw: f"user:{kw['user']}")
async def tokens_create(
    user: str, name: str, scopes: tuple[str, ...], ttl: float | None, db: str | None
) -> int:
    """Create an API token for USER and print it (only this once)."""
    async with make_client(db, recover=False) as c:
        token = await c.create_token(user, name=name, scopes=list(scopes) or None, ttl=ttl)
    click.echo(token)
    console(stderr=True).print(
        "store it now: only its hash is kept. Use it with: export PODIUM_TOKEN=...", highlight=False
    )
    return EXIT_OK


@tokens.command("revoke")
@click.argument("user")
@click.argument("name")
@db_option
@run_async
@requires("users.manage", lambda kw: f"user:{kw['user']}")
async def tokens_revoke(user: str, name: str, db: str | None) -> int:
    """Revoke USER's tokens called NAME."""
    async with make_client(db, recover=False) as c:
        n = await c.revoke_token(user, name)
        if n == 0:
            # A typo here would leave the token working while the admin believes it dead.
            said = await _no_token_to_revoke(c, user, name)
            if said:
                console().print(said, highlight=False)
                return EXIT_OK
    console().print(f"revoked {n} token(s)", highlight=False)
    return EXIT_OK


async def _no_token_to_revoke(c: Any, user: str, name: str) -> str:
    """What a revoke that revoked nothing met: ``user``'s token ``name`` revoked already (returned,
    to print), or no such user or token (said with what there is, and the command fails)."""
    from podium.governance import accounts
    from podium.governance.service import TOKENS

    names = [u.name for u in await c.users()]
    if user not in names:
        close = difflib.get_close_matches(user, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        fail(f"no user {user!r}, so no token was revoked; {hint}the users are: {', '.join(sorted(names)) or 'none'}")
    live: set[str] = set()
    dead: set[str] = set()
    for key, text in (await c.store.kv_list(TOKENS)).items():
        rec = accounts.unseal_token(c.store, key, text) or accounts.legacy_token(text)  # as revoke reads them
        if rec is not None and rec.user == user:
            (dead if rec.revoked or (rec.expires_at is not None and rec.expires_at < time.time()) else live).add(rec.name)
    if name in dead:
        return f"{user}'s token {name!r} was already revoked (or expired): nothing left to revoke"
    close = difflib.get_close_matches(name, sorted(live), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    have = ", ".join(sorted(live)) if live else "none (create one with: podium tokens create " + user + " --name NAME)"
    fail(f"{user} has no live token called {name!r}, so none was revoked; {hint}{user}'s live tokens: {have}")
    return ""


@approvals_group.command("list")
@click.option("--workflow", help="Only requests of this workflow's runs.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most this many, oldest first."
)
@json_option
@db_option
@run_async
@requires("approvals.read")
async def approvals(workflow: str | None, limit: int, as_json: bool, db: str | None) -> int:
    """The approvals inbox: runs waiting for a person's decision, oldest first."""
    async with make_client(db, recover=False) as c:
        inbox = await c.approvals(workflow=workflow, limit=limit)
    if as_json:
        emit_json(inbox)
        return EXIT_OK
    if not inbox:
        console().print("no approvals waiting")
        return EXIT_OK
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("run", "workflow", "request", "#", "title", "role", "payload", "waiting"):
        table.add_column(col)
    from ._render import escape

    for a in inbox:  # titles and names come from run data: text, never markup or terminal codes
        table.add_row(
            escape(a["run_id"]), escape(a["workflow"]), escape(a["name"]), str(a.get("seq", "")), escape(a.get("title") or ""),
            escape(a.get("role") or "-"), escape(json.dumps(a.get("payload"), ensure_ascii=False)[:60]),
            f"{time.time() - a['requested_at']:.0f} s",
        )  # fmt: skip
    console().print(table)
    if len(inbox) == limit:
        more = "--limit 1000" if limit < 1000 else "GET /api/approvals?cursor= (page by page)"
        console().print(f"the {limit} oldest requests shown; more may wait: see them with {more}", highlight=False)
    return EXIT_OK


async def _decide(
    run_id: str, name: str | None, approve: bool, comment: str, payload_text: str | None, db: str | None,
    seq: int | None = None,
) -> int:
    payload = parse_input(payload_text, "--payload") if payload_text else None  # a typo is said before any lookup
    async with make_client(db, recover=False) as c:
        if name is None:
            from ..errors import NotFound
            from ..governance import inbox

            try:
                name, seq = await inbox.choose(lambda limit, after: c.approvals(run_id=run_id, limit=limit, after=after), run_id, seq)
            except NotFound:
                run = await c.get(run_id)  # an unknown run is said so (NotFound)
                raise click.UsageError(
                    f"run {run_id} ({run.status.value}) has no open approval request; see the inbox with 'podium approvals'"
                ) from None
        if not await c.decide(run_id, name, approve=approve, comment=comment, payload=payload, request=seq):
            raise click.ClickException(
                f"the decision on {name} of run {run_id} had no effect: the request was decided by someone "
                "else, timed out or was asked again meanwhile (audited as approval.void); see 'podium runs show "
                f"{run_id}'"
            )
        await c.driving.settled(run_id)  # this process drives the run on until it finishes or parks
        run = await c.get(run_id)
        stuck = c.claims.cannot_load(run) and not run.status.finished
    verb = "approved" if approve else "rejected"
    if stuck:  # recorded, but its workflow does not load here (logged above): nothing drives it yet
        console(stderr=True).print(
            f"{verb} {name} of run {run_id}; the decision is recorded, but this process cannot load the run's "
            f"workflow (the error above says why), so the run has not gone on: run podium runs resume {run_id} (or "
            "a podium worker) where it loads, e.g. with the same PYTHONPATH, or PODIUM_SKILLS for a goal run",
            highlight=False, markup=False,
        )
        return EXIT_WAITING
    console().print(f"{verb} {name} of run {run_id}; the run is now {run.status.value}", highlight=False)
    return EXIT_OK


@approvals_group.command("approve")
@click.argument("run_id")
@click.option("--request", "name", help="Which request (default: the run's only open one).")
@click.option(
    "--seq", type=int, help="The request's number (# in 'podium approvals'): refused if the run asked again since."
)
@click.option("--comment", "-m", default="", help="Why.")
@click.option("--payload", "payload_text", metavar="JSON|@FILE", help="Approve an edited payload instead.")
@db_option
@run_async
@requires("approvals.decide", lambda kw: kw["run_id"])
async def approve(
    run_id: str, name: str | None, seq: int | None, comment: str, payload_text: str | None, db: str | None
) -> int:
    """Approve a waiting request (optionally with an edited payload); the run continues."""
    return await _decide(run_id, name, True, comment, payload_text, db, seq)


@approvals_group.command("reject")
@click.argument("run_id")
@click.option("--request", "name", help="Which request (default: the run's only open one).")
@click.option(
    "--seq", type=int, help="The request's number (# in 'podium approvals'): refused if the run asked again since."
)
@click.option("--comment", "-m", default="", help="Why.")
@db_option
@run_async
@requires("approvals.decide", lambda kw: kw["run_id"])
async def reject(run_id: str, name: str | None, seq: int | None, comment: str, db: str | None) -> int:
    """Reject a waiting request; the run continues with the rejection."""
    return await _decide(run_id, name, False, comment, None, db, seq)


@cli.group()
def killswitch() -> None:
    """Switch off an agent, a workflow, a step kind, a provider, or everything."""


def _switch_name(scope: str, name: str | None, every: bool, verb: str) -> str:
    """NAME, or ``*`` when told explicitly (``--all``, or the scope ``all``): never by omission."""
    if scope == "all":
        if name not in (None, "*"):
            fail(f"scope 'all' takes no NAME; run: podium killswitch {verb} all")
        return "*"
    if name is not None and every:
        fail(f"give either NAME or --all, not both: podium killswitch {verb} {scope} {name}")
    if name is None and not every:
        fail(
            f"name the {scope} to switch {'off' if verb == 'set' else 'back on'} "
            f"(podium killswitch {verb} {scope} NAME), or pass --all for every {scope}"
        )
    return "*" if every else str(name)


@killswitch.command("set")
@click.argument("scope", type=click.Choice(["all", "workflow", "kind", "provider", "agent", "connector"]))
@click.argument("name", required=False)
@click.option("--all", "every", is_flag=True, help="Every workflow (kind, provider, agent, connector) of SCOPE.")
@click.option("--mode", type=click.Choice(["pause", "cancel"]), default="pause", show_default=True)
@click.option("--reason", "-m", default="", help="Why (recorded in the audit log).")
@db_option
@run_async
@requires("killswitch.use", lambda kw: f"{kw['scope']}:{kw['name'] or '*'}")
async def killswitch_set(
    scope: str, name: str | None, every: bool, mode: str, reason: str, db: str | None
) -> int:
    """Switch SCOPE NAME off: its runs pause (or are cancelled) at their next step.

    Name what to switch off (podium killswitch set workflow refunds); switching off a whole scope
    takes --all (podium killswitch set provider --all), and everything: podium killswitch set all.
    """
    name = _switch_name(scope, name, every, "set")
    async with make_client(db, recover=False) as c:
        await c.set_switch(scope, name, mode=mode, reason=reason)
        unknown = await _unknown_workflow(c, name) if scope == "workflow" and name != "*" else None
    note = (
        "; model calls to it are refused, not parked, whatever the mode: a step that calls it fails"
        if scope == "provider" else ""
    )  # fmt: skip
    console().print(f"switched off {scope}:{name} ({mode}){note}", highlight=False, soft_wrap=True)
    if unknown is not None:  # in an incident, a mistyped name would leave the real workflow running
        from ._render import escape

        console(stderr=True).print(escape(unknown), highlight=False, soft_wrap=True)
    return EXIT_OK


async def _unknown_workflow(c: Any, name: str) -> str | None:
    """A warning when no deployed workflow and none of the latest runs is called ``name``."""
    from podium import PermissionDenied
    from podium.engine.versions import ACTIVE

    known = set(await c.store.kv_list(ACTIVE))
    with contextlib.suppress(PermissionDenied):  # a token without runs.read: deployed names only
        known |= {r.workflow for r in await c.list(limit=1000)}
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"warning: no deployed workflow and none of the latest runs is called {name!r}: {hint}the switch is set, "
        f"and holds a workflow of that name if one appears; the workflows known here: {', '.join(sorted(known)) or 'none'}"
    )


@killswitch.command("clear")
@click.argument("scope", type=click.Choice(["all", "workflow", "kind", "provider", "agent", "connector"]))
@click.argument("name", required=False)
@click.option("--all", "every", is_flag=True, help="The switch set with --all on SCOPE.")
@click.option("--no-wait", is_flag=True, help="Wake the paused runs and return: a server or worker drives them.")
@db_option
@run_async
@requires("killswitch.use", lambda kw: f"{kw['scope']}:{kw['name'] or '*'}")
async def killswitch_clear(scope: str, name: str | None, every: bool, no_wait: bool, db: str | None) -> int:
    """Switch SCOPE NAME back on; paused runs continue.

    The runs it wakes are driven by this command until each ends or parks again, unless a server or
    worker on the store takes them first; with --no-wait it returns at once and leaves them to those.
    A switch that is not on is an error (exit 2), as a mistyped name must not look like the end of
    an incident: the message lists the switches that are on."""
    name = _switch_name(scope, name, every, "clear")
    async with make_client(db, recover=False, execute=False) if no_wait else make_client(db) as c:
        on = await c.governance.switches()  # killswitch.use was checked: listing needs no runs.read here
        if f"{scope}:{name}" not in on:
            from podium.governance.policy import switch_not_set

            # runs a switch cleared since left parked (its clearing stopped before it woke them) go on
            await c.governance.wake_paused()
            await c.drain()
            fail(switch_not_set(f"{scope}:{name}", on))
        woken = await c.clear_switch(scope, name)
        await c.drain()
    console().print(f"switched on {scope}:{name}; {woken} paused run(s) woken", highlight=False)
    return EXIT_OK


@killswitch.command("list")
@json_option
@db_option
@run_async
@requires("runs.read", lambda kw: "switches")
async def killswitch_list(as_json: bool, db: str | None) -> int:
    """Active kill switches."""
    async with make_client(db, recover=False) as c:
        active = await c.switches()
    if as_json:
        emit_json({"switch": key, **v} for key, v in active.items())
        return EXIT_OK
    for key, v in active.items():
        click.echo(f"{key}\t{v['mode']}\tby {v['by']}\t{v.get('reason', '')}")
    if not active:
        console().print("no kill switch is on")
    return EXIT_OK


@workflows_group.command("deploy")
@click.argument("source", metavar="FILE|REF")
@db_option
@run_async
@requires("workflows.deploy", lambda kw: kw["source"])
async def deploy(source: str, db: str | None) -> int:
    """Deploy a workflow as a new version (kept in the store) and make it active.

    FILE is a YAML workflow; REF a Python one (module:attr or file.py:attr), stored as a snapshot of
    its steps' options and code, so versions can be diffed and runs resume only on the same code.
    """
    import os

    if not os.path.exists(source) and ":" not in source:
        fail(f"{source!r} is neither a file nor a Python reference like 'myapp.flows:orders'")
    if os.path.isfile(source):
        read_text(source, "a workflow file")  # one clear line for a binary or unreadable file
    async with make_client(db, recover=False) as c:
        wf = await c.deploy(source)
    console().print(
        f"deployed {wf.name} version {wf.version} (active); start it with: podium run {wf.name}",
        highlight=False,
    )
    return EXIT_OK


@workflows_group.command("list")
@json_option
@db_option
@run_async
@requires("workflows.read", lambda kw: "workflows")
async def workflows_list(as_json: bool, db: str | None) -> int:
    """List the workflows deployed into the store, each with its active version."""
    from podium.engine.versions import ACTIVE

    async with make_client(db, recover=False) as c:  # each row checked against the signed log
        rows = [{"name": name, "active": await c.deployments.active(name)} for name in sorted(await c.store.kv_list(ACTIVE))]
    if as_json:
        emit_json(rows)
    elif not rows:
        click.echo("no workflows deployed; deploy one with: podium workflows deploy FILE|REF")
    for row in [] if as_json else rows:
        click.echo(f"{row['name']}\t{row['active']}")
    return EXIT_OK


@workflows_group.command("versions")
@click.argument("name")
@json_option
@db_option
@run_async
@requires("workflows.read", lambda kw: f"workflow:{kw['name']}")
async def versions(name: str, as_json: bool, db: str | None) -> int:
    """List the deployed versions of workflow NAME."""
    async with make_client(db, recover=False) as c:
        rows = await c.versions(name)
    if not rows:
        from podium.engine.versions import ACTIVE

        async with make_client(db, recover=False) as c:
            deployed = sorted(await c.store.kv_list(ACTIVE))
        near = difflib.get_close_matches(name, deployed, n=1)
        fail(
            f"workflow {name!r} has no deployed versions"
            + (f" (did you mean {near[0]!r}?)" if near else "")
            + (f"; deployed: {', '.join(deployed)}" if deployed else "")
            + "; deploy one with: podium workflows deploy FILE|REF"
        )
    if as_json:
        emit_json(rows)
        return EXIT_OK
    echo_versions(rows)
    return EXIT_OK


def echo_versions(rows: list[dict[str, Any]]) -> None:
    """One line per version: * for the active one, when, by whom, hash (and what changed, if said)."""
    for v in rows:
        mark = "*" if v["active"] else " "
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["ts"]))
        note = f"\t{v['description']}" if v.get("description") else ""
        click.echo(f"{mark} {v['version']}\t{when}\tby {v['by']}\t{v['hash'][:12]}{note}")


@workflows_group.command("rollback")
@click.argument("name")
@click.option("--to", "to", default=None, help="The version to make active (default: the one before).")
@db_option
@run_async
@requires("workflows.deploy", lambda kw: f"workflow:{kw['name']}")
async def rollback(name: str, to: str | None, db: str | None) -> int:
    """Make an earlier version of workflow NAME active again (running runs keep their version)."""
    async with make_client(db, recover=False) as c:
        version = await c.rollback(name, to=to)
    console().print(f"{name}: version {version} is active", highlight=False)
    return EXIT_OK


@workflows_group.command("diff")
@click.argument("name")
@click.argument("a")
@click.argument("b")
@db_option
@run_async
@requires("workflows.read", lambda kw: f"workflow:{kw['name']}")
async def diff(name: str, a: str, b: str, db: str | None) -> int:
    """Show what changed in workflow NAME between versions A and B."""
    async with make_client(db, recover=False) as c:
        text = await c.diff(name, a, b)
    click.echo(text or f"versions {a} and {b} of {name} are identical")
    return EXIT_OK
