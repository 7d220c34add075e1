"""PostgreSQL URLs whose password libpq cannot parse, attacked (tenth session review): the error
must say what is wrong without the password (it goes to logs, terminals and CI output). libpq
echoes a token it cannot read (a password with a bare ``%`` or space) or the whole URI
(docs/status.md, "Review of the tenth session's changes (tenth session)")."""

from __future__ import annotations

import pytest

pytest.importorskip("psycopg")

from podium import ConfigError, open_store
from podium._sqldb import open_database

URLS = [
    "postgresql://podium:Sup3r%Secret@127.0.0.1:5432/podium",  # a bare % in a pasted password
    "postgresql://podium:Sup3r Secret@127.0.0.1:5432/podium",  # a space
    "postgresql://podium:Sup3rSecret@[::1/podium",  # an unclosed IPv6 bracket: libpq echoes the URI
    "postgresql://podium@127.0.0.1:5432/podium?password=Sup3r%Secret",
]


@pytest.mark.parametrize("url", URLS)
async def test_attack_an_unreadable_store_url_names_no_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        store = open_store(url)
        await store.open()
    assert "Secret" not in str(caught.value) and "invalid" in str(caught.value), caught.value


@pytest.mark.parametrize("url", URLS)
async def test_attack_an_unreadable_memory_tables_url_names_no_password(url: str) -> None:
    db = open_database(url)
    with pytest.raises(ConfigError) as caught:
        await db.open()
    assert "Secret" not in str(caught.value) and "invalid" in str(caught.value), caught.value


@pytest.mark.parametrize("url", ["postgresql:/podium:Sup3rSecret@db.internal/podium", "postgres:podium:Sup3rSecret@db/podium"])
def test_attack_a_store_url_without_its_slashes_names_no_password(url: str) -> None:
    """A PostgreSQL URL missing the '//' was refused with the URL as given, password and all, and
    a suggestion to use it as a SQLite path; it now names the scheme to fix, without the password."""
    from podium._sqldb import check_url_form

    with pytest.raises(ConfigError) as caught:
        check_url_form(url)
    said = str(caught.value)
    assert "Secret" not in said and "postgresql://" in said and "not '://'" in said, said
