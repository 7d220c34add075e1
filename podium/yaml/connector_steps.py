"""``uses: connector``: one operation of a connector an admin registered, from a workflow file::

    - id: update
      uses: connector
      with:
        connector: crm            # a registered name (podium connectors list --db ...), never a template
        operation: update_contact # written in the file too, never a template
        arguments: {id: "{{ input.id }}", body: {email: "{{ input.email }}"}}

It is shipped in the ``podium.step_types`` entry-point group (pyproject.toml). The name is checked
against the capability registry when the file is validated (with file:line) and again when the step
runs; the call itself is the same durable, audited sub-step as ``ctx.connector(name).call(...)``.
A connector the client holds under that name (``Client(connectors=...)``) is used as it is;
otherwise one is opened from the registered settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._registry import StepType


def _uses(w: Mapping[str, Any]) -> list[Any]:
    from ..governance.capabilities import Use, is_template, templated

    name = w.get("connector")
    # The operation too is written in the file: from the input, it could pick another operation of
    # the same connector (a SQL connector's transact instead of the query the author wrote).
    found = [templated(("operation",), "a connector's operation")] if is_template(w.get("operation")) else []
    if is_template(name):
        return [templated(("connector",), "a connector"), *found]
    if not isinstance(name, str):
        return [Use(at=("connector",), problem=f"connector is a registered name, got {name!r}"), *found]
    return [Use(at=("connector",), kinds=("connector",), name=name), *found]


def _opener(target: dict[str, Any], allow_private: bool, name: str = "") -> Any:
    """A function that opens (once per process and settings) the connector a capability describes."""

    def open_it() -> Any:
        from ..connectors._registry import open_registered

        return open_registered(target, allow_private=allow_private, name=name)

    return open_it


async def _connector(ctx: Any, connector: str, operation: str, arguments: dict[str, Any] | None = None) -> Any:
    """Calls one operation of a registered connector (a durable, audited sub-step)."""
    from ..governance import capabilities as caps

    cap = await caps.require(ctx.store, connector, ("connector",), where=f"step {ctx.step_id!r}")
    bound = ctx.connector(connector, fallback=_opener(cap.target, cap.allow_private, connector))
    return await bound.call(operation, dict(arguments or {}))


connector_step = StepType(
    name="connector",
    fn=_connector,
    args={
        "type": "object",
        "properties": {
            "connector": {"type": "string", "description": "a registered connector's name (not a template)"},
            "operation": {"type": "string", "description": "one of the connector's operations (not a template)"},
            "arguments": {"type": "object", "description": "the operation's arguments"},
        },
        "required": ["connector", "operation"],
        "additionalProperties": False,
    },
    description="Calls one operation of a registered connector.",
    capabilities=_uses,
)
