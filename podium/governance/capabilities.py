"""Capabilities: everything a workflow file may reach outside the engine, registered by an admin.

A workflow file (YAML on disk, or deployed over the HTTP API) is untrusted input. It may name only
what an admin registered, by name: a Python callable, an MCP server, an HTTP endpoint, or a folder of
files. Nothing else is reachable: deny by default. The registry is kept in the run store (key-value
namespace ``capabilities``), so every process and surface sees the same one, and every change is
audited. Python code (the Python API) is trusted and can still pass callables and tools directly.

Each kind is a :class:`Kind`; a new kind (a connector, say) is added with :func:`register_kind`.

What the registry enforces, and where:

* **when a file is validated** (``podium workflows validate``, ``client.deploy``, ``POST /api/workflows``): a
  reference to an unregistered name, a field that selects code, a command, a host or a path written
  as a template, and inline tool definitions are problems with ``file:line:column``;
* **when a step runs**: the name is looked up again in the store's registry (a removed capability
  stops working at once), HTTP hosts are resolved and refused before any connection when they are
  loopback, private or link-local (unless the entry allows it), and file paths are resolved
  (symlinks, ``..``) and refused outside the registered root.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import CapabilityDenied, ConfigError
from ..tools._network import check_host, resolve_checked

if TYPE_CHECKING:
    from ..storage import Store

log = logging.getLogger("podium.governance")

NAMESPACE = "capabilities"
"""The store's key-value namespace of the registry: name -> the capability as JSON."""
PERMISSION = "tools.manage"
"""The permission that adds and removes capabilities (admins hold it)."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def add_command(name: str, kind: str, example: str | None = None) -> str:
    """The ``podium tools add`` line that registers ``name`` as ``kind``."""
    if kind == "connector":
        return f"podium connectors add {name} {example or 'sql --set url_env=CRM_DB_URL'}"
    return f"podium tools add {name} --{kind} {example or _EXAMPLES.get(kind, 'VALUE')}"


_EXAMPLES = {
    "python": "package.module:function",
    "http": "https://api.example.com/orders/{order_id}",
    "mcp": "'python -m my_mcp_server'",
    "mcp-url": "https://mcp.example.com/mcp",
    "files": "/srv/documents",
}


# -- what a capability is -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Capability:
    """One registered thing a workflow may reach, by ``name``."""

    name: str
    kind: str
    """``python``, ``http``, ``mcp``, ``files``, or a kind added with :func:`register_kind`."""
    target: dict[str, Any]
    """What the name stands for, by kind: ``{"function": "pkg.mod:fn"}``, ``{"url": ..., "method":
    ...}``, ``{"command": [...]}`` or ``{"url": ...}``, ``{"root": "/abs/folder"}``."""
    allow_private: bool = False
    """Let an HTTP or MCP URL reach loopback, private and link-local addresses."""
    description: str = ""
    added_by: str = ""
    added_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Capability:
        d = json.loads(text)
        return cls(
            name=d["name"],
            kind=d["kind"],
            target=dict(d.get("target") or {}),
            allow_private=bool(d.get("allow_private")),
            description=str(d.get("description") or ""),
            added_by=str(d.get("added_by") or ""),
            added_at=float(d.get("added_at") or 0.0),
        )

    @property
    def summary(self) -> str:
        """One line: what the name reaches."""
        kind = KINDS.get(self.kind)
        text = kind.describe(self.target) if kind else json.dumps(self.target)
        return text + (" (private addresses allowed)" if self.allow_private else "")


@dataclass(frozen=True, kw_only=True)
class Kind:
    """A kind of capability: how its target is checked when registered, and described."""

    name: str
    check: Callable[[dict[str, Any]], dict[str, Any]]
    """Returns the target, normalised; raises :class:`ConfigError` saying what is wrong."""
    describe: Callable[[dict[str, Any]], str]
    tool: bool = False
    """Whether a ``tool`` step or an agent can call it by name (python, http; mcp is a set of tools)."""
    network: bool = False
    """Whether it reaches a URL (``allow_private`` applies)."""


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Add a kind of capability (a connector, for example)."""
    if not _NAME.match(kind.name):
        raise ConfigError(f"capability kind {kind.name!r}: use letters, digits, '_' and '-'")
    KINDS[kind.name] = kind
    return kind


