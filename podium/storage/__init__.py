"""Stores, chosen by URL: ``memory://``, ``sqlite:///path.db`` (or a plain file path), ``postgresql://...``."""

from __future__ import annotations

import os

from ..errors import ConfigError, install_hint
from ._base import Redaction, Store
from .bus import EventBus, NatsBus, open_bus

__all__ = ["EventBus", "NatsBus", "Redaction", "Store", "default_url", "open_bus", "open_store"]

ENV_VAR = "PODIUM_DB"


def default_url() -> str:
    """The store used when none is given: ``$PODIUM_DB``, else ``db`` in the project's ``podium.toml``
    or ``[tool.podium]``, else ``.podium/podium.db`` in the working directory (:mod:`podium.settings`)."""
    if os.environ.get(ENV_VAR):  # the common case, without reading any file
        return os.environ[ENV_VAR]
    from ..settings import setting

    return str(setting("db"))


def open_store(url: str | None = None) -> Store:
    """Build (not yet open) the store for ``url``. Backends are imported only when asked for."""
    url = url or default_url()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(url)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme == "":
        from .._sqldb import check_url_form
        from .sqlite import SQLiteStore

        check_url_form(url)  # sqlite:/x.db is no plain path

        return SQLiteStore("sqlite:///" + url)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                f"the PostgreSQL store needs psycopg: {install_hint('postgres')} ({exc})"
            ) from exc
        return PostgresStore(url)
    raise ConfigError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db or postgresql://user@host/db"
    )
