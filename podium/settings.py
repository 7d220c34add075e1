"""One configuration for every surface: ``podium.toml`` (or ``[tool.podium]`` in ``pyproject.toml``),
environment variables on top, command-line flags on top of those.

Order, lowest first (a later source wins, per setting):

1. the defaults below;
2. ``[tool.podium]`` in the project's ``pyproject.toml``;
3. ``podium.toml`` (keys at the top level, or under ``[podium]``);
4. environment variables ``PODIUM_<NAME>`` (``PODIUM_DB``, ``PODIUM_MODEL``...);
5. flags (``podium run --db ...``) and arguments given in Python (``Client("sqlite:///x.db")``).

The project is the nearest folder at or above the working directory holding ``podium.toml``,
``pyproject.toml`` or ``.git``. A relative SQLite path in a file is relative to that file's folder,
so every command run anywhere inside the project reaches the same store. ``podium config show``
prints each effective setting and where it came from (secrets masked)::

    from podium.settings import load_settings
    settings = load_settings()
    settings.db, settings.source("db")   # ('sqlite:////srv/app/.podium/podium.db', 'podium.toml')

Parsing and validation are pydantic-settings' (TOML and environment sources); what is Podium's own
is the project lookup, the order above and the record of where each value came from.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

DEFAULT_DB = "sqlite:///.podium/podium.db"
_MARKERS = ("podium.toml", "pyproject.toml", ".git")


#: Every setting with its default and what it means. Environment variable: ``PODIUM_`` + the name
#: in capitals. (Plain data, so that reading one setting when nothing is configured imports nothing.)
FIELDS: dict[str, tuple[Any, str]] = {
    "db": (DEFAULT_DB, "Store URL: sqlite:///path.db, postgresql://..., memory://"),
    "model": (None, "Default model 'provider:model' (unset: OpenAI or Anthropic if a key is set, else local)"),
    "embedder": (None, "Default embedder (unset: local:all-minilm-l6-v2)"),
    "log_format": ("text", "Log lines as text or one JSON object each"),
    "log_level": ("INFO", "debug, info, warning, error or critical"),
    "audit_key": (None, "Audit key file (unset: ~/.podium/audit.key)"),
    "token": (None, "API token to act with (once the store has users)"),
    "workflows": ("workflows", "Folder of the project's workflow files"),
    "serve_host": ("127.0.0.1", "podium serve: address to listen on"),
    "serve_port": (8321, "podium serve: port to listen on"),
    "local_threads": (None, "Threads of the embedded model (unset: the cores)"),
    "prices": (None, "A TOML file of model prices (USD per 1M tokens) over the dated built-in table"),
    "durability": ("crash", "crash (SQLite: no fsync per commit; PostgreSQL: the server's synchronous_commit) or power (every commit on disk before it returns)"),
    "trace_prompts": (True, "Keep model prompts and tool/connector arguments with the run for its trace (redacted); false keeps none"),
    "audit_refusal_window": (300.0, "Seconds over which repeats of one refusal (access.denied) are counted into one audit entry; 0 writes each"),
    "gc": ("engine", "engine (while a client drives 256 runs or more at once, the garbage collector's young threshold is 20,000: thousands of live runs are not walked every 700 allocations) or python (Python's own thresholds)"),
    "audit_refusal_keys": (1000, "Kinds of refusal held in memory for that count; past it, refusals are counted into one entry"),
}


@functools.cache
def settings_model() -> type[Any]:
    """The pydantic-settings model that validates merged values (built on first use)."""
    from pydantic import Field, SecretStr, field_validator
    from pydantic_settings import BaseSettings, SettingsConfigDict

    def f(name: str, **kw: Any) -> Any:
        default, doc = FIELDS[name]
        return Field(default, description=doc, **kw)

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="forbid", case_sensitive=False)

        db: str = f("db")
        model: str | None = f("model")
        embedder: str | None = f("embedder")
        log_format: Literal["text", "json"] = f("log_format")
        log_level: str = f("log_level")
        audit_key: str | None = f("audit_key")
        token: SecretStr | None = f("token")
        workflows: str = f("workflows")
        serve_host: str = f("serve_host")
        serve_port: int = f("serve_port", ge=0, le=65535)
        local_threads: int | None = f("local_threads", ge=1)
        durability: Literal["crash", "power"] = f("durability")
        prices: str | None = f("prices")
        trace_prompts: bool = f("trace_prompts")
        audit_refusal_window: float = f("audit_refusal_window", ge=0, allow_inf_nan=False)
        audit_refusal_keys: int = f("audit_refusal_keys", ge=1)
        gc: Literal["engine", "python"] = f("gc")

        @field_validator("log_level")
        @classmethod
        def _a_log_level(cls, value: str) -> str:
            # checked here, not only by the commands that log: `loud` is a mistake wherever it is read
            name = {"TRACE": "DEBUG", "WARN": "WARNING"}.get(value.upper(), value.upper())
            if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
                raise ValueError(f"unknown log level {value!r}; use debug, info, warning, error or critical")
            return value

        @classmethod
        def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, *_: Any, **__: Any) -> tuple[Any, ...]:
            # load_settings merges the layers (recording where each value came from); the model
            # only validates the merged values.
            return (init_settings,)

    assert set(Settings.model_fields) == set(FIELDS)
    return Settings


@dataclass(frozen=True, kw_only=True, slots=True)
class Effective:
    """The effective settings with, for each, where its value came from."""

    values: Any
    """The validated settings (a pydantic-settings model: ``values.db``...)."""
    sources: dict[str, str] = field(default_factory=dict)
    """Setting name -> ``default``, ``pyproject.toml``, ``podium.toml``, ``environment`` or ``flag``
    (file sources carry their path: ``podium.toml (/srv/app/podium.toml)``)."""
    project: Path | None = None
    """The project folder found (None when no marker was found up to the root)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.values, name)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def rows(self) -> list[tuple[str, str, str]]:
        """``(name, value as shown, source)`` for every setting, secrets masked."""
        out = []
        for name in FIELDS:
            value = getattr(self.values, name)
            shown = "***" if name == "token" and value is not None else ("" if value is None else str(value))
            out.append((name, shown, self.source(name)))
        return out


