"""Workflows deployed into the store after the server started (``podium workflows deploy`` from
another process, or a rollback): the server looks them up in the store when a request names one it
does not serve, or when the store's active version is not the one it serves, as it does at its start
(``app._load_deployed``), and only after the caller's permission over the workflow."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.workflow import Workflow

log = logging.getLogger("podium.server")


async def serving(client: Any, name: str, version: str | None, permission: str) -> Workflow:
    """The workflow ``name`` at ``version`` (default: the store's active version), loaded from the
    store if this server does not hold it yet; :class:`NotFound` naming what it serves otherwise.
    ``permission`` is checked before anything is loaded; starting a deployed workflow at another
    version than its active one also needs ``workflows.deploy``."""
    registry = client.registry
    if version is not None:
        if permission == "runs.start" and version != (active := await client.deployments.active(name)) and active:
            # another version than the active one (one rolled back, say): a deployer's choice, not a starter's
            await client.authorize("workflows.deploy", f"workflow:{name}")
        stale = registry.get(name, version) is None
    else:
        active = await client.deployments.active(name)  # the version the signed log made active
        latest = registry.latest(name)
        stale = active is not None and (latest is None or latest.version != active)
    if stale:
        await client.authorize(permission, f"workflow:{name}")
        await client.deployments.load_deployed(name, version)  # checked as at the start; None if not deployed
    wf: Workflow = client.workflow(name, version)
    return wf


async def refresh(client: Any, failed: set[tuple[str, str]]) -> None:
    """Serve the active version of every workflow deployed since the start (a listing's view): one
    that does not load is logged (once: ``failed`` remembers it) and left out, as at the start."""
    from ..engine.versions import ACTIVE

    for name in sorted(await client.store.kv_list(ACTIVE)):
        version = await client.deployments.active(name)  # the row, checked against the signed log
        latest = client.registry.latest(name)
        if version is None or (latest is not None and latest.version == version) or (name, version) in failed:
            continue
        try:
            await client.deployments.load_deployed(name)
        except Exception as exc:
            failed.add((name, version))
            log.error("deployed workflow %s version %s does not load: %s", name, version, exc)