def tool_kinds() -> tuple[str, ...]:
    return tuple(sorted(k for k, v in KINDS.items() if v.tool))


def _check_python(t: dict[str, Any]) -> dict[str, Any]:
    fn = str(t.get("function") or "")
    if not _FUNCTION.match(fn):
        guess = _function_form(fn)
        raise ConfigError(
            f"a python capability names a function as package.module:function, got {fn!r}"
            + (f"; did you mean {guess!r}?" if guess else "")
        )
    return {"function": fn}


def _function_form(text: str) -> str | None:
    """``pkg.mod:fn`` for ``pkg.mod.fn`` or ``pkg/mod.py:fn`` (the usual slips), if that is the form."""
    module, colon, attr = text.partition(":")
    if not colon:
        module, _, attr = text.rpartition(".")
    module = module.removesuffix(".py").replace("/", ".").replace("\\", ".")
    guess = f"{module}:{attr}"
    return guess if _FUNCTION.match(guess) else None


def check_url(url: str, what: str = "the URL") -> str:
    """``url`` if it is an absolute http(s) URL without templates in its scheme, host or port
    (:func:`~podium.tools._network.check_host`, which a Python-built HttpTool applies too), and without
    credentials (the registry is readable by workflow readers)."""
    parts = urlsplit(check_host(url, what))
    if parts.username or parts.password:
        raise ConfigError(f"{what} must not carry credentials; pass them as headers")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if len(value) >= 8 and not value.isdigit() and "{" not in value and _query_credential(name):  # a key is long
            raise ConfigError(
                f"{what} (host {parts.hostname}) holds a credential in clear text in its query parameter {name!r}: "
                "the registry is readable by workflow readers, and errors quote the URL. Send it as a header "
                "whose value is a stored secret (podium secrets set NAME; --header 'X-API-Key=secret:NAME', or "
                "the header the API documents for its key), or for a connector auth "
                '\'{"type": "api_key", "header": "...", "value": "secret:NAME"}\''
            )
    return url


_QUERY_CREDENTIALS = frozenset({"key", "sig", "signature", "code", "apikey", "access_key", "client_secret", "auth"})


def _query_credential(name: str) -> bool:
    """Whether a URL's query parameter ``name`` carries a credential: a secret-like name (``api_key``,
    ``access_token``, ``password``), or one APIs use for keys and signatures (Google's ``key``, an
    Azure SAS's ``sig``, an Azure Functions ``code``)."""
    from ..secret import is_secret_key

    return name.lower() in _QUERY_CREDENTIALS or is_secret_key(name)


def _check_http(t: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"url": check_url(str(t.get("url") or ""))}
    method = str(t.get("method") or "POST").upper()
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        raise ConfigError(f"HTTP method {method!r} is not one of GET, POST, PUT, PATCH, DELETE, HEAD")
    out["method"] = method
    for key in ("headers", "parameters"):
        if t.get(key):
            if not isinstance(t[key], dict):
                raise ConfigError(f"an http capability's {key} must be a mapping")
            out[key] = dict(t[key])
    from ..connectors._auth import ref_name
    from ..secret import is_secret_key

    for name, value in (out.get("headers") or {}).items():  # the registry is readable by workflow readers
        if is_secret_key(str(name)) and ref_name(value) is None:
            raise ConfigError(
                f"the header {name!r} of an http tool holds a credential in clear text (the registry is readable "
                f"by workflow readers): store the header's whole value with podium secrets set NAME and register "
                f"--header '{name}=secret:NAME'"
            )
    if t.get("description"):
        out["description"] = str(t["description"])
    from ..tools._reading import byte_limit, deadline_seconds

    if t.get("max_response_bytes") is not None:  # how much of an answer, and how long, the tool reads
        out["max_response_bytes"] = byte_limit(t["max_response_bytes"], "an http tool")
    if t.get("deadline") is not None:
        out["deadline"] = deadline_seconds(t["deadline"], "an http tool", None)
    return out


