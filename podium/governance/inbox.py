"""The approvals inbox read from the store: a page of open requests, each as a dict."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
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
