"""The approvals inbox read from the store: a page of open requests, each as a dict."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NotFound
from ..storage._base import MAX_APPROVALS_PAGE

if TYPE_CHECKING:
    from ..storage import Store


async def open_requests(
    store: Store, run_id: str | None, workflow: str | None, limit: int, after: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """A page of the approvals inbox as stored, payloads included (:meth:`Governance.approvals`
    checks the permissions and hides what its caller may not see)."""
    if not 1 <= limit <= MAX_APPROVALS_PAGE:
        raise ConfigError(
            f"approvals: limit must be 1 to {MAX_APPROVALS_PAGE} requests a page, got {limit}; "
            "read further pages with after=<the last request of the previous page>"
        )
    position = None
    if after is not None:
        try:
            position = (float(after["requested_at"]), str(after["run_id"]), str(after["name"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"approvals: after={after!r} is not an approval request; pass the last request "
                "(a dict with requested_at, run_id and name) of the previous page"
            ) from exc
    found = await store.open_approvals(run_id=run_id, workflow=workflow, after=position, limit=limit)
    inbox = []
    for a in found:
        ev = a.event
        data = json.loads(ev.data or "{}")
        info = data.get("approval")
        inbox.append(
            {
                "run_id": ev.run_id,
                "workflow": a.workflow,
                "step": ev.step.split("/", 1)[0] if ev.step else None,
                "name": a.name,
                "seq": ev.seq,
                "requested_at": ev.ts,
                "deadline": data.get("deadline"),
                **(info if isinstance(info, dict) else {}),
            }
        )
    return inbox


#: What a request's name gains when its step asks again under that name about another question
#: (``NAME@DIGEST``, engine/context.py ``approval``; again in engine/waits.py: ``NAME@D1@D2``).
_ASKED_AGAIN = re.compile(r"(?:@[0-9a-f]{16})+")
#: How a caller picks one request: by the number the inbox shows it with (``#``, its ``seq``).
_PICK = "pick one by its number (# in 'podium approvals'): --seq N on the command line, \"request\": N over the API and MCP"


def of_approval(name: str, asked: str) -> bool:
    """Whether the open request ``asked`` is one of approval ``name``'s: ``name`` itself, or one its
    step asked under that name about another question (``NAME@DIGEST``). A name holding ``@`` of
    its author's (``approval:pay@eu``) is another approval."""
    return asked == name or (asked.startswith(name + "@") and _ASKED_AGAIN.fullmatch(asked, len(name)) is not None)


Page = Callable[[int, "Mapping[str, Any] | None"], Awaitable[list[dict[str, Any]]]]


async def every_page(page: Page) -> list[dict[str, Any]]:
    """Every open request that ``page(limit, after)`` reads a page at a time, oldest first (a run
    may ask many at once: a decision by number looks for it in all of them)."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        got = await page(MAX_APPROVALS_PAGE, after)
        out += got
        if len(got) < MAX_APPROVALS_PAGE:
            return out
        after = got[-1]


async def requests_of(store: Store, run_id: str, name: str) -> list[dict[str, Any]]:
    """The open requests of approval ``name`` of run ``run_id``, oldest first, from every page (a
    run may ask many at once), payloads included."""
    every = await every_page(lambda limit, after: open_requests(store, run_id, None, limit, after))
    return [a for a in every if of_approval(name, a["name"])]


#: How many requests an error lists by number (a run may ask hundreds at once).
LISTED = 20


def listed(asked: Sequence[Mapping[str, Any]]) -> str:
    """``#12 approval:pay, #13 approval:pay@...``: the requests as the inbox numbers them (the first
    :data:`LISTED`, then how many more)."""
    shown = ", ".join(f"#{a.get('seq')} {a['name']}" for a in asked[:LISTED])
    more = len(asked) - LISTED
    return shown if more <= 0 else f"{shown} and {more} more (the inbox lists each with its #)"


async def choose(page: Page, run_id: str, request: int | None) -> tuple[str, int | None]:
    """``(name, request)`` of the request that a decision naming only run ``run_id`` (and maybe the
    request's number, ``request``) goes to, from the run's open requests (``page(limit, after)``, as
    ``Client.approvals`` reads them): the one numbered ``request``, else the only one open, bound to
    its number, so that a request the run asks after this lookup is never decided by it. Several
    open and none numbered: :class:`~podium.ConfigError` listing them, nothing chosen. The CLI
    (``podium approvals approve RUN``) and MCP (``decide_approval`` without ``name``) call this; the
    decision itself then goes through :meth:`Governance.decide` (:func:`pick`)."""
    pending = await every_page(page)
    if not pending:
        raise NotFound(f"run {run_id} has no open approval request; see the inbox ('podium approvals', MCP list_approvals)")
    numbered = [a for a in pending if request is not None and a.get("seq") == request]
    if len(pending) > 1 and not numbered:  # none is chosen for the approver: each asks its own question
        raise ConfigError(
            f"run {run_id} has {len(pending)} open approval requests: {listed(pending)}; nothing was decided: {_PICK}, "
            "or by its name (--request NAME on the command line, \"name\" over MCP)"
        )
    found = (numbered or pending)[0]
    return str(found["name"]), request if request is not None else found.get("seq")


def pick(run_id: str, name: str, asked: Sequence[dict[str, Any]], request: int | None) -> dict[str, Any]:
    """The request of approval ``name`` (its open ones: ``asked``) that a decision goes to: the one
    numbered ``request``, else the one named ``name`` when it is the only one open. Never one of
    several chosen for the caller: each asks its own question (another payload, title or role)."""
    if request is not None:
        for a in asked:
            if a.get("seq") == request:
                return a
        if not asked:
            raise NotFound(f"run {run_id} has no open approval request {name!r}; see them with 'podium approvals'")
        now = (f"the open one is request {asked[0].get('seq')}, whose payload may differ" if len(asked) == 1
               else f"the open ones are {listed(asked)}, whose payloads may differ")  # fmt: skip
        raise NotFound(
            f"run {run_id} has no open approval request {name!r} asked as request {request}: it was decided, "
            f"timed out or asked again ({now}); nothing was decided: read the inbox again and decide what it shows"
        )
    if len(asked) > 1:
        raise ConfigError(
            f"run {run_id} has {len(asked)} open requests of approval {name!r}, one per question its step asked: "
            f"{listed(asked)}; nothing was decided: {_PICK}"
        )
    if asked and asked[0]["name"] == name:
        return asked[0]
    if asked:  # NAME was decided (or timed out); NAME@DIGEST asks another question: not taken for it
        raise NotFound(
            f"run {run_id} has no open approval request {name!r}; its open request asks another question: "
            f"{listed(asked)}; nothing was decided: read it in the inbox and, to decide it, {_PICK}"
        )
    raise NotFound(f"run {run_id} has no open approval request {name!r}; see them with 'podium approvals'")
