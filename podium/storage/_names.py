"""The schema in a store's name: two stores in two schemas of one database never share a name.

A store's name (:func:`podium._auditkey.store_identity`) keys its pin and head log on a machine,
and leaves the URL's user out: roles of one database reach one store. Not always: PostgreSQL's
default search path is ``"$user", public``, so a role owning a schema named after it has Podium's
tables made and read there (as does a search path set by ``ALTER ROLE``), another store than the
one in ``public``. Two stores under one name is a way past the pin: the one made by an open (a new
id) pins its id under the other's name, whose database, its id row set to that id by whoever
writes it, then passes (``tests/test_attack_schema_names.py``).

So at each open the store reads where its tables are (:data:`PLACEMENT`: the schema of the ``kv``
table its id is in, as its search path finds it); when that is not the schema its name implies
(:func:`implied_schema`: ``public``, or the first schema of the search path its options set), the
name gains it (:func:`in_schema`). Two names then never meet: the same name is the same name
before, and the same schema (the implied one, or the one written in it). A store in ``public``, or
in the schema its options choose, keeps its name as before.

Pins and head logs under a name without the schema (the previous release's, or an earlier one's)
are moved to the name with it only where no other schema of the database holds Podium's tables
(:data:`PLACEMENT`'s second column): that name could be theirs (production's in ``public``), and
moving production's pin to a role's schema would give that schema production's id
(``podium/storage/_identity.py::adopt_former_names``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

SCHEMA = "#schema="
"""What a name gains before the schema (quoted: never in a name without one, whose parts are
percent-encoded)."""

OBJECTS = ("approvals", "audit", "audit_seq", "events", "kv", "runs", "schema_migrations", "signals")
"""The tables and sequences of a store (its functions are named ``podium_``): each is reached by the
search path, so each is checked for one of the same name before it (:data:`PLACEMENT`)."""

_KV = "WITH k AS (SELECT c.relnamespace AS ns FROM pg_class c WHERE c.oid = to_regclass('kv')) "
_HIDDEN = (
    "ARRAY(SELECT quote_ident(n.nspname) || '.' || c.relname || ' hides ' || c.relname FROM pg_class m JOIN k ON "
    "m.relnamespace = k.ns JOIN pg_class c ON c.oid = to_regclass(quote_ident(m.relname)) JOIN pg_namespace n ON "
    "n.oid = c.relnamespace WHERE m.relname::text = ANY(%s) AND m.relkind <> 'i' AND c.oid <> m.oid) || "
    "ARRAY(SELECT quote_ident(n.nspname) || '.' || p.proname || ' hides ' || p.proname FROM pg_proc f JOIN k ON "
    "f.pronamespace = k.ns JOIN pg_proc p ON p.oid = to_regprocedure(quote_ident(f.proname) || '(' || "
    "oidvectortypes(f.proargtypes) || ')') JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE f.proname LIKE 'podium\\_%%' AND p.oid <> f.oid)"
)
PLACEMENT = (
    _KV + ", s AS (SELECT COALESCE((SELECT n.nspname::text FROM pg_namespace n JOIN k ON n.oid = k.ns), "
    "current_schema()::text) AS name) "
    "SELECT s.name, ARRAY(SELECT DISTINCT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = 'schema_migrations'), "
    "(SELECT pg_get_userbyid(n.nspowner) = current_user FROM pg_namespace n WHERE n.nspname = s.name), "
    + _HIDDEN + " FROM s"
)
"""(the schema of the ``kv`` table this connection's search path finds, else the one it makes
tables in; every schema of the database with a ``schema_migrations`` table: a Podium store's, or
another application's, counted alike to be safe; whether the connecting role owns the schema; the
objects of the store the search path finds elsewhere first), parameter :data:`OBJECTS`."""


class Placement(NamedTuple):
    """Where a store's tables are (:meth:`podium.storage.Store.placement`)."""

    schema: str | None
    """The schema its tables are in; None: its URL alone names them (SQLite, memory)."""
    others: frozenset[str] = frozenset()
    """The other schemas of its database that may hold a Podium store."""
    owned: bool = True
    """Whether the role it connects as owns that schema (a role's own, made ``AUTHORIZATION`` it). One
    named after the role by someone else (who may create schemas) is not taken for it: a new store made
    there is refused while the URL's store is pinned (``podium/storage/_identity.py::bind``)."""
    hidden: tuple[str, ...] = ()
    """Objects of the store that its search path finds in another schema first (``"S.runs hides
    runs"``): the schema of ``kv`` names the store, the others are reached one by one, so one of the
    same name in a schema before it (named after the role by whoever may create schemas) would be
    read and written instead. The store is then not opened (``_identity.bind``)."""


def placement_of(row: Sequence[Any] | None) -> Placement:
    """(the store's schema, the other schemas of its database that may hold a Podium store, whether
    its role owns that schema) from :data:`PLACEMENT`'s row."""
    if not row:
        return Placement(None)
    schema = None if row[0] is None else str(row[0])
    owned = len(row) < 3 or row[2] is not False
    hidden = tuple(str(h) for h in row[3] or ()) if len(row) > 3 else ()
    return Placement(schema, frozenset(str(s) for s in row[1] or ()) - {schema}, owned, hidden)


def in_schema(name: str, schema: str | None) -> str:
    """``name`` (:func:`podium._auditkey.store_identity`) of a store whose tables are in ``schema``
    (None: not known, not a PostgreSQL store): as it is where ``schema`` is the one it implies."""
    if schema is None or not name.startswith("postgresql:") or schema == implied_schema(name):
        return name
    return f"{name}{SCHEMA}{quote(schema, safe='')}"


def implied_schema(name: str) -> str:
    """The schema a PostgreSQL store named ``name`` makes its tables in when its name says nothing
    more: the first schema of the search path its ``options`` set (the last setting of it), an
    identifier not quoted in lower case as PostgreSQL folds it; else ``public``. A search path
    beginning with ``$user`` implies ``$user``, no schema read at open (so the role's schema is
    named). Only keeps names as they were: whatever this returns, two schemas never share a name."""
    options = [v for k, v in parse_qsl(urlsplit(name).query, keep_blank_values=True) if k.lower() == "options"]
    path = None
    words = _split_options(options[-1]) if options else []
    for i, word in enumerate(words):
        if word == "-c" and i + 1 < len(words):
            setting = words[i + 1]
        elif word.startswith("-c") or word.startswith("--"):
            setting = word[2:]
        else:
            continue
        key, eq, value = setting.partition("=")
        if eq and key.strip().lower().replace("-", "_") == "search_path":
            path = value
    if path is None:
        return "public"
    first = path.split(",")[0].strip()
    if len(first) >= 2 and first[0] == first[-1] == '"':
        return first[1:-1].replace('""', '"')
    return first.lower()


def _split_options(text: str) -> list[str]:
    """libpq's ``options`` in words: split at white space, a backslash keeps the next character."""
    words: list[str] = []
    word: list[str] | None = None
    escaped = False
    for ch in text:
        if escaped:
            (word := word if word is not None else []).append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
            word = word if word is not None else []
        elif ch.isspace():
            if word is not None:
                words.append("".join(word))
            word = None
        else:
            (word := word if word is not None else []).append(ch)
    if word is not None:
        words.append("".join(word))
    return words
