"""The store conformance suite, payload redaction (``Store.redact_payloads``, what ``podium memory
forget`` uses): every backend (memory, SQLite, PostgreSQL) must pass all of it."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import time
import uuid

from test_store_conformance import _ev, _run

from podium import _serde
from podium.records import RunStatus


async def test_redact_payloads_rewrites_runs_events_and_signals(store):
    now = time.time()
    ann = {"email": "ann@example.com", "name": "Ann Lee"}
    await store.create_run(
        dataclasses.replace(
            _run("r1", status=RunStatus.FAILED, finished_at=now),
            input=json.dumps(ann),
            output=json.dumps("hi Ann Lee"),
            error="Ann Lee Smith, not Ann Lee",
        ),
        [_ev("r1", 1, "run_started", data=json.dumps(ann)), _ev("r1", 2, data='{"n":1}')],
    )
    await store.send_signal("r1", "reply", json.dumps("from Ann Lee"), now=now)
    await store.create_run(_run("r2"), [_ev("r2", 1, data='"Bo"')])
    await store.send_signal("r2", "reply", None, now=now)
    await store.create_run(_run("r3"))
    await store.send_signal("r3", "contact", json.dumps(ann["email"]), now=now)
    before = {rid: await store.load_events(rid) for rid in ("r1", "r2")}

    done = await store.redact_payloads(["Ann Lee Smith", "ann@example.com", "", "Ann Lee"], "[redacted]")
    # One count per text and row: r1's input holds two of the texts, its error two.
    assert (done.runs, done.events, done.signals) == (5, 2, 2)
    assert done.run_ids == ["r1", "r3"]
    r1 = await store.get_run("r1")
    assert json.loads(r1.input) == {"email": "[redacted]", "name": "[redacted]"}
    assert json.loads(r1.output) == "hi [redacted]" and r1.error == "[redacted], not [redacted]"
    assert (r1.status, r1.workflow, r1.finished_at) == (RunStatus.FAILED, "wf", now)
    events = await store.load_events("r1")
    assert json.loads(events[0].data) == {"email": "[redacted]", "name": "[redacted]"}
    assert events[1] == before["r1"][1]
    assert [(e.seq, e.type, e.ts) for e in events] == [(e.seq, e.type, e.ts) for e in before["r1"]]
    assert await store.get_signals("r1") == {"reply": json.dumps("from [redacted]")}
    assert await store.get_signals("r3") == {"contact": '"[redacted]"'}
    assert (await store.get_run("r2")).input == '{"a":1}'
    assert await store.load_events("r2") == before["r2"] and await store.get_signals("r2") == {"reply": None}
    again = await store.redact_payloads(["Ann Lee", "ann@example.com"], "[redacted]")
    assert (again.runs, again.events, again.signals, again.run_ids) == (0, 0, 0, [])


async def test_redact_payloads_replaces_inside_json_strings_and_leaves_numbers_and_literals(store):
    """Review (attack): redaction replaced plain text over the stored JSON, so a forgotten value that
    also occurred in a number (``123`` in ``41234``), a literal (``true``, ``null``) or structure
    left the payload unparseable, and the run failed when it was read back. Values are replaced
    inside JSON strings, keys too; a number that is the whole value is replaced by the string; other
    numbers and literals are left. A changed payload keeps the encoding it was written with, an
    unchanged one its bytes."""
    now = time.time()
    doc = {"customer": "Ann 123", "amount": 41234, "flag": True, "note": "x", "gone": None, "ref": 123}
    want = {"customer": "Ann [redacted]", "[redacted]": 41234, "flag": True, "note": "x", "gone": None, "ref": "[redacted]"}
    compact, spaced = _serde.dumps(doc), json.dumps(doc)  # as the engine writes payloads / other event data
    error = json.dumps({"type": "ValueError", "message": "no 123 here"})
    await store.create_run(
        dataclasses.replace(_run("n1", status=RunStatus.FAILED, finished_at=now), input=compact, output=spaced, error=error),
        [_ev("n1", 1, "run_started", data=compact), _ev("n1", 2, data=f'{{"started":{now!r},"output":{compact}}}')],
    )  # fmt: skip
    await store.send_signal("n1", "reply", spaced, now=now)
    await store.create_run(dataclasses.replace(_run("n2"), input="41234"), [_ev("n2", 1, data='{"n":41234,"ok":true,"none":null,"t":1.5e3}')])
    await store.send_signal("n2", "reply", "true", now=now)
    before = await store.load_events("n2")

    done = await store.redact_payloads(["123", "true", "null", "amount"], "[redacted]")
    n1 = await store.get_run("n1")
    events = await store.load_events("n1")
    for text in (n1.input, n1.output, n1.error, *(e.data for e in events), *(await store.get_signals("n1")).values()):
        assert json.loads(text), text  # every payload still reads
    assert n1.input == _serde.dumps(want) and n1.output == json.dumps(want)
    assert n1.error == json.dumps({"type": "ValueError", "message": "no [redacted] here"})
    assert events[0].data == _serde.dumps(want)
    assert events[1].data == f'{{"started":{now!r},"output":{_serde.dumps(want)}}}'
    assert _serde.loads(events[1].data)["output"] == want
    assert await store.get_signals("n1") == {"reply": json.dumps(want)}
    assert (await store.get_run("n2")).input == "41234" and await store.load_events("n2") == before
    assert await store.get_signals("n2") == {"reply": "true"}
    assert (done.runs, done.events, done.signals, done.run_ids) == (5, 4, 2, ["n1"])  # per text and row


@dataclasses.dataclass
class _Who:
    name: str
    n: int


async def test_redact_payloads_finds_escaped_and_non_ascii_values_and_keeps_type_tags(store):
    """Review (attack): a value holding a quote, a backslash or a non-ASCII character is stored
    escaped inside a JSON string (``\\"``, ``\\\\``, ``\\u00eb`` when written ASCII-only): it is
    found and replaced there, whichever way the payload was encoded. Podium's type tags keep their
    structure (the ``$podium`` key, the tag, the type, a dataclass's field names): a decimal, a UUID
    or a date that merely contains a value still reads back; one that is the whole value is
    replaced by the string, like a number."""
    now = time.time()
    zoe, home = 'Zoë "Z" Brontë', "C:\\Users\\zoe"
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    doc = {"name": zoe, "home": home, "paid": decimal.Decimal("41234.5"), "ref": decimal.Decimal("123"),
           "id": ident, "on": datetime.date(2024, 1, 23), "who": _Who(name=f"{zoe} jr", n=123)}  # fmt: skip
    stored = _serde.dumps(doc)
    assert zoe not in stored and "\\u00eb" not in stored  # escaped quotes, raw non-ASCII
    plain = {"name": zoe, "home": home}
    await store.create_run(
        dataclasses.replace(_run("z1"), input=stored),
        [_ev("z1", 1, data=json.dumps(plain)), _ev("z1", 2, data=json.dumps(plain, ensure_ascii=False))],
    )
    await store.send_signal("z1", "reply", json.dumps(f"{home} of {zoe}", separators=(",", ":")), now=now)

    done = await store.redact_payloads([zoe, home, "123", "name", "podium", "dataclass", "1-23"], "[redacted]")
    raw = json.loads((await store.get_run("z1")).input)
    assert raw["who"]["$podium"] == "dataclass" and raw["who"]["type"].endswith(":_Who")
    assert raw["who"]["value"] == {"name": "[redacted] jr", "n": "[redacted]"}  # field names kept
    got = _serde.loads((await store.get_run("z1")).input)
    assert got["[redacted]"] == got["home"] == "[redacted]" and "name" not in got
    assert got["who"] == _Who(name="[redacted] jr", n="[redacted]")  # type: ignore[arg-type]
    assert (got["paid"], got["ref"], got["id"], got["on"]) == (decimal.Decimal("41234.5"), "[redacted]", ident, datetime.date(2024, 1, 23))
    events = await store.load_events("z1")
    assert events[0].data == json.dumps({"[redacted]": "[redacted]", "home": "[redacted]"})
    assert events[1].data == json.dumps({"[redacted]": "[redacted]", "home": "[redacted]"}, ensure_ascii=False)
    assert await store.get_signals("z1") == {"reply": '"[redacted] of [redacted]"'}
    assert (done.runs, done.events, done.signals, done.run_ids) == (4, 6, 2, ["z1"])


async def test_redact_payloads_reaches_deeply_nested_payloads(store):
    """Review (attack): a run input nested a few hundred levels deep, which every store keeps and
    the engine reads, made ``redact_payloads`` raise RecursionError, so ``forget`` left every run's
    payloads as they were. It is now redacted, and still reads."""
    deep: object = {"name": "Ann Lee"}
    for _ in range(700):
        deep = [deep]
    await store.create_run(dataclasses.replace(_run("deep"), input=_serde.dumps(deep)))
    done = await store.redact_payloads(["Ann Lee"], "[redacted]")
    stored = (await store.get_run("deep")).input
    assert done.run_ids == ["deep"] and "Ann" not in stored and "[redacted]" in stored
    assert _serde.loads(stored)
