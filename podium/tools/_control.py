"""Control powers no model may hold: deciding approvals, changing policy, managing users, tokens and
roles, setting kill switches, raising budgets, registering capabilities.

An agent given a toolset that happens to offer one (Podium's own MCP server offers
``decide_approval``) never sees it: :func:`without_control` drops such tools before the model is
told what it may call. Planners use the same test for the skills they may name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTROL_WORDS = (
    "approv", "decide", "decision", "polic", "kill", "switch", "grant", "revoke", "token", "role", "users",
    "create_user", "disable_user", "budget", "capabilit", "permission",
)


def is_control_name(name: str) -> bool:
    """Whether ``name`` names a control power (approvals, policy, users, kill switches, budgets)."""
    low = name.lower().replace("-", "_")
    return any(word in low for word in CONTROL_WORDS)


def without_control(tools: Mapping[str, Any]) -> dict[str, Any]:
    """``tools`` less those whose name (or name on their server) is a control power."""
    return {
        name: t
        for name, t in tools.items()
        if not is_control_name(name) and not is_control_name(str(getattr(t, "remote_name", "")))
    }
