"""Which run, and which of its routes, a ``/api/runs/...`` path names: read from the path as sent.

A run id may hold ``/`` (a child run's is ``PARENT.step/NAME``; ids chosen in Python hold anything),
so its last segment may be named like a route of a run (``PARENT.step/events``). Starlette matches
routes on the decoded path, where ``/api/runs/P.s%2Fevents`` and ``/api/runs/P.s/events`` are the
same: the run ``P.s/events`` was read as the events of ``P.s`` (and ``POST /api/runs/A%2Fcancel``
cancelled ``A``). The split is made on the path as sent (ASGI ``raw_path``) instead:

- a ``/`` sent as ``%2F`` is part of the id (``encodeURIComponent``, as the dashboard sends an id):
  ``/api/runs/P.s%2Fevents`` is the run ``P.s/events``;
- a literal ``/`` before a last segment that names a route of this method is that route's:
  ``/api/runs/P.s/events`` is the events of ``P.s``, ``/api/runs/P.s%2Fevents/events`` (or, as
  before, ``/api/runs/P.s/events/events``) the events of ``P.s/events``;
- any other path is the run it spells (``GET /api/runs/P.s/child`` is the run ``P.s/child``).

So a path means one thing whatever runs exist (never "the run if there is one, else the route"),
and every route of every run has a path: its id percent-encoded as one segment. A proxy in front
must pass ``%2F`` through as sent (nginx does with ``proxy_pass http://upstream;``, no URI part).
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import quote, unquote

from fastapi.routing import APIRoute
from starlette.routing import Match, get_route_path

PREFIX = "/api/runs/"
_PARAM = "{run_id:path}"
#: The routes of a run, by HTTP method: the last segment of their paths (``/api/runs/{id}/events``).
#: A route declared without its name here is refused at import (:class:`RunRoute`).
TAILS: dict[str, frozenset[str]] = {
    "GET": frozenset({"events", "stream", "usage", "trace", "plan"}),
    "POST": frozenset({"cancel", "resume", "fork", "signal"}),
}
_KEY = "podium.run_path"


def split(method: str, path: str, raw: str | None = None) -> tuple[str | None, str]:
    """``(route, run id)`` of the ``/api/runs/...`` path ``path`` (decoded) as sent (``raw``, its
    percent-encoded form; None: ``path`` itself, the segments as decoded). ``route`` is None for
    the run itself (``GET /api/runs/{id}``)."""
    rest = (raw if raw is not None else path)[len(PREFIX) :]
    segments = rest.split("/")
    last = unquote(segments[-1])
    if len(segments) > 1 and last in TAILS.get(method, ()):
        return last, unquote("/".join(segments[:-1]))
    return None, unquote(rest)


#: What :func:`as_sent` gives for a path that the server routed under the prefix only once decoded,
#: its ``/`` sent as ``%2F`` (``/api%2Fruns/...``): as sent, no path under the prefix (no route of it serves it).
ELSEWHERE = ""


@functools.cache
def _written(prefix: str) -> re.Pattern[str]:
    """``prefix`` as a client may send it: each of its characters as itself or percent-encoded
    (``/api/run%73/``, routed as ``/api/runs/`` by every server), but each ``/`` as ``/`` only."""
    def one(ch: str) -> str:
        code = "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{ord(ch):02X}")
        return "/" if ch == "/" else f"(?:{re.escape(ch)}|%{code})"

    return re.compile("".join(one(ch) for ch in prefix))


def as_sent(scope: Any, prefix: str) -> str | None:
    """This request's route path from ``prefix`` on as sent (percent-encoded after the prefix, the
    prefix itself written out), where the client's encoding is known: the ASGI server gave
    ``raw_path`` and it decodes to the path routed. A prefix sent with letters percent-encoded is
    found as well (else its ``%2F`` would be read as the decoded path reads it, a separator);
    :data:`ELSEWHERE` for a path whose prefix came with an encoded ``/``; None where ``raw_path``
    is missing or not this path (rewritten on its way): the decoded path is read, as before."""
    sent = scope.get("raw_path")
    if not isinstance(sent, bytes):
        return None
    text = sent.decode("latin-1")
    routed = get_route_path(scope)
    if not unquote(text).endswith(routed):
        return None
    for found in _written(prefix).finditer(text):
        if unquote(text[found.start() :]) == routed:
            return prefix + text[found.end() :]
    return ELSEWHERE


#: :func:`_as_sent` of a path routed under ``/api/runs/`` only once decoded: no route of a run is it.
_NO_RUN = ("/", "")


def _as_sent(scope: Any) -> tuple[str | None, str]:
    """:func:`split` of this request's path, once per request."""
    found: tuple[str | None, str] | None = scope.get(_KEY)
    if found is None:  # as decoded where it was not sent as known (as before)
        sent = as_sent(scope, PREFIX)
        found = scope[_KEY] = _NO_RUN if sent == ELSEWHERE else split(scope["method"], get_route_path(scope), sent)
    return found


class RunRoute(APIRoute):
    """A route of a router that declares ``/api/runs/{run_id:path}...`` routes: those match only the
    path :func:`split` gives them, with its run id; the router's other routes match as usual."""

    def __init__(self, path: str, endpoint: Any, **kw: Any) -> None:
        super().__init__(path, endpoint, **kw)
        self.of_run = path.startswith(PREFIX + _PARAM)
        self.tail = (path[len(PREFIX + _PARAM) :].lstrip("/") or None) if self.of_run else None
        undeclared = [m for m in self.methods or () if self.tail is not None and self.tail not in TAILS.get(m, ())]
        if undeclared:  # split() would never give this route its path
            raise RuntimeError(f"route {path} ({', '.join(undeclared)}): add {self.tail!r} to _run_paths.TAILS")

    def matches(self, scope: Any) -> tuple[Match, Any]:
        match, child = super().matches(scope)
        if match is Match.NONE or not self.of_run or scope["type"] != "http":
            return match, child
        tail, run_id = _as_sent(scope)
        if tail != self.tail:
            return Match.NONE, {}
        child["path_params"] = {**child["path_params"], "run_id": run_id}
        return match, child


def hint(scope: Any) -> str:
    """For a run not found at a route read from a path sent with a bare ``/``: how to name the run
    that path also spells (a child run named like the route), else ``""``."""
    found = scope.get(_KEY)
    if not found or found[0] not in TAILS["GET"] or scope.get("method") != "GET":
        return ""
    tail, run_id = found
    whole = f"{run_id}/{tail}"
    return (
        f"; the last segment {tail!r} was read as the route: for the run {whole!r} itself send its id as one "
        f"path segment, its '/' as %2F: GET {PREFIX}{quote(whole, safe='')}"
    )