def _check_mcp(t: dict[str, Any]) -> dict[str, Any]:
    if t.get("url"):
        out: dict[str, Any] = {"url": check_url(str(t["url"]), "the MCP server URL")}
        if t.get("max_response_bytes") is not None:  # an answer's bytes, an event's, read at most
            from ..tools._reading import byte_limit

            out["max_response_bytes"] = byte_limit(t["max_response_bytes"], "an MCP server")
    else:
        command = t.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if (
            not isinstance(command, list | tuple)
            or not command
            or not all(isinstance(c, str) for c in command)
        ):
            raise ConfigError("an mcp capability is a command (a list of words) or a url")
        out = {"command": list(command)}
        if t.get("env"):
            out["env"] = {str(k): str(v) for k, v in dict(t["env"]).items()}
            from ..secret import is_secret_key

            for k, v in out["env"].items():  # the registry is readable by workflow readers
                if is_secret_key(k) and not v.startswith("secret:"):
                    raise ConfigError(
                        f"the environment variable {k!r} of an MCP server holds a credential in clear text (the "
                        "registry is readable by workflow readers): store it with podium secrets set NAME and "
                        f"register --mcp-env '{k}=secret:NAME' (read when the server starts)"
                    )
        if t.get("cwd"):
            out["cwd"] = str(t["cwd"])
    return out


def _check_files(t: dict[str, Any]) -> dict[str, Any]:
    root = str(t.get("root") or "")
    if not root or not os.path.isabs(os.path.expanduser(root)):
        raise ConfigError(f"a files capability is an absolute folder path, got {root!r}")
    real = os.path.realpath(os.path.expanduser(root))
    if not os.path.isdir(real):
        raise ConfigError(f"{root!r} is not a folder (it resolves to {real})")
    if real == os.path.sep:
        raise ConfigError("registering / would let workflows read every file; name a narrower folder")
    return {"root": real}


register_kind(Kind(name="python", check=_check_python, describe=lambda t: t["function"], tool=True))
register_kind(
    Kind(
        name="http",
        check=_check_http,
        describe=lambda t: f"{t['method']} {t['url']}",
        tool=True,
        network=True,
    )
)
register_kind(
    Kind(
        name="mcp",
        check=_check_mcp,
        describe=lambda t: t["url"] if "url" in t else " ".join(shlex.quote(c) for c in t["command"]),
        network=True,
    )
)
register_kind(Kind(name="files", check=_check_files, describe=lambda t: f"{t['root']}{os.sep}**"))


def _check_connector(t: dict[str, Any]) -> dict[str, Any]:
    """A connector: its kind and settings (``{"kind": "sql", "url_env": "CRM_DB"}``, ``{"kind":
    "openapi", "spec": "/srv/crm.yaml", "base_url": "https://crm.example.com"}``). Settings are
    stored in the registry, so a secret is named by the environment variable that holds it."""
    from ..connectors import available_kinds

    kind = str(t.get("kind") or "")
    if kind not in available_kinds():
        raise ConfigError(f"a connector capability names its kind, one of {', '.join(available_kinds())}; got {kind!r}")
    settings = {k: v for k, v in t.items() if k != "kind"}
    url = settings.get("url")
    if kind == "webhook" and url is not None:
        raise ConfigError(
            "a webhook connector's URL is its credential (whoever has it can post), and the registry is "
            "readable by workflow readers: put the URL in an environment variable and register url_env: NAME "
            "(podium connectors add NAME webhook --set url_env=SLACK_WEBHOOK_URL)"
        )
    if isinstance(url, str) and urlsplit(url).password:
        raise ConfigError(
            "a connector capability's url must not hold a password (the registry is readable by "
            "workflow readers); put the URL in an environment variable and register url_env: NAME"
        )
    from ..secret import is_secret_key

    for key, value in settings.items():  # a password, token or key in the registry would be readable
        where = key.endswith(("_env", "_url", "_uri", "_endpoint", "_name", "_file", "_path"))  # says where, not what
        if is_secret_key(key) and not where and not str(value).startswith("secret:"):
            raise ConfigError(
                f"a connector capability's {key!r} must not hold the secret itself (the registry is readable "
                f"by workflow readers); put it in an environment variable and register {key}_env: NAME"
            )
    if "base_url" in settings:
        check_url(str(settings["base_url"]), "the connector's base_url")
    if kind == "openapi" and not isinstance(settings.get("spec"), str | dict):
        others = sorted(k for k in settings if k != "spec")
        near = [k for k in others if difflib.get_close_matches(k, ["spec"], n=1, cutoff=0.6)]
        raise ConfigError(
            "an openapi connector capability names its spec, the path of the API's OpenAPI document: "
            "--set spec=/abs/path/openapi.yaml"
            + (f" (got {near[0]!r}: did you mean 'spec'?)" if near else f" (settings given: {', '.join(others) or 'none'})")
        )
    _check_credentials(settings)
    return {"kind": kind, **settings}


