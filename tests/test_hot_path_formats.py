"""The texts the hot path writes faster are the texts it wrote before: an audit entry's data and a
record hash (checked again later against stored rows) equal json.dumps(..., default=str)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

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


def test_none_is_bound_as_null_through_the_adapter_podium_registers(tmp_path: Path) -> None:
    import podium._sqldb  # noqa: F401  (registers it)

    db = sqlite3.connect(tmp_path / "n.db")
    db.execute("CREATE TABLE t (a, b TEXT, c INTEGER)")
    db.execute("INSERT INTO t VALUES (?, ?, ?)", (None, None, None))
    db.execute("INSERT INTO t VALUES (:a, :b, :c)", {"a": None, "b": "x", "c": 0})
    assert db.execute("SELECT typeof(a), typeof(b), typeof(c) FROM t").fetchall() == [
        ("null", "null", "null"),
        ("null", "text", "integer"),
    ]
    assert db.execute("SELECT count(*) FROM t WHERE a IS NULL AND ? IS NULL", (None,)).fetchone() == (2,)


def test_a_programs_own_adapter_for_none_is_kept() -> None:
    code = (
        "import sqlite3\n"
        "sqlite3.register_adapter(type(None), lambda v: 'mine')\n"
        "import podium._sqldb\n"
        "print(sqlite3.connect(':memory:').execute('SELECT ?', (None,)).fetchone()[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.stdout.strip() == "mine"


def test_an_event_types_member_is_stored_as_its_plain_text() -> None:
    from podium.records import Event, EventType
    from podium.storage.sqlite import _event_row

    row = _event_row(Event(run_id="r", seq=1, type=EventType.RUN_COMPLETED, ts=1.5))
    assert row[2] == "run_completed" and type(row[2]) is str
    assert _event_row(Event(run_id="r", seq=2, type="step_completed", ts=1.5))[2] == "step_completed"

