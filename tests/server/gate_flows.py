"""A workflow with a data-quality gate, for the dashboard's run page (tests/server/test_dashboard_gates.py)."""

from __future__ import annotations

from typing import Any

import podium
from podium.ml import Gate, Nulls, Range, RowCount, Schema, Unique

GATE = Gate(
    name="customers",
    rows="rows",
    report="quality",
    role="data-steward",
    rules=[
        Schema(columns={"customer_id": "str", "monthly_charges": "number", "plan": "str?"}),
        Unique(columns=["customer_id"], on="quarantine"),
        Range(column="monthly_charges", min=0, max=1000, on="quarantine"),
        Nulls(column="plan", max_rate=0.05, on="warn"),
        RowCount(min=5),
    ],
)

batch = podium.Workflow("batch", description="a batch of customers behind a data-quality gate")


@batch.step(gate=GATE)
def load(input: dict[str, Any]) -> dict[str, Any]:
    """The batch the input describes: ``broken`` renames a column (a changed export)."""
    rows = [
        {"customer_id": f"C{i:03d}", "monthly_charges": 20.0 + i, "plan": None if i % 4 == 0 else "basic"}
        for i in range(12)
    ]
    rows[3]["monthly_charges"] = -5.0  # out of range
    rows[7]["customer_id"] = "C006"  # a duplicate
    if input.get("broken"):
        rows = [{"customer_id": r["customer_id"], "monthly_fee": r["monthly_charges"], "plan": r["plan"]} for r in rows]
    return {"rows": rows}


@batch.step
def use(load: dict[str, Any]) -> int:
    return len(load["rows"])
