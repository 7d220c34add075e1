"""The texts the hot path writes faster are the texts it wrote before: an audit entry's data and a
record hash (checked again later against stored rows) equal json.dumps(..., default=str)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from podium.governance.audit import entry_json, record_hash
from podium.records import RunRecord, RunStatus


@pytest.mark.parametrize(
    "value",
    [
        {"workflow": "pay", "version": "1", "input": "ab" * 32, "roles": ["admin", "ops"], "local": True},
        {"workflow": "ödeme \u2028 \"q\" \\ ✓", "status": "completed", "events": 4, "digest": "0" * 64},
        ["in", None, "failed", '{"type": "X"}'],
        {"n": [1, 2.5, -0.0, 1e300, float("nan"), float("inf")], "nested": {"a": {"b": []}}, "t": (1, 2)},
        {"odd": Decimal("1.10"), "obj": object.__name__, 3: "int key", None: "none key"},
        "just text",
        12,
    ],
)
def test_entry_json_writes_what_json_dumps_writes(value: object) -> None:
    assert entry_json(value) == json.dumps(value, default=str)


def test_entry_json_takes_str_of_what_json_cannot_write() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    assert entry_json({"x": Thing()}) == '{"x": "thing!"}'


def test_a_record_hash_is_the_hash_of_the_same_text_as_before() -> None:
    run = RunRecord(
        id="r1", workflow="w", version="1", status=RunStatus.COMPLETED, input='{"a": "é"}', output="[1, 2]",
        error=None, created_at=1.0,
    )  # fmt: skip
    before = hashlib.sha256(json.dumps([run.input, run.output, str(run.status.value), run.error]).encode()).hexdigest()
    assert record_hash(run) == before


def test_the_signing_hmac_is_hmac_sha256() -> None:
    import hmac

    from podium._auditkey import _keyed_hmac

    base = _keyed_hmac(b"k" * 32)
    for body in (b"", b"x" * 63, b"entry\x1f1\x1f" * 40):
        h = base.copy()
        h.update(body)
        assert h.hexdigest() == hmac.new(b"k" * 32, body, hashlib.sha256).hexdigest()