def _check_credentials(settings: dict[str, Any]) -> None:
    """Credentials in a connector's settings are ``secret:NAME`` references to the secret store,
    never values: the registry is readable by workflow readers."""
    from ..connectors._auth import parse_auth, ref_name
    from ..secret import is_secret_key

    if settings.get("auth") is not None or settings.get("token") is not None:
        parse_auth(settings.get("auth"), token=settings.get("token"))
    headers = settings.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError("a connector's headers are a mapping of header name to value")
    for key, value in [*headers.items(), *((k, v) for k, v in settings.items() if k not in ("auth", "token", "headers"))]:
        if is_secret_key(str(key)) and not str(key).endswith(("_env", "_url")) and ref_name(value) is None:
            raise ConfigError(
                f"the connector setting {key!r} holds a credential in clear text (the registry is readable by "
                f"workflow readers): store it with podium secrets set NAME and register {key}=secret:NAME"
            )


register_kind(
    Kind(
        name="connector",
        check=_check_connector,
        describe=lambda t: f"{t['kind']} connector "
        + str(t.get("base_url") or t.get("url") or (f"${t['url_env']}" if t.get("url_env") else "")),
        network=True,
    )
)


def make_capability(
    name: str,
    kind: str,
    target: Mapping[str, Any],
    *,
    allow_private: bool = False,
    description: str = "",
    added_by: str = "",
) -> Capability:
    """A checked :class:`Capability` (raises :class:`ConfigError` saying what is wrong)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"capability name {name!r} is not valid: use 1-64 letters, digits, '_' or '-', starting with a letter"
        )
    found = KINDS.get(kind)
    if found is None:
        raise ConfigError(f"unknown capability kind {kind!r}; kinds are: {', '.join(sorted(KINDS))}")
    if allow_private and not found.network:
        raise ConfigError(f"allow_private applies to URLs (http, mcp), not to a {kind} capability")
    return Capability(
        name=name,
        kind=kind,
        target=found.check(dict(target)),
        allow_private=allow_private,
        description=description,
        added_by=added_by,
        added_at=time.time(),
    )


# -- the registry in a store --------------------------------------------------------------------


def seal(store: Store, cap: Capability) -> str:
    """The stored form of ``cap``: its JSON and an HMAC with the store's audit key (kept outside the
    database), so that a row written into the registry behind the admin's back allows nothing."""
    text = cap.to_json()
    return json.dumps({"entry": text, "mac": store.audit_keys.seal(f"capability\x1f{cap.name}\x1f{text}")})


def unseal(store: Store, name: str, stored: str) -> Capability | None:
    """The capability stored as ``stored`` if its seal is valid and it still passes its kind's
    checks; None for a forged, edited, unsigned or damaged entry (it allows nothing)."""
    return _opened(store, name, stored)[0]


def _opened(store: Store, name: str, stored: str) -> tuple[Capability | None, str]:
    """:func:`unseal`, with why an entry allows nothing (empty when it allows what it says)."""
    unsealed = (
        "is in the registry but not sealed with this engine's audit key (written behind the admin's back, or "
        "with another key)"
    )
    try:
        sealed = json.loads(stored)
        text, mac = sealed["entry"], sealed["mac"]
        if store.audit_keys.verify_seal(f"capability\x1f{name}\x1f{text}", str(mac)) is not True:
            return None, unsealed
        cap = Capability.from_json(text)
        if cap.name != name:
            return None, unsealed
    except (ValueError, KeyError, TypeError, ConfigError):
        return None, unsealed
    try:
        checked = make_capability(cap.name, cap.kind, cap.target, allow_private=cap.allow_private)
    except ConfigError as exc:  # sealed by an admin, but a check of this release refuses it now
        return None, f"is registered, but this release refuses its entry ({exc})"
    return Capability(**{**asdict(cap), "target": checked.target}), ""


