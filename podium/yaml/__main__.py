"""``python -m podium.yaml``: rewrite the published JSON Schema files from the current step types."""

from __future__ import annotations

import pathlib

from ._format import schema_text

root = pathlib.Path(__file__).resolve().parents[2]
text = schema_text()
for target in (root / "podium" / "yaml" / "schema.json", root / "docs" / "workflow.schema.json"):
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
