"""The click group, shared options, and the error handling every command goes through."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_WAITING = 3  # the run is parked (waiting for a signal or timer) or handed to another worker
EXIT_INTERRUPTED = 130

db_option = click.option(
    "--db",
    "db",
    envvar="PODIUM_DB",
    default=None,
    metavar="URL",
    help="Store URL: sqlite:///path.db, postgresql://..., memory:// "
    "(default: $PODIUM_DB, else .podium/podium.db here).",
)


json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line (for scripts).")


def emit_json(rows: Any) -> None:
    """Print each row as one JSON line (what every listing command's ``--json`` prints)."""
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str, sort_keys=True))


class _Podium(click.Group):
    """The top-level group: options belong to the commands, and one given before the command
    (``podium --db URL runs``) is answered with where it goes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            name = exc.option_name
            if name in ("--db", "--json", "--input", "-i"):
                words, skip = [], False
                for a in given:  # the command's words: past the options and the value of a --db / --input
                    if skip or a.startswith("-"):
                        skip = not skip and a in ("--db", "--input", "-i")
                        continue
                    words.append(a)
                group = isinstance(self.commands.get(words[0]) if words else None, click.Group)
                command = " ".join(words[:2] if group else words[:1])
                raise click.UsageError(
                    f"{name} is an option of each command, not of podium itself: put it after the command, "
                    f"e.g. podium {command or 'COMMAND'} {name} ..." + (" (or set PODIUM_DB)" if name == "--db" else ""),
                    ctx,
                ) from None
            raise


@click.group(cls=_Podium, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="podium", prog_name="podium")
def cli() -> None:
    """Podium: durable AI orchestration. Workflows survive crashes and resume where they stopped.

    Commands are nouns with their verbs (podium runs show RUN_ID, podium approvals approve RUN_ID,
    podium workflows deploy FILE), beside the commands that start something: init, demo, run,
    serve, worker and mcp. The older top-level verbs (show, approve, deploy...) still work.
    """


class NounGroup(click.Group):
    """The verbs of one noun (``podium runs list``). A noun that was a listing command by itself
    keeps working as one: given no verb, or only options (``podium runs --json``), it runs ``default``."""

    def __init__(self, *args: Any, default: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self.default and (not args or (args[0].startswith("-") and args[0] not in ("-h", "--help"))):
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # `podium runs --workflow W` works: the help of `podium runs` says so, with those options
        super().format_epilog(ctx, formatter)
        cmd = self.commands.get(self.default or "")
        if cmd is None:
            return
        with click.Context(cmd, info_name=self.default, parent=ctx) as sub:
            skip = cmd.get_help_option(sub)
            rows = [r for p in cmd.get_params(sub) if p is not skip and (r := p.get_help_record(sub))]
        if rows:
            with formatter.section(f"Options of '{ctx.command_path} {self.default}', which '{ctx.command_path}' alone runs"):
                formatter.write_dl(rows)


@cli.group("runs", cls=NounGroup, default="list")
def runs_group() -> None:
    """Runs: start, list, show, cancel, resume, fork, signal (podium runs alone lists them)."""


@cli.group("approvals", cls=NounGroup, default="list")
def approvals_group() -> None:
    """The approvals inbox: list the requests waiting for a person, approve or reject them
    (podium approvals alone lists them)."""


@cli.group("workflows")
def workflows_group() -> None:
    """Workflow definitions: validate and graph files, deploy versions, list, diff and roll them back."""


@cli.group("goals")
def goals_group() -> None:
    """Goal-driven runs: pursue a goal over the skills (plans: podium plan show; skills: podium capabilities list)."""


#: The older top-level verbs and the command each now is. Every one keeps working, hidden from
#: ``podium --help``; its help names the new form (installed by :func:`install_aliases`).
ALIASES: dict[str, str] = {
    "show": "runs show",
    "cancel": "runs cancel",
    "resume": "runs resume",
    "fork": "runs fork",
    "signal": "runs signal",
    "approve": "approvals approve",
    "reject": "approvals reject",
    "deploy": "workflows deploy",
    "versions": "workflows versions",
    "rollback": "workflows rollback",
    "diff": "workflows diff",
    "validate": "workflows validate",
    "graph": "workflows graph",
    "forget": "memory forget",
    "goal": "goals start",
}


def _alias(old: str, new: str, command: click.Command) -> click.Command:
    import copy

    alias = copy.copy(command)
    alias.name = old
    alias.hidden = True
    alias.short_help = f"Old name of 'podium {new}'."
    alias.help = f"Old name of 'podium {new}' (kept working; use the new form).\n\n{command.help or ''}"
    target = command.callback
    assert target is not None

    @functools.wraps(target)
    def noted(*args: Any, **kwargs: Any) -> Any:
        if sys.stderr.isatty():  # people see the new form; scripts' output stays exactly as it was
            click.echo(f"note: 'podium {old}' is now 'podium {new}'", err=True)
        return target(*args, **kwargs)

    alias.callback = noted
    return alias


def install_aliases() -> None:
    """Register every old top-level verb of :data:`ALIASES` as a hidden alias of its new command."""
    for old, new in ALIASES.items():
        group, verb = new.split()
        noun = cli.commands[group]
        assert isinstance(noun, click.Group)
        cli.add_command(_alias(old, new, noun.commands[verb]), old)


def make_client(db: str | None, **kw: Any) -> Any:
    """The engine client every command uses, acting with $PODIUM_TOKEN when it is set."""
    from podium import Client

    return Client(db, token=os.environ.get("PODIUM_TOKEN") or None, **kw)


#: Who passed the permission check of the running command (``requires``): the commands that write
#: audit entries themselves (forget, memory prune) record this name as the actor.
_actor: contextvars.ContextVar[Any] = contextvars.ContextVar("podium_cli_actor", default=None)


def acting_name() -> str | None:
    """The name of the principal the running command was authorized as (None before the check)."""
    who = _actor.get()
    return None if who is None else str(who.name)


def acting_principal() -> Any:
    """The principal the running command was authorized as (None before the check)."""
    return _actor.get()


#: The schema version that added users and tokens (the ``kv`` table) to every store kind.
GOVERNED_SCHEMA = 3


async def check_permission(
    db: str | None, permission: str, target: str = "", *, migrate: bool = True, reads: bool | None = None
) -> Any:
    """Open the store as $PODIUM_TOKEN (or the local user) and check ``permission`` through the
    client's public ``authorize``: the same check, refusal message and audit entry as the HTTP API.
    Done before the command touches anything (a refused command changes nothing); returns the
    principal. A command that only reads (``reads``; by default, one that needs a ``*.read``
    permission) refuses a SQLite store file that does not exist rather than make one, empty
    (``_storecheck``).

    With ``migrate=False`` (``podium db upgrade``) the store's schema is left as it is: a store older
    than users and tokens can only be in local mode."""
    if reads is None:
        reads = permission.endswith(".read") and target != "mcp"  # podium mcp serves: it may start runs
    if reads:
        from ._storecheck import missing_store_file

        missing = missing_store_file(db)
        if missing:
            fail(missing)
    if not migrate:
        from podium import open_store

        store = open_store(db)
        store.auto_migrate = False
        await store.open()
        try:
            governed = await store.schema_version() >= GOVERNED_SCHEMA
        finally:
            await store.close()
        if not governed:
            from podium.governance.identity import Principal

            _actor.set(Principal.local_user())
            return _actor.get()
        from podium import Client

        store = open_store(db)
        store.auto_migrate = False
        client = Client(store, token=os.environ.get("PODIUM_TOKEN") or None, execute=False, recover=False)
    else:
        client = make_client(db, execute=False, recover=False)
    async with client as c:
        who = await c.authorize(permission, target)
    _actor.set(who)
    return who


async def record(db: str | None, action: str, target: str = "", **data: Any) -> None:
    """Audit what a command did that the engine client did not record itself (it went through
    memory or a raw store), as the caller (``client.record``)."""
    async with make_client(db, execute=False, recover=False) as c:
        await c.record_audit(action, target, **data)


def requires(
    permission: str | None,
    target: Callable[[dict[str, Any]], str] | None = None,
    *,
    migrate: bool = True,
    reads: bool | Callable[[dict[str, Any]], bool] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare (and check) the permission a command needs; ``None`` for a command that works on local
    files only and never opens a store (validate, graph, init).

    Every command declares one: tests/test_cli_permissions.py walks every command of the group and
    every built-in role, and fails for a command without it. Put it under ``@run_async`` (async
    commands) or directly on a plain command (the check then runs in its own event loop).
    ``reads=True`` marks a command that only reads under a permission that is not ``*.read``
    (``users list``): like those, it does not make a store that is not there; ``reads`` may also
    decide from the command's arguments (``ml owners`` reads, ``ml owners --add`` writes)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if permission is None:
            fn.podium_permission = None  # type: ignore[attr-defined]
            return fn
        perm: str = permission

        def where(kwargs: dict[str, Any]) -> str:
            return target(kwargs) if target else ""

        def only_reads(kwargs: dict[str, Any]) -> bool | None:
            return reads(kwargs) if callable(reads) else reads

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def checked(*args: Any, **kwargs: Any) -> Any:
                await check_permission(kwargs.get("db"), perm, where(kwargs), migrate=migrate, reads=only_reads(kwargs))
                return await fn(*args, **kwargs)

        else:

            @functools.wraps(fn)
            def checked(*args: Any, **kwargs: Any) -> Any:
                import asyncio

                from podium import PodiumError

                try:
                    who = asyncio.run(
                        check_permission(kwargs.get("db"), perm, where(kwargs), migrate=migrate, reads=only_reads(kwargs))
                    )
                except PodiumError as exc:
                    fail(str(exc))
                _actor.set(who)  # asyncio.run ran the check in a copy of this context
                return fn(*args, **kwargs)

        checked.podium_permission = perm  # type: ignore[attr-defined]
        return checked

    return deco


def fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    """Print one clear paragraph on stderr and exit."""
    from ._render import escape  # messages may quote data: no markup, no terminal control characters

    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


@functools.cache
def _consoles() -> dict[bool, Any]:
    from rich.console import Console

    # Piped output gets a wide console so tables are not folded into narrow columns.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    # No emoji codes: what is printed holds run data, and 'approval:two: ...' is a name, not a keycap.
    return {False: Console(width=width, emoji=False), True: Console(stderr=True, width=width, emoji=False)}


def console(stderr: bool = False) -> Any:
    return _consoles()[stderr]


def run_async(fn: Callable[..., Coroutine[Any, Any, int | None]]) -> Callable[..., None]:
    """Run an async command body; turn Podium's errors into one paragraph and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        import asyncio

        from podium import PodiumError

        try:
            code = asyncio.run(fn(*args, **kwargs))
        except KeyboardInterrupt:
            console(stderr=True).print("[yellow]interrupted[/]: unfinished runs resume with 'podium runs resume'")
            sys.exit(EXIT_INTERRUPTED)
        except PodiumError as exc:
            fail(str(exc))
        sys.exit(code or EXIT_OK)

    return wrapper


