"""A halted gate's approval title is read with ``approvals.read`` (a viewer), and a rejected gate's
step error goes to logs and failure alerts; the rows are business data for ``payloads.read`` only.
The rule details quoted the offending value (``salary=-987654``, ``'SSN-123-45-6789' is not of
type``), so a viewer read them in the title, and the error carried them out."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("scipy", reason="gates need the ml extra: pip install 'podium[ml]'")

from podium import Client
from podium.ml import Gate, Range, Schema

from .test_gates import _approval, loader

SECRET_NUMBER = -987654
SECRET_TEXT = "SSN-123-45-6789"


def _rows() -> list[dict]:
    rows = [{"id": f"e{i}", "salary": 50_000 + i, "ssn": i} for i in range(5)]
    rows[2]["salary"] = SECRET_NUMBER
    rows[3]["ssn"] = SECRET_TEXT
    return rows


@pytest.mark.parametrize(
    "rule",
    [
        Range(column="salary", min=0, on="halt"),
        Schema(columns={"id": "str", "salary": "int", "ssn": "int"}, on="halt"),
        Schema(json_schema={"type": "object", "properties": {"ssn": {"type": "integer"}}}, on="halt"),
    ],
    ids=["range", "columns", "json_schema"],
)
async def test_a_viewer_never_reads_the_values_a_gate_stopped_on(tmp_path: Path, rule: object) -> None:
    db = f"sqlite:///{tmp_path}/g.db"
    wf = loader(Gate(name="payroll", rules=[rule]))  # type: ignore[list-item]
    async with Client(db) as admin:
        await admin.create_user("root", ["admin"])
        await admin.create_user("vic", ["viewer"])
        token = await admin.create_token("vic")
        handle = await admin.start(wf, _rows())
        req = await _approval(admin, handle.id)
        assert req["payload"]["failed"][0]["examples"]  # the person deciding sees the rows (payloads.read)
        async with Client(db, token=token) as viewer:
            [seen] = await viewer.approvals(run_id=handle.id)
            assert seen["payload"] is None
            assert "halted step 'load'" in seen["title"] and ("row 2" in seen["title"] or "row 3" in seen["title"])
            assert str(SECRET_NUMBER) not in seen["title"] and SECRET_TEXT not in seen["title"]
        await admin.decide(handle.id, req["name"], approve=False, comment="wrong export")
        rec = await admin.wait(handle.id, timeout=60)
        assert rec.status.value == "failed" and "wrong export" in (rec.error or "")
        assert str(SECRET_NUMBER) not in (rec.error or "") and SECRET_TEXT not in (rec.error or "")


EMAIL = "ann.secret@example.com"


def _detail(rule: Schema, rows: list[dict]) -> str:
    (report,) = Gate(rules=[rule]).evaluate(rows, {})["rules"]
    assert not report["ok"]
    return str(report["detail"])


def test_a_schema_rule_names_no_data_bearing_key() -> None:
    """Attack (review): records keyed by data (a column per email, balances by email) had the
    ``Schema`` rule name the key: "unexpected ann.secret@example.com", a jsonschema or pydantic
    path ``balances.ann.secret@example.com``. The detail goes to approval titles (viewers) and
    step errors; it still says what is wrong, where, and how to fix it."""
    from pydantic import BaseModel

    class Payroll(BaseModel):
        balances: dict[str, int]

    columns = _detail(Schema(columns={"id": "str"}), [{"id": "e1", EMAIL: 1}])
    assert EMAIL not in columns and "1 column(s) the contract does not name" in columns and "extra=True" in columns
    by_email = {"type": "object", "properties": {"balances": {"type": "object", "additionalProperties": {"type": "integer"}}}}
    js = _detail(Schema(json_schema=by_email), [{"balances": {EMAIL: "12"}}])
    assert EMAIL not in js and "row 0: balances.* breaks the schema's rule type" in js
    patterned = {"type": "object", "patternProperties": {"@": {"type": "integer"}}}
    assert EMAIL not in _detail(Schema(json_schema=patterned), [{EMAIL: "12"}])
    model = _detail(Schema(model=Payroll), [{"balances": {EMAIL: "twelve"}}])
    assert EMAIL not in model and "twelve" not in model and "balances.*" in model and "int_parsing" in model
