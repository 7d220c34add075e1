"""``podium connectors``: the kinds of connector this installation has, and the connectors an admin
registered for workflow files (list, add). Listing needs ``workflows.read``; adding ``tools.manage``."""

from __future__ import annotations

import json
from typing import Any

import click

from ._app import EXIT_OK, cli, console, db_option, fail, make_client, requires, run_async


@cli.group()
def connectors() -> None:
    """Business systems workflows act in: SQL databases, REST APIs (OpenAPI), message brokers, webhooks,
    e-mail (docs/connectors.md)."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@db_option
@run_async
@requires("workflows.read", lambda kw: "capabilities")
async def connectors_list(as_json: bool, db: str | None) -> int:
    """The connector kinds available, and the connectors registered in the store."""
    from podium.connectors import available_kinds

    kinds = available_kinds()
    async with make_client(db, recover=False, execute=False) as c:  # the project's store, as every command
        registered = {n: cap for n, cap in (await c.capabilities()).items() if cap.kind == "connector"}
    if as_json:
        for kind in kinds:
            click.echo(json.dumps({"kind": kind}))
        for name in sorted(registered):
            click.echo(registered[name].to_json())
        return EXIT_OK
    click.echo("kinds: " + ", ".join(kinds))
    if not registered:
        click.echo("no connector is registered: an admin adds one with podium connectors add NAME KIND --set KEY=VALUE")
    for name in sorted(registered):
        cap = registered[name]
        click.echo(f"{name}\t{cap.target['kind']}\t{cap.summary}" + (f"\t{cap.description}" if cap.description else ""))
    return EXIT_OK


@connectors.command("add")
@click.argument("name")
@click.argument("kind")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A setting (repeatable): url_env, spec, base_url...")
@click.option("--allow-private", is_flag=True, help="Let it reach loopback, private and link-local addresses.")
@click.option("--description", "-d", default="", help="What it is for (shown in the list).")
@db_option
@run_async
@requires("tools.manage", lambda kw: f"capability:{kw['name']}")
async def connectors_add(
    name: str, kind: str, settings: tuple[str, ...], allow_private: bool, description: str, db: str | None
) -> int:
    """Register connector NAME of KIND, so that workflow files may use it (uses: connector).

    \b
    podium connectors add crm openapi --set spec=/srv/crm.yaml --set base_url=https://crm.example.com
    podium connectors add orders sql --set url_env=ORDERS_DB_URL
    podium connectors add crm openapi --set spec=/srv/crm.yaml --set token=secret:CRM_TOKEN
    podium connectors add crm openapi --set spec=/srv/crm.yaml --set auth.type=oauth2_client_credentials \\
        --set auth.token_url=https://id.example.com/token --set auth.client_id=podium \\
        --set auth.client_secret=secret:CRM_CLIENT_SECRET

    Credentials are secret:NAME references to the secret store (podium secrets set NAME), never values.
    """
    target: dict[str, Any] = {"kind": kind}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--set takes KEY=VALUE, got {item!r}")
        if key.lower().replace("-", "_") == "allow_private":  # it would be stored, and never read
            fail(
                f"{key!r} is not a setting (it would be stored and ignored): to let connector {name!r} reach "
                f"loopback, private and link-local addresses, pass the flag --allow-private instead of "
                f"--set {item}; nothing was registered"
            )
        head, dot, sub = key.partition(".")  # auth.client_secret=secret:X, headers.X-API-Key=secret:K
        if dot and head in ("auth", "headers") and sub:
            target.setdefault(head, {})[sub] = value
        else:
            target[key] = value
    async with make_client(db, recover=False, execute=False) as c:
        cap = await c.add_capability(name, "connector", target, allow_private=allow_private, description=description)
        unset = await secrets_not_set(c, target)
    click.echo(f"registered {cap.name} (connector): {cap.summary}")
    warn_unset_secrets(unset, f"connector {name!r}")
    return EXIT_OK


def warn_unset_secrets(unset: list[tuple[str, str]], what: str) -> None:
    """Say which ``secret:NAME`` references of a registration name no stored secret (a secret may
    be set later, so it is said, not refused: a typo shows here, not at the first call)."""
    from ._render import escape  # the names are the caller's text: no markup

    for ref, hint in unset:
        console(stderr=True).print(
            escape(
                f"warning: {ref} is not in the secret store yet{hint}; set it before {what} is used: "
                f"printf %s \"$VALUE\" | podium secrets set {ref.removeprefix('secret:')}"
            ),
            highlight=False,
            soft_wrap=True,
        )


async def secrets_not_set(c: Any, target: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``secret:NAME`` references of a connector's settings that name no stored secret, each with
    a did-you-mean; none when this caller may not list secrets."""
    import difflib

    from podium import PermissionDenied

    values = [v for v in target.values() if isinstance(v, str)]
    values += [v for sub in target.values() if isinstance(sub, dict) for v in sub.values() if isinstance(v, str)]
    refs = sorted({v for v in values if v.startswith("secret:")})
    if not refs:
        return []
    try:
        names = [info.name for info in await c.secrets.list()]
    except PermissionDenied:
        return []
    out = []
    for ref in refs:
        wanted = ref.removeprefix("secret:")
        if wanted not in names:
            close = difflib.get_close_matches(wanted, names, n=1)
            out.append((ref, f" (did you mean secret:{close[0]}?)" if close else ""))
    return out


@connectors.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per connector, one per line.")
@click.option("--no-probe", is_flag=True, help="Figures only: do not call each system's health check.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds per probe.")
@db_option
@run_async
@requires("workflows.read", lambda kw: "capabilities")
async def connectors_status(as_json: bool, no_probe: bool, timeout: float, db: str | None) -> int:
    """Health of every registered connector: probe, breaker, calls, errors, p50/p95 latency, token
    expiry, drift and quarantine depth. Calls and latency are this process's (a server's live figures
    are in its /metrics and on the dashboard's Connectors page). Exits 1 when one is down."""
    from podium.connectors._health import statuses

    async with make_client(db, recover=False, execute=False) as c:
        found = await statuses(c, check=not no_probe, timeout=timeout)
    if as_json:
        for item in found:
            click.echo(json.dumps(item, default=str))
    else:
        if not found:
            click.echo("no connector is registered: an admin adds one with podium connectors add NAME KIND --set KEY=VALUE")
        for item in found:
            click.echo(_status_line(item))
    return 1 if any(item.get("ok") is False for item in found) else EXIT_OK


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}ms"


def _status_line(item: dict[str, Any]) -> str:
    if item.get("kind") is None:
        return f"{item['name']}\t-\tERROR\t{item.get('error', '')}"
    health = "ok" if item["ok"] else "DOWN" if item["ok"] is False else "-"
    why = (item.get("health") or {}).get("error")
    expiry = item["token_expires_in"]
    return "\t".join(
        [
            item["name"],
            item["kind"],
            health + (f" ({why})" if why else ""),
            f"breaker={item['breaker']}",
            f"calls={item['calls']}",
            f"errors={item['errors']}",
            f"p50={_ms(item['latency_p50'])}",
            f"p95={_ms(item['latency_p95'])}",
            f"token={'-' if expiry is None else f'{expiry:.0f}s'}",
            f"drift={item['drifted']}",
            f"quarantine={item['quarantine_depth']}",
        ]
    )