def parse_input(text: str | None, option: str = "--input") -> Any:
    """``--input`` (or the JSON ``option`` named) as JSON text, or ``@file.json``."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = text[1:]
        source = path
        text = read_text(path, "input file")
    from podium.governance.limits import JsonProblem, loads

    try:
        return loads(text)
    except JsonProblem as exc:
        fail(f"{source}: {exc}")
    except json.JSONDecodeError as exc:
        fail(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"""pass JSON such as {option} '{{"order_id": 42}}' or {option} @input.json"""
        )


def read_text(path: str, what: str) -> str:
    """The text of a file a user named, or one line saying why it cannot be read (missing, a folder,
    not UTF-8 text)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        fail(
            f"{path}: {what} must be UTF-8 text, but byte {exc.start} is not ({exc.reason}); "
            "name the text file (YAML or JSON), not a binary one"
        )
    except IsADirectoryError:
        fail(f"{path} is a folder; name the {what} file")
    except OSError as exc:
        fail(f"cannot read {what} {path!r}: {exc.strerror}")
    raise AssertionError("unreachable")


def load_ref(ref: str) -> Any:
    """Load a workflow from MODULE:WORKFLOW, FILE.py:WORKFLOW or a YAML file."""
    from podium import load_workflow

    module, _, attr = ref.partition(":")
    if (":" not in ref and not ref.endswith((".yaml", ".yml"))) or (
        ":" in ref and not os.path.exists(ref) and (not module.strip() or not attr.strip() or ":" in attr)
    ):
        fail(
            f"{ref!r} does not name a workflow; use MODULE:WORKFLOW (e.g. examples.demo:workflow) "
            "or a YAML file"
        )
    if os.path.isdir(ref):
        fail(f"{ref!r} is a folder; name a workflow file or MODULE:WORKFLOW")
    return load_workflow(ref)


def load_or_fail(ref: str, option: str = "-w") -> Any:
    """:func:`load_ref` for a command that loads its workflows before it serves (``podium serve``,
    ``podium mcp``): a file or module that does not load ends the command with its reason, not a
    traceback from inside the server's start-up."""
    from podium import PodiumError

    try:
        return load_ref(ref)
    except PodiumError as exc:
        fail(f"{option} {ref}: {exc}")
