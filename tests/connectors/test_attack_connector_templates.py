"""Attack (eighth session's review): a customer's event chose the SQL a workflow file ran.

``uses: connector`` refused a template in the connector's name and in its operation, but not in
the arguments that are code rather than data: a raw ``sql`` SELECT built with a template
(``WHERE id = {{ input.id }}``) took ``0 OR 1=1`` from an event and returned every customer's row;
``table`` and a ``transact`` write's ``op``/``table`` let the input pick another table or turn an
insert into an update. Now those are written in the file (values go in ``params``, ``values``,
``where``), checked when the file is validated and loaded, with file:line."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from podium import Client
from podium import yaml as podium_yaml
from podium.yaml import _registry
from podium.yaml.connector_steps import connector_step

LOOKUP = """name: lookup
steps:
  - id: q
    uses: connector
    with:
      connector: crm
      operation: query
      arguments:
{arguments}
"""


@pytest.fixture
def kinds() -> Any:
    return _registry.StepTypes([*_registry.builtin_step_types(), connector_step], entry_points=False)


def _flow(arguments: str) -> str:
    return LOOKUP.format(arguments="\n".join("        " + line for line in arguments.splitlines()))


async def test_attack_an_event_cannot_rewrite_the_sql_a_workflow_file_runs(kinds: Any, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "alice"), (2, "bob")])
    flow = _flow('sql: "SELECT name FROM customers WHERE id = {{ input.id }}"')
    problems = podium_yaml.validate_text(flow, "lookup.yaml", registry=kinds)
    assert [(p.line, p.code) for p in problems] == [(9, "capability")], problems
    assert "sql cannot be a template" in problems[0].message
    assert "params" in (problems[0].hint or "")
    with pytest.raises(podium_yaml.WorkflowFileError, match="sql cannot be a template"):
        podium_yaml.load_text(flow, "lookup.yaml", registry=kinds)

    # The way to write it: the SQL in the file, the value a parameter. The injection is a value then.
    safe = _flow('sql: "SELECT name FROM customers WHERE id = :id"\nparams: {id: "{{ input.id }}"}')
    assert podium_yaml.validate_text(safe, registry=kinds) == []
    wf = podium_yaml.load_text(safe, registry=kinds)
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf]) as c:
        await c.add_capability("crm", "connector", {"kind": "sql", "url": f"sqlite:///{tmp_path}/crm.db"})
        assert await c.run(wf, {"id": 1}) == [{"name": "alice"}]
        assert await c.run(wf, {"id": "0 OR 1=1"}) == []


@pytest.mark.parametrize(
    ("arguments", "line", "what"),
    [
        ('table: "{{ input.table }}"\nwhere: {id: 1}', 9, "table"),
        ('sql: "SELECT {% if input.all %}*{% else %}name{% endif %} FROM t"', 9, "sql"),
        ('writes: [{op: "{{ input.op }}", table: orders, values: {id: 1}}]', 9, "op"),
        ('writes:\n  - op: insert\n    table: "{{ input.t }}"\n    values: {id: 1}', 11, "table"),
        ('writes: "{{ input.writes }}"', 9, "writes"),
        # a write that is a template as a whole renders to the input's object: its op and table too
        ('writes: [{op: insert, table: orders, values: {id: 1}}, "{{ input.w }}"]', 9, "writes[1]"),
        ('writes:\n  - "{% if input.x %}{{ input.w }}{% endif %}"', 10, "writes[0]"),
        ('messages: [{target: "{{ input.t }}", operation: post, arguments: {}}]', 9, "target"),
        ('messages:\n  - target: slack\n    operation: "{{ input.op }}"', 11, "operation"),
    ],
)
def test_attack_code_of_a_connector_call_cannot_come_from_a_template(
    kinds: Any, arguments: str, line: int, what: str
) -> None:
    problems = podium_yaml.validate_text(_flow(arguments), "lookup.yaml", registry=kinds)
    assert [p.line for p in problems] == [line], problems
    assert f"{what} cannot be a template" in problems[0].message, problems[0].message


def test_attack_a_connector_call_whose_arguments_are_all_a_template_is_refused(kinds: Any) -> None:
    flow = LOOKUP.replace("      arguments:\n{arguments}", '      arguments: "{{ input.call }}"')
    problems = podium_yaml.validate_text(flow, "lookup.yaml", registry=kinds)
    assert [p.line for p in problems] == [8], problems
    assert "arguments cannot be a template" in problems[0].message


def test_values_may_still_come_from_the_input(kinds: Any) -> None:
    for arguments in (
        'table: customers\nwhere: {id: "{{ input.id }}"}\ncolumns: [name]',
        'sql: "SELECT name FROM customers WHERE id = :id"\nparams: "{{ input.params }}"',
        'writes: [{op: upsert, table: orders, values: "{{ input.row }}", key: [id]}]\n'
        'messages: [{target: slack, operation: post, arguments: {text: "{{ input.text }}"}}]',
        'writes: [{op: insert, table: orders, rows: "{{ steps.x.output }}"}]\nmessages: "{{ input.messages }}"',
    ):
        problems = podium_yaml.validate_text(_flow(arguments), registry=kinds)
        assert [p for p in problems if "template" in p.message] == [], (arguments, problems)


def test_columns_named_like_code_hold_data(kinds: Any) -> None:
    flow = _flow('table: audit\nwhere: {op: "{{ input.op }}", table: "{{ input.t }}"}')
    assert podium_yaml.validate_text(flow, registry=kinds) == []
    flow = _flow('writes: [{op: insert, table: audit, values: {op: "{{ input.op }}", sql: "{{ input.q }}"}}]')
    assert podium_yaml.validate_text(flow, registry=kinds) == []


async def test_attack_a_write_given_whole_by_the_input_is_refused(kinds: Any, tmp_path: Path) -> None:
    """Attack (review of the eighth session's fixes): ``op`` and ``table`` were checked in each write
    written as a mapping, but a write that was a template as a whole (``writes: [..., "{{ input.w }}"]``)
    was not looked into; it rendered to the input's object, and an event's
    ``{op: update, table: customers, ...}`` renamed a customer through a file that wrote orders."""
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        db.execute("CREATE TABLE orders (id INTEGER)")
        db.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "alice"), (2, "bob")])
    flow = _flow('writes: [{op: insert, table: orders, values: {id: 1}}, "{{ input.w }}"]').replace(
        "operation: query", "operation: transact"
    )
    problems = podium_yaml.validate_text(flow, "f.yaml", registry=kinds)
    assert [(p.line, p.code) for p in problems] == [(9, "capability")], problems
    assert "writes[1] cannot be a template" in problems[0].message
    with pytest.raises(podium_yaml.WorkflowFileError, match="cannot be a template"):
        podium_yaml.load_text(flow, "f.yaml", registry=kinds)
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert db.execute("SELECT name FROM customers ORDER BY id").fetchall() == [("alice",), ("bob",)]


@pytest.mark.parametrize(
    ("operation", "arguments", "line", "what"),
    [
        # where a broker publishes or reads: an event could pick another topic the connector may use
        ("publish", 'topic: "plant/{{ input.line }}/alerts"\npayload: "{{ input }}"', 9, "topic"),
        ("publish", 'subject: "{{ input.subject }}"\npayload: {}', 9, "subject"),
        ("publish", 'routing_key: "{{ input.queue }}"\npayload: {}', 9, "routing_key"),
        ("publish", 'exchange: "{{ input.x }}"\nrouting_key: orders\npayload: {}', 9, "exchange"),
        ("publish", 'stream: "{{ input.stream }}"\npayload: {}', 9, "stream"),
        ("read", 'topic: "{{ input.topic }}"', 9, "topic"),
        ("fetch", 'stream: ORDERS\nsubject: "{{ input.s }}"', 10, "subject"),
        # an upsert's key columns choose which rows it overwrites; changes' column what it orders by
        ("upsert", 'table: customers\nvalues: "{{ input.row }}"\nkey: "{{ input.key }}"', 11, "key"),
        ("upsert", 'table: customers\nvalues: "{{ input.row }}"\nkey: ["{{ input.key }}"]', 11, "key"),
        ("changes", 'table: customers\ncolumn: "{{ input.column }}"', 10, "column"),
        ("transact", 'writes: [{op: upsert, table: orders, values: {id: 1}, key: "{{ input.k }}"}]', 9, "key"),
    ],
)
def test_attack_broker_topics_and_sql_key_columns_cannot_come_from_a_template(
    kinds: Any, operation: str, arguments: str, line: int, what: str
) -> None:
    """Attack (second review of the eighth session's fixes): a broker's topic or subject, an upsert's
    ``key`` and ``changes``' ``column`` could be templates, so an event chose where a message went or
    which rows an upsert overwrote. Refused at validation and load, with file:line."""
    flow = _flow(arguments).replace("operation: query", f"operation: {operation}")
    problems = podium_yaml.validate_text(flow, "publish.yaml", registry=kinds)
    assert [p.line for p in problems] == [line], problems
    assert f"{what} cannot be a template" in problems[0].message, problems[0].message
    with pytest.raises(podium_yaml.WorkflowFileError, match=f"publish.yaml:{line}.*{what} cannot be a template"):
        podium_yaml.load_text(flow, "publish.yaml", registry=kinds)


def test_a_mails_subject_a_payload_and_a_messages_key_may_still_come_from_the_input(kinds: Any) -> None:
    for operation, arguments in (
        ("send", 'to: "{{ input.email }}"\nsubject: "{{ input.subject }}"\nbody: "{{ input.body }}"'),
        ("publish", 'topic: plant/line1/alerts\npayload: "{{ input }}"\nheaders: {k: "{{ input.k }}"}'),
        ("transact", 'messages: [{target: slack, operation: post, key: "{{ input.k }}", arguments: {}}]'),
        ("upsert", 'table: customers\nvalues: "{{ input.row }}"\nkey: [id]'),
    ):
        flow = _flow(arguments).replace("operation: query", f"operation: {operation}")
        problems = podium_yaml.validate_text(flow, registry=kinds)
        assert [p for p in problems if "template" in p.message] == [], (arguments, problems)
