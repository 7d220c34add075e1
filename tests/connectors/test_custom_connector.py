"""The "new connector in under 60 lines" of docs/connectors.md, registered as a kind and used from a
run, against the stand-in's webhook endpoint: the machinery (durable sub-step, retries honouring
Retry-After, idempotency key, audit) comes with it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium import Client, Workflow
from podium.connectors import _registry, available_kinds, open_connector
from podium.resilience import Backoff

from .conftest import Crm

EXAMPLE = Path(__file__).parent / "webhook_connector.py"


@pytest.fixture
def example_kind() -> Iterator[None]:
    """The docs' example registered as the "webhook" kind (it replaces the shipped one, as its last
    line says) for one test, and the shipped kind back after it: imported at collection, it replaced
    the shipped kind for every test of the session, whose "webhook" connectors then lacked the
    shipped one's settings (max_response_bytes) in a full run only."""
    shipped = _registry._KINDS["webhook"]
    module = importlib.import_module("tests.connectors.webhook_connector")
    _registry.register_kind("webhook", module.WebhookConnector, replace=True)
    try:
        yield
    finally:
        _registry._KINDS["webhook"] = shipped
DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


def test_the_example_is_short_and_is_the_one_in_the_docs() -> None:
    lines = EXAMPLE.read_text().splitlines()
    code = lines[lines.index("from __future__ import annotations") :]
    assert len(code) < 60, len(code)
    assert "\n".join(code) in DOC.read_text()


async def test_a_registered_kind_works_in_a_run(crm: Crm, tmp_path: Path, example_kind: None) -> None:
    assert "webhook" in available_kinds()
    hook = open_connector("webhook", url=f"{crm.url}/hooks/general")
    hook.retry = Backoff(max_attempts=3, initial=0.01)
    wf = Workflow("notify")

    @wf.step
    async def tell(ctx, input):
        return await ctx.connector("slack").call("post", {"text": input})

    crm.failures = [(503, {"Retry-After": "0.1"})]
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"slack": hook}) as client:
        assert await client.run(wf, "deploy finished") == {"ok": True, "channel": "general"}
        audited = [e.details() for e in await client.audit_log() if e.action == "connector.call"]
    posts = crm.of("POST")
    assert len(posts) == 2 and posts[0]["headers"]["Idempotency-Key"] == posts[1]["headers"]["Idempotency-Key"]
    assert posts[1]["body"] == {"text": "deploy finished"}
    assert [a["outcome"] for a in audited] == ["ok"]
