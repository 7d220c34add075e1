"""A command that only reads refuses a SQLite store whose file is not there: opening it would make
the file (and its folders), empty, and a mistyped path would answer like an empty system. The
project's default store (``.podium/podium.db``, made by its first run) still reads as empty."""

from __future__ import annotations

import os

#: The store every project starts with (``podium init`` writes it too): made by its first run, so
#: a read before that is an empty project, not a typo.
_DEFAULT_TAIL = (".podium", "podium.db")


def where_the_store_comes_from(db: str | None) -> tuple[str, str] | None:
    """The store URL a command uses and where it was set; None for the default setting."""
    if db:
        import click

        ctx = click.get_current_context(silent=True)
        src = ctx.get_parameter_source("db") if ctx is not None else None
        return db, "$PODIUM_DB" if src is click.core.ParameterSource.ENVIRONMENT else "--db"
    if os.environ.get("PODIUM_DB"):
        return os.environ["PODIUM_DB"], "$PODIUM_DB"
    from podium.settings import load_settings

    settings = load_settings()
    source = settings.source("db")
    return None if source == "default" else (str(settings.values.db), f"the db setting of {source}")


def missing_store_file(db: str | None) -> str | None:
    """Why a read-only command must not open its store (its SQLite file does not exist), or None."""
    found = where_the_store_comes_from(db)
    if found is None:
        return None
    url, source = found
    from podium._sqldb import check_url_form

    check_url_form(url)  # sqlite:/x.db is a mistake of its own, said as such
    if "://" in url and not url.startswith("sqlite://"):
        return None  # memory:// and PostgreSQL: nothing is made on disk by opening them
    from podium._sqldb import sqlite_path

    if sqlite_path(url) == ":memory:":
        return None
    path = os.path.abspath(sqlite_path(url))
    if os.path.exists(path) or tuple(path.split(os.sep)[-2:]) == _DEFAULT_TAIL:
        return None
    folder = os.path.dirname(path)
    missing = "the file does not exist" if os.path.isdir(folder) else f"its folder {folder} does not exist"
    return (
        f"no store at {path} (the SQLite file named by {source}, {url!r}): {missing}, so there is nothing to "
        "read and nothing was made. Check the path for a typo (sqlite:///rel.db is relative to the working "
        "folder, or to podium.toml's folder when written there; sqlite:////abs.db is absolute); a store is "
        "made by the first command that writes to it, such as podium run FILE.yaml or podium workflows deploy"
    )