async def load(store: Store) -> dict[str, Capability]:
    """Every registered capability whose seal holds, by name (see :func:`seal`)."""
    out = {}
    for name, text in (await store.kv_list(NAMESPACE)).items():
        cap, why = _opened(store, name, text)
        if cap is not None:
            out[name] = cap
        else:
            log.warning("capability %r %s: it allows nothing until an admin registers it again", name, why)
    return out


def not_registered(name: str, kinds: Sequence[str], where: str = "") -> str:
    kind = kinds[0] if kinds else "python"
    what = " or ".join(kinds) if kinds else "capability"
    at = f"{where}: " if where else ""
    return (
        f"{at}{what} {name!r} is not registered, so workflows may not use it: an admin adds it with "
        f"{add_command(name, kind)} (see podium tools list)"
    )


async def require(store: Store, name: Any, kinds: Sequence[str], *, where: str = "") -> Capability:
    """The registered capability ``name`` of one of ``kinds``, or raise :class:`CapabilityDenied`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise CapabilityDenied(
            f"{where + ': ' if where else ''}{name!r} is not the name of a registered capability; "
            "workflows refer to what an admin registered, by name (podium tools list)"
        )
    text = await store.kv_get(NAMESPACE, name)
    if text is None:
        raise CapabilityDenied(not_registered(name, kinds, where))
    cap, why = _opened(store, name, text)
    if cap is None:
        raise CapabilityDenied(
            f"{where + ': ' if where else ''}{name!r} {why}: it allows "
            f"nothing; an admin registers it again with {add_command(name, kinds[0] if kinds else 'python')}"
        )
    if kinds and cap.kind not in kinds:
        raise CapabilityDenied(
            f"{where + ': ' if where else ''}{name!r} is registered as a {cap.kind} capability, "
            f"not {' or '.join(kinds)}"
        )
    return cap


def python_capability(caps: Mapping[str, Capability], ref: str) -> Capability | None:
    """The python capability registered for function ``ref`` (or named ``ref``), if any."""
    found = caps.get(ref)
    if found is not None and found.kind == "python":
        return found
    return next((c for c in caps.values() if c.kind == "python" and c.target.get("function") == ref), None)


# -- references in a workflow file --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Use:
    """Something a step's ``with:`` reaches, found by a step type's ``capabilities`` hook.

    Exactly one of ``name``, ``python``, ``path`` or ``problem`` is set."""

    at: tuple[str | int, ...]
    """Where in ``with:`` (keys and list indexes), for the problem's line and column."""
    kinds: tuple[str, ...] = ()
    name: str | None = None
    """A registered name."""
    python: str | None = None
    """A ``module:function`` (allowed by the module policy of ``uses:``, or registered)."""
    path: str | None = None
    """A file path, which must be under ``root`` (a registered files name) or any registered root."""
    root: str | None = None
    problem: str | None = None
    hint: str | None = None


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def templated(at: tuple[str | int, ...], what: str) -> Use:
    return Use(
        at=at,
        problem=f"{what} cannot be a template: it chooses what runs or what is reached, so it is "
        "written in the file, never computed from the input or a step's output",
        hint="write the registered name itself; list the names with podium tools list",
    )


