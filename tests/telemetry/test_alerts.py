"""Alert rules fire when they should, and only then; delivery to a real local webhook receiver and a
real SMTP server (aiosmtpd) on 127.0.0.1; cooldowns; broken channels never break a run."""

from __future__ import annotations

import asyncio
import logging

import pytest

import podium
from podium import StepContext, ai
from podium.models import Gateway
from podium.models.testing import ScriptedModel
from podium.telemetry import AlertRule, Alerts, Email, Webhook

from .conftest import free_port
from .receivers import HookServer, SmtpServer


def failing(name: str = "orders") -> podium.Workflow:
    wf = podium.Workflow(name)

    @wf.step
    async def charge(input: dict) -> None:
        if input.get("fail", True):
            raise RuntimeError("card declined")

    return wf


async def run(client: podium.Client, wf: podium.Workflow, input: dict | None = None) -> str:
    run_id = (await client.start(wf, input or {})).id
    await client.wait(run_id)
    return run_id


async def test_run_failed_to_webhook(client):
    with HookServer() as hook:
        alerts = Alerts(
            [AlertRule(name="failures", kind="run_failed", severity="critical")],
            [Webhook(url=hook.url, headers={"X-Podium-Key": "k1"})],
        )
        alerts.attach(client)
        wf = failing()
        await run(client, wf, {"fail": False})  # a completed run does not fire
        run_id = await run(client, wf)
        await alerts.stop()
    assert len(hook.received) == 1
    body = hook.received[0]
    assert body["rule"] == "failures" and body["kind"] == "run_failed" and body["severity"] == "critical"
    assert body["details"]["run_id"] == run_id and body["details"]["workflow"] == "orders"
    assert body["details"]["step"] == "charge" and "card declined" in body["details"]["error"]
    assert body["text"].startswith("[critical] run of orders failed at step 'charge'")
    assert hook.headers[0]["X-Podium-Key"] == "k1"


async def test_a_failure_that_names_a_credential_reaches_no_alert_channel_in_clear(client):
    """Attack: a tool's error echoes what it was sent (an Authorization header, a database URL with
    its password); the run fails with that message and the alert took it, unmasked, to Slack or
    email, although logs, the CLI and the API mask it."""
    wf = podium.Workflow("leaky")

    @wf.step
    async def call(input: dict) -> None:
        raise RuntimeError(
            "crm answered 401 for Authorization: Bearer sk-live-0123456789abcdef, "
            "db postgresql://app:hunter2secret@db.internal/crm, api_key=k-99887766"
        )

    with HookServer() as hook:
        alerts = Alerts([AlertRule(name="failures", kind="run_failed")], [Webhook(url=hook.url)])
        alerts.attach(client)
        await run(client, wf)
        await alerts.stop()
    sent = str(hook.received) + str(alerts.sent)
    for secret in ("sk-live-0123456789abcdef", "hunter2secret", "k-99887766"):
        assert secret not in sent
    assert "crm answered 401" in hook.received[0]["details"]["error"]


async def test_run_failed_by_email_to_a_real_smtp_server(client):
    pytest.importorskip("aiosmtpd", reason="the email test needs aiosmtpd: pip install 'podium[dev]'")
    with SmtpServer(free_port()) as smtp:
        email = Email(
            host="127.0.0.1", port=smtp.port, sender="podium@example.test", to=["oncall@example.test"]
        )
        alerts = Alerts([AlertRule(name="failures", kind="run_failed", severity="critical")], [email])
        alerts.attach(client)
        run_id = await run(client, failing())
        await alerts.stop()
    assert len(smtp.messages) == 1
    sender, rcpts, msg = smtp.messages[0]
    assert sender == "podium@example.test" and rcpts == ["oncall@example.test"]
    assert msg["Subject"] == "[podium] critical: run of orders failed at step 'charge'"
    body = msg.get_content()
    assert run_id in body and "card declined" in body and "rule: failures (run_failed)" in body


async def test_workflow_filter_and_channel_selection(client):
    with HookServer() as a, HookServer() as b:
        alerts = Alerts(
            [AlertRule(name="billing", kind="run_failed", workflow="billing-*", channels=["a"])],
            [Webhook(url=a.url, name="a"), Webhook(url=b.url, name="b")],
        )
        alerts.attach(client)
        await run(client, failing("orders"))
        await run(client, failing("billing-eu"))
        await alerts.stop()
    assert [m["details"]["workflow"] for m in a.received] == ["billing-eu"]
    assert b.received == []


async def test_cooldown_holds_back_repeats_and_counts_them(client):
    alerts = Alerts([AlertRule(name="failures", kind="run_failed", cooldown=0.3)])
    alerts.attach(client)
    wf = failing()
    for _ in range(3):
        await run(client, wf)
    assert len(alerts.sent) == 1
    await asyncio.sleep(0.35)
    await run(client, wf)
    assert len(alerts.sent) == 2 and alerts.sent[-1].suppressed == 2
    await run(client, failing("other"))  # another subject is not held back
    assert len(alerts.sent) == 3
    await alerts.stop()


async def test_latency_slo_for_runs_and_steps(client):
    wf = podium.Workflow("report")

    @wf.step
    async def fast(input: dict) -> int:
        return 1

    @wf.step
    async def slow(fast: int, input: dict) -> int:
        await asyncio.sleep(input["sleep"])
        return 2

    alerts = Alerts(
        [
            AlertRule(name="run-slo", kind="latency_slo", seconds=0.15),
            AlertRule(name="step-slo", kind="latency_slo", step="slow", seconds=0.1, cooldown=0),
        ]
    )
    alerts.attach(client)
    await run(client, wf, {"sleep": 0})
    assert list(alerts.sent) == []
    run_id = await run(client, wf, {"sleep": 0.2})
    fired = {a.rule: a for a in alerts.sent}
    assert set(fired) == {"run-slo", "step-slo"}
    assert fired["step-slo"].details["step"] == "slow" and fired["step-slo"].details["duration"] >= 0.2
    assert fired["run-slo"].details["run_id"] == run_id and fired["run-slo"].details["status"] == "completed"
    await alerts.stop()