def find_project(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) with a marker."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in _MARKERS):
            return folder
    return None


def _read_toml(path: Path, table: tuple[str, ...] | None) -> dict[str, Any]:
    """The settings table of ``path`` (``table=None``: ``[podium]`` if there is one, else the top level)."""
    try:
        with path.open("rb") as fh:
            data: Any = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the file or remove it") from exc
    if table is None:
        if isinstance(data.get("tool"), dict) and "podium" in data["tool"] and "podium" not in data:
            raise ConfigError(
                f"{path}: [tool.podium] is pyproject.toml's table; in podium.toml write the settings under "
                "[podium] (or at the top level)"
            )
        table = ("podium",) if isinstance(data.get("podium"), dict) else ()
    for key in table:
        if not isinstance(data, dict):
            return {}
        data = data.get(key, {})
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{'.'.join(table)}] must be a table of settings")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        import difflib

        hints = [f"{u!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, list(FIELDS), 1)) else "") for u in unknown]
        raise ConfigError(
            f"{path}: unknown setting {', '.join(hints)}; the settings are: {', '.join(FIELDS)}"
        )
    return dict(data)


def _anchor(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A relative SQLite path written in a file is relative to that file's folder."""
    db = values.get("db")
    if isinstance(db, str):
        path = db[len("sqlite:///") :] if db.startswith("sqlite:///") else (db if "://" not in db else None)
        if path is not None and path and not os.path.isabs(path):
            values = {**values, "db": "sqlite:///" + str((folder / path).resolve())}
    return values


def _file_layers(project: Path | None) -> list[tuple[str, dict[str, Any]]]:
    if project is None:
        return []
    layers = []
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        found = _read_toml(pyproject, ("tool", "podium"))
        if found:
            layers.append((f"pyproject.toml ({pyproject})", _anchor(found, project)))
    podium_toml = project / "podium.toml"
    if podium_toml.is_file():
        found = _read_toml(podium_toml, None)
        layers.append((f"podium.toml ({podium_toml})", _anchor(found, project)))
    return layers


def load_settings(
    flags: Mapping[str, Any] | None = None, *, start: str | os.PathLike[str] | None = None
) -> Effective:
    """The effective settings for the project around ``start``, with ``flags`` on top (None values
    in ``flags`` mean "not given"). Raises :class:`~podium.ConfigError` naming the file or variable
    and the setting when a value is not valid."""
    from pydantic import ValidationError
    from pydantic_settings import EnvSettingsSource

    project = find_project(start)
    model = settings_model()
    env = EnvSettingsSource(model, case_sensitive=False, env_prefix="PODIUM_")()
    layers = [*_file_layers(project), ("environment", env), ("flag", {k: v for k, v in (flags or {}).items() if v is not None})]
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, values in layers:
        for key, value in values.items():
            merged[key] = value
            sources[key] = name
    try:
        settings = model(**merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            where = sources.get(key, "default")
            where = f"${'PODIUM_' + key.upper()}" if where == "environment" else where
            problems.append(f"{key} (from {where}): {str(err['msg']).removeprefix('Value error, ')}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    return Effective(values=settings, sources=sources, project=project)


def _configured(project: Path | None) -> bool:
    if project is None:
        return False
    if (project / "podium.toml").is_file():
        return True
    pyproject = project / "pyproject.toml"
    return pyproject.is_file() and "[tool.podium" in pyproject.read_text(encoding="utf-8", errors="replace")


def setting(name: str) -> Any:
    """One effective setting (files and environment; no flags). Fast when nothing is configured:
    no file to parse and no ``PODIUM_<NAME>`` set gives the default without importing pydantic-settings."""
    if name not in FIELDS:
        raise ConfigError(f"unknown setting {name!r}; the settings are: {', '.join(FIELDS)}")
    if f"PODIUM_{name.upper()}" not in os.environ and not _configured(find_project()):
        return FIELDS[name][0]
    return getattr(load_settings().values, name)


def mistyped_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """``PODIUM_*`` variables set in ``environ`` (default: the process's) that are no setting but
    read like one mistyped (``PODIUM_DURABLITY``), each with the setting's variable: such a variable
    is otherwise ignored without a word, the setting left at its default."""
    import difflib

    names = {f"PODIUM_{name.upper()}" for name in FIELDS}
    out = []
    for var in sorted(environ if environ is not None else os.environ):
        upper = var.upper()
        if not upper.startswith("PODIUM_") or upper in names:
            continue
        close = difflib.get_close_matches(upper, sorted(names), 1, 0.85)
        if close:
            out.append(f"${var} is not a setting (did you mean ${close[0]}?); it is ignored")
    return out


__all__ = ["DEFAULT_DB", "FIELDS", "Effective", "find_project", "load_settings", "mistyped_environment", "setting", "settings_model"]