class Unlisted(Mapping[str, Capability]):
    """The registry as seen by a principal who may not read it (``workflows.read``): a name is looked
    up, but the names are never listed, so a refusal offers no "did you mean"."""

    def __init__(self, caps: Mapping[str, Capability]) -> None:
        self._caps = caps

    def __getitem__(self, name: str) -> Capability:
        return self._caps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def check_use(use: Use, caps: Mapping[str, Capability]) -> tuple[str, str] | None:
    """Why ``use`` is not allowed by the registry ``caps`` (message, hint), or None."""
    if use.name is not None:
        cap = caps.get(use.name)
        if cap is None:
            kind = use.kinds[0] if use.kinds else "python"
            same = [n for n, c in caps.items() if not use.kinds or c.kind in use.kinds]
            near = difflib.get_close_matches(use.name, same, n=1)
            return (
                f"{' or '.join(use.kinds) or 'capability'} {use.name!r} is not registered",
                (f"did you mean {near[0]!r}? " if near else "")
                + f"an admin adds it with {add_command(use.name, kind)}; podium tools list shows what is",
            )
        if use.kinds and cap.kind not in use.kinds:
            return (
                f"{use.name!r} is registered as a {cap.kind} capability, not {' or '.join(use.kinds)}",
                "",
            )
        return None
    if use.path is not None:
        roots = _roots(caps, use.root)
        if isinstance(roots, tuple):
            return roots
        if use.root is not None and not os.path.isabs(use.path):
            return None  # relative to a registered root: confined when the step runs
        if not any(_inside(os.path.realpath(use.path), r) for r in roots):
            return (
                f"the path {use.path!r} is not inside a registered folder, so workflows may not read it",
                "an admin registers the folder with "
                + add_command("NAME", "files", os.path.dirname(os.path.abspath(use.path)) or "/srv/docs")
                + ", and the step names it: root: NAME",
            )
    return None


def _roots(caps: Mapping[str, Capability], root: str | None) -> list[str] | tuple[str, str]:
    if root is not None:
        cap = caps.get(root)
        if cap is None or cap.kind != "files":
            return (
                f"files {root!r} is not registered",
                f"an admin adds it with {add_command(root, 'files')}",
            )
        return [cap.target["root"]]
    return [c.target["root"] for c in caps.values() if c.kind == "files"]


# -- files --------------------------------------------------------------------------------------


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


async def confine_paths(
    store: Store,
    paths: Sequence[str],
    root: str | None,
    *,
    where: str,
    discover: Callable[[str], Iterable[str | os.PathLike[str]]],
) -> list[str]:
    """The files that ``paths`` name, each resolved (symlinks, ``..``) and inside ``root`` (a
    registered files name) or, without ``root``, inside some registered folder; folders are expanded
    to the files under them by ``discover``. Anything outside raises :class:`CapabilityDenied`.
    Each is a :class:`~podium.governance.files.Confined` path: read it with ``open_confined``, which opens
    the file checked (no link followed), not whatever stands under its name by then."""
    from .files import Confined


    if root is not None:
        roots = [(await require(store, root, ("files",), where=where)).target["root"]]
    else:
        roots = [c.target["root"] for c in (await load(store)).values() if c.kind == "files"]
        if not roots:
            raise CapabilityDenied(
                f"{where}: no folder is registered, so workflows may not read files: an admin adds one "
                f"with {add_command('NAME', 'files')}, and the step names it: root: NAME"
            )
    out: list[Confined] = []
    for raw in paths:
        base = roots[0] if root is not None else os.getcwd()
        real = os.path.realpath(os.path.join(base, os.path.expanduser(str(raw))))
        home = next((r for r in roots if _inside(real, r)), None)
        if home is None:
            raise CapabilityDenied(_outside(where, str(raw), roots, root))
        for f in discover(real):
            resolved = os.path.realpath(f)
            if not _inside(resolved, home):
                raise CapabilityDenied(
                    f"{where}: {f} is a link to {resolved}, outside the registered folder {home}; "
                    "remove the link or register that folder too"
                )
            out.append(Confined(resolved, home))
    return list(out)


def _outside(where: str, raw: str, roots: list[str], root: str | None) -> str:
    inside = f"the registered folder {roots[0]}" if root is not None else "any registered folder"
    return (
        f"{where}: the path {raw!r} is outside {inside} (after resolving links and '..'), so it is "
        f"refused; an admin can register its folder with {add_command('NAME', 'files')}"
    )




__all__ = [
    "KINDS",
    "NAMESPACE",
    "PERMISSION",
    "Capability",
    "CapabilityDenied",
    "Kind",
    "Use",
    "check_use",
    "confine_paths",
    "is_template",
    "load",
    "make_capability",
    "register_kind",
    "require",
    "resolve_checked",
    "templated",
]
