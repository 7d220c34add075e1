"""Attack (eighth session's review): a customer's NaN past the limits every other surface keeps.

The HTTP API refuses JSON with ``NaN``/``Infinity`` or nested deeper than 64 levels before any route
runs, but only for a JSON content type: a webhook reads its raw body whatever the type says, so
``Content-Type: text/plain`` with ``{"amount": NaN}`` started a run, and a broker message (AMQP,
MQTT, NATS, Redis) was never checked at all. NaN is neither above nor below any limit: a file's
``amount > 1000`` and ``amount <= 1000`` are both false, so a check written either way (an approval
above a limit, a fast path below it) let the payment through unchecked. Now ``Client.start`` and
``Client.fork`` refuse such an input on every surface (the webhook says 422 naming the field; a
broker message is dead-lettered), and the webhook parses its body with the shared limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium import Client, InputValidationError
from podium import yaml as podium_yaml


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


FLOW = """name: pay
triggers:
  - webhook: /hooks/pay
steps:
  - id: check
    uses: set
    with:
      needs_approval: "{{ input.amount > 1000 }}"
      fast_path: "{{ input.amount <= 1000 }}"
"""


async def test_attack_a_webhook_sent_as_text_cannot_carry_nan(server: Any, store_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "pay.yaml"
    flow.write_text(FLOW)
    async with server(store_url, workflows=[str(flow)]) as (app, http):
        for body, field in (('{"amount": NaN}', "amount"), ('{"amount": -Infinity}', "amount")):
            r = await http.post("/hooks/pay", content=body.encode(), headers={"Content-Type": "text/plain"})
            assert r.status_code == 422, r.text
            message = r.json()["error"]["message"]
            assert field in message and ("NaN" in message or "Infinity" in message), message
        deep = "[" * 200 + "]" * 200
        r = await http.post("/hooks/pay", content=deep.encode(), headers={"Content-Type": "text/plain"})
        assert r.status_code == 422 and "nested deeper" in r.json()["error"]["message"], r.text
        huge = "[" * 100_000 + "]" * 100_000  # beyond the parser's recursion: refused before it parses
        r = await http.post("/hooks/pay", content=huge.encode(), headers={"Content-Type": "text/plain"})
        assert r.status_code == 422 and "Traceback" not in r.text, r.text
        assert await app.state.client.store.list_runs() == []
        ok = await http.post("/hooks/pay", content=json.dumps({"amount": 5000}).encode(), headers={"Content-Type": "text/plain"})
        assert ok.status_code == 202, ok.text
        got = await app.state.client.result(ok.json()["run_id"], timeout=30)
        assert got == {"needs_approval": True, "fast_path": False}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"amount": float("nan")}, "input.amount"),
        ({"lines": [{"amount": float("inf")}]}, "input.lines[0].amount"),
        (_nested(70), "nested deeper than 64"),
    ],
)
async def test_attack_no_surface_starts_or_forks_a_run_with_an_input_json_cannot_hold(
    tmp_path: Path, value: Any, field: str
) -> None:
    """The broker consumer, the CLI, MCP and programs all start runs through ``Client.start``. (A lone
    surrogate is refused there by the store's serializer: tests/test_engine.py.)"""
    wf = podium_yaml.load_text(FLOW.replace("triggers:\n  - webhook: /hooks/pay\n", ""))
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf]) as c:
        with pytest.raises(InputValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
            await c.start(wf, value)
        assert await c.store.list_runs() == []
        done = await c.start(wf, {"amount": 10})
        await done.result()
        with pytest.raises(InputValidationError, match="NaN"):
            await c.fork(done.id, "check", input={"amount": float("nan")})
