"""Which workflow serves each declared webhook when two declare the same one (``triggers.py``)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("podium.server.triggers")


def served(
    claims: dict[tuple[str, str], dict[str, Any]], held: dict[tuple[str, str], tuple[str, Any]]
) -> tuple[dict[tuple[str, str], tuple[str, Any]], dict[tuple[str, str], list[str]]]:
    """The webhooks served, and those two workflows declare. A workflow deployed later never takes a
    path another one serves (its callers' data would start the newcomer's runs), and a clash never
    stops the server (a deploy from the CLI, read at the next start, would keep it from starting):
    the workflow that held the path keeps it; with no holder (at a start) nobody serves it."""
    hooks, conflicts = {}, {}
    for where, by in claims.items():
        holder = held.get(where, (None, None))[0]
        if len(by) > 1:
            conflicts[where] = sorted(by)
            log.error("workflows %s all declare the webhook %s %s: %s", ", ".join(sorted(by)), *where,
                      f"it stays {holder!r}'s" if holder in by else "none of them is served it")  # fmt: skip
        name = next(iter(by)) if len(by) == 1 else holder
        if name in by:
            hooks[where] = (name, by[name])
    return hooks, conflicts
