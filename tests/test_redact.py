"""Erasure inside stored JSON (podium/_redact.py) by itself; the stores and ``forget`` use it in
tests/test_store_redaction.py, tests/test_memory_conformance.py and tests/test_memory_steps.py."""

from __future__ import annotations

import json

import pydantic

from podium import _serde
from podium._redact import redact_stored, stored_forms

R = "[redacted]"


class Card(pydantic.BaseModel):
    holder: str
    number: int


def test_strings_and_keys_change_numbers_and_literals_stay():
    text = '{"Ann 123":[123,41234,-123,12.50,12.5,true,null,"true null 123"],"ok":false}'
    new, hits = redact_stored(text, ["123", "12.50", "true", "null", "false", ""], R)
    assert json.loads(new) == {f"Ann {R}": [R, 41234, -123, R, 12.5, True, None, f"{R} {R} {R}"], "ok": False}
    assert hits == 4  # 123, 12.50, true, null: false is only a literal
    assert redact_stored("123", ["123"], R) == (json.dumps(R), 1)  # the whole payload is the value
    assert redact_stored(text, ["41"], R) == (text, 0)  # untouched: the same text, not re-encoded


def test_text_that_is_not_json_is_replaced_as_text():
    assert redact_stored("Ann 123 failed: {bad", ["Ann 123", "123"], R) == (f"{R} failed: {{bad", 1)


def test_a_changed_payload_keeps_its_encoding():
    doc = {"name": "Zoë Ann", "n": [1, 2.5], "t": "x"}
    want = {"name": f"Zoë {R}", "n": [1, 2.5], "t": "x"}
    for dump in (_serde.dumps, json.dumps, lambda v: json.dumps(v, ensure_ascii=False)):
        assert redact_stored(dump(doc), ["Ann"], R) == (dump(want), 1)
    mixed = '{"name": "Ann","t":"x"}'  # no encoder writes this: Podium's own (compact)
    assert redact_stored(mixed, ["Ann"], R) == (f'{{"name":"{R}","t":"x"}}', 1)


def test_escaped_values_are_found_and_matched_decoded():
    value = 'Zoë "Z" C:\\zoe'
    forms = stored_forms([value, ""])
    assert forms == [value, 'Zoë \\"Z\\" C:\\\\zoe', 'Zo\\u00eb \\"Z\\" C:\\\\zoe']
    for stored in (_serde.dumps({"v": value}), json.dumps({"v": value})):
        assert any(f in stored for f in forms)
        assert json.loads(redact_stored(stored, [value], R)[0]) == {"v": R}
    # forget's escaped form (for plain text that quotes JSON) matches a string holding that JSON
    quoted = json.dumps({"raw": json.dumps({"v": value})})
    assert json.loads(json.loads(redact_stored(quoted, [json.dumps(value)[1:-1]], R)[0])["raw"]) == {"v": R}


def test_type_tags_keep_their_shape():
    stored = _serde.dumps(
        {
            "card": Card(holder="Ann 123", number=123),
            "blob": b"Ann 123",
            "data": {"$podium": "Ann 123", "number": 123},  # data holding the tag key: a dict tag
            "set": {"Ann 123"},
        }
    )
    new, hits = redact_stored(stored, ["Ann 123", "123", "holder", "number", "QW5u"], R)
    raw = json.loads(new)
    assert raw["card"]["$podium"] == "pydantic" and raw["card"]["value"] == {"holder": R, "number": R}
    assert raw["blob"] == json.loads(stored)["blob"] == {"$podium": "bytes", "b64": "QW5uIDEyMw=="}
    got = _serde.loads(new)
    assert got["card"] == {"holder": R, "number": R}  # no longer a valid Card: its plain value
    assert got["blob"] == b"Ann 123" and got["set"] == {R}
    assert got["data"] == {"$podium": R, R: R}  # data holding the tag key: its keys are data
    assert hits == 3  # Ann 123, 123, number (a key of the plain dict)
    assert redact_stored(stored, ["$podium", "podium", "pydantic", "value", "items"], R)[1] == 1  # data's own key
    assert redact_stored(_serde.dumps(Card(holder="x", number=1)), ["podium", "pydantic", "value", "Card"], R)[1] == 0


def test_deeply_nested_json_is_redacted_not_a_recursion_error():
    """Review (attack): a payload nested a few hundred levels deep (any run input, a signal, JSON a
    tool fetched) stores and reads back, but redaction walked it recursively and raised
    RecursionError: ``forget`` stopped after deleting the entity from memory, with the run store
    unredacted, and a second ``forget`` no longer knew the entity's name. Such a payload is now
    redacted inside its strings and whole numbers, and still reads."""
    deep: object = {"name": "Ann Lee", "ref": 4711, "n": 47110}
    for _ in range(700):
        deep = [deep]
    stored = _serde.dumps(deep)
    new, hits = redact_stored(stored, ["Ann", "4711"], R)
    assert hits == 2 and "Ann" not in new
    inner = _serde.loads(new)
    for _ in range(700):
        inner = inner[0]
    assert inner == {"name": f"{R} Lee", "ref": R, "n": 47110}
    ascii_only = json.dumps(deep).replace("Ann", "Zo\\u00eb")  # written ASCII-only, as json.dumps does
    new, hits = redact_stored(ascii_only, ["Zoë"], R)
    assert hits == 1 and new.isascii() and "u00eb" not in new and json.loads(new)
    # deeper than the caller's stack leaves room to decode (a fresh stack decodes it), or deeper
    # than any stack (no process reads it: replaced as text)
    for depth in (985, 5000):
        new, hits = redact_stored("[" * depth + '"Ann Lee"' + "]" * depth, ["Ann"], R)
        assert (hits, new) == (1, "[" * depth + f'"{R} Lee"' + "]" * depth)


def test_forget_finds_a_value_in_json_text_inside_json_text():
    """Review (attack): a step output that is a JSON text holding JSON text (a model API's raw
    answer: its tool call's ``arguments`` are a JSON string) keeps a non-ASCII or quoted value
    escaped twice (``M\\\\u00fcller``): neither the candidate search nor the match found it, and
    ``forget`` left it. forget's forms now include the value escaped twice."""
    from podium.memory._lifecycle import _forms

    for value in ("Müller", 'Bob "B" Smith'):
        inner = json.dumps({"name": value})
        stored = _serde.dumps({"raw": json.dumps({"tool": {"arguments": inner}})})
        forms = _forms([value])
        assert any(f in stored for f in stored_forms(forms)), value
        new, hits = redact_stored(stored, forms, R)
        assert hits and json.loads(json.loads(json.loads(new)["raw"])["tool"]["arguments"]) == {"name": R}
