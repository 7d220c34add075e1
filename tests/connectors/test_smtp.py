"""The ``smtp`` kind against a real SMTP server (aiosmtpd on 127.0.0.1): what arrives (headers,
text and HTML parts, envelope recipients), login with the password as a Secret, a Message-ID derived
from the idempotency key (a resent message is recognisable), and header injection refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import Client, ConfigError, RetryPolicy, Workflow
from podium.connectors import ConnectorError, open_connector
from podium.connectors.smtp import SmtpConnector
from podium.resilience import Backoff
from podium.secret import Secret

from .standins import Mailbox


def make(box: Mailbox, **kw: object) -> SmtpConnector:
    conn = SmtpConnector("127.0.0.1", box.port, sender="Podium <podium@example.com>", **kw)  # type: ignore[arg-type]
    conn.retry = Backoff(max_attempts=2, initial=0.01)
    return conn


async def test_sends_text_and_html_to_to_cc_and_bcc(mailbox: Mailbox) -> None:
    mail = make(mailbox)
    out = await mail.guarded_call(
        "send",
        {
            "to": ["Ada <ada@example.com>"],
            "cc": "ops@example.com",
            "bcc": ["audit@example.org"],
            "subject": "Order 7 shipped",
            "text": "Your order is on its way.",
            "html": "<p>Your order is on its <b>way</b>.</p>",
            "headers": {"X-Order": "7", "In-Reply-To": "<order-7@example.com>"},
        },
        idempotency_key="run-1/notify/connector:mail.send",
    )
    ((sender, rcpts, msg),) = mailbox.received
    assert sender == "podium@example.com"
    assert sorted(rcpts) == ["ada@example.com", "audit@example.org", "ops@example.com"]
    assert msg["Subject"] == "Order 7 shipped" and msg["To"] == "Ada <ada@example.com>"
    assert msg["Bcc"] is None  # blind copies are envelope-only
    assert msg["X-Order"] == "7" and msg["In-Reply-To"] == "<order-7@example.com>"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()}
    assert parts["text/plain"].strip() == "Your order is on its way."
    assert "<b>way</b>" in parts["text/html"]
    assert out["message_id"] == msg["Message-ID"] and out["refused"] == []


async def test_the_message_id_follows_the_idempotency_key(mailbox: Mailbox) -> None:
    mail = make(mailbox)
    args = {"to": "ada@example.com", "subject": "hi", "text": "hello"}
    await mail.call("send", args, idempotency_key="key-A")
    await mail.call("send", args, idempotency_key="key-A")  # a resend after a crash
    await mail.call("send", args, idempotency_key="key-B")
    ids = [m["Message-ID"] for _, _, m in mailbox.received]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].endswith("@example.com>") and "key-A" not in ids[0]


async def test_login_with_a_secret_password(mailbox: Mailbox) -> None:
    mail = make(mailbox, username="podium", password=Secret("s3cret"))
    await mail.call("send", {"to": "ada@example.com", "subject": "s", "text": "t"})
    assert mailbox.logins == ["podium"] and len(mailbox.received) == 1
    assert (await mail.health())["ok"] is True
    wrong = make(mailbox, username="podium", password="nope")
    with pytest.raises(ConnectorError, match="login was refused") as caught:
        await wrong.guarded_call("send", {"to": "ada@example.com", "subject": "s", "text": "t"})
    assert not caught.value.retryable and "nope" not in str(caught.value)
    assert len(mailbox.received) == 1


async def test_password_from_the_environment(mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASS", "s3cret")
    mail = open_connector("smtp", host="127.0.0.1", port=str(mailbox.port), sender="podium@example.com",
                          username="podium", password_env="SMTP_PASS")
    await mail.call("send", {"to": "ada@example.com", "subject": "s", "text": "t"})
    assert mailbox.logins == ["podium"]
    with pytest.raises(ConfigError, match="secret store|password_env"):
        await SmtpConnector("127.0.0.1", mailbox.port, sender="p@example.com", username="u",
                            password="secret:SMTP").call("send", {"to": "a@example.com", "subject": "s", "text": "t"})


@pytest.mark.parametrize(
    "args",
    [
        {"to": "ada@example.com", "subject": "hi\r\nBcc: victim@evil.example", "text": "x"},
        {"to": "ada@example.com\r\nBcc: victim@evil.example", "subject": "hi", "text": "x"},
        {"to": "ada@example.com", "subject": "hi", "text": "x", "headers": {"Bcc": "victim@evil.example"}},
        {"to": "ada@example.com", "subject": "hi", "text": "x", "headers": {"X-A": "1\r\nBcc: victim@evil.example"}},
        {"to": "ada@example.com", "subject": "hi", "text": "x", "headers": {"From": "ceo@example.com"}},
        {"to": "not an address", "subject": "hi", "text": "x"},
        {"to": "ada@example.com", "subject": "hi"},
    ],
)
async def test_header_injection_and_bad_arguments_are_refused(mailbox: Mailbox, args: dict[str, object]) -> None:
    """The attack: a workflow (or a model's output) adding recipients or forging the sender."""
    mail = make(mailbox)
    with pytest.raises(ConnectorError) as caught:
        await mail.guarded_call("send", args)
    assert not caught.value.retryable
    assert mailbox.received == []


async def test_allowed_recipients_limit_who_gets_mail(mailbox: Mailbox) -> None:
    mail = make(mailbox, allowed_recipients="ops@example.com,@example.org")
    await mail.call("send", {"to": ["ops@example.com", "x@example.org"], "subject": "s", "text": "t"})
    with pytest.raises(ConnectorError, match="allowed_recipients"):
        await mail.call("send", {"to": "ops@example.com", "bcc": "leak@evil.example", "subject": "s", "text": "t"})
    assert len(mailbox.received) == 1


async def test_a_server_that_is_down_is_retryable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mail = SmtpConnector("127.0.0.1", port, sender="p@example.com", timeout=5)
    mail.retry = Backoff(max_attempts=2, initial=0.01)
    with pytest.raises(ConnectorError, match="could not be reached") as caught:
        await mail.guarded_call("send", {"to": "a@example.com", "subject": "s", "text": "t"})
    assert caught.value.retryable and mail.stats.calls == 2
    assert (await mail.health())["ok"] is False


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="not both"):
        SmtpConnector("mail.example.com", sender="p@example.com", ssl=True, starttls=True)
    with pytest.raises(ConfigError, match="sender"):
        SmtpConnector("mail.example.com", sender="nobody")
    assert SmtpConnector("mail.example.com", sender="p@example.com", starttls="true").port == 587
    assert SmtpConnector("mail.example.com", sender="p@example.com", ssl=True).port == 465


