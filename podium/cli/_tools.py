"""``podium tools``: the capability registry, what workflow files may reach (list, add, remove).

Adding and removing need ``tools.manage`` (admins); listing needs ``workflows.read``.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import click

from ._app import EXIT_OK, EXIT_USER_ERROR, cli, console, db_option, fail, make_client, requires, run_async


@cli.group()
def tools() -> None:
    """What workflow files may reach: Python functions, MCP servers, HTTP endpoints and folders.

    A workflow file (YAML, or one deployed over the HTTP API) names only what is registered here,
    by name; everything else is refused when the file is validated and again when it runs. Adding
    and removing need tools.manage (admins).
    """


@tools.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per capability.")
@db_option
@run_async
@requires("workflows.read", lambda kw: "capabilities")
async def tools_list(as_json: bool, db: str | None) -> int:
    """Every registered capability: name, kind and what it reaches."""
    async with make_client(db, recover=False, execute=False) as c:
        caps = await c.capabilities()
    if as_json:
        for name in sorted(caps):
            click.echo(caps[name].to_json())
        return EXIT_OK
    if not caps:
        console().print(
            "nothing is registered: workflow files can reach no tool, server, host or folder. An admin adds "
            "one with: podium tools add NAME --python pkg.mod:fn | --http URL | --mcp 'CMD ARGS' | "
            "--mcp-url URL | --files DIR",
            highlight=False,
            markup=False,
        )
    for name in sorted(caps):
        cap = caps[name]
        note = f"\t{cap.description}" if cap.description else ""
        click.echo(f"{name}\t{cap.kind}\t{cap.summary}{note}")
    return EXIT_OK


@tools.command("add")
@click.argument("name")
@click.option("--python", "function", metavar="PKG.MOD:FN", help="A Python function.")
@click.option(
    "--http", "url", metavar="URL", help="An HTTP endpoint; {placeholders} in its path take arguments."
)
@click.option("--method", default="POST", show_default=True, help="The HTTP method (with --http).")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE", help="An HTTP header (repeatable).")
@click.option(
    "--max-response-bytes", "max_bytes", type=int, default=None, metavar="N",
    help="With --http or --mcp-url: an answer's bytes read at most (decoded; default 10 MiB).",
)  # fmt: skip
@click.option(
    "--deadline", type=float, default=None, metavar="SECONDS",
    help="With --http: seconds for one whole request, the answer read in full (default 120).",
)  # fmt: skip
@click.option("--mcp", "command", metavar="'CMD ARGS'", help="An MCP server started as this command (stdio).")
@click.option("--mcp-url", "mcp_url", metavar="URL", help="An MCP server at this URL (streamable HTTP).")
@click.option("--mcp-env", "mcp_env", multiple=True, metavar="NAME=VALUE", help="Environment of --mcp.")
@click.option("--files", "root", metavar="DIR", help="A folder whose files workflows may read (kb_ingest).")
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let --http/--mcp-url reach loopback, private and link-local addresses (denied by default).",
)
@click.option("--description", "-d", default="", help="What it is for (shown in the list).")
@db_option
@run_async
@requires("tools.manage", lambda kw: f"capability:{kw['name']}")
async def tools_add(
    name: str,
    function: str | None,
    url: str | None,
    method: str,
    headers: tuple[str, ...],
    max_bytes: int | None,
    deadline: float | None,
    command: str | None,
    mcp_url: str | None,
    mcp_env: tuple[str, ...],
    root: str | None,
    allow_private: bool,
    description: str,
    db: str | None,
) -> int:
    """Register NAME: what workflow files may use (replaces an entry of the same name).

    \b
    podium tools add lookup --python myproject.tools:lookup_order
    podium tools add crm --http 'https://crm.internal/api/customers/{id}' --method GET --allow-private
    podium tools add files --mcp 'python -m my_mcp_server'
    podium tools add handbook --files /srv/handbook
    """
    given = [k for k, v in (("--python", function), ("--http", url), ("--mcp", command),
                            ("--mcp-url", mcp_url), ("--files", root)) if v]  # fmt: skip
    if len(given) != 1:
        fail(
            f"name exactly one thing to register (got {', '.join(given) or 'none'}): --python PKG.MOD:FN, "
            "--http URL, --mcp 'CMD ARGS', --mcp-url URL or --files DIR"
        )
    target: dict[str, Any]
    if function:
        kind, target = "python", {"function": function}
    elif url:
        kind, target = "http", {"url": url, "method": method, "headers": _pairs(headers, "--header")}
        target.update({k: v for k, v in (("max_response_bytes", max_bytes), ("deadline", deadline)) if v is not None})
    elif command or mcp_url:
        kind = "mcp"
        target = {"url": mcp_url} if mcp_url else {"command": shlex.split(command or "")}
        if mcp_url and max_bytes is not None:
            target["max_response_bytes"] = max_bytes
        if mcp_env:
            target["env"] = _pairs(mcp_env, "--mcp-env")
    else:
        kind, target = "files", {"root": root}
    from ._connectors import secrets_not_set, warn_unset_secrets

    async with make_client(db, recover=False, execute=False) as c:
        cap = await c.add_capability(name, kind, target, allow_private=allow_private, description=description)
        unset = await secrets_not_set(c, target)
    click.echo(f"registered {cap.name} ({cap.kind}): {cap.summary}")
    warn_unset_secrets(unset, f"tool {name!r}")
    if function and (why := _not_importable(function)):
        console(stderr=True).print(
            f"note: {function} does not import here: {why}\n  It is registered all the same, since it may import "
            "only where runs execute (the workers, started from the project's folder or with it on PYTHONPATH); "
            "if it should import here, check the name, then run this command again",
            highlight=False,
            markup=False,
        )
    return EXIT_OK


def _not_importable(ref: str) -> str | None:
    """Why ``pkg.mod:fn`` cannot be called from here (it does not import, or has no such function),
    or None. Imports the module, as every engine that uses the tool does."""
    import difflib
    import importlib
    import inspect

    module_name, _, attr = ref.partition(":")
    here = os.getcwd()
    add = "" not in sys.path and here not in sys.path  # the podium script imports from the working folder
    if add:
        sys.path.insert(0, here)
    try:
        importlib.invalidate_caches()
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # the admin's own module: whatever it raises on import is the answer
        return f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
    finally:
        if add:
            sys.path.remove(here)
    fn = getattr(module, attr, None)
    if fn is None:
        public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        close = difflib.get_close_matches(attr, public, n=1)
        return f"module {module_name!r} has no function {attr!r}" + (f"; did you mean {close[0]!r}?" if close else "")
    if not callable(fn) or inspect.isclass(fn):
        return f"{ref} is a {type(fn).__name__}, not a function"
    return None


def _pairs(items: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{flag} takes NAME=VALUE, got {item!r}")
        out[key] = value
    return out


@tools.command("remove")
@click.argument("name")
@db_option
@run_async
@requires("tools.manage", lambda kw: f"capability:{kw['name']}")
async def tools_remove(name: str, db: str | None) -> int:
    """Unregister NAME: runs that use it fail from their next use of it."""
    async with make_client(db, recover=False, execute=False) as c:
        removed = await c.remove_capability(name)
        known = sorted(await c.capabilities()) if not removed else []
    if not removed:
        console(stderr=True).print(
            f"{name!r} is not registered" + (f"; registered: {', '.join(known)}" if known else ""),
            highlight=False,
            markup=False,
        )
        return EXIT_USER_ERROR
    click.echo(f"removed {name}")
    return EXIT_OK


__all__ = ["tools"]
