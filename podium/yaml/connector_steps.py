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

#: Arguments that are the call's code, not its data: a SQL text, the table, the list of writes and
#: each write's kind and table. From the input, ``WHERE id = {{ input.id }}`` takes ``0 OR 1=1``.
_CODE_ARGUMENTS = ("sql", "table", "writes")
_CODE_OF_A_WRITE = ("op", "table", "key")
#: Arguments that are code for one operation (named in the file): where a broker publishes or reads
#: (an event could pick another topic the connector may use), an upsert's key columns (which rows
#: it overwrites) and the column ``changes`` orders by.
_CODE_OF_AN_OPERATION: dict[str, tuple[str, ...]] = {
    "publish": ("topic", "subject", "routing_key", "exchange", "stream"),
    "read": ("topic", "stream"),
    "fetch": ("stream", "subject"),
    "upsert": ("key",),
    "changes": ("column",),
}


def _code_templates(arguments: Any, operation: Any = None) -> list[Any]:
    """A problem for each argument that is code and a template (``values``, ``where``, ``params``,
    ``rows`` and a message's arguments are data: they may be templates)."""
    from ..governance.capabilities import is_template

    if not isinstance(arguments, Mapping):
        return []
    code = _CODE_ARGUMENTS + (_CODE_OF_AN_OPERATION.get(operation, ()) if isinstance(operation, str) else ())
    found = [  # each write of a list is looked into below
        _code_template(("arguments", k))
        for k in code
        if (is_template if k == "writes" else _holds_template)(arguments.get(k))
    ]
    writes = arguments.get("writes")
    for i, write in enumerate(writes if isinstance(writes, list) else []):
        if is_template(write):  # renders to the input's object, its op and table with it
            found.append(_code_template(("arguments", "writes", i)))
        elif isinstance(write, Mapping):
            found += [
                _code_template(("arguments", "writes", i, k)) for k in _CODE_OF_A_WRITE if _holds_template(write.get(k))
            ]
    # A message written in the file names its target and operation there too, as a direct call's
    # operation (a whole `messages` list from the input is the policy's to bound: allowed_connectors).
    messages = arguments.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(message, Mapping):
            found += [
                _code_template(("arguments", "messages", i, k))
                for k in ("target", "operation")
                if is_template(message.get(k))
            ]
    return found


def _holds_template(value: Any) -> bool:
    """A template, or a list holding one (an upsert's ``key: ["{{ input.k }}"]``)."""
    from ..governance.capabilities import is_template

    return is_template(value) or (isinstance(value, list) and any(is_template(v) for v in value))


def _code_template(at: tuple[str | int, ...]) -> Any:
    from ..governance.capabilities import Use

    if "messages" in at:
        return Use(
            at=at,
            problem=f"an outbox message's {at[-1]} cannot be a template: it chooses which connector and "
            "operation the relay calls later, so the input or a step's output could pick another",
            hint="write it in the file (target: slack, operation: post) and template the message's arguments; "
            "a whole messages list from the input is bounded by the policy's allowed_connectors",
        )
    what = f"{at[-2]}[{at[-1]}]" if isinstance(at[-1], int) else at[-1]
    return Use(
        at=at,
        problem=f"a connector's {what} cannot be a template: it is the call's code, so the input or a "
        "step's output could change what the call does (a SQL text built with '{{ input.id }}' takes "
        "'0 OR 1=1' from an event)",
        hint='write it in the file and pass the values apart: sql: "SELECT ... WHERE id = :id" with '
        'params: {id: "{{ input.id }}"}; a table, a write\'s op, an upsert\'s key columns and a broker\'s topic '
        'or subject are written as names, each write a mapping in the file '
        '(writes: [{op: insert, table: orders, values: "{{ input.row }}"}])',
    )


def _uses(w: Mapping[str, Any]) -> list[Any]:
    from ..governance.capabilities import Use, is_template, templated

    name = w.get("connector")
    # The operation too is written in the file: from the input, it could pick another operation of
    # the same connector (a SQL connector's transact instead of the query the author wrote).
    found = [templated(("operation",), "a connector's operation")] if is_template(w.get("operation")) else []
    arguments = w.get("arguments")
    if is_template(arguments):
        found.append(
            Use(
                at=("arguments",),
                problem="a connector's arguments cannot be a template as a whole: the input could then "
                "give the call's code (a raw sql, a table, a write's op)",
                hint="write the arguments' names in the file and template their values: "
                "arguments: {table: customers, where: {id: \"{{ input.id }}\"}}",
            )
        )
    else:
        found += _code_templates(arguments, w.get("operation"))
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
