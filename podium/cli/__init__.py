"""The ``podium`` command. Kept light at import time: ``podium --help`` must start fast, so each
command imports the engine only when it runs."""

from __future__ import annotations

import sys

import click

from . import (
    _audit,  # noqa: F401  (audit verify/export/checkpoint/rotate-key)
    _config,  # noqa: F401  (config show: the effective settings)
    _connectors,  # noqa: F401  (podium connectors: kinds and registered connectors)
    _db,  # noqa: F401
    _demo,  # noqa: F401  (podium demo: the sandbox company and the scenarios)
    _goals,  # noqa: F401  (capabilities list, goal, plan show: goal-driven orchestration)
    _gov,  # noqa: F401  (users, tokens, approvals, killswitch)
    _kb,  # noqa: F401  (kb ingest/search/list, forget, memory show/prune/erasures)
    _mcp,  # noqa: F401  (podium mcp: workflows and approvals as MCP tools)
    _ml,  # noqa: F401  (podium ml owners: who may change a model)
    _outbox,  # noqa: F401  (podium outbox list/relay/retry: the transactional outbox)
    _policy,  # noqa: F401  (policy list/show/set/clear)
    _prompts,  # noqa: F401  (podium prompts: versioned prompts)
    _quarantine,  # noqa: F401  (podium quarantine list/show/replay, podium connectors learn)
    _runs,  # noqa: F401  (registers the run commands)
    _secrets,  # noqa: F401  (podium secrets: the encrypted secret store)
    _serve,  # noqa: F401  (podium serve: HTTP API, dashboard, triggers)
    _tools,  # noqa: F401  (podium tools: the capability registry of workflow files)
    _work,  # noqa: F401
    _yaml,  # noqa: F401  (validate, graph, init)
)
from ._app import cli, install_aliases

install_aliases()  # the older top-level verbs (show, approve...), hidden, after every command exists


def main() -> None:
    """Entry point of the ``podium`` script."""
    sys.path.insert(0, "")  # workflows are referenced as module:attr relative to the working directory
    try:
        cli.main(standalone_mode=True)
    except click.exceptions.Exit as exc:  # pragma: no cover - click handles this in standalone mode
        sys.exit(exc.exit_code)


__all__ = ["cli", "main"]
