"""Secrets are masked wherever they are shown, logged or stored: the ``Secret`` type, provider API
keys, ``podium show`` (table and JSON) and the JSON and text logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from podium import Client, _serde
from podium.cli import cli
from podium.secret import Secret, mask, redact
from podium.telemetry import configure_logging

KEY = "sk-proj-ABCDEFGHIJKLMNOP1234"
LIVE = "sk-live-XYZ1234567890"


def test_a_secret_shows_as_stars_everywhere_but_reveal() -> None:
    from pydantic import BaseModel

    s = Secret(KEY)
    assert str(s) == "***" and repr(s) == "Secret('***')" and f"{s}" == "***" and f"{s:>10}" == "***"
    assert s.reveal() == KEY and s == Secret(KEY) and s and not Secret("")
    assert KEY not in _serde.dumps({"key": s})  # never persisted
    with pytest.raises(TypeError):
        json.dumps(s)

    class Config(BaseModel):
        api_key: Secret

    cfg = Config(api_key=KEY)  # type: ignore[arg-type]
    assert cfg.api_key.reveal() == KEY
    assert KEY not in cfg.model_dump_json() and KEY not in repr(cfg)


def test_mask_and_redact() -> None:
    data = {"api_key": KEY, "password": "hunter2", "usage": {"prompt_tokens": 12, "max_tokens": 5},
            "nested": [{"Authorization": "Bearer abc.def"}], "note": f"called with {LIVE}"}  # fmt: skip
    shown = json.dumps(mask(data))
    assert KEY not in shown and "hunter2" not in shown and "abc.def" not in shown and LIVE not in shown
    assert '"prompt_tokens": 12' in shown and '"max_tokens": 5' in shown
    text = redact('failed: {"api_key": "abc123", "x": 1} password=hunter2 token: t0k3n')
    assert "abc123" not in text and "hunter2" not in text and "t0k3n" not in text and '"x": 1' in text



PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1Zb9Qk\n-----END RSA PRIVATE KEY-----"


def test_credentials_the_first_masking_missed() -> None:
    """The attack (review of the run trace): credentials that reached the store and every view in
    clear: a secret-named field holding a list or mapping, HTTP basic credentials, a URL's password,
    a PEM private key."""
    data = {"password": ["hunter2secret"], "client_secret": {"value": "s3cr3t-value", "ttl": 60},
            "headers": [["Authorization", "Basic dXNlcjpwYXNzd29yZA=="]],
            "dsn": "postgresql://admin:S3cretPass@db.internal:5432/shop", "key_file": PEM}  # fmt: skip
    shown = json.dumps(mask(data))
    for leaked in ("hunter2secret", "s3cr3t-value", "dXNlcjpwYXNzd29yZA", "S3cretPass", "MIIEowIBAAKCAQEAx1Zb9Qk"):
        assert leaked not in shown, leaked
    assert '"ttl": 60' in shown and "postgresql://admin:***@db.internal:5432/shop" in shown
    text = redact(f'curl -H "Authorization: Basic dXNlcjpwYXNzd29yZA==" https://u:pw123@x.example/ and {PEM[:60]}')
    assert "dXNlcjpwYXNz" not in text and "pw123" not in text and "MIIEowIBAAKC" not in text
    # prose and plain URLs are left alone
    prose = "a basic understanding of https://example.com:8080/path and https://user@host.example/x"
    assert redact(prose) == prose


async def test_provider_keys_are_secrets_revealed_only_in_the_request() -> None:
    from podium.models import Message, Request
    from podium.models.openai import OpenAIModel

    seen: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "hi"}}]})

    model = OpenAIModel("gpt-4o-mini", api_key=KEY, transport=httpx.MockTransport(reply))
    assert isinstance(model.api_key, Secret)
    assert KEY not in repr(model) and KEY not in repr(vars(model)) and KEY not in str(model.api_key)
    await model.complete(Request(messages=(Message(role="user", content="hello"),)))
    assert seen == [f"Bearer {KEY}"]


FLOW = (
    "name: keyed\nsteps:\n  - id: s\n    uses: set\n"
    f'    with: {{api_key: "{KEY}", password: hunter2, x: 1}}\n'
)


def test_podium_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    db = f"sqlite:///{tmp_path}/s.db"
    (tmp_path / "keyed.yaml").write_text(FLOW)

    async def run() -> str:
        async with Client(db) as c:
            await c.deploy(str(tmp_path / "keyed.yaml"))
            await c.run("keyed", {"openai_api_key": LIVE, "token": "abc"})
            return (await c.list(limit=1))[0].id

    run_id = asyncio.run(run())
    runner = CliRunner()
    for args in (["show", run_id], ["show", run_id, "--json"], ["show", run_id, "--full"]):
        out = runner.invoke(cli, args, env={"PODIUM_DB": db, "COLUMNS": "300"})
        assert out.exit_code == 0, out.output
        for secret in (KEY, LIVE, "hunter2"):
            assert secret not in out.output, (args, secret, out.output)
        assert "***" in out.output
    doc = json.loads(runner.invoke(cli, ["show", run_id, "--json"], env={"PODIUM_DB": db}).output)
    assert doc["run"]["input"] == {"openai_api_key": "***", "token": "***"}
    assert doc["run"]["output"]["x"] == 1


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_logs_mask_secrets(fmt: str) -> None:
    stream = io.StringIO()
    handler = configure_logging(fmt, "info", stream=stream)
    try:
        log = logging.getLogger("podium.test")
        log.info(
            "step failed: {'api_key': '%s'} password=hunter2 key %s", KEY, Secret(LIVE),
            extra={"api_key": KEY, "config": {"password": "hunter2"}, "header": f"Bearer {LIVE}"},
        )  # fmt: skip
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert text and KEY not in text and LIVE not in text and "hunter2" not in text, text


def test_api_views_mask_secrets() -> None:
    pytest.importorskip("fastapi")
    from podium.server._views import payload

    shown = payload(json.dumps({"api_key": KEY, "nested": {"client_secret": "s3cr3t"}, "n": 1}))
    assert shown == {"api_key": "***", "nested": {"client_secret": "***"}, "n": 1}
