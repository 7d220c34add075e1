"""A drift diff is shown to ``runs.read`` (the quarantine list) and goes into the log and the step's
error; the values it is about are business data for ``payloads.read`` only. Against a real local
HTTP stand-in."""

from __future__ import annotations

import json
from typing import Any

from podium.connectors import open_connector


async def test_a_drift_diff_never_carries_the_values_it_was_about(tmp_path: Any) -> None:
    """A result that breaks a contract rule other than type, enum or required (a length, a pattern,
    a range) was described with jsonschema's message, which quotes the value."""
    from podium import Client, Workflow
    from podium.connectors._contracts import diff

    from .drift_app import SPEC as DRIFT_SPEC
    from .drift_app import serve

    strict = {
        "type": "object",
        "properties": {"email": {"type": "string", "maxLength": 5}, "age": {"type": "integer", "maximum": 3}},
    }
    found = diff(strict, {"email": "alice.secret@example.com", "age": 987654})
    assert [d.kind for d in found] == ["invalid", "invalid"]
    text = " ".join(d.message for d in found)
    assert "alice.secret" not in text and "987654" not in text
    assert "maxLength" in text and "$.email" in text and "$.age" in text

    api_iter = serve()
    api = next(api_iter)
    try:
        crm = open_connector(
            "openapi", spec=DRIFT_SPEC, base_url=api.url, allow_private=True, on_drift="skip",
            contracts={"getContact": {"type": "object", "properties": {"email": {"type": "string", "maxLength": 5}}}},
        )
        wf = Workflow("sync")

        @wf.step
        async def fetch(ctx: Any, input: Any) -> Any:
            return await ctx.connector("crm").call("getContact", {"id": "1"})

        db = f"sqlite:///{tmp_path}/q.db"
        async with Client(db, workflows=[wf], connectors={"crm": crm}) as local:
            assert await local.run(wf, None) is None  # skipped: quarantined
            await local.create_user("root", ["admin"])
            await local.create_user("vic", ["viewer"])
            token = await local.create_token("vic")
        async with Client(db, token=token) as viewer:
            (item,) = await viewer.quarantine.list()
            assert item.payload is None and item.diff[0]["kind"] == "invalid"
            assert "c1@example.com" not in json.dumps(item.diff)
        await crm.close()
    finally:
        next(api_iter, None)


EMAIL = "ann.secret@example.com"


def test_a_drift_diff_quotes_no_unknown_enum_value_and_no_map_key() -> None:
    """Attack (review): an ``unknown_enum`` drift quoted the value (``$.status is "Ann Secret
    (VIP)"``), and paths through a map keyed by data (``additionalProperties``,
    ``patternProperties``: balances by email) named the key. Both reach ``runs.read`` (the
    quarantine list), logs and failure alerts. The diff still says what, where and how to fix."""
    from podium.connectors._contracts import diff

    status = {"type": "object", "properties": {"status": {"enum": ["active", "inactive"]}}}
    [enum] = diff(status, {"status": "Ann Secret (VIP)"})
    assert enum.kind == "unknown_enum" and enum.path == "$.status" and enum.got == "string"
    assert "Ann Secret" not in json.dumps(enum.to_json())
    assert '"active", "inactive"' in enum.message and "values: {status:" in enum.message

    account = {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}
    by_email = {"type": "object", "properties": {"balances": {"type": "object", "additionalProperties": account}}}
    found = diff(by_email, {"balances": {EMAIL: {"amount": "12"}, "bob.private@example.com": {"amt": 3}}})
    text = json.dumps([d.to_json() for d in found])
    assert EMAIL not in text and "bob.private" not in text, text
    assert {(d.kind, d.path) for d in found} == {("type_changed", "$.balances.*.amount"), ("renamed", "$.balances.*.amount")}

    patterned = {"type": "object", "patternProperties": {"^[a-z.]+@": {"type": "integer"}}, "additionalProperties": False}
    found = diff(patterned, {EMAIL: "x", "Mr Ann Secret": 1})
    text = json.dumps([d.to_json() for d in found])
    assert EMAIL not in text and "Ann Secret" not in text, text
    assert {d.path for d in found} == {"$.*"} and "patternProperties" in text