async def test_latency_slo_fires_for_a_run_still_running(client):
    gate = asyncio.Event()
    wf = podium.Workflow("stuck")

    @wf.step
    async def hang(input: dict) -> None:
        await gate.wait()

    alerts = Alerts([AlertRule(name="run-slo", kind="latency_slo", seconds=0.05)])
    alerts.attach(client)
    run_id = (await client.start(wf, {})).id
    await alerts.check()
    assert list(alerts.sent) == []
    await asyncio.sleep(0.1)
    await alerts.check()
    await alerts.check()
    assert [a.details["status"] for a in alerts.sent] == ["running"]
    assert "still running" in alerts.sent[0].text
    gate.set()
    await client.wait(run_id)
    assert len(alerts.sent) == 1  # not alerted again when it ends
    await alerts.stop()


async def test_budget_reached_from_the_audit_log(client):
    from podium.governance.policy import Policy

    model = ScriptedModel(default="a fairly long answer from the model")
    wf = podium.Workflow("spender")

    @wf.step
    async def ask(ctx: StepContext) -> str:
        await ai.llm(ctx, "first", model=Gateway().model(model))
        return (await ai.llm(ctx, "second", model=Gateway().model(model))).text

    thrifty = podium.Workflow("thrifty")

    @thrifty.step
    async def once(ctx: StepContext) -> str:
        return (await ai.llm(ctx, "only", model=Gateway().model(model))).text

    await client.set_policy("spender", Policy(max_run_tokens=1))
    await client.set_policy("thrifty", Policy(max_run_tokens=10_000))
    alerts = Alerts([AlertRule(name="budget", kind="budget_reached")])
    alerts.attach(client)
    await run(client, thrifty)
    assert list(alerts.sent) == []
    run_id = await run(client, wf)
    assert [a.kind for a in alerts.sent] == ["budget_reached"]
    assert alerts.sent[0].details["run_id"] == run_id and alerts.sent[0].details["workflow"] == "spender"
    assert "tokens of 1" in alerts.sent[0].text
    await alerts.stop()


async def test_approval_sla_missed(client):
    wf = podium.Workflow("refunds")

    @wf.step
    async def approve(ctx: StepContext) -> dict:
        return await ctx.approval({"amount": 90}, title="refund 90 EUR")

    alerts = Alerts([AlertRule(name="sla", kind="approval_sla_missed", seconds=0.1)], poll_interval=0.05)
    alerts.attach(client)
    run_id = (await client.start(wf, {})).id
    for _ in range(50):
        if await client.approvals():
            break
        await asyncio.sleep(0.02)
    await alerts.check()
    assert list(alerts.sent) == []  # not overdue yet
    await alerts.start()  # the poller finds it once it is overdue, and alerts once
    await asyncio.sleep(0.4)
    assert [a.kind for a in alerts.sent] == ["approval_sla_missed"]
    a = alerts.sent[0]
    assert a.details["run_id"] == run_id and a.details["step"] == "approve" and "refund 90 EUR" in a.title
    await client.decide(run_id, a.details["approval"], approve=True)
    await client.wait(run_id)
    await alerts.check()
    assert len(alerts.sent) == 1
    await alerts.stop()


async def test_a_broken_channel_is_logged_and_never_breaks_the_run(client, caplog):
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with HookServer(statuses=[503, 500]) as flaky, HookServer(statuses=[400]) as wrong:
        alerts = Alerts(
            [AlertRule(name="failures", kind="run_failed")],
            [
                Webhook(url=dead, name="dead", retries=1, backoff=0.01, timeout=1),
                Webhook(url=flaky.url, name="flaky", retries=2, backoff=0.01),
                Webhook(url=wrong.url, name="wrong", retries=3, backoff=0.01),
                Email(
                    host="127.0.0.1",
                    port=free_port(),
                    sender="a@b.test",
                    to="c@d.test",
                    retries=0,
                    name="mail",
                ),
            ],
        )
        alerts.attach(client)
        with caplog.at_level(logging.ERROR, logger="podium.alerts"):
            run_id = await run(client, failing())
            await alerts.stop()
    assert (await client.get(run_id)).status.value == "failed"  # the run ended normally
    assert len(flaky.received) == 1  # delivered on its third attempt
    assert wrong.received == [] and wrong.statuses == []  # a 400 is not retried
    errors = " | ".join(r.getMessage() for r in caplog.records)
    assert "not delivered to dead" in errors and "not delivered to wrong" in errors and "HTTP 400" in errors
    assert "not delivered to mail" in errors and "not delivered to flaky" not in errors


async def test_policy_refused(client):
    from podium.governance.policy import Policy

    wf = podium.Workflow("private")

    @wf.step(on_error="continue")
    async def ask(ctx: StepContext) -> str:
        return (await ai.llm(ctx, "hi", model=Gateway().model(ScriptedModel()))).text

    await client.set_policy("private", Policy(allowed_providers=["local"]))
    alerts = Alerts([AlertRule(name="refusals", kind="policy_refused", severity="info")])
    alerts.attach(client)
    run_id = await run(client, wf)
    assert [a.kind for a in alerts.sent] == ["policy_refused"]
    assert alerts.sent[0].details["run_id"] == run_id and alerts.sent[0].details["provider"] == "scripted"
    assert "provider 'scripted'" in alerts.sent[0].title
    await alerts.stop()
