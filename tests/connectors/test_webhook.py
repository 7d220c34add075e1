"""The shipped ``webhook`` kind against a real HTTP endpoint on 127.0.0.1: Slack-compatible bodies,
the Idempotency-Key on every attempt, retries on 5xx/429 honouring Retry-After, no retry on 4xx or
redirects, the SSRF guard (nothing is sent to a private address unless allowed), and a webhook URL's
secret path never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from podium import Client, ConfigError, Workflow
from podium.connectors import ConnectorError
from podium.connectors.webhook import WebhookConnector
from podium.resilience import Backoff

from .standins import Hook


def make(hook: Hook, **kw: object) -> WebhookConnector:
    found = WebhookConnector(hook.url, allow_private=True, **kw)  # type: ignore[arg-type]
    found.retry = Backoff(max_attempts=4, initial=0.01)
    return found


def test_the_kinds_are_shipped_by_name() -> None:
    # In a fresh process: tests/connectors/webhook_connector.py (the docs' example) replaces the
    # "webhook" kind in this one.
    code = (
        "from podium.connectors import available_kinds; from podium.connectors._registry import factory; "
        "from podium.connectors.webhook import WebhookConnector; from podium.connectors.smtp import SmtpConnector; "
        "assert {'smtp', 'webhook'} <= set(available_kinds()); "
        "assert factory('webhook') is WebhookConnector and factory('smtp') is SmtpConnector"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


async def test_posts_text_and_blocks_with_an_idempotency_key(hook: Hook) -> None:
    slack = make(hook)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* finished"}}]
    out = await slack.guarded_call("post", {"text": "deploy finished", "blocks": blocks}, idempotency_key="k-1")
    assert out == {"status": 200, "response": "ok"}
    (req,) = hook.requests
    assert req["body"] == {"text": "deploy finished", "blocks": blocks}
    assert req["headers"]["Idempotency-Key"] == "k-1"
    assert req["path"] == "/services/T000/B000/SECRETPATH"
    await slack.guarded_call("send", {"body": {"event": "order.placed", "id": 7}}, idempotency_key="k-2")
    assert hook.requests[1]["body"] == {"event": "order.placed", "id": 7}
    await slack.close()


async def test_retries_5xx_and_429_with_retry_after_and_the_same_key(hook: Hook) -> None:
    slack = make(hook)
    hook.failures = [(503, {"Retry-After": "0.05"}), (429, {"Retry-After": "0"}), (502, {})]
    await slack.guarded_call("post", {"text": "hi"}, idempotency_key="same")
    assert len(hook.requests) == 4
    assert {r["headers"]["Idempotency-Key"] for r in hook.requests} == {"same"}
    assert list(hook.effects) == ["same"]
    assert slack.stats.calls == 4 and slack.stats.errors == 3 and slack.stats.retries == 3
    await slack.close()


@pytest.mark.parametrize("status", [400, 404, 410, 302])
async def test_a_4xx_or_a_redirect_is_not_retried(hook: Hook, status: int) -> None:
    slack = make(hook)
    hook.failures = [(status, {"Location": "http://169.254.169.254/"} if status == 302 else {})]
    with pytest.raises(ConnectorError) as caught:
        await slack.guarded_call("post", {"text": "hi"})
    assert caught.value.status == status and not caught.value.retryable
    assert len(hook.requests) == 1
    assert "SECRETPATH" not in str(caught.value)  # the path of a webhook URL is its credential
    await slack.close()


async def test_bad_arguments_send_nothing(hook: Hook) -> None:
    slack = make(hook)
    for op, args in [("post", {}), ("post", {"text": "x", "url": "http://evil"}), ("send", {"body": "text"})]:
        with pytest.raises(ConnectorError) as caught:
            await slack.guarded_call(op, args)
        assert not caught.value.retryable
    assert hook.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
    ],
)
async def test_private_addresses_are_refused_before_connecting(hook: Hook, url: str) -> None:
    """The attack: a webhook URL (or a name resolving) to an internal service. Nothing is sent."""
    guarded = WebhookConnector(url.format(port=hook.port))
    with pytest.raises(ConnectorError) as caught:
        await guarded.guarded_call("post", {"text": "hi"})
    assert "may not reach" in str(caught.value) and "allow_private" in str(caught.value)
    assert not caught.value.retryable
    assert hook.requests == []
    assert (await guarded.health())["ok"] is False


def test_a_url_that_is_not_http_is_refused() -> None:
    for url in ["file:///etc/passwd", "hooks.slack.com/x", ""]:
        with pytest.raises(ConfigError, match="absolute http"):
            WebhookConnector(url)


async def test_in_a_run_it_is_a_durable_audited_sub_step(hook: Hook, tmp_path: Path) -> None:
    slack = make(hook)
    wf = Workflow("notify")

    @wf.step
    async def tell(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("slack").call("post", {"text": input})

    hook.failures = [(500, {})]
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"slack": slack}) as client:
        assert await client.run(wf, "deploy finished") == {"status": 200, "response": "ok"}
        audited = [e.details() for e in await client.audit_log() if e.action == "connector.call"]
    keys = {r["headers"]["Idempotency-Key"] for r in hook.requests}
    assert len(hook.requests) == 2 and len(keys) == 1 and keys.pop().endswith("connector:slack.post")
    assert [a["outcome"] for a in audited] == ["ok"]
    assert (await slack.health())["ok"] is True
