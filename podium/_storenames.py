"""A store's name: the key of its pin and head log on a machine (``audit-heads/HASH.id``, ``.jsonl``).

One database must have one name whatever its URL's spelling, or its pin, written under one
spelling, refuses it under another as "a copy of that store". So :func:`store_identity` writes
what certainly names the same database one way:

- SQLite: the file's real path (a symlink or a relative path names the file it leads to).
- PostgreSQL: ``postgres://`` is ``postgresql://``; the user and password are left out (roles of
  one database reach one store), and of the connection options only those that choose the database
  are kept, sorted. Each host is written in lower case, with its port (an omitted port is libpq's:
  ``$PGPORT``, else 5432); ``localhost``, ``127.0.0.1`` and ``::1`` (in any spelling) are
  ``localhost``, the loopback of this machine; an omitted database is the one libpq connects to
  (``$PGDATABASE``, else the URL's user, else ``$PGUSER``; left empty when none is known).

Not merged, because they are not certainly the same server: another loopback address
(``127.0.0.2`` may be another server), a Unix socket (an empty host or a folder) and a TCP host,
one socket folder and another, a host's other DNS names or its external address.

Merging two names of one server is never a weakening: a store whose id is not the pinned one is
refused, so two databases wrongly given one name refuse each other (an operator sees a refusal),
they do not pass for one another.

Pins and head logs written before a name changed are under the name the previous release gave
(:func:`former_identity`); ``podium/storage/_identity.py`` moves them to the new name at open.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

#: Connection options of a database URL that change which database is reached: kept in a store's
#: name. The others (``application_name``, timeouts, ``sslmode``...) are not (a worker connecting
#: with its own ``application_name``, or ``options=-c statement_timeout=...``, reaches the same store;
#: ``options`` setting a ``search_path`` may reach other tables, and is kept).
_TARGET_OPTIONS = frozenset({"host", "hostaddr", "port", "dbname", "service"})
_SCHEMES = {"postgres": "postgresql"}
"""Scheme aliases libpq (and :func:`podium.storage.open_store`) take for one another."""
LOOPBACK = "localhost"
"""How the loopback of this machine is written in a store's name (``127.0.0.1`` and ``::1`` too)."""
_LOOPBACK_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
DEFAULT_PORT = 5432
"""libpq's port when neither the URL nor ``$PGPORT`` gives one."""


def store_identity(url: str) -> str:
    """A stable name of the store behind ``url`` (see the module's docstring)."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + os.path.realpath(url[len("sqlite:///") :])
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme, parts.scheme)
    if scheme != "postgresql":
        return former_identity(url) or url
    options = _options(parts.query)
    user = unquote(parts.netloc.rpartition("@")[0].partition(":")[0]) if "@" in parts.netloc else ""
    hosts = parts.netloc.rpartition("@")[2]
    netloc = ",".join(_host(h) for h in hosts.split(",")) if hosts else f":{_default_port()}"
    db = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if not db and not any(k == "dbname" for k, _ in options):
        db = os.environ.get("PGDATABASE") or user or os.environ.get("PGUSER") or ""
    return urlunsplit((scheme, netloc, "/" + quote(db, safe="") if db else "", urlencode(options), ""))


def _options(query: str) -> list[tuple[str, str]]:
    return sorted(
        (k, v) for k, v in parse_qsl(query, keep_blank_values=True)
        if k.lower() in _TARGET_OPTIONS or (k.lower() == "options" and "search_path" in v)  # other tables
    )  # fmt: skip


def _default_port() -> str:
    env = os.environ.get("PGPORT", "").strip()
    return env if env.isdigit() else str(DEFAULT_PORT)


def _host(spec: str) -> str:
    """One ``host[:port]`` of a URL's host list, written one way."""
    if spec.startswith("["):  # an IPv6 address
        host, _, rest = spec[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = spec.partition(":")
    port = str(int(port)) if port.isdigit() else port or _default_port()
    plain = unquote(host)
    if plain.startswith("/") or plain.startswith("@"):  # a Unix socket's folder (or abstract name): case matters
        return f"{quote(plain, safe='')}:{port}"
    plain = plain.lower()
    try:
        ip = ipaddress.ip_address(plain)
    except ValueError:
        return f"{LOOPBACK if plain == LOOPBACK else quote(plain, safe='')}:{port}"
    mapped = getattr(ip, "ipv4_mapped", None)
    if ip in _LOOPBACK_IPS or mapped in _LOOPBACK_IPS:
        return f"{LOOPBACK}:{port}"
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def former_identity(url: str) -> str | None:
    """The name the release before one name per store gave ``url`` (pins and head logs written by it
    are under it); None: that release could not name it."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + os.path.realpath(url[len("sqlite:///") :])
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        if parts.query or parts.fragment:
            parts = parts._replace(query=urlencode(_options(parts.query)), fragment="")
        return urlunsplit(parts)
    except ValueError:  # a port that is not a number, a host list with a user: that release failed on it
        return None


__all__ = ["DEFAULT_PORT", "LOOPBACK", "former_identity", "store_identity"]