async def test_in_a_run_a_retried_step_does_not_send_twice(mailbox: Mailbox, tmp_path: Path) -> None:
    mail = make(mailbox)
    wf = Workflow("mailer")
    tries = {"n": 0}

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def notify(ctx, input):  # type: ignore[no-untyped-def]
        sent = await ctx.connector("mail").call("send", {"to": input, "subject": "s", "text": "t"})
        tries["n"] += 1
        if tries["n"] == 1:
            raise RuntimeError("the step fails after the mail went out")
        return sent

    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"mail": mail}) as client:
        out = await client.run(wf, "ada@example.com")
    assert len(mailbox.received) == 1 and out["message_id"] == mailbox.received[0][2]["Message-ID"]


async def test_the_registry_never_holds_the_password(mailbox: Mailbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: an admin registers the password itself, which every workflow reader could read."""
    target = {"kind": "smtp", "host": "127.0.0.1", "port": str(mailbox.port), "sender": "p@example.com", "username": "podium"}
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        with pytest.raises(ConfigError, match="password_env"):
            await client.add_capability("mail", "connector", {**target, "password": "s3cret"})
        cap = await client.add_capability("mail", "connector", {**target, "password_env": "SMTP_PASS"})
    from podium.connectors._registry import open_registered

    monkeypatch.setenv("SMTP_PASS", "s3cret")
    mail = open_registered(cap.target, name="mail")
    await mail.call("send", {"to": "ada@example.com", "subject": "s", "text": "t"})
    assert mailbox.logins == ["podium"]


async def test_settings_that_say_where_a_secret_is_are_not_secrets(tmp_path: Path) -> None:
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        cap = await client.add_capability(
            "crm",
            "connector",
            {"kind": "webhook", "url_env": "HOOK", "token_url": "https://auth.example.com/token", "api_key": "secret:CRM"},
        )
        assert cap.target["token_url"] == "https://auth.example.com/token"
        with pytest.raises(ConfigError, match="api_key_env"):
            await client.add_capability("crm", "connector", {"kind": "webhook", "url_env": "HOOK", "api_key": "abc123"})
